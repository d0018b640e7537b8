"""MNIST's training digits drawn again the way people draw them, and read back through the
same preprocessing as a user's picture, so the model learns what it will be shown:

- `redrawn_bank`: each digit drawn large with another pen (thinner or thicker), then brought
  back to MNIST form by `to_mnist`; among them European-style 1s (a long flag, sometimes a
  foot) and 7s crossed in the middle, which MNIST's American writers rarely made;
- `pair_bank`: two digits written so close that they touch or overlap, as one piece of ink,
  labelled with both digits (the pair reader learns them) or, fitted as one digit, a thing
  the digit reader must not take for a digit (`touching_pairs`).

Everything is repeatable from its seed; callers pass training digits only.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from ..errors import EmptyImageError
from ..reading.preprocess import PAIR_FIELD, crop_to_ink, fit_and_centre, fit_pair, to_mnist

INK = 0.1  # MNIST pixels above this are part of a digit when cropping
STROKE = 0.3  # ... and above this, part of a stroke that another one can touch
FLATTEST_FLAG = 30.0  # degrees below the horizontal: a flatter flag makes a 1 a 7


def resized(x: np.ndarray, width: int, height: int, method=Image.Resampling.BICUBIC):
    """Ink in [0, 1] resized to width x height (each at least 1)."""
    out = Image.fromarray(x.astype(np.float32)).resize((max(1, width), max(1, height)), method)
    return np.clip(np.asarray(out), 0.0, 1.0)


def cut_out(digit: np.ndarray) -> np.ndarray:
    """A training digit (0-1 or 0-255) cropped to its ink, in [0, 1]; EmptyImageError if
    it has none."""
    x = np.asarray(digit, dtype=np.float32)
    cut = crop_to_ink(x / 255.0 if x.max() > 1.0 else x, INK)
    if cut is None:
        raise EmptyImageError("a training digit with no ink")
    return cut[0]


def _pen_width(ink: np.ndarray) -> float:
    """The width of a drawing's strokes, in its own pixels."""
    mask = ink > 0.5
    return 4 * float(ndi.distance_transform_edt(mask)[mask].mean()) if mask.any() else 2.0


def _stroke(ink: np.ndarray, points: list[tuple[float, float]], width: float) -> np.ndarray:
    """Ink with one more pen stroke through `points` (anti-aliased: drawn at 4x, averaged)."""
    h, w = ink.shape
    layer = Image.new("L", (4 * w, 4 * h), 0)
    pen = max(1, round(4 * width))
    big = [(4 * x, 4 * y) for x, y in points]
    draw = ImageDraw.Draw(layer)
    draw.line(big, fill=255, width=pen, joint="curve")
    for px, py in (big[0], big[-1]):
        draw.ellipse([px - pen / 2, py - pen / 2, px + pen / 2, py + pen / 2], fill=255)
    added = np.asarray(layer.resize((w, h), Image.Resampling.BOX), np.float32) / 255.0
    return np.maximum(ink, added)


def _lean(ink: np.ndarray) -> float:
    """The angle of a stroke's long axis below the horizontal, in degrees: 90 upright, under
    90 leaning right (its top to the right of its foot)."""
    ys, xs = np.nonzero(ink > 0.5)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vx, vy = np.linalg.eigh(cov)[1][:, -1]
    return math.degrees(math.atan2(abs(vy), -vx if vy > 0 else vx)) % 180


