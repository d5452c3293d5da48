"""Data sets of labelled images in IDX files (Fashion-MNIST): find, verify and load them; preprocessing helpers.

A :class:`Dataset` describes one (its class names, image shape, files and their checksums); the report,
the plots and the command line take what they need from it, so another data set in the same format (MNIST,
say) is one more ``Dataset(...)``, not edits across the library.

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
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checks
from .atomic_files import write_atomically
from .exceptions import InvalidType, InvalidValue

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


@dataclass(frozen=True)
class Dataset:
    """A data set of labelled images in IDX files, described once: everything the rest of tinynet (the report,
    the plots, the command line) needs to know about it comes from here.

    ``files`` maps each file name to the MD5 of its decompressed content; ``prefixes`` name the splits' files
    (``{prefix}-images-idx3-ubyte.gz``, ``{prefix}-labels-idx1-ubyte.gz``).
    """

    name: str
    class_names: tuple
    image_shape: tuple  # (height, width)
    files: dict
    mirror: str = ""
    system_dir: Path | None = None  # where a system package installs it
    prefixes: tuple = ("train", "t10k")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


FASHION_MNIST = Dataset(
    name="Fashion-MNIST",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    image_shape=(28, 28),
    files={  # file -> MD5 of the decompressed content (the official release)
        "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    },
    mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    system_dir=Path("/usr/share/datasets/fashion-mnist"),  # Debian/Ubuntu: dataset-fashion-mnist
)
# The application's names, as before the Dataset description existed
CLASS_NAMES, FILES, MIRROR, SYSTEM_DIR = (FASHION_MNIST.class_names, FASHION_MNIST.files, FASHION_MNIST.mirror,
                                          FASHION_MNIST.system_dir)
# Largest decompressed file we accept (train images are 47,040,016 bytes):
# stops a gzip bomb before it fills memory.
MAX_DECOMPRESSED = 64 * 2**20


class DataError(InvalidValue):
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


def read_verified(path: Path, dataset: Dataset = FASHION_MNIST) -> np.ndarray:
    """Read one file of ``dataset``: decompress, check its MD5, parse and check its shape."""
    path = Path(path)
    raw = read_gzip(path)
    want = dataset.files.get(path.name)
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
        if arr.size and arr.max() >= dataset.num_classes:
            raise DataError(f"{path}: labels must be 0-{dataset.num_classes - 1}, found {int(arr.max())}")
    elif arr.shape[1:] != tuple(dataset.image_shape):
        h, w = dataset.image_shape
        raise DataError(f"{path}: images must be {h}x{w}, header says {arr.shape[1:]}")
    return arr


def _load_split(directory: Path, prefix: str, dataset: Dataset = FASHION_MNIST):
    x = read_verified(directory / f"{prefix}-images-idx3-ubyte.gz", dataset)
    y = read_verified(directory / f"{prefix}-labels-idx1-ubyte.gz", dataset)
    if len(x) != len(y):
        raise DataError(f"{directory}: {prefix} has {len(x)} images but {len(y)} labels")
    return x, y.astype(np.int64)


# -- finding / fetching --------------------------------------------------------------------
def cache_dir(dataset: Dataset = FASHION_MNIST) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinynet" / dataset.slug


def candidate_dirs(root=None, dataset: Dataset = FASHION_MNIST) -> list[Path]:
    """Where to look, in order: an explicit root or $TINYNET_DATA alone, else the cache, then the system package."""
    if root is not None:
        return [Path(root)]
    if os.environ.get("TINYNET_DATA"):
        return [Path(os.environ["TINYNET_DATA"])]
    return [cache_dir(dataset)] + ([dataset.system_dir] if dataset.system_dir else [])


def _complete(directory: Path, dataset: Dataset = FASHION_MNIST) -> bool:
    return all((directory / f).is_file() for f in dataset.files)


def download(directory: Path | None = None, mirror: str | None = None, progress: bool = True,
             dataset: Dataset = FASHION_MNIST) -> Path:
    """Fetch the data set's files into ``directory`` (the cache); each is verified before it is kept."""
    mirror = dataset.mirror if mirror is None else mirror
    directory = Path(directory or cache_dir(dataset))
    directory.mkdir(parents=True, exist_ok=True)
    for name in dataset.files:
        dest = directory / name
        if not dest.is_file():
            _download_one(mirror + name, dest, dataset, progress)
    return directory


