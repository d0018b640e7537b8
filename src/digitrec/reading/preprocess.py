"""Pictures in, MNIST form out: `to_mnist(image) -> (28, 28) float32` in [0, 1], white ink on
black, the digit fitted into 20x20 keeping its aspect ratio and its centre of mass in the
middle of the 28x28 field, as MNIST's own digits were made. The one place that prepares input;
`to_mnist_many` prepares a batch, leaving out what it cannot read and saying why.
"""

from __future__ import annotations

import functools
import io
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from scipy import ndimage as ndi

from ..errors import BadImageError, EmptyImageError
from ..files import file_kind, mode_kind

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
# A digit that fills its picture can cover most of the border with ink (a thick 0 cropped
# close), and the border, taken for paper, then gets the polarity wrong. When both levels
# hold this share of the border, the inside is consulted too.
BORDER_DOUBT = 0.05
# A frame drawn along the picture's edges (a form's box cropped at its lines) makes the
# border all ink: when the border is all one level and most of the picture the other, the
# paper is the other level's pixels on the ring this share of the picture's side in ...
FRAME_DEPTH = 0.06
FRAME_PAPER = 0.25  # ... if they are at least this share of it
FRAME_SAMPLE = 40_000  # most of the picture is judged on about this many of its pixels
HOLE = 1.25  # a loop's inside is this much thicker than the pen, at least, to be told by it
EDGE_BAND = 0.06  # of the side: ink this close to an edge lies along it
FOLLOWS = 0.7  # a frame lies along this share of an edge's length, at least
BOX_PIECES = 8  # a box drawn round a digit is looked for in pictures of this many pieces at most
BELONGS = 0.9  # a line at an edge whose length the rest of the ink spans this much is a stroke
# A piece cut by the left or right edge, beside the digit and this share of its height away
# from it, at least, and at most this share of its mass, is part of a neighbouring digit
NEIGHBOUR_GAP = 0.05
NEIGHBOUR_MASS = 0.4
NEIGHBOUR_CUT = 0.9  # ... and its ink meets the edge this strong: a stroke cut, not a rim
# A box drawn round a digit that the digit touches or crosses (a form's cell) is one piece
# with it: its four lines each run along this share of their side, at least, ...
BOX_LINE = 0.9
BOX_SIDE = 24  # ... round a box this many pixels high and wide, at least
BOX_HOLDS = 0.25  # ... and the piece less its lines still stands this share of its height
BOX_REACH = 0.15  # a box's line lies this share of the side in, at most (a digit crosses it)
# ... with no row (column) outside it, but its grey edge, covered along this share of the
# side: a box's line starts at once, a thick ring cut by the picture's edges gradually
BOX_OUTSIDE = 0.8
BOX_LEVEL = 0.004  # a box is looked at as tilted from this slope (rows per column) ...
BOX_TILT = 0.1  # ... up to this one (about 6 degrees)
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
# a black-and-white digit that fills its picture edge to edge with a box this near square
# (width / height) was stretched to fill it, as form readers keep digits: it is read this
# much narrower, a digit's usual shape (chosen on the held-out UNIPEN train writers' digits
# stretched so: benchmarks/stretched.py)
FRAMED_SQUARE = (0.8, 1.25)
FRAMED_WIDTH = 0.6
FRAMED_GAP = 1  # px of paper it may leave at an edge (stretched, then cut to bits)
REFILL = 1.05  # a thinned digit this much smaller than its box is scaled up to fill it

