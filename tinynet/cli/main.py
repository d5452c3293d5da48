"""``tinynet ARGS``: parse, run the command, and turn how it ended into the exit status: tinynet's own errors in one
line and status 2, Ctrl-C in one line and 130, a closed output pipe quietly (141 for a training cut short)."""

from __future__ import annotations

import os
import sys
import time

from tinynet.errors import EXPECTED

from .commands import cmd_data, cmd_evaluate, cmd_export, cmd_inspect, cmd_models, cmd_predict, cmd_summary
from .gradcheck import cmd_gradcheck
from .parser import build_parser, given_options
from .train import cmd_train, resume_hint


def _command(name):
    """The function that runs the command ``name``, looked up in this module when called (tests replace some)."""
    return {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "data": cmd_data,
            "inspect": cmd_inspect, "export": cmd_export, "models": cmd_models, "gradcheck": cmd_gradcheck,
            "summary": cmd_summary}[name]


def _one_line(exc):
    """The message printed for an expected error (see tinynet/errors.py)."""
    msg = str(exc).strip()
    if isinstance(exc, MemoryError) and "memory" not in msg.lower():
        return f"out of memory: {msg}" if msg else "out of memory"
    return msg or type(exc).__name__


def _stdout_to_devnull():
    """Point stdout at os.devnull, so that Python's final flush of what is left cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in-process)
        pass


def main(argv=None):
    """Run one command; returns its exit status. Every error tinynet raises on purpose
    (tinynet.errors.EXPECTED) ends in one line on stderr and status 2, Ctrl-C in one line and 130."""
    args = build_parser().parse_args(argv)
    if args.command == "train":  # --resume refuses options written beside it that differ from the checkpoint's
        args.given = given_options(argv)
    started, status = time.time(), None
    try:
        status = _command(args.command)(args)
        sys.stdout.flush()  # a closed pipe shows here, not in an "Exception ignored" message at exit
        return status
    except BrokenPipeError:  # stdout is a pipe whose reader stopped (| head): files come first, so exit quietly
        _stdout_to_devnull()
        if args.command == "train" and status is None:  # but a training cut short is not a success
            print("tinynet: stopped: the output pipe closed before training ended" + resume_hint(args, started),
                  file=sys.stderr)
            return 141  # as a shell reports a process killed by SIGPIPE
        return 0 if status is None else status
    except KeyboardInterrupt:
        hint = resume_hint(args, started) if args.command == "train" else ""
        print("tinynet: interrupted" + hint, file=sys.stderr)
        return 130
    except EXPECTED as exc:
        print(f"tinynet: error: {_one_line(exc)}", file=sys.stderr)
        return 2