def _download_one(url: str, dest: Path, dataset: Dataset, progress: bool):
    """Fetch ``url`` into ``dest`` atomically: a bad or interrupted download is never kept."""
    from tqdm.auto import tqdm

    def fetch(out):
        with urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))

    try:
        write_atomically(dest, fetch, check=lambda tmp: _verify_tmp(tmp, dest.name, dataset))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not download {url}: {exc}") from None


def _verify_tmp(tmp: Path, name: str, dataset: Dataset = FASHION_MNIST):
    raw = read_gzip(tmp)
    if hashlib.md5(raw).hexdigest() != dataset.files[name]:
        raise DataError(f"downloaded {name} does not match the official checksum; not kept")


def find_data_dir(root=None, download_missing: bool = True, dataset: Dataset = FASHION_MNIST) -> Path:
    for d in candidate_dirs(root, dataset):
        if _complete(d, dataset):
            return d
    if root is not None or os.environ.get("TINYNET_DATA"):
        where = root if root is not None else os.environ["TINYNET_DATA"]
        missing = [f for f in dataset.files if not (Path(where) / f).is_file()]
        raise DataError(f"{where}: missing {', '.join(missing)}")
    if not download_missing or not dataset.mirror:
        package = f"; install Debian's dataset-{dataset.slug} package" if dataset.system_dir else ""
        raise DataError(f"{dataset.name} not found in " + ", ".join(map(str, candidate_dirs(None, dataset)))
                        + package + (" or allow the download" if dataset.mirror else ""))
    return download(dataset=dataset)


def load(dataset: Dataset = FASHION_MNIST, root=None, download: bool = True):
    """``(x_train, y_train), (x_test, y_test)`` of ``dataset``: uint8 images (N, H, W), int64 labels (N,)."""
    d = find_data_dir(root, download_missing=download, dataset=dataset)
    return tuple(_load_split(d, prefix, dataset) for prefix in dataset.prefixes)


def load_fashion_mnist(root=None, download: bool = True):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), int64 labels (N,)."""
    return load(FASHION_MNIST, root, download)


# -- preprocessing ---------------------------------------------------------------------------
def to_float(images, dtype=np.float32) -> np.ndarray:
    """uint8 (N, H, W) -> float (N, 1, H, W) scaled to [0, 1] (NCHW)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise InvalidType(f"to_float expects uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise InvalidValue(f"to_float expects (N, H, W) or (N, C, H, W) images, got shape {images.shape}")
    return images.astype(dtype) / dtype(255)


def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    labels = checks.class_labels(np.asarray(labels), num_classes)
    return np.eye(num_classes, dtype=dtype)[labels]


def decode_predictions(probabilities, top: int = 3, class_names=FASHION_MNIST.class_names):
    """For each row of ``probabilities`` (N, classes), e.g. from ``model.predict_proba(x)``, its ``top`` classes
    as (class name, probability), most likely first: ``[[("Ankle boot", 0.97), ("Sneaker", 0.02), ...], ...]``
    (Keras's name for it). ``class_names`` default to Fashion-MNIST's."""
    p = np.asarray(probabilities)
    top = checks.positive_int(top, "top")
    if p.ndim != 2 or p.shape[1] != len(class_names):
        raise InvalidValue(f"decode_predictions expects probabilities of shape (N, {len(class_names)}) for "
                         f"{len(class_names)} class names, got {p.shape}")
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]  # ties: the lower class first
    return [[(class_names[j], float(row[j])) for j in idx] for row, idx in zip(p, order, strict=True)]


