"""Pictures in, MNIST form out: `to_mnist(image) -> (28, 28) float32` in [0, 1], white ink on
black, the digit fitted into 20x20 keeping its aspect ratio and its centre of mass in the
middle of the 28x28 field, as MNIST's own digits were made. The one place that prepares input;
`to_mnist_many` prepares a batch, leaving out what it cannot read and saying why.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage as ndi

from ..errors import BadImageError, EmptyImageError

IMAGE_SIZE = 28  # MNIST's field: every model reads 28x28 pictures

FIT_SIZE = 20  # MNIST's digits fill a 20x20 box inside the 28x28 field
PAIR_BOX = (20, 40)  # two touching digits, for the pair reader: fitted into 20 x 40 ...
PAIR_FIELD = (28, 48)  # ... in a 28 x 48 field (height, width)
MAX_PIXELS = 25_000_000  # refuse larger pictures before decoding them (decompression bombs)
MIN_CONTRAST = 0.08  # ink must differ from the background by this much (of full scale)
INK_LEVEL = 0.25  # share of the strongest ink that counts as ink when cropping
STROKE_LEVEL = 0.3  # ink above this joins pieces (components) of a drawing
NOISE_FLOOR = 0.15  # ink weaker than this share of the strongest is paper texture or noise
UNEVEN = 0.08  # a border whose paper spreads more than this is lit unevenly
DARK_INK = 0.45  # ink this far from the paper (of full scale) is darker than any shadow
SPECK = 0.05  # pieces lighter than this share of the heaviest one are specks
WORK_SIDE = 640  # larger pictures are scaled down to this first
FINE = 4  # the pen width is measured and normalised at this multiple of MNIST's scale
# Pen widths, as fit_and_centre measures them (stroke_width at FINE scale; MNIST's training
# digits: 2nd percentile 2.0, median 3.0, 85th 3.7, 98th 5.1). Pens in the range are left
# alone; a thinner one is thickened to the first target, a thicker one thinned to the second.
# The upper end sits below MNIST's widest: a marker's 1 or 7 read as a bolder, other digit
# (measured on the development sets: usps, optdigits32, a canvas set of other seeds).
MNIST_STROKE = (2.0, 3.6)
MNIST_STROKE_TARGET = (2.3, 3.2)
MIN_THINNED = 0.4  # a thinner pen keeps at least this share of the ink

BLANK = "the picture is blank: no ink stands out from the background"

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


def bounded(grey: np.ndarray, max_side: int = WORK_SIDE) -> np.ndarray:
    """Scale very large pictures down first (area averaging keeps thin strokes' ink), so the
    cost of everything after stays bounded."""
    h, w = grey.shape
    if max(h, w) <= max_side:
        return grey
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BOX))


def _background(x: np.ndarray, border: np.ndarray) -> np.ndarray | float:
    """The paper's level under bright ink: one number for an even background, a smooth map
    (a grey opening wider than any stroke, on a small copy) for a photo's uneven light."""
    level = float(np.median(border))
    # Dark ink departs from the paper further than any shadow does. With such ink, pixels
    # more than halfway to it are ink, not light: on the border (a digit that fills its
    # frame is not unevenly lit) and when measuring how wide the strokes are.
    dark = float(x.max()) - level >= DARK_INK
    halfway = (level + float(x.max())) / 2
    paper_border = border[border < halfway] if dark else border
    if float(np.percentile(paper_border, 90) - np.percentile(paper_border, 10)) < UNEVEN:
        return level
    h, w = x.shape
    scale = min(1.0, 64 / max(h, w))
    small = np.asarray(
        Image.fromarray(x).resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX
        )
    )
    # wider than the widest stroke, or a marker's stroke is taken for paper
    half = float(ndi.distance_transform_edt(small > halfway).max()) if dark else 0.0
    widest = max(3, min(small.shape) // 2 * 2 - 1)
    window = min(widest, max(13, 2 * math.ceil(half) + 3) // 2 * 2 + 1)
    paper = ndi.uniform_filter(ndi.grey_opening(small, size=(window, window)), size=3)
    return np.asarray(Image.fromarray(paper).resize((w, h), Image.Resampling.BILINEAR))


# Paeth's 19-exchange network for the median of 9 values
_MEDIAN9 = [
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
]  # fmt: skip


def median3(a: np.ndarray) -> np.ndarray:
    """ndi.median_filter(a, size=3) exactly, several times faster: the median of each 3x3
    window by min/max exchanges over shifted views."""
    p = np.pad(a, 1, mode="symmetric")  # scipy's default border ("reflect")
    h, w = a.shape
    v = [p[i : i + h, j : j + w] for i in range(3) for j in range(3)]
    for i, j in _MEDIAN9:
        v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
    return v[4]


def ink_map(grey: np.ndarray) -> np.ndarray:
    """White ink on black: background at 0, the strongest ink at 1, paper texture, uneven
    light and faint noise removed, anti-aliased edges kept. Polarity comes from the picture:
    the border is taken as paper, and the ink is what departs from it most."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    # the extremes, once lone noisy pixels are gone: a small digit is a tiny share of a
    # big canvas, so percentiles would miss it
    denoised = median3(grey) if min(grey.shape) >= 48 else grey
    ink_is_bright = denoised.max() - paper > paper - denoised.min()
    x = grey if ink_is_bright else 1.0 - grey
    if x is not grey:
        border = 1.0 - border
    background = _background(x, border)
    ink = x - background
    if np.isscalar(background):
        # the median commutes with flipping and with subtracting a constant: no second pass
        peak = float((denoised if ink_is_bright else 1.0 - denoised).max() - np.float32(background))
    else:
        peak = float((median3(ink) if min(ink.shape) >= 48 else ink).max())
    if peak < MIN_CONTRAST:
        raise EmptyImageError(BLANK)
    return np.clip((ink / peak - NOISE_FLOOR) / (1 - NOISE_FLOOR), 0.0, 1.0).astype(np.float32)


def ink_components(ink: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Connected pieces of ink (8-connected): a label image and, per piece, its label,
    bounding box (top, left, bottom, right; exclusive ends) and mass."""
    labels, n = ndi.label(ink > STROKE_LEVEL, structure=np.ones((3, 3)))
    if n == 0:
        return labels, []
    masses = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n + 1)[1:]
    pieces = []
    for i, sl in enumerate(ndi.find_objects(labels)):
        pieces.append(
            {
                "label": i + 1,
                "box": (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop),
                "mass": float(masses[i]),
            }
        )
    return labels, pieces


def _is_border_junk(piece: dict, shape: tuple[int, int], others: bool) -> bool:
    """A ruled line or a paper edge along the border, or a frame around the picture."""
    top, left, bottom, right = piece["box"]
    h, w = shape
    ph, pw = bottom - top, right - left
    touches = [top == 0, left == 0, bottom == h, right == w]
    if not any(touches):
        return False
    if (ph <= 0.06 * h and pw >= 0.5 * w) or (pw <= 0.06 * w and ph >= 0.5 * h):
        return True
    return others and sum(touches) >= 3 and piece["mass"] < 0.15 * ph * pw


def clean(ink: np.ndarray, speck: float = SPECK) -> np.ndarray:
    """Drop specks (pieces lighter than `speck` times the heaviest) and border junk, keeping
    every piece of the digit (a 5's detached bar, a 4 drawn in two strokes)."""
    labels, pieces = ink_components(ink)
    if not pieces:
        raise EmptyImageError(BLANK)
    junk = [p for p in pieces if _is_border_junk(p, ink.shape, len(pieces) > 1)]
    kept = [p for p in pieces if p not in junk] or pieces
    largest = max(p["mass"] for p in kept)
    kept = [p for p in kept if p["mass"] >= speck * largest]
    if len(kept) == len(pieces):
        return ink
    keep = np.isin(labels, [p["label"] for p in kept])
    # a dropped piece's faint anti-aliased rim goes with it; faint ink elsewhere stays
    dropped = ndi.binary_dilation((labels > 0) & ~keep, iterations=2) & ~keep
    return np.where(dropped, 0.0, ink).astype(np.float32)


def stroke_width(ink: np.ndarray) -> float:
    """Mean distance to the stroke's edge inside the ink: a quarter of the pen's width."""
    mask = ink > 0.5
    return float(ndi.distance_transform_edt(mask)[mask].mean()) if mask.any() else 0.0


_SQUARE = np.ones((3, 3), bool)
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _morph(x: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """Grey dilation (grow) or erosion by a disk-like octagon of the given radius, as
    alternating 3x3 square and cross steps: fast, and round enough for pen strokes."""
    step = ndi.maximum_filter if grow else ndi.minimum_filter
    for i in range(radius):
        x = step(x, footprint=_CROSS if i % 2 else _SQUARE)
    return x


def normalise_stroke(fine: np.ndarray) -> np.ndarray:
    """Bring the pen width of a digit fitted at FINE x scale into MNIST's range: thin pens
    are thickened and marker pens thinned, by grey dilation or erosion."""
    width = stroke_width(fine)  # in MNIST pixels, since the picture is at FINE x scale
    if width == 0 or MNIST_STROKE[0] <= width <= MNIST_STROKE[1]:
        return fine
    target = MNIST_STROKE_TARGET[0] if width < MNIST_STROKE[0] else MNIST_STROKE_TARGET[1]
    radius = round(FINE * abs(target - width) / 2)
    if radius == 0:
        return fine
    grow = width < MNIST_STROKE[0]
    mask = fine > 0.5
    pieces, holes = _pieces_and_holes(mask)
    # as far towards the target as the digit's shape allows: a thicker pen must not fill a
    # loop (an 8 is not a blob), a thinner one must not wear a stroke away or break it
    for r in range(radius, 0, -1):
        changed = _morph(fine, r, grow)
        new = changed > 0.5
        now_pieces, now_holes = _pieces_and_holes(new)
        if grow and now_holes >= holes:
            return changed
        if not grow and now_pieces <= pieces and new.sum() >= MIN_THINNED * mask.sum():
            return changed
    return fine


def _pieces_and_holes(mask: np.ndarray) -> tuple[int, int]:
    """How many pieces of ink a mask holds, and how many loops (holes in them)."""
    pieces = ndi.label(mask, structure=_SQUARE)[1]
    paper, n = ndi.label(~mask)
    edge = np.unique(np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]]))
    return pieces, n - int((edge > 0).sum())


