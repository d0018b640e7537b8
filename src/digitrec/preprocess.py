"""Pictures in, MNIST form out: `to_mnist(image) -> (28, 28) float32` in [0, 1], white ink on
black, the digit fitted into 20x20 keeping its aspect ratio and its centre of mass in the
middle of the 28x28 field, as MNIST's own digits were made. The one place that prepares input.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import IMAGE_SIZE
from .errors import BadImageError, EmptyImageError

FIT_SIZE = 20  # MNIST's digits fill a 20x20 box inside the 28x28 field
MAX_PIXELS = 25_000_000  # refuse larger pictures before decoding them (decompression bombs)
MIN_CONTRAST = 0.08  # ink must differ from the background by this much (of full scale)
INK_LEVEL = 0.25  # share of the strongest ink that counts as ink when cropping

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


def load_image(source: ImageInput) -> Image.Image:
    """Open a path, encoded bytes, a PIL image or an array, with clear errors."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _array_to_image(source)
    if isinstance(source, bytes | bytearray | memoryview):
        name, stream = "the uploaded data", io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise BadImageError(f"{path}: no such file")
        if not path.is_file():
            raise BadImageError(f"{path}: not a file")
        name, stream = str(path), path
    too_large = f"is too large (over {MAX_PIXELS // 1_000_000} megapixels); scale it down first"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError(f"{name} {too_large}")
    except UnidentifiedImageError:
        raise BadImageError(f"{name} is not a picture we can read (use PNG, JPEG, BMP or WebP)")
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImageError(f"{name} cannot be read: it looks damaged or cut short ({e})")
    try:
        if image.width * image.height > MAX_PIXELS:
            raise BadImageError(f"{name}: {image.width}x{image.height} {too_large}")
        image.load()
        # Phones store pictures sideways and say so in EXIF; turn them upright.
        image = ImageOps.exif_transpose(image)
    except BadImageError:
        image.close()
        raise
    except (OSError, SyntaxError, ValueError) as e:
        image.close()
        raise BadImageError(f"{name} cannot be read: it looks damaged or cut short ({e})")
    return image


def _array_to_image(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or a.size == 0:
        raise BadImageError(f"an array of shape {a.shape} is not a picture (use HxW, HxWx3 or x4)")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise BadImageError(f"an array of type {a.dtype} is not a picture")
    a = a.astype(np.float32) / (257.0 if a.dtype == np.uint16 else 1.0)
    if not np.isfinite(a).all():
        raise BadImageError("the array holds NaN or infinite values")
    if a.max() <= 1.0 and a.min() >= 0.0:
        a = a * 255.0  # float pictures in [0, 1]
    a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(
        a, mode={2: "L", 3: "RGB", 4: "RGBA"}[a.ndim if a.ndim == 2 else a.shape[-1]]
    )


def to_grey(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1]; a transparent background is filled with the colour that
    contrasts with the strokes, so ink drawn on a transparent canvas stays visible."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 0.99:
            solid = alpha > 0.5
            ink_is_dark = solid.any() and float(np.average(grey, weights=alpha)) < 0.5
            fill = 1.0 if ink_is_dark else 0.0
            return grey * alpha + fill * (1 - alpha)
        return grey
    if image.mode == "I" or image.mode.startswith("I;16"):
        # 16-bit grey (PNG, TIFF): convert("L") would clip at 255 instead of scaling
        return np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def ink_map(grey: np.ndarray) -> np.ndarray:
    """White ink on black, background at 0 and the strongest ink at 1. Polarity comes from
    the picture: the border is taken as paper."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = grey - background if background < 0.5 else background - grey
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise EmptyImageError("the picture is blank: no ink stands out from the background")
    return np.clip(ink / peak, 0.0, 1.0)


def fit_and_centre(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit into 20x20 keeping the aspect ratio, centre of mass to the middle."""
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = FIT_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    fitted = np.clip(fitted, 0.0, 1.0)
    fh, fw = fitted.shape
    total = fitted.sum()
    cy = (fitted.sum(axis=1) @ np.arange(fh)) / total
    cx = (fitted.sum(axis=0) @ np.arange(fw)) / total
    centre = IMAGE_SIZE / 2  # where MNIST puts it: its digits average (14.0, 14.0)
    top = int(np.clip(round(centre - cy), 0, IMAGE_SIZE - fh))
    left = int(np.clip(round(centre - cx), 0, IMAGE_SIZE - fw))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[top : top + fh, left : left + fw] = fitted
    return out


def to_mnist(image: ImageInput) -> np.ndarray:
    """Any picture of one digit -> (28, 28) float32 in MNIST form."""
    return fit_and_centre(ink_map(to_grey(load_image(image))))