def train_val_split(x, y, n_val: int = 10_000, seed: int = 0):
    """Seeded shuffle, then the last ``n_val`` samples are validation. The course uses 50,000 / 10,000."""
    if not 0 <= n_val < len(x):
        raise InvalidValue(f"n_val must be in [0, {len(x) - 1}], got {n_val}")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, va = order[: len(x) - n_val], order[len(x) - n_val :]
    return (x[tr], y[tr]), (x[va], y[va])


# -- augmentation -------------------------------------------------------------------------------------------------------
class Augment:
    """Random shifts by up to ``shift`` pixels (zero padding) and horizontal flips of image batches: the kind Keras's
    ImageDataGenerator(width_shift_range, height_shift_range, horizontal_flip) and torchvision's RandomCrop(padding)
    with RandomHorizontalFlip give. ``fit(..., augment=Augment(...))`` applies it to training batches only.

    Each call draws three numbers per image from the counter-based generator dropout uses (call ``calls`` of
    stream ``seed``), on the host, so every backend gets the same images for the same seed; ``rng_state()`` is
    all a checkpoint needs to continue the same draws. The images move by exact copies: no arithmetic.
    """

    def __init__(self, shift=2, flip=True, seed=0):
        self.shift = checks.integer(shift, "augment shift", 0)
        self.flip = bool(flip)
        self.seed = checks.integer(seed, "augment seed", 0)
        self.calls = 0

    def draw(self, n):
        """(dy, dx, flip) for n images: shifts in [-shift, shift], flips as booleans (all False without flip)."""
        from .counter_rng import counter_bits

        self.calls += 1
        bits = counter_bits(self.seed, self.calls, 3 * n).astype(np.int64)
        span = 2 * self.shift + 1
        dy, dx = bits[:n] % span - self.shift, bits[n : 2 * n] % span - self.shift
        flip = (bits[2 * n :] & 1).astype(bool) & self.flip
        return dy, dx, flip

    def __call__(self, x):
        """A new batch like ``x`` (N, C, H, W), on the same backend, each image flipped and shifted as drawn."""
        return shifted(x, *self.draw(len(x)))

    def rng_state(self) -> dict:
        return {"seed": self.seed, "calls": self.calls, "shift": self.shift, "flip": self.flip}

    def set_rng_state(self, state: dict):
        self.seed, self.calls = state["seed"], state["calls"]

    def __repr__(self):
        return f"Augment(shift={self.shift}, flip={self.flip}, seed={self.seed})"


def shifted(x, dy, dx, flip):
    """Image i of ``x`` (N, C, H, W) flipped left-right if flip[i], then moved dy[i] pixels down and dx[i] right
    (what moves out is lost, what moves in is 0). ``dy``, ``dx``, ``flip`` are host arrays; x any backend's."""
    from .arrays import xp_of
    from .backend import get_backend

    xp = xp_of(x)
    n, c, h, w = x.shape
    s = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    xpad = xp.pad(x, ((0, 0), (0, 0), (s, s), (s, s))) if s else x
    to_device = get_backend("cupy" if xp is not np else "numpy").asarray
    i, j = np.arange(h)[None, :], np.arange(w)[None, :]
    # output pixel (i, j) reads input pixel (i - dy, j - dx), or (i - dy, w - 1 - (j - dx)) when flipped
    rows = to_device(i - dy[:, None] + s)  # (N, H), in padded coordinates
    cols = to_device(np.where(flip[:, None], w - 1 - j + dx[:, None], j - dx[:, None]) + s)  # (N, W)
    image, channel = to_device(np.arange(n)[:, None, None, None]), to_device(np.arange(c)[None, :, None, None])
    return xpad[image, channel, rows[:, None, :, None], cols[:, None, None, :]]