def european_one(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 (ink, any size) given the flag that much of Europe writes: a long stroke down to
    the left from its top, 30-65 degrees below the horizontal (the flatter ones on upright
    stems only: on a leaning one a flat flag is a 7's bar) and at least 20 degrees off the
    stem; sometimes a foot as well."""
    h = ink.shape[0]
    pen = _pen_width(ink)
    stem = _lean(ink)
    steepest = min(stem, 90.0) - 20  # a flag along the stem would only thicken it
    # the more the stem leans, the steeper its flag must be to keep it a 1, not a 7
    flattest = FLATTEST_FLAG + max(0.0, 80.0 - stem)
    if stem > 120 or steepest < flattest:
        return ink
    angle = rng.uniform(flattest, min(65.0, steepest))
    length = rng.uniform(0.25, 0.45) * h
    ink = np.pad(ink, ((0, 0), (int(0.55 * h), int(0.2 * h))))
    rows = np.flatnonzero(ink.max(1) > 0.5)
    top, bottom = rows[0], rows[-1]
    x_top = float(np.mean(np.flatnonzero(ink[top] > 0.5)))
    flag = [
        (x_top, top + 0.5),
        (
            x_top - length * math.cos(math.radians(angle)),
            top + length * math.sin(math.radians(angle)),
        ),
    ]
    ink = _stroke(ink, flag, pen)
    if rng.random() < 0.3:
        x_foot = float(np.mean(np.flatnonzero(ink[bottom] > 0.5)))
        half = rng.uniform(0.15, 0.3) * h
        ink = _stroke(ink, [(x_foot - half, bottom), (x_foot + half, bottom)], pen)
    return ink


def crossed_seven(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 (ink, any size) with the bar across its stem that much of Europe writes."""
    h, w = ink.shape
    pen = _pen_width(ink)
    ink = np.pad(ink, ((0, 0), (w // 3, w // 3)))
    y = int(rng.uniform(0.45, 0.6) * h)
    cols = np.flatnonzero(ink[y] > 0.5)
    if len(cols) == 0:
        return ink
    x = float(cols.mean())
    half = rng.uniform(0.2, 0.32) * w
    tilt = rng.uniform(-0.06, 0.06) * h
    return _stroke(ink, [(x - half, y + tilt), (x + half, y - tilt)], pen)


def _change_pen(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thicker or thinner pen: grey dilation or erosion, never filling a loop or wearing a
    stroke away."""
    h = ink.shape[0]
    change = rng.choice(["thicker", "thinner", "same"], p=[0.35, 0.3, 0.35])
    if change == "same":
        return ink
    radius = max(1, round(rng.uniform(0.01, 0.05) * h))
    before = (ink > 0.5).sum()
    holes = ndi.label(ndi.binary_fill_holes(ink > 0.5) & ~(ink > 0.5))[1]
    ink = np.pad(ink, radius + 1)
    for r in range(radius, 0, -1):
        size = 2 * r + 1
        if change == "thicker":
            pen = ndi.grey_dilation(ink, size=(size, size))
            mask = pen > 0.5
            if ndi.label(ndi.binary_fill_holes(mask) & ~mask)[1] >= holes:
                return pen
        else:
            pen = ndi.grey_erosion(ink, size=(size, size))
            if (pen > 0.5).sum() >= 0.45 * before:
                return pen
    return ink


def redraw(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """A training digit (28x28) drawn again 24-160 pixels tall with another pen, maybe in
    the European style, on a canvas, and read back to MNIST form by `to_mnist`."""
    crop = cut_out(digit)
    h, w = crop.shape
    height = int(rng.integers(24, 161))
    scale = height / h
    ink = resized(crop, round(w * scale), height)
    ink = np.clip((ink - 0.5) / max(0.2, min(1.0, 2.0 / scale)) + 0.5, 0.0, 1.0)  # pen edges
    if label == 1 and rng.random() < 0.7:
        ink = european_one(ink, rng)
    elif label == 7 and rng.random() < 0.4:
        ink = crossed_seven(ink, rng)
    ink = _change_pen(ink, rng)
    margin = int(rng.integers(4, 40))
    return to_mnist(np.pad(ink, margin))


def redrawn_bank(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """n training digits re-drawn (see `redraw`): (n, 28, 28) float32 and (n,) labels."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    picked = rng.integers(len(images), size=n)
    for i, j in enumerate(picked):
        out[i] = redraw(images[j], int(labels[j]), rng)
    return out, np.asarray(labels)[picked].astype(np.int64)


def pair_ink(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, touch: bool) -> np.ndarray:
    """Two 28x28 digits written side by side on one line at MNIST's scale: `touch` runs them
    together until their strokes meet (overlapping up to half the narrower one), else they
    stand up to 2 pixels apart."""
    a, b = cut_out(a), cut_out(b)
    s = rng.uniform(0.85, 1.15)  # people do not write every digit the same size
    b = resized(b, round(b.shape[1] * s), round(b.shape[0] * s), Image.Resampling.BILINEAR)
    narrower = min(a.shape[1], b.shape[1])
    height = max(a.shape[0], b.shape[0]) + 8
    top_a = (height - a.shape[0]) // 2
    top_b = int(np.clip((height - b.shape[0]) // 2 + rng.integers(-3, 4), 0, height - b.shape[0]))
    gap = -int(rng.integers(0, max(1, narrower // 3) + 1)) if touch else int(rng.integers(0, 3))
    while True:
        canvas = np.zeros((height, a.shape[1] + b.shape[1] + max(gap, 0) + 4), np.float32)
        canvas[top_a : top_a + a.shape[0], 2 : 2 + a.shape[1]] = a
        left = 2 + a.shape[1] + gap
        part = canvas[top_b : top_b + b.shape[0], left : left + b.shape[1]]
        np.maximum(part, b[:, : part.shape[1]], out=part)
        if not touch or gap <= -(narrower // 2) or ndi.label(canvas > STROKE)[1] <= 1:
            return canvas
        gap -= 1


def pair_bank(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """n pairs of training digits, most of them touching, in the pair reader's form:
    (n, 28, 48) float32 and (n, 2) labels (left digit, right digit)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, *PAIR_FIELD), dtype=np.float32)
    picked = rng.integers(len(images), size=(n, 2))
    for i, (j, k) in enumerate(picked):
        out[i] = fit_pair(pair_ink(images[j], images[k], rng, touch=rng.random() < 0.8))
    return out, np.asarray(labels)[picked].astype(np.int64)


def lone_digits(images: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n single training digits, some drawn wider, in the pair reader's form (n, 28, 48):
    what it must not read as two digits (a slanted 1 is as wide as a pair)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, *PAIR_FIELD), dtype=np.float32)
    for i, j in enumerate(rng.integers(len(images), size=n)):
        ink = cut_out(images[j])
        stretch = rng.uniform(1.0, 1.8)
        out[i] = fit_pair(resized(ink, round(ink.shape[1] * stretch), ink.shape[0]))
    return out


def touching_pairs(digits: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n pictures of two digits run together, fitted as if they were one digit, (n, 28, 28):
    what a reader sees when it fails to cut a number apart. Overlaps stay under a third of
    the narrower digit: two 1s must not make one thick 1."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    for i, (j, k) in enumerate(rng.integers(len(digits), size=(n, 2))):
        try:
            out[i] = fit_and_centre(pair_ink(digits[j], digits[k], rng, touch=True))
        except EmptyImageError:
            continue
    return out
