"""Writing a file atomically, and sweeping the temp files of writers that died mid-write.

The bytes go to a temp file in the destination's folder, are flushed to disk, get the mode a plain open() would
give, and the temp file is renamed over the destination (``os.replace``): a reader sees the old file or the new
one, never part of one; a crash mid-write leaves the old file intact; writes of one path that run at the same
time (threads or processes) each finish, the last rename winning.

A temp file is named after its writer (``.NAME.HOST-PID.RANDOM.tmp``), so the next write of the same path can
remove those whose process is provably gone, and leave alone those of writers still at work.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import zlib
from pathlib import Path


def default_file_mode() -> int:
    """0o666 minus the process umask: the mode a plain open() would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def writer_tag():
    """Who writes a temp file: this machine and PID namespace (hashed) and this process's id."""
    where = socket.gethostname()
    try:
        where += os.readlink("/proc/self/ns/pid")
    except OSError:
        pass
    return f"{zlib.crc32(where.encode()):08x}-{os.getpid()}"


@contextlib.contextmanager
def writing(path):
    """Tag an OSError raised inside with the file being written, as ``exc.writing``: a write() that fails (a full
    disk) names no file, and the one that tells the user (experiment's DiskFull) should. The innermost tag wins."""
    try:
        yield
    except OSError as exc:
        if getattr(exc, "writing", None) is None:
            exc.writing = str(path)
        raise


def write_atomically(path, write, check=None):
    """Replace ``path`` (whose folder must exist) with what ``write(file)`` writes into a binary file, atomically.

    ``check(temp_path)``, if given, sees the complete temp file before the rename and raises to refuse it. On any
    exception the temp file is removed, ``path`` is left as it was, and the exception propagates. Returns ``path``.
    """
    path = Path(path)
    _sweep_dead_temp_files(path)
    with writing(path):  # a temp file's error (a full disk) names the file the user asked for
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer_tag()}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename, so a power cut cannot leave an empty file at path
            if check is not None:
                check(Path(tmp))
            os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; keep the user's usual permissions
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def _pid_is_dead(pid):
    if pid == os.getpid():
        return False  # another thread of this process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):
        return False  # exists (owned by someone else), or we cannot tell
    return False


def _sweep_dead_temp_files(path):
    """Remove temp files of ``path`` left by writes whose process is provably gone (killed mid-write).

    One of another machine or PID namespace, of a live process (or a reused PID), or not named
    ``.NAME.HOST-PID.RANDOM.tmp`` is never touched: it may be a write in progress.
    """
    if os.name != "posix":
        return  # os.kill(pid, 0) would terminate the process on Windows
    host = writer_tag().split("-")[0]
    pattern = re.compile(re.escape(f".{path.name}.") + r"([0-9a-f]{8})-([0-9]+)\.[A-Za-z0-9_]+\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and m.group(1) == host and _pid_is_dead(int(m.group(2))):
            (path.parent / name).unlink(missing_ok=True)