def crop_to_ink(ink: np.ndarray, level: float) -> tuple[np.ndarray, int, int] | None:
    """The picture cropped to the box of its pixels above `level`, with the box's left and
    top; None when there are none."""
    rows = np.flatnonzero((ink > level).any(axis=1))
    cols = np.flatnonzero((ink > level).any(axis=0))
    if len(rows) == 0:
        return None
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], int(cols[0]), int(rows[0])


def fit_and_centre(
    ink: np.ndarray,
    box: tuple[int, int] = (FIT_SIZE, FIT_SIZE),
    field: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
) -> np.ndarray:
    """Crop to the ink, fit into `box` (height, width; MNIST's 20x20) keeping the aspect
    ratio (through a FINE x larger copy where the pen width is normalised), centre of mass
    to the middle of `field` (MNIST's 28x28; a wider one for a pair of digits)."""
    cropped = crop_to_ink(ink, INK_LEVEL)
    if cropped is None:
        raise EmptyImageError(BLANK)
    crop = cropped[0]
    h, w = crop.shape
    scale = min(box[0] / h, box[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pad = 2 * FINE  # room for a thickened stroke
    fine = np.asarray(
        Image.fromarray(crop).resize((size[0] * FINE, size[1] * FINE), Image.Resampling.BICUBIC)
    )
    fine = normalise_stroke(np.pad(np.clip(fine, 0.0, 1.0), pad))
    grown = fine.shape[1] // FINE, fine.shape[0] // FINE
    fitted = np.asarray(Image.fromarray(fine).resize(grown, Image.Resampling.BOX))
    fitted = np.clip(fitted, 0.0, 1.0)
    strokes = fitted[fitted > 0.2]
    core = float(np.percentile(strokes, 75)) if strokes.size else 1.0
    if core < 0.95:  # MNIST's pen is saturated in the middle of its strokes: match it
        fitted = np.clip(fitted * (0.99 / core), 0.0, 1.0)
    fh, fw = fitted.shape
    total = fitted.sum()
    cy = (fitted.sum(axis=1) @ np.arange(fh)) / total
    cx = (fitted.sum(axis=0) @ np.arange(fw)) / total
    # where MNIST puts it: its digits' centres of mass average (14.0, 14.0) in 28x28
    field_h, field_w = field
    out = np.zeros((field_h + 2 * fh, field_w + 2 * fw), dtype=np.float32)
    top, left = fh + round(field_h / 2 - cy), fw + round(field_w / 2 - cx)
    out[top : top + fh, left : left + fw] = fitted
    return out[fh : fh + field_h, fw : fw + field_w]


def fit_pair(ink: np.ndarray) -> np.ndarray:
    """A piece of ink holding two touching digits, in the pair reader's form (28, 48)."""
    return fit_and_centre(ink, PAIR_BOX, PAIR_FIELD)


def picture_ink(image: ImageInput, max_side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """The ink map of a whole picture (scaled down if larger than `max_side`) and that
    scale."""
    grey = to_grey(load_image(image))
    small = bounded(grey, max_side)
    return ink_map(small), small.shape[0] / grey.shape[0]


def to_mnist(image: ImageInput) -> np.ndarray:
    """Any picture of one digit -> (28, 28) float32 in MNIST form."""
    return fit_and_centre(clean(picture_ink(image)[0]))


@dataclass
class LeftOut:
    """A picture that could not be put in MNIST form: where it was, and why."""

    index: int  # among the pictures given
    reason: str  # "blank" (no ink stands out) or "unreadable"
    message: str  # the error's, written for the user


@dataclass
class MnistInputs:
    """Many pictures in MNIST form: those that could be read, and what became of the rest."""

    inputs: np.ndarray  # (K, 28, 28) float32, in the order given
    kept: list[int]  # where each input's picture was among those given
    left_out: list[LeftOut]


def to_mnist_many(pictures: Iterable[ImageInput], raise_unreadable: bool = False) -> MnistInputs:
    """to_mnist over many pictures, leaving out the blank ones and, unless
    `raise_unreadable`, the unreadable ones (any other BadImageError), each said why."""
    inputs, kept, left_out = [], [], []
    for i, picture in enumerate(pictures):
        try:
            inputs.append(to_mnist(picture))
        except EmptyImageError as e:
            left_out.append(LeftOut(i, "blank", str(e)))
        except BadImageError as e:
            if raise_unreadable:
                raise
            left_out.append(LeftOut(i, "unreadable", str(e)))
        else:
            kept.append(i)
    stacked = np.stack(inputs) if inputs else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    return MnistInputs(stacked, kept, left_out)