BLANK = "the picture is blank: no ink stands out from the background"
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # what we document; Pillow's other decoders stay shut
USE = "use PNG, JPEG, WebP or BMP"
# A picture is decoded at full size before it is shrunk: at most this many bytes of such
# pictures are held at once in a process, however many threads read (a 25-megapixel RGBA
# picture is 100 MB), so a burst of large pictures waits rather than adds up.
DECODE_BUDGET = 256 * 2**20
RGBA_BAND = 2**17  # bytes of float RGBA made at a time
TILE = 2**16  # pixels of a full-size picture turned into floats at a time, when shrinking it
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"
_UPRIGHT = {  # EXIF orientation -> the turn that shows the picture upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


_KINDS = {  # files.file_kind -> what a picture path holds instead of a picture, in words
    "folder": "a folder",
    "fifo": "a named pipe (FIFO)",
    "device": "a device",
    "socket": "a socket",
    "other": "a special file",
    "loop": "a loop of symbolic links",
}


def _open_file(path: Path) -> io.BufferedReader:
    """The picture file at `path`, open for reading. Opening never waits (a named pipe would
    wait for a writer), and the file is checked through what was opened, not its name again,
    so nothing but a regular file is ever read (/dev/zero never ends)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise BadImageError(_cannot_open(path, e))
    try:
        kind = mode_kind(os.fstat(fd).st_mode)
        if kind != "file":
            raise BadImageError(f"{path}: not a regular file ({_KINDS[kind]})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _cannot_open(path: Path, error: OSError) -> str:
    """Why `path` could not be opened, from what is there (a socket cannot be opened)."""
    kind = file_kind(path)
    if kind in ("missing", "dangling"):
        return f"{path}: no such file" + (
            " (a symbolic link to nothing)" if kind == "dangling" else ""
        )
    if kind in _KINDS:
        return f"{path}: not a regular file ({_KINDS[kind]})"
    if isinstance(error, PermissionError):
        return f"{path}: permission denied"
    return f"{path} cannot be opened: {error.strerror or error}"


@contextmanager
def _opened(source: str | os.PathLike | bytes | bytearray | memoryview):
    """(image, name): the picture's header read and checked (format, size), its pixels not
    yet decoded. The file is closed on leaving; the image too, if an error leaves."""
    if isinstance(source, bytes | bytearray | memoryview):
        name, stream = "the uploaded data", io.BytesIO(source)
    else:
        name, stream = str(source), _open_file(Path(source))
    too_large = f"is too large (over {MAX_PIXELS // 1_000_000} megapixels); scale it down first"
    with stream:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadImageError(f"{name} {too_large}")
        except UnidentifiedImageError:
            raise BadImageError(f"{name} is not a picture we can read ({USE})")
        except (OSError, SyntaxError, ValueError) as e:
            raise BadImageError(f"{name} cannot be read: it looks damaged or cut short ({e})")
        try:
            if image.width * image.height > MAX_PIXELS:
                raise BadImageError(f"{name}: {image.width}x{image.height} {too_large}")
            yield image, name
        except BaseException:
            image.close()
            raise


def _decode(image: Image.Image, name: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImageError(f"{name} cannot be read: it looks damaged or cut short ({e})")


def load_image(source: ImageInput) -> Image.Image:
    """Open a path, encoded bytes, a PIL image or an array, with clear errors. A file or
    bytes come back decoded, at full size, upright."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _array_to_image(source)
    with _opened(source) as (image, name):
        _decode(image, name)
        # Phones store pictures sideways and say so in EXIF; turn them upright (in place:
        # a copy of a large picture would double its memory).
        ImageOps.exif_transpose(image, in_place=True)
        return image


def _array_to_image(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or a.size == 0:
        raise BadImageError(f"an array of shape {a.shape} is not a picture (use HxW, HxWx3 or x4)")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise BadImageError(f"an array of type {a.dtype} is not a picture")
    if a.dtype == np.uint8:  # what the floats below make of it, without them
        if a.max() <= 1:
            a = a * np.uint8(255)
    else:
        a = a.astype(np.float32) / (257.0 if a.dtype == np.uint16 else 1.0)
        if not np.isfinite(a).all():
            raise BadImageError("the array holds NaN or infinite values")
        if a.max() <= 1.0 and a.min() >= 0.0:
            a = a * 255.0  # float pictures in [0, 1]
        a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(
        a, mode={2: "L", 3: "RGB", 4: "RGBA"}[a.ndim if a.ndim == 2 else a.shape[-1]]
    )


def _transparent(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Grey (ITU-R 601 luma) and opacity in [0, 1], a band of rows at a time: the floats
    of a whole RGBA picture are four times its grey, and fresh memory that large costs
    more in page faults than the sums. NumPy's matrix product sums each row of pixels
    alone, so a band's rows are summed as the whole picture's would be."""
    pixels = np.asarray(image.convert("RGBA"))
    h, w = pixels.shape[:2]
    grey, alpha = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
    rows = max(1, RGBA_BAND // (w * 16))
    for top in range(0, h, rows):
        rgba = pixels[top : top + rows].astype(np.float32) / 255.0
        np.matmul(rgba[..., :3], _LUMA, out=grey[top : top + rows])
        alpha[top : top + rows] = rgba[..., 3]
    return grey, alpha


def _backing(alpha_min: float, solid: bool, mean_solid: float) -> float | None:
    """The colour behind a transparent picture: the one that contrasts with its strokes
    (`mean_solid`, their grey weighted by opacity), so ink drawn on a transparent canvas
    stays visible; None when the picture is opaque."""
    if alpha_min >= 0.99:
        return None
    return 1.0 if solid and mean_solid < 0.5 else 0.0


def _grey_over(image: Image.Image, backing: float | None) -> np.ndarray:
    """Grey levels in [0, 1], any transparency laid over `backing`."""
    if _transparent(image):
        grey, alpha = _grey_and_alpha(image)
        return grey if backing is None else grey * alpha + backing * (1 - alpha)
    if image.mode == "I" or image.mode.startswith("I;16"):
        # 16-bit grey (PNG): convert("L") would clip at 255 instead of scaling
        return np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def to_grey(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1]; a transparent background is filled with the colour that
    contrasts with the strokes, so ink drawn on a transparent canvas stays visible."""
    if not _transparent(image):
        return _grey_over(image, None)
    # _grey_over(image, backing), from the grey and opacity worked out once
    grey, alpha = _grey_and_alpha(image)
    alpha_min = float(alpha.min())
    if alpha_min >= 0.99:
        return grey  # opaque: no backing, whatever its strokes' mean
    solid = bool((alpha > 0.5).any())
    mean = float(np.average(grey, weights=alpha)) if solid else 0.0
    backing = _backing(alpha_min, solid, mean)
    return grey if backing is None else grey * alpha + backing * (1 - alpha)


def _tiles(width: int, height: int, side: int) -> Iterator[tuple[int, int, int, int]]:
    for top in range(0, height, side):
        for left in range(0, width, side):
            yield left, top, min(width, left + side), min(height, top + side)


def _backing_in_tiles(image: Image.Image) -> float | None:
    """_backing of a large picture, read a tile at a time."""
    alpha_min, solid, weighted, weights = 1.0, False, 0.0, 0.0
    for box in _tiles(*image.size, math.isqrt(TILE)):
        grey, alpha = _grey_and_alpha(image.crop(box))
        alpha_min = min(alpha_min, float(alpha.min()))
        solid = solid or bool((alpha > 0.5).any())
        weighted += float(np.dot(grey.ravel(), alpha.ravel()))
        weights += float(alpha.sum())
    return _backing(alpha_min, solid, weighted / weights if solid else 0.0)


def fitted_size(size: tuple[int, int], max_side: int = WORK_SIDE) -> tuple[int, int]:
    """(width, height) of a picture of `size` once scaled down to fit `max_side`."""
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _box_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's box filter along one axis of a float picture (precompute_coeffs in its
    Resample.c, the same arithmetic): for each output pixel, the input pixels it averages
    and their weights, padded to one length with weight 0 (adding 0.0 changes no sum)."""
    scale = float(np.float32(n_in)) / n_out  # Pillow holds the box's edges as C floats
    filterscale = max(scale, 1.0)
    support, ss = 0.5 * filterscale, 1.0 / filterscale
    centre = (np.arange(n_out) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    count = np.minimum((centre + support + 0.5).astype(np.int64), n_in) - first
    taps = np.arange(int(count.max()))
    at = ((taps + first[:, None]) - centre[:, None] + 0.5) * ss
    w = ((at > -0.5) & (at <= 0.5) & (taps < count[:, None])).astype(np.float64)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0)
    return np.minimum(taps + first[:, None], n_in - 1), w


def _box_pass(a: np.ndarray, index: np.ndarray, weight: np.ndarray, axis: int) -> np.ndarray:
    """One pass of the box filter, summed as Pillow sums (in double, tap by tap)."""
    shape = (1, -1) if axis == 1 else (-1, 1)
    total = np.zeros(
        (a.shape[0], len(index)) if axis == 1 else (len(index), a.shape[1]), np.float64
    )
    for tap in range(index.shape[1]):
        total += np.take(a, index[:, tap], axis=axis) * weight[:, tap].reshape(shape)
    return total.astype(np.float32)


def shrunk_grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """to_grey(image) scaled down to `size` (width, height) by Pillow's box filter (area
    averaging, which keeps thin strokes' ink), made a tile at a time: only the decoded
    picture is ever full size, never its floats, so the work stays bounded by the result.
    The numbers are those of scaling the whole grey picture with Pillow: each tile is
    filtered with the weights of the whole, summed in Pillow's order (across, then down;
    for some shapes Pillow sums down first, which moves the last bit of a float32)."""
    w, h = image.size
    out_w, out_h = size
    if (out_w, out_h) == (w, h):
        return to_grey(image)
    backing = _backing_in_tiles(image) if _transparent(image) else None
    cols, col_weights = _box_weights(w, out_w)
    rows, row_weights = _box_weights(h, out_h)
    # output tiles whose input is about TILE pixels (at least one output pixel's worth)
    rows_out = max(1, int(math.isqrt(TILE) * out_h / h))
    cols_out = max(1, int(TILE / (rows_out * h / out_h + 2) * out_w / w))
    out = np.empty((out_h, out_w), np.float32)
    for r0 in range(0, out_h, rows_out):
        r1 = min(out_h, r0 + rows_out)
        top, bottom = int(rows[r0:r1].min()), int(rows[r0:r1].max()) + 1
        for c0 in range(0, out_w, cols_out):
            c1 = min(out_w, c0 + cols_out)
            left, right = int(cols[c0:c1].min()), int(cols[c0:c1].max()) + 1
            grey = _grey_over(image.crop((left, top, right, bottom)), backing)
            across = _box_pass(grey, cols[c0:c1] - left, col_weights[c0:c1], axis=1)
            out[r0:r1, c0:c1] = _box_pass(across, rows[r0:r1] - top, row_weights[r0:r1], axis=0)
    return out


class _Budget:
    """Bytes that threads may hold at once; each takes its share or waits for it."""

    def __init__(self, total: int):
        self.total, self.held = total, 0
        self._free = threading.Condition()

    @contextmanager
    def hold(self, n: int):
        n = min(n, self.total)
        with self._free:
            self._free.wait_for(lambda: self.held + n <= self.total)
            self.held += n
        try:
            yield
        finally:
            with self._free:
                self.held -= n
                self._free.notify_all()


_decoding = _Budget(DECODE_BUDGET)


def _decoded_bytes(image: Image.Image) -> int:
    """What Pillow holds for the picture decoded: a byte a pixel for one 8-bit band, 2 for
    16-bit grey, else 4 (3 bands are stored as 4)."""
    if image.mode in ("1", "L", "P"):
        per_pixel = 1
    elif image.mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 4
    return image.width * image.height * per_pixel


def grey_within(source: ImageInput, max_side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """The picture's grey levels scaled down to fit `max_side` (upright, as load_image
    turns it), and that scale. The floats are made at the small size; a JPEG is even
    decoded small (libjpeg's 1/2, 1/4 or 1/8 scale, no smaller than the result)."""
    grey, scale = _grey_within(source, max_side)
    return _as_grey(grey), scale


def _grey_within(source: ImageInput, max_side: int) -> tuple[np.ndarray, float]:
    """grey_within, but a picture that needs no shrinking, blending or 16-bit scaling comes
    as its 8-bit levels (uint8; its grey is _LEVELS[levels]), which the ink map reads
    through tables of 256 entries instead of a float picture."""
    if isinstance(source, Image.Image | np.ndarray):
        image = load_image(source)
        grey = _levels_or_grey(image, fitted_size(image.size, max_side))
        return grey, grey.shape[0] / image.height
    with _opened(source) as (image, name):
        full = image.size
        size = fitted_size(full, max_side)
        if image.format in ("JPEG", "MPO") and size != full:
            image.draft(image.mode, size)
        with _decoding.hold(_decoded_bytes(image)):
            _decode(image, name)
            grey = _levels_or_grey(image, size)
            orientation = image.getexif().get(ExifTags.Base.Orientation)
            image.close()  # its memory goes back before the budget does
    if orientation in _UPRIGHT:
        grey = np.asarray(Image.fromarray(grey).transpose(_UPRIGHT[orientation]))
    return grey, grey.shape[0] / (full[0] if orientation in (5, 6, 7, 8) else full[1])


# The grey of each 8-bit level, as _grey_over makes it (the same float32 division)
_LEVELS = np.arange(256, dtype=np.float32) / 255.0


def _levels_or_grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """shrunk_grey(image, size), or the picture's 8-bit levels when its grey is just those
    levels over 255 (_grey_over's plain case, at the picture's own size)."""
    if (
        size != image.size
        or _transparent(image)
        or image.mode == "I"
        or image.mode.startswith("I;16")
    ):
        return shrunk_grey(image, size)
    return np.asarray(image if image.mode == "L" else image.convert("L"))


def _as_grey(grey: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] as float32, from 8-bit levels or already so."""
    return _LEVELS[grey] if grey.dtype == np.uint8 else grey


def _above(grey: np.ndarray, level: float) -> np.ndarray:
    """grey > level, for 8-bit levels (through a table) or float grey alike."""
    return (level < _LEVELS)[grey] if grey.dtype == np.uint8 else grey > level


def _background(
    x_max: float, border: np.ndarray, whole: Callable[[], np.ndarray]
) -> np.ndarray | float:
    """The paper's level under bright ink: one number for an even background, a smooth map
    (a grey opening wider than any stroke, on a small copy) for a photo's uneven light.
    `x_max` is the brightest pixel's level, `border` the paper's pixels on the border and
    `whole` gives the whole picture (only made when the light is uneven)."""
    level = _median(border)
    # Dark ink departs from the paper further than any shadow does. With such ink, pixels
    # more than halfway to it are ink, not light: on the border (a digit that fills its
    # frame is not unevenly lit) and when measuring how wide the strokes are.
    dark = x_max - level >= DARK_INK
    halfway = (level + x_max) / 2
    paper_border = border[border < halfway] if dark else border
    # the percentiles lie between the extremes: paper that spreads less than half as much
    # spreads little enough, and the percentiles need not be worked out
    if paper_border.size and float(paper_border.max()) - float(paper_border.min()) < UNEVEN / 2:
        return level
    if float(np.percentile(paper_border, 90) - np.percentile(paper_border, 10)) < UNEVEN:
        return level
    x = whole()
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


def median3(a: np.ndarray) -> np.ndarray:
    """ndi.median_filter(a, size=3) exactly, several times faster (see _median9)."""
    p = np.pad(a, 1, mode="symmetric")  # scipy's default border ("reflect")
    return np.ascontiguousarray(_median9(p).reshape(a.shape[0], -1)[:, : a.shape[1]])


def _median9(p: np.ndarray) -> np.ndarray:
    """The 3x3 medians of the inside of `p`, a picture padded by one pixel all round (and
    contiguous), as a flat array of its inside's rows at p's width: the last two of each
    row are not medians (median3_range overwrites them).

    Each column of three is sorted once (shared by the three windows it is in); a window's
    median is then the median of the largest of its columns' smallest values, the median
    of their middle ones and the smallest of their largest (exact, ties and all). Rows are
    worked on end to end, one flat run each step (the neighbours across are the next
    element), which NumPy does several times faster than a two-dimensional view, and in
    five arrays written over and over: fresh ones each step cost more in page faults than
    the steps themselves."""
    w = p.shape[1]
    n = (p.shape[0] - 2) * w
    m = n - 2  # the windows whose three columns lie in the run
    flat = p.reshape(-1)
    a, b, c = flat[:n], flat[w : w + n], flat[2 * w :]
    # each column sorted: low <= middle <= high
    low, high = np.minimum(a, b), np.maximum(a, b)
    spare = np.minimum(high, c)
    np.maximum(high, c, out=high)
    middle = np.maximum(low, spare)
    np.minimum(low, spare, out=low)
    left, centre, right = slice(0, m), slice(1, m + 1), slice(2, n)
    lows = spare[:m]
    np.maximum(low[left], low[centre], out=lows)
    np.maximum(lows, low[right], out=lows)
    highs = low[:m]  # low is read no more
    np.minimum(high[left], high[centre], out=highs)
    np.minimum(highs, high[right], out=highs)
    middles, out = high[:m], np.empty(n, p.dtype)  # high is read no more
    _median3(middle[left], middle[centre], middle[right], out=middles, spare=out[:m])
    _median3(lows, middles, highs, out=out[:m], spare=middle[:m])  # middle is read no more
    return out


def _median3(x: np.ndarray, y: np.ndarray, z: np.ndarray, out: np.ndarray, spare: np.ndarray):
    """out = the elementwise median of x, y and z, worked out in `spare` (neither out nor
    spare shares memory with x, y or z)."""
    np.minimum(x, y, out=spare)
    np.maximum(x, y, out=out)
    np.minimum(out, z, out=out)
    np.maximum(spare, out, out=out)


# pixels worked on at a time where only extremes or sums are wanted (of float32; the median
# filter takes four times as many of uint8)
MEDIAN_BAND = 2**15


def median3_range(a: np.ndarray) -> tuple[np.generic, np.generic]:
    """median3(a).min() and .max() (of a's type). The picture's own extremes are its
    medians' where a pixel and its four neighbours all hold one (a pen's stroke, open
    paper: see _holds_a_cross); otherwise the medians are worked out (_median3_range)."""
    lo, hi = a.min(), a.max()
    if _holds_a_cross(a, lo) and _holds_a_cross(a, hi):
        return lo, hi
    found = _median3_range(a)
    return (lo if _holds_a_cross(a, lo) else found[0]), (hi if _holds_a_cross(a, hi) else found[1])


def _holds_a_cross(a: np.ndarray, level: np.generic) -> bool:
    """Whether a pixel of `a` and its four neighbours (a neighbour off the picture being
    the pixel itself, as median3 reflects it) are all `level`: five of the nine in that
    window, so its median is `level` too. Worked on the rows end to end: a row's first
    pixel is also asked for the last one of the row before (and the last for the next
    row's first), which can only make the answer no where it would be yes; that is left
    to the medians to settle."""
    w = a.shape[1]
    same = (a == level).reshape(-1)
    cross = same.copy()
    cross[w:] &= same[:-w]
    cross[:-w] &= same[w:]
    cross[1:] &= same[:-1]
    cross[:-1] &= same[1:]
    return bool(cross.any())


def _median3_range(a: np.ndarray) -> tuple[np.generic, np.generic]:
    """median3(a).min() and .max(), a band of rows at a time: the filter holds several
    copies of what it filters, so the whole picture at once would cost that."""
    h, w = a.shape
    rows = max(1, MEDIAN_BAND * 4 // (w * a.itemsize))
    lo = hi = None
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        # the band with a row of its neighbours each side, or the border's own reflection
        above, below = max(0, top - 1), min(h, bottom + 1)
        p = np.empty((bottom - top + 2, w + 2), a.dtype)
        p[int(top == 0) : p.shape[0] - int(bottom == h), 1:-1] = a[above:below]
        if top == 0:
            p[0, 1:-1] = a[0]
        if bottom == h:
            p[-1, 1:-1] = a[h - 1]
        p[:, 0], p[:, -1] = p[:, 1], p[:, -2]
        m = _median9(p)
        m.reshape(-1, w + 2)[:, w:] = m[0]  # what is no median takes the first one's value
        lo = m.min() if lo is None else min(lo, m.min())
        hi = m.max() if hi is None else max(hi, m.max())
    return lo, hi


def _ring(grey: np.ndarray, inset: int) -> np.ndarray:
    """The pixels on the rectangle `inset` pixels in from the picture's edges."""
    h, w = grey.shape
    top, bottom, left, right = inset, h - 1 - inset, inset, w - 1 - inset
    return np.concatenate(
        [
            grey[top, left : right + 1],
            grey[bottom, left : right + 1],
            grey[top + 1 : bottom, left],
            grey[top + 1 : bottom, right],
        ]
    )


def _inside_a_frame(
    grey: np.ndarray, border: np.ndarray, lo: float, hi: float
) -> np.ndarray | None:
    """The paper's pixels on the ring FRAME_DEPTH in from the edges, where the picture's
    border is all one level and most of the picture is the other: a frame drawn along the
    edges (a form's box, a cheque's amount field cropped at its lines) round the paper;
    else None. A digit that fills its picture meets the edges and leaves paper at the
    corners: only a frame, or paper's edge, follows all four; and paper round a digit, or
    round a frame drawn further in, is most of its picture."""
    mid = (float(lo) + float(hi)) / 2
    share = float((border > mid).mean())
    if min(share, 1 - share) >= BORDER_DOUBT:
        return None
    h, w = grey.shape
    inset = max(2, round(FRAME_DEPTH * min(h, w)))
    if min(h, w) < 2 * inset + 3:
        return None
    bright = share >= 0.5  # the border's level
    ring = _as_grey(_ring(grey, inset))
    paper = ring[(ring > mid) != bright]
    if paper.size < FRAME_PAPER * ring.size:
        return None  # the border's level goes on inward: paper round a digit, mostly
    step = max(1, round(math.sqrt(h * w / FRAME_SAMPLE)))
    if float(((_as_grey(grey[::step, ::step]) > mid) == bright).mean()) >= 0.5:
        return None
    return paper


def _paper_of_a_filled_frame(
    grey: np.ndarray, border: np.ndarray, lo: float, hi: float, ink_is_bright: bool
) -> np.ndarray | None:
    """The border's paper pixels when the border's main level is the ink's, else None.
    `grey` may be 8-bit levels (_grey_within), the rest are grey in [0, 1].

    A digit that fills its picture (a thick 0 cropped close) covers most of the border with
    its strokes; what the border then calls ink is the paper inside its loops. That is told
    from the inside: such "ink" has its thickest piece off the picture's edges (a loop's
    inside) and thicker than anything the border calls paper (a pen's stroke). Real ink
    whose thickest piece is enclosed sits in paper wider than it: none of 8,000 MNIST test
    digits cropped to their ink (either way round), nor of the usps, optdigits32 and
    unipen dev pictures, is turned by this."""
    mid = (float(lo) + float(hi)) / 2
    bright = border > mid
    share = float(bright.mean())
    if min(share, 1 - share) < BORDER_DOUBT:
        return None
    above = _above(grey, mid)
    ink = np.pad(above if ink_is_bright else ~above, 1)  # the edge is neither
    del above
    depth = ndi.distance_transform_edt(ink)
    deepest = np.unravel_index(np.argmax(depth), depth.shape)
    thickest = float(depth[deepest])
    del depth  # one distance map at a time: SciPy takes some 25 bytes a pixel to make one
    labels = ndi.label(ink, structure=_SQUARE)[0]
    piece = labels == labels[deepest]
    del labels
    if piece[1].any() or piece[-2].any() or piece[:, 1].any() or piece[:, -2].any():
        return None  # it reaches an edge: a stroke, or the paper round a digit
    paper = ~ink
    paper[[0, -1]] = paper[:, [0, -1]] = False
    if thickest <= HOLE * float(ndi.distance_transform_edt(paper).max()):
        return None
    return border[bright] if ink_is_bright else border[~bright]  # what it called ink


def ink_map(grey: np.ndarray) -> np.ndarray:
    """White ink on black: background at 0, the strongest ink at 1, paper texture, uneven
    light and faint noise removed, anti-aliased edges kept. Polarity comes from the picture:
    the border is taken as paper, and the ink is what departs from it most. `grey` is in
    [0, 1], or 8-bit levels (uint8: level / 255), which are read through tables of their
    256 values where a float picture would take a pass of its own."""
    ink, (top, left) = _ink_map(grey)
    if ink.shape == grey.shape:
        return ink
    whole = np.zeros(grey.shape, np.float32)
    whole[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return whole


def _ink_map(grey: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """ink_map, and where it is: 8-bit levels on an even background give only the box of
    the levels that have ink (the rest of the map is 0), with its top and left."""
    levels = grey if grey.dtype == np.uint8 else None
    # the extremes, once lone noisy pixels are gone: a small digit is a tiny share of a
    # big canvas, so percentiles would miss it
    lo, hi = median3_range(grey) if min(grey.shape) >= 48 else (grey.min(), grey.max())
    if levels is not None:
        lo, hi = _LEVELS[lo], _LEVELS[hi]
    border = _as_grey(_ring(grey, 0))
    inside = _inside_a_frame(grey, border, lo, hi)
    if inside is not None:
        border = inside
    paper = _median(border)
    ink_is_bright = hi - paper > paper - lo
    paper_border = _paper_of_a_filled_frame(grey, border, lo, hi, ink_is_bright)
    if paper_border is not None:
        ink_is_bright, border = not ink_is_bright, paper_border
    if not ink_is_bright:
        border = 1.0 - border
    if levels is None:
        # x's extremes are the flipped grey's: worked out from the grey's own, so that the
        # whole of x is only made where it is wanted
        x_max = float(grey.max() if ink_is_bright else 1.0 - grey.min())
        whole = functools.cache(lambda: grey if ink_is_bright else 1.0 - grey)
    else:
        # x of each 8-bit level: its extremes are those of the levels there
        table = _LEVELS if ink_is_bright else 1.0 - _LEVELS
        x_max = float(max(table[levels.min()], table[levels.max()]))
        whole = functools.cache(lambda: table[levels])
    background = _background(x_max, border, whole)
    if np.isscalar(background):
        # the median commutes with flipping and with subtracting a constant: no second pass
        peak = float((hi if ink_is_bright else np.float32(1.0) - lo) - np.float32(background))
        if peak < MIN_CONTRAST:
            raise EmptyImageError(BLANK)
        if levels is not None:
            # each level's ink is a function of the level: worked out for the 256 levels,
            # then looked up
            return _looked_up(_scaled(table - background, peak), levels)
        top, bottom, left, right = _inked_box(grey, ink_is_bright, background, peak)
        part = grey[top:bottom, left:right]
        x = part if ink_is_bright else 1.0 - part
        return _scaled(x - background, peak), (top, left)
    x = whole()
    if x is grey:
        ink = x - background
    else:
        ink = x
        ink -= background
    peak = float(median3_range(ink)[1] if min(ink.shape) >= 48 else ink.max())
    if peak < MIN_CONTRAST:
        raise EmptyImageError(BLANK)
    return _scaled(ink, peak), (0, 0)


def _scaled(ink: np.ndarray, peak: float) -> np.ndarray:
    """The ink map's last steps, on `ink` in place: the strongest ink to 1, what is under
    NOISE_FLOOR of it to 0."""
    ink /= peak
    ink -= NOISE_FLOOR
    ink /= 1 - NOISE_FLOOR
    return np.clip(ink, 0.0, 1.0, out=ink).astype(np.float32, copy=False)


def _inked_box(
    grey: np.ndarray, ink_is_bright: bool, background: float, peak: float
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box holding every pixel whose ink is above 0, on an
    even background; outside it the ink map is 0. The ink map's steps are all monotone,
    so the grey a little short of the level where ink starts, whose ink is checked to be 0,
    bounds the pixels with ink; the whole picture where that check fails."""
    h, w = grey.shape
    start = background + NOISE_FLOOR * peak  # where x's ink starts, but for rounding
    bound = np.full(1, start - 1e-3 if ink_is_bright else 1.0 - (start - 1e-3), grey.dtype)
    x = bound if ink_is_bright else 1.0 - bound
    if _scaled(x - background, peak)[0] != 0:
        return 0, h, 0, w
    inked = grey > bound[0] if ink_is_bright else grey < bound[0]
    rows = np.flatnonzero(inked.any(axis=1))
    if len(rows) == 0:
        return 0, h, 0, w
    cols = np.flatnonzero(inked[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _looked_up(table: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """table[levels] in the box of the pixels whose level has ink (above 0 in the table), and
    that box's top and left. The table is monotone (the ink map's steps all are), so those
    levels are a run, and the pixels theirs are told by comparing levels."""
    inked = np.flatnonzero(table > 0)
    if len(inked) == 0 or len(inked) != inked[-1] - inked[0] + 1:
        return table[levels], (0, 0)
    lo, hi = int(inked[0]), int(inked[-1])
    mask = levels <= hi if lo == 0 else (levels >= lo if hi == 255 else (levels - lo) <= hi - lo)
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return table[levels], (0, 0)
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return np.take(table, levels[top:bottom, left:right], mode="clip"), (top, left)


def _median(a: np.ndarray) -> float:
    """float(np.median(a)), at once where all of `a` is one level (a canvas's border)."""
    first = a.flat[0]
    return float(first) if (a == first).all() else float(np.median(a))


def ink_components(ink: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Connected pieces of ink (8-connected): a label image and, per piece, its label,
    bounding box (top, left, bottom, right; exclusive ends) and mass."""
    found = _labelled(ink)
    if found is None:
        return np.zeros(ink.shape, np.int32), []
    labels, (top, left), n, _ = found
    whole = np.zeros(ink.shape, labels.dtype)
    whole[top : top + labels.shape[0], left : left + labels.shape[1]] = labels
    return whole, _pieces(ink, labels, (top, left), n, (0, 0), ink.shape[1])


def _labelled(ink: np.ndarray, margin: int = 0) -> tuple[np.ndarray, tuple, int, tuple] | None:
    """The pieces of ink_components labelled only in the box of the ink, widened by
    `margin` within the picture (outside it every label is 0): that box's labels, its top
    and left, how many pieces, and the box of the ink itself in the labels (slices); None
    when there is no ink."""
    mask = ink > STROKE_LEVEL
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    h, w = ink.shape
    top, left = max(0, int(rows[0]) - margin), max(0, int(cols[0]) - margin)
    bottom, right = min(h, int(rows[-1]) + 1 + margin), min(w, int(cols[-1]) + 1 + margin)
    labels, n = ndi.label(mask[top:bottom, left:right], structure=_SQUARE)
    inner = (
        slice(int(rows[0]) - top, int(rows[-1]) + 1 - top),
        slice(int(cols[0]) - left, int(cols[-1]) + 1 - left),
    )
    return labels, (top, left), n, inner


def _pieces(
    ink: np.ndarray, labels: np.ndarray, box_at: tuple, n: int, at: tuple, width: int
) -> list[dict]:
    """The pieces of _labelled's labels (its box at `box_at` in `ink`): label, box and mass,
    boxes in the rows and columns of the whole picture, which `ink` sits in at `at` and
    is `width` wide."""
    top, left = box_at
    bottom, right = top + labels.shape[0], left + labels.shape[1]
    # a band of rows at a time: bincount's weights are float64, twice the picture at once.
    # The bands are the whole picture's, so each mass is summed as it always was.
    masses = np.zeros(n + 1)
    band_rows = max(1, MEDIAN_BAND // width)
    first = at[0] + top  # the box's top in the whole picture
    for start in range(first - first % band_rows - at[0], bottom, band_rows):
        a, b = max(top, start), min(bottom, start + band_rows)
        masses += np.bincount(
            labels[a - top : b - top].ravel(), ink[a:b, left:right].ravel(), minlength=n + 1
        )
    dy, dx = at[0] + top, at[1] + left
    return [
        {
            "label": i + 1,
            "box": (sl[0].start + dy, sl[1].start + dx, sl[0].stop + dy, sl[1].stop + dx),
            "mass": float(masses[i + 1]),
        }
        for i, sl in enumerate(ndi.find_objects(labels))
    ]


def _is_border_line(piece: dict, shape: tuple[int, int]) -> bool:
    """A thin piece along an edge, half the picture long: a ruled line or a paper's edge."""
    top, left, bottom, right = piece["box"]
    h, w = shape
    ph, pw = bottom - top, right - left
    if not (top == 0 or left == 0 or bottom == h or right == w):
        return False
    return (ph <= 0.06 * h and pw >= 0.5 * w) or (pw <= 0.06 * w and ph >= 0.5 * h)


def _edges_followed(piece: dict, labels: np.ndarray) -> int:
    """How many of the picture's edges the piece lies along for most of their length."""
    h, w = labels.shape
    dy, dx = max(2, round(EDGE_BAND * h)), max(2, round(EDGE_BAND * w))
    strips = (labels[:dy], labels[-dy:], labels[:, :dx].T, labels[:, -dx:].T)
    return sum(float((s == piece["label"]).any(axis=0).mean()) >= FOLLOWS for s in strips)


def _is_frame(piece: dict, shape: tuple[int, int], labels: Callable[[], np.ndarray]) -> bool:
    """A light piece touching three edges or four, lying along them: a frame round the
    picture, or the paper's edge. A digit's stroke can touch as many (a 7 cropped close
    runs from corner to corner) but only meets the edges; it does not follow them.
    `labels` gives the whole picture's label image (ink_components')."""
    top, left, bottom, right = piece["box"]
    h, w = shape
    touches = (top == 0) + (left == 0) + (bottom == h) + (right == w)
    return touches >= 3 and _light(piece) and _edges_followed(piece, labels()) >= 3


def _light(piece: dict) -> bool:
    """Whether a piece's ink fills little of its box, as a frame's lines do."""
    top, left, bottom, right = piece["box"]
    return piece["mass"] < 0.15 * (bottom - top) * (right - left)


def _boxes(pieces: list[dict], labels: Callable[[], np.ndarray]) -> set[int]:
    """The labels of the light pieces that lie along all four sides of their own box, which
    holds the rest of the ink (specks aside): a box drawn round the digit (a form's cell)
    and apart from it. A round 0 only meets the sides of its box; a digit's stroke holds no
    other piece. Looked for among a few pieces (BOX_PIECES): a box round a digit makes few."""
    heaviest = max(p["mass"] for p in pieces)
    heavy = [p for p in pieces if p["mass"] >= SPECK * heaviest]
    if not 2 <= len(heavy) <= BOX_PIECES:
        return set()
    out = set()
    for piece in heavy:
        if not _light(piece):
            continue
        top, left, bottom, right = piece["box"]
        inside = all(box_holds(piece["box"], p["box"]) for p in heavy if p is not piece)
        if inside and _edges_followed(piece, labels()[top:bottom, left:right]) == 4:
            out.add(piece["label"])
    return out


def _without_box_lines(
    ink: np.ndarray, labels: np.ndarray, box_at: tuple[int, int], found: list
) -> np.ndarray | None:
    """The ink less the lines of a box drawn round the digit that the digit touches or
    crosses, so that the two are one piece (a box apart from the digit is _boxes'); None
    if there is no such box. The piece whose box holds the others (specks aside) is such a
    box if straight lines run along its four sides (BOX_LINE) and, once they are out, some
    of it still stands inside (BOX_HOLDS): a square 0 is all lines, and holds nothing.
    `labels` are _labelled's, its box at `box_at` in `ink`; `found`, the pieces' boxes in
    it (slices, in the order of their labels)."""
    areas = [(s[0].stop - s[0].start) * (s[1].stop - s[1].start) for s in found]
    outer = int(np.argmax(areas))
    rows, cols = found[outer]
    box, least = (rows.start, cols.start, rows.stop, cols.stop), SPECK * areas[outer]
    for s, area in zip(found, areas, strict=True):
        if area >= least and not box_holds(box, (s[0].start, s[1].start, s[0].stop, s[1].stop)):
            return None
    holds = sum(area >= least for area in areas) > 1
    region = labels[rows, cols]
    lines = _box_lines(region, outer + 1)
    if lines is None and _may_be_tilted(region, outer + 1):
        # (a level box apart from the digit is _boxes'; a tilted one is all lines here)
        lines = _tilted_box_lines(region == outer + 1, hollow=holds)
    if lines is None:
        return None
    out = ink.astype(np.float32)  # a copy
    top, left = box_at[0] + rows.start, box_at[1] + cols.start
    inside = out[top : top + region.shape[0], left : left + region.shape[1]]
    inside[lines] = 0.0
    return out


def _box_lines(region: np.ndarray, label: int, hollow: bool = False) -> np.ndarray | None:
    """Where the four lines of a box lie in the piece `label` of a label image (`region`,
    its box), with their grey edges: for each side, the rows (columns) within BOX_REACH of
    it that the piece covers along BOX_LINE of their length, the run of them nearest the
    side, no thicker than the thinnest side's line and 2 pixels, and no row outside it
    covered along BOX_OUTSIDE of its length; None unless all four sides have one and the
    piece still stands BOX_HOLDS of its height without them (unless it may be `hollow`).
    Each side's band is looked at in turn, and most digits have no such line at their top
    or bottom."""
    h, w = region.shape
    if min(h, w) < BOX_SIDE:
        return None
    found = []
    for axis, along in ((0, region), (1, region.T)):  # rows along the top and bottom, ...
        band = max(2, round(BOX_REACH * along.shape[0]))
        for step in (1, -1):
            near = along[::step][:band] == label
            share = np.count_nonzero(near, axis=1) / along.shape[1]
            covered = share >= BOX_LINE
            hit = np.flatnonzero(covered)
            if not len(hit) or share[: max(0, hit[0] - 1)].max(initial=0) >= BOX_OUTSIDE:
                return None
            start = end = int(hit[0])
            while end < band and covered[end]:
                end += 1
            found.append((axis, step, start, end))
    thinnest = min(end - start for _, _, start, end in found)
    lines = np.zeros(region.shape, bool)
    for axis, step, start, end in found:
        end = min(end, start + thinnest + 2)
        start, end = max(0, start - 2), end + 2  # the line's grey edges
        out = lines if axis == 0 else lines.T
        if step == 1:
            out[start:end] = True
        else:
            out[len(out) - end : len(out) - start] = True
    if hollow:
        return lines
    standing = np.flatnonzero(((region == label) & ~lines).any(axis=1))
    if not len(standing) or standing[-1] - standing[0] < BOX_HOLDS * h:
        return None
    return lines


def empty_box(ink: np.ndarray) -> bool:
    """Whether all the ink is the four straight lines of a box (or of two, one in the
    other), level or tilted, with nothing inside: a form's empty cell (or a 0 drawn as
    straight as one)."""
    found = _labelled(ink, margin=2)
    if found is None or found[2] > 2:
        return False
    labels = found[0]
    for label, where in enumerate(ndi.find_objects(labels), 1):
        region = labels[where]
        lines = _box_lines(region, label, hollow=True)
        if lines is None and _may_be_tilted(region, label):
            lines = _tilted_box_lines(region == label, hollow=True)
        if lines is None or ((region == label) & ~lines).any():
            return False
    return True


def _may_be_tilted(region: np.ndarray, label: int) -> bool:
    """Whether the piece `label` may be a tilted box: ink in BOX_LINE of the columns within
    BOX_REACH of its top and of its bottom (a tilted line runs across rows)."""
    band = max(2, round(BOX_REACH * region.shape[0]))
    return all(
        np.count_nonzero((near == label).any(axis=0)) >= BOX_LINE * region.shape[1]
        for near in (region[:band], region[-band:])
    )


def _tilted_box_lines(piece: np.ndarray, hollow: bool) -> np.ndarray | None:
    """_box_lines for a box tilted as a photo tilts it (up to BOX_TILT rows per column):
    the slope comes from where its top and bottom lines lie in the left and right thirds of
    the piece (medians, so a digit crossing a line moves it little), and is checked on its
    sides; the piece is sheared level, its lines found, and sheared back. If `hollow`, it
    holds other ink, and may be all lines (a box apart from the digit)."""
    h, w = piece.shape
    if min(h, w) < BOX_SIDE:
        return None
    slopes = []
    for mask in (piece, piece.T):
        if not mask.any(axis=0).all():
            return None  # a column with no ink: no box's top and bottom cross it
        first, last = mask.argmax(axis=0), len(mask) - 1 - mask[::-1].argmax(axis=0)
        slopes += [_line_slope(first), _line_slope(last)]
    top, bottom, left, right = slopes
    slope = (top + bottom - left - right) / 4  # a turned box's sides lean the other way
    if (
        not BOX_LEVEL <= abs(slope) <= BOX_TILT
        or max(abs(top - slope), abs(bottom - slope), abs(left + slope), abs(right + slope))
        > BOX_TILT / 4
    ):
        return None
    # level the top and bottom (columns shifted up and down), then the sides, which lean
    # the other way (rows shifted sideways: the transposed picture's lines along -slope)
    down, up = shear(piece.shape, slope)
    tall = down(piece)
    across, back_across = shear(tall.T.shape, -slope)

    def back(levelled: np.ndarray) -> np.ndarray:
        return up(back_across(levelled.T).T)

    # a thin line, levelled, falls into two rows here and there (rounding): grown by a
    # pixel, each of its rows runs whole
    levelled = ndi.binary_dilation(across(tall.T).T, structure=_CROSS)
    rows = np.flatnonzero(levelled.any(axis=1))
    cols = np.flatnonzero(levelled.any(axis=0))
    inked = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    lines = _box_lines(levelled[inked], True, hollow)
    if lines is None:
        return None
    levelled[:] = False
    levelled[inked] = lines
    return ndi.binary_dilation(back(levelled), structure=_SQUARE)  # rounding's gaps


def _line_slope(ends: np.ndarray) -> float:
    """The slope of a straight line along which most of `ends` lie (where a side of a box
    meets each column), a digit crossing it aside: from the medians of the outer thirds,
    then fitted to the ends within 3 pixels of that."""
    x = np.arange(len(ends))
    third = len(ends) // 3
    a, b = float(np.median(ends[:third])), float(np.median(ends[-third:]))
    slope = (b - a) / (len(ends) - third)
    near = np.abs(ends - (a + slope * (x - (third - 1) / 2))) <= 3
    if np.count_nonzero(near) >= len(ends) // 2:
        slope = float(np.polyfit(x[near], ends[near], 1)[0])
    return slope


def shear(shape: tuple[int, int], slope: float) -> tuple[Callable, Callable]:
    """For masks of `shape`: a function that shears one so that lines along `slope` (rows
    per column) lie level, and one that shears such a mask back."""
    h, w = shape
    shift = np.round(slope * np.arange(w)).astype(np.int64)
    shift -= shift.min()
    reach = int(shift.max())
    rows = np.arange(h + reach)[:, None] + shift[None, :]  # what sheared row y samples
    columns = np.arange(w)[None, :]

    def level(mask: np.ndarray) -> np.ndarray:
        padded = np.zeros((h + 2 * reach, w), bool)
        padded[reach : reach + h] = mask
        return padded[rows, columns]

    def back(sheared: np.ndarray) -> np.ndarray:
        found = np.zeros((h + 2 * reach, w), bool)
        found[rows, columns] = sheared
        return found[reach : reach + h]

    return level, back


def box_holds(outer, inner) -> bool:
    """Whether box `outer` (top, left, bottom, right) holds box `inner` whole."""
    return (
        outer[0] <= inner[0]
        and inner[2] <= outer[2]
        and outer[1] <= inner[1]
        and inner[3] <= outer[3]
    )


def _spanned(line: dict, others: list[dict]) -> bool:
    """Whether the rest of the ink spans (BELONGS of) a border line's length: a stroke of
    the digit at its picture's edge (a 7's bar, cropped close), not a line the digit was
    written near."""
    top, left, bottom, right = line["box"]
    across = right - left >= bottom - top  # the line runs across the picture
    start, end = (left, right) if across else (top, bottom)
    lo = min(p["box"][1] if across else p["box"][0] for p in others)
    hi = max(p["box"][3] if across else p["box"][2] for p in others)
    return min(end, hi) - max(start, lo) >= BELONGS * (end - start)


def _border_junk(
    pieces: list[dict],
    shape: tuple[int, int],
    labels: Callable[[], np.ndarray],
    edge_ink: Callable[[dict, int], float] | None = None,
) -> set[int]:
    """The labels of the pieces that are not the digit's: lines along the edges of a
    picture of `shape` (unless the digit spans them), frames round it, a box drawn round
    the digit and, given `edge_ink` (a picture of one digit: a piece's strongest ink in a
    column of the picture), parts of its neighbours."""
    if len(pieces) < 2:
        return set()  # the only ink there is is the digit's
    lines = {p["label"] for p in pieces if _is_border_line(p, shape)}
    frames = {p["label"] for p in pieces if p["label"] not in lines and _is_frame(p, shape, labels)}
    frames |= _boxes(pieces, labels) - lines
    rest = [p for p in pieces if p["label"] not in lines | frames]
    cut = set()
    if rest:
        heaviest = max(rest, key=lambda p: p["mass"])
        rest = [p for p in rest if p["mass"] >= SPECK * heaviest["mass"]]  # dust spans nothing
        lines = {p["label"] for p in pieces if p["label"] in lines and not _spanned(p, rest)}
        if edge_ink is not None:
            cut = {p["label"] for p in rest if _a_neighbours_part(p, heaviest, shape[1], edge_ink)}
    return lines | frames | cut


def _a_neighbours_part(
    piece: dict, digit: dict, width: int, edge_ink: Callable[[dict, int], float]
) -> bool:
    """A piece cut by the picture's left or right edge (its ink runs into the edge at full
    strength, where a whole stroke cropped close meets it with its faint rim) that stands
    wholly beside the heaviest piece, apart from it and lighter, where the heaviest has
    paper on both sides: the part of a neighbouring digit that a crop from a line of
    writing (a record, a form, a cheque) took in. A digit's own pieces overlap it side to
    side or nearly touch it (a 4 in two strokes, a 5's bar); two whole digits cropped
    close both meet an edge."""
    left, right = piece["box"][1], piece["box"][3]
    d_top, d_left, d_bottom, d_right = digit["box"]
    if piece is digit or piece["mass"] > NEIGHBOUR_MASS * digit["mass"]:
        return False
    gap = NEIGHBOUR_GAP * (d_bottom - d_top)
    if d_left <= gap or width - d_right <= gap:
        return False
    if left == 0:
        beside, column = right + gap <= d_left, 0
    elif right == width:
        beside, column = d_right + gap <= left, width - 1
    else:
        return False
    return beside and edge_ink(piece, column) >= NEIGHBOUR_CUT


def clean(ink: np.ndarray, speck: float = SPECK, borders: bool = True) -> np.ndarray:
    """Drop specks (pieces lighter than `speck` times the heaviest) and, if `borders`,
    border junk, keeping every piece of the digit (a 5's detached bar, a 4 drawn in two
    strokes)."""
    return _clean(ink, speck, (0, 0), ink.shape, borders)


def _clean(
    ink: np.ndarray,
    speck: float,
    at: tuple,
    shape: tuple[int, int],
    borders: bool = True,
    neighbours: bool = False,
) -> np.ndarray:
    """clean for `ink`, a part of a picture of `shape` (its top and left at `at`) with no
    ink outside it; `neighbours`: a picture of one digit, whose neighbours' parts go too."""
    # labelled in the box of the ink and 2 pixels round it (how far a dropped piece's rim
    # reaches): outside it there is nothing to label or drop
    found = _labelled(ink, margin=2)
    if found is None:
        raise EmptyImageError(BLANK)
    labels, (top, left), n, inner = found
    pieces = None
    if borders and n <= BOX_PIECES:
        boxes = [inner]
        if n > 1:
            pieces = _pieces(ink, labels, (top, left), n, at, shape[1])
            dy, dx = at[0] + top, at[1] + left
            boxes = [
                (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))
                for y0, x0, y1, x1 in (p["box"] for p in pieces)
            ]
        unboxed = _without_box_lines(ink, labels, (top, left), boxes)
        left_over = None if unboxed is None else _labelled(unboxed, margin=2)
        if left_over is not None:  # (a box whose lines were all there was stays)
            ink, pieces = unboxed, None
            labels, (top, left), n, _ = left_over
    if n == 1:
        return ink  # the only ink there is is the digit's
    if pieces is None:
        pieces = _pieces(ink, labels, (top, left), n, at, shape[1])

    @functools.cache
    def whole() -> np.ndarray:
        full = np.zeros(shape, labels.dtype)
        full[at[0] + top :, at[1] + left :][: labels.shape[0], : labels.shape[1]] = labels
        return full

    def edge_ink(piece: dict, column: int) -> float:
        """The piece's strongest ink in that column of the whole picture."""
        col = column - at[1] - left
        if not 0 <= col < labels.shape[1]:
            return 0.0
        mine = labels[:, col] == piece["label"]
        return float(ink[top : top + labels.shape[0], left + col][mine].max(initial=0.0))

    junk = (
        _border_junk(pieces, shape, whole, edge_ink if neighbours else None) if borders else set()
    )
    kept = [p for p in pieces if p["label"] not in junk] or pieces
    largest = max(p["mass"] for p in kept)
    kept = [p for p in kept if p["mass"] >= speck * largest]
    if len(kept) == len(pieces):
        return ink
    wanted = np.zeros(len(pieces) + 1, bool)
    wanted[[p["label"] for p in kept]] = True
    keep = wanted[labels]
    # a dropped piece's faint anti-aliased rim goes with it; faint ink elsewhere stays
    dropped = ndi.binary_dilation((labels > 0) & ~keep, iterations=2) & ~keep
    out = ink.astype(np.float32)  # a copy
    out[top : top + labels.shape[0], left : left + labels.shape[1]][dropped] = 0.0
    return out


def stroke_width(ink: np.ndarray, level: float = 0.5) -> float:
    """Mean distance to the stroke's edge inside the ink (above `level`): a quarter of the
    pen's width."""
    mask = ink > level
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return 0.0
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    # the mask's box and a pixel of paper round it (where the picture has one): the nearest
    # paper to any ink lies within, so the distances are the same, in the same order
    h, w = mask.shape
    mask = mask[
        max(0, rows[0] - 1) : min(h, rows[-1] + 2), max(0, cols[0] - 1) : min(w, cols[-1] + 2)
    ]
    if mask.all():  # no paper to measure from: SciPy's answer, whatever it is
        return float(ndi.distance_transform_edt(mask)[mask].mean())
    # distance_transform_edt's distances: the square roots of the same whole numbers
    return float(np.sqrt(_squared_distances(mask)[mask].astype(np.float64)).mean())


def _squared_distances(mask: np.ndarray) -> np.ndarray:
    """The squared Euclidean distance from each pixel of `mask` to the nearest pixel off it
    (0 off it), exact (whole numbers); the mask must have a pixel off it. Down each column
    first (the nearest pixel off it above or below), then across: a pixel's distance is
    the least, over the columns dx away, of that column's squared distance plus dx squared,
    and columns further than the largest distance found so far cannot make one smaller.
    Several times faster than distance_transform_edt for a pen's strokes, a few pixels
    wide, which the search across ends at."""
    h, w = mask.shape
    far = h + w  # further than any pixel in the picture
    rows = np.arange(h, dtype=np.int32)[:, None]
    above = np.maximum.accumulate(np.where(mask, np.int32(-far), rows), axis=0)
    below = np.minimum.accumulate(np.where(mask, np.int32(2 * far), rows)[::-1], axis=0)[::-1]
    # columns as rows, so that a shift across is a shift of whole rows: one run of memory
    down = np.ascontiguousarray(np.minimum(rows - above, below - rows).T)
    down *= down
    d = down.copy()
    step = np.empty_like(d)
    dx = 1
    while dx < w and dx * dx < d.max():
        np.add(down, dx * dx, out=step)
        np.minimum(d[dx:], step[:-dx], out=d[dx:])
        np.minimum(d[:-dx], step[dx:], out=d[:-dx])
        dx += 1
    return d.T


_SQUARE = np.ones((3, 3), bool)
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _morph(x: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """Grey dilation (grow) or erosion by a disk-like octagon of the given radius, as
    alternating 3x3 square and cross steps: fast, and round enough for pen strokes."""
    return _morphs(x, radius, grow)[-1]


def _morphs(x: np.ndarray, radius: int, grow: bool) -> list[np.ndarray]:
    """_morph(x, r, grow) for r = 0, 1, ... radius: each is one step on from the last."""
    step = ndi.maximum_filter if grow else ndi.minimum_filter
    out = [x]
    for i in range(radius):
        out.append(step(out[-1], footprint=_CROSS if i % 2 else _SQUARE))
    return out


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
    changes = _morphs(fine, radius, grow)
    for r in range(radius, 0, -1):
        changed = changes[r]
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
    above = ink > level
    rows = np.flatnonzero(above.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(above[rows[0] : rows[-1] + 1].any(axis=0))
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
    fine = np.asarray(
        _float_image(crop).resize((size[0] * FINE, size[1] * FINE), Image.Resampling.BICUBIC)
    )
    padded = _with_room(np.clip(fine, 0.0, 1.0))
    thinned = normalise_stroke(padded)
    fine = padded if thinned is padded else _refilled(thinned, (size[1] * FINE, size[0] * FINE))
    grown = fine.shape[1] // FINE, fine.shape[0] // FINE
    fitted = np.asarray(_float_image(fine).resize(grown, Image.Resampling.BOX))
    fitted = np.clip(fitted, 0.0, 1.0)
    strokes = fitted[fitted > 0.2]
    if strokes.size and _quartile_under(strokes, 0.95):
        # MNIST's pen is saturated in the middle of its strokes: match it
        core = float(np.percentile(strokes, 75))
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


def _refilled(fine: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """A digit whose pen normalise_stroke thinned, cropped to its ink and scaled up again to
    fill the box (height, width, at FINE scale) it was fitted to: a thick pen is thinned from
    the outside in, so a small digit drawn with a broad pen came out smaller than MNIST's
    (18 px high instead of 20). Thickened pens are left alone: they grow the digit a little,
    as a broad pen does in MNIST."""
    cropped = crop_to_ink(fine, INK_LEVEL)
    if cropped is None:
        return fine
    crop = cropped[0]
    h, w = crop.shape
    scale = min(box[0] / h, box[1] / w)
    if scale <= REFILL:
        return fine
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    big = np.asarray(_float_image(crop).resize(size, Image.Resampling.BILINEAR))
    return _with_room(np.clip(big, 0.0, 1.0))


def _with_room(fine: np.ndarray) -> np.ndarray:
    """A digit at FINE scale with 2 FINE pixels of paper round it, room for a thickened
    stroke (np.pad, without its overhead)."""
    pad = 2 * FINE
    out = np.zeros((fine.shape[0] + 2 * pad, fine.shape[1] + 2 * pad), fine.dtype)
    out[pad:-pad, pad:-pad] = fine
    return out


def _float_image(a: np.ndarray) -> Image.Image:
    """Image.fromarray(a), for a float picture (mode F) without its checks and copies."""
    if a.dtype not in (np.float32, np.float64):
        return Image.fromarray(a)
    a = np.ascontiguousarray(a, dtype=np.float32)  # Pillow rounds float64 as NumPy does
    return Image.frombuffer("F", (a.shape[1], a.shape[0]), a, "raw", "F", 0, 1)


def _quartile_under(a: np.ndarray, level: float) -> bool:
    """np.percentile(a, 75) < level, without sorting where the count tells: the percentile
    lies between the values at sorted positions floor(0.75 (n - 1)) and the next, so it
    is not under `level` when no more values than that position are."""
    if np.count_nonzero(a < level) <= 3 * (a.size - 1) // 4:
        return False
    return float(np.percentile(a, 75)) < level


def fit_pair(ink: np.ndarray) -> np.ndarray:
    """A piece of ink holding two touching digits, in the pair reader's form (28, 48)."""
    return fit_and_centre(ink, PAIR_BOX, PAIR_FIELD)


def picture_ink(image: ImageInput, max_side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """The ink map of a whole picture (scaled down if larger than `max_side`) and that
    scale."""
    grey, scale = _grey_within(image, max_side)
    return ink_map(grey), scale


def to_mnist(image: ImageInput) -> np.ndarray:
    """Any picture of one digit -> (28, 28) float32 in MNIST form."""
    # fit_and_centre(clean(picture_ink(image)[0])), on the part of the picture with ink
    grey = _grey_within(image, WORK_SIDE)[0]
    ink, at = _ink_map(grey)
    digit = _clean(ink, SPECK, at, grey.shape, neighbours=True)
    return fit_and_centre(_unstretched(digit, at, grey))


def _unstretched(ink: np.ndarray, at: tuple[int, int], grey: np.ndarray) -> np.ndarray:
    """The digit cut out to its ink, as it was written: where its picture is a black-and-
    white box that it fills edge to edge (to within FRAMED_GAP) and about square, it is a
    form reader's digit stretched to fill its frame (forms scanned to 16x16 bits are kept
    so), which made a 1 as wide as a 0, and it is narrowed to FRAMED_WIDTH of its height, a
    digit's usual shape. Grey pictures, and digits short of an edge, are as they were
    written. `ink` is the cleaned ink of the part of `grey` from `at` on."""
    cropped = crop_to_ink(ink, INK_LEVEL)
    if cropped is None:
        return ink  # (fit_and_centre says it is blank)
    crop, left, top = cropped
    h, w = crop.shape
    top, left = top + at[0], left + at[1]
    gap = FRAMED_GAP
    if top > gap or left > gap or top + h + gap < grey.shape[0] or left + w + gap < grey.shape[1]:
        return crop
    if not FRAMED_SQUARE[0] <= w / h <= FRAMED_SQUARE[1]:
        return crop
    lo, hi = grey.min(), grey.max()
    if np.count_nonzero((grey != lo) & (grey != hi)):
        return crop  # grey levels: a scan or a drawing, not a binarised form
    width = max(1, round(w * FRAMED_WIDTH))
    narrowed = _float_image(crop).resize((width, h), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(narrowed), 0.0, 1.0)


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
