"""Read one user image for ``tinynet predict --image``, or refuse it with one clear :class:`ImageError`.

Pillow opens a file lazily: only its header is read, so the size is checked before a
single pixel is decoded. A small file whose header declares 20000x20000 pixels is
refused at once, and Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``)
stays in force, its warning turned into this module's error.

The models were trained on Fashion-MNIST: light garments on a black background. A
dark garment on a light background (how every plot draws them, and how most photos
look) is confidently misclassified, so such an image is refused with a message
naming ``--invert`` (flip it, 255 - x) and ``--as-is`` (classify it unchanged).
"""

from __future__ import annotations

import warnings

import numpy as np

from .exceptions import InvalidValue, MissingDependency

# Mean of the outermost ring of pixels above which an image counts as dark on light.
# Over all 70,000 Fashion-MNIST images that mean is at most 107.5; inverted, at least 147.5.
LIGHT_BORDER = 127.5


class ImageError(InvalidValue):
    """An image file cannot be used for prediction; the message names the file and says why."""


def border_mean(image) -> float:
    """Mean of the outermost ring of pixels of a 2-D uint8 image (0-255)."""
    a = np.asarray(image, dtype=np.float64)
    ring = np.ones(a.shape, dtype=bool)
    ring[1:-1, 1:-1] = False
    return float(a[ring].mean())


def _open(path):
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        from .optional import INSTALL

        raise MissingDependency(f"reading an --image needs Pillow, which could not be imported: {INSTALL['pillow']}") \
            from None

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{path}: refused before decoding: {exc} (the models take 28x28 images)") from None
        except UnidentifiedImageError:
            raise ImageError(f"{path}: not an image file Pillow can read (expected a 28x28 PNG, JPEG, BMP, ...)") from None
        except FileNotFoundError:
            raise ImageError(f"{path}: no such file") from None
        except OSError as exc:
            raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _gray_uint8(im, path):
    """The decoded image as 2-D uint8 grey levels; 16-bit images are scaled down, colour becomes luma."""
    if im.mode.startswith("I;16"):
        return np.round(np.asarray(im, dtype=np.float64) / 257).astype(np.uint8)
    if im.mode in ("I", "F"):  # 32-bit integer or float grey levels: accept 0-255, or 0-65535 as 16-bit
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 65535:
            raise ImageError(f"{path}: {im.mode}-mode pixel values must be 0-255 (or 0-65535), "
                             f"got {a.min():g} to {a.max():g}")
        return np.round(a / 257 if a.max() > 255 else a).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8)


def read_image(path, invert=False, check_background=True, shape=(28, 28)) -> np.ndarray:
    """An image file of ``shape`` (height, width; Fashion-MNIST's 28x28) as uint8 grey levels, light garment on black.

    ``invert`` flips it (255 - x) first. With ``check_background`` an image that
    still looks dark on light (the mean of its border pixels above
    :data:`LIGHT_BORDER`) is refused. Every problem of the file raises :class:`ImageError`; a missing
    Pillow, MissingDependency.
    """
    im = _open(path)
    with im:
        if im.size != (shape[1], shape[0]):  # from the header alone (Pillow gives width, height): nothing decoded yet
            raise ImageError(f"{path}: the image is {im.size[0]}x{im.size[1]} pixels; the models take "
                             f"{shape[1]}x{shape[0]}: resize it first")
        try:
            im.load()
            u8 = _gray_uint8(im, path)
        except ImageError:
            raise
        except Exception as exc:  # truncated or corrupt pixel data, in whichever way a decoder says so
            raise ImageError(f"{path}: cannot decode the image ({type(exc).__name__}: {exc})") from None
    if invert:
        u8 = 255 - u8
    if check_background and border_mean(u8) > LIGHT_BORDER:
        now = "after --invert it is" if invert else "it looks like"
        fix = ("drop --invert" if invert else "add --invert to flip it (255 - x)") + ", or add --as-is to classify it anyway"
        raise ImageError(
            f"{path}: {now} a dark garment on a light background (border pixels average {border_mean(u8):.0f} "
            f"of 255), but the models learnt Fashion-MNIST's light garments on black and would misclassify it; {fix}"
        )
    return u8
