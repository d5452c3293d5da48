"""Fashion-MNIST: find, verify and load the real data; preprocessing helpers.

Files are looked for in: ``root`` or ``$TINYNET_DATA``, then the user cache
(``~/.cache/tinynet/fashion-mnist``), then ``/usr/share/datasets/fashion-mnist``
(Debian/Ubuntu package ``dataset-fashion-mnist``); failing all, they are
downloaded into the cache. Every file is checked by the MD5 of its
*decompressed* bytes (Debian recompressed the .gz files, so the .gz differ from
the official ones while their content is identical), then by its IDX header.
Anything wrong raises :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from . import checks
from .checkpoint import default_file_mode

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# file -> MD5 of the decompressed content (the official release)
FILES = {
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
}
# Largest decompressed file we accept (train images are 47,040,016 bytes):
# stops a gzip bomb before it fills memory.
MAX_DECOMPRESSED = 64 * 2**20


class DataError(ValueError):
    """A data file is missing, corrupt, or not what it claims to be."""


# -- reading ---------------------------------------------------------------------------
def parse_idx(raw: bytes, name: str = "<bytes>", magic: int | None = None) -> np.ndarray:
    """Parse IDX bytes (big-endian header: magic, then one uint32 per dimension) into uint8 data."""
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    got = int.from_bytes(raw[:4], "big")
    if magic is not None and got != magic:
        raise DataError(f"{name}: IDX magic is 0x{got:08x}, expected 0x{magic:08x}")
    if got >> 8 != 0x08:  # type byte 0x08 = unsigned byte
        raise DataError(f"{name}: IDX data type 0x{got >> 8 & 0xFF:02x} is not unsigned byte (0x08)")
    ndim = got & 0xFF
    if not 1 <= ndim <= 3:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions, expected 1 to 3")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=object))
    payload = len(raw) - header
    if payload != expected:
        raise DataError(f"{name}: header says {dims} = {expected} bytes of data, file holds {payload}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_gzip(path: Path) -> bytes:
    """Decompress a .gz file, turning every way it can be broken into a DataError."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_DECOMPRESSED + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip ({type(exc).__name__}: {exc})") from None
    if len(raw) > MAX_DECOMPRESSED:
        raise DataError(f"{path}: decompresses to more than {MAX_DECOMPRESSED} bytes; not a Fashion-MNIST file")
    return raw


def read_verified(path: Path) -> np.ndarray:
    """Read one Fashion-MNIST file: decompress, check its MD5, parse and check its shape."""
    path = Path(path)
    raw = read_gzip(path)
    want = FILES.get(path.name)
    if want is not None:
        got = hashlib.md5(raw).hexdigest()
        if got != want:
            raise DataError(
                f"{path}: content MD5 {got} does not match the official {want} "
                "(tampered, truncated or a different file); delete it and fetch again"
            )
    is_labels = "labels" in path.name
    arr = parse_idx(raw, str(path), LABELS_MAGIC if is_labels else IMAGES_MAGIC)
    if is_labels:
        if arr.size and arr.max() > 9:
            raise DataError(f"{path}: labels must be 0-9, found {int(arr.max())}")
    elif arr.shape[1:] != (28, 28):
        raise DataError(f"{path}: images must be 28x28, header says {arr.shape[1:]}")
    return arr


def _load_split(directory: Path, prefix: str):
    x = read_verified(directory / f"{prefix}-images-idx3-ubyte.gz")
    y = read_verified(directory / f"{prefix}-labels-idx1-ubyte.gz")
    if len(x) != len(y):
        raise DataError(f"{directory}: {prefix} has {len(x)} images but {len(y)} labels")
    return x, y.astype(np.int64)


# -- finding / fetching --------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinynet" / "fashion-mnist"


def candidate_dirs(root=None) -> list[Path]:
    """Where to look, in order: an explicit root or $TINYNET_DATA alone, else the cache, then the system package."""
    if root is not None:
        return [Path(root)]
    if os.environ.get("TINYNET_DATA"):
        return [Path(os.environ["TINYNET_DATA"])]
    return [cache_dir(), SYSTEM_DIR]


def _complete(directory: Path) -> bool:
    return all((directory / f).is_file() for f in FILES)


def download(directory: Path | None = None, mirror: str = MIRROR, progress: bool = True) -> Path:
    """Fetch the four files into ``directory`` (the cache); each is verified before it is kept."""
    from tqdm.auto import tqdm

    directory = Path(directory or cache_dir())
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        dest = directory / name
        if dest.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(mirror + name, timeout=60) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        bar.update(len(chunk))
            _verify_tmp(Path(tmp), name)
            os.chmod(tmp, default_file_mode())
            os.replace(tmp, dest)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)  # a bad download is never kept
            if isinstance(exc, DataError):
                raise
            raise DataError(f"could not download {mirror + name}: {exc}") from None
    return directory


def _verify_tmp(tmp: Path, name: str):
    raw = read_gzip(tmp)
    if hashlib.md5(raw).hexdigest() != FILES[name]:
        raise DataError(f"downloaded {name} does not match the official checksum; not kept")


def find_data_dir(root=None, download_missing: bool = True) -> Path:
    for d in candidate_dirs(root):
        if _complete(d):
            return d
    if root is not None or os.environ.get("TINYNET_DATA"):
        where = root if root is not None else os.environ["TINYNET_DATA"]
        missing = [f for f in FILES if not (Path(where) / f).is_file()]
        raise DataError(f"{where}: missing {', '.join(missing)}")
    if not download_missing:
        raise DataError(
            "Fashion-MNIST not found in "
            + ", ".join(map(str, candidate_dirs()))
            + "; install Debian's dataset-fashion-mnist package or allow the download"
        )
    return download()


def load_fashion_mnist(root=None, download: bool = True):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), int64 labels (N,)."""
    d = find_data_dir(root, download_missing=download)
    return _load_split(d, "train"), _load_split(d, "t10k")


# -- preprocessing ---------------------------------------------------------------------------
def to_float(images, dtype=np.float32) -> np.ndarray:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) scaled to [0, 1] (NCHW)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"to_float expects (N, H, W) or (N, C, H, W) images, got shape {images.shape}")
    return images.astype(dtype) / dtype(255)


def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    labels = checks.class_labels(np.asarray(labels), num_classes)
    return np.eye(num_classes, dtype=dtype)[labels]


def train_val_split(x, y, n_val: int = 10_000, seed: int = 0):
    """Seeded shuffle, then the last ``n_val`` samples are validation. The course uses 50,000 / 10,000."""
    if not 0 <= n_val < len(x):
        raise ValueError(f"n_val must be in [0, {len(x) - 1}], got {n_val}")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, va = order[: len(x) - n_val], order[len(x) - n_val :]
    return (x[tr], y[tr]), (x[va], y[va])
