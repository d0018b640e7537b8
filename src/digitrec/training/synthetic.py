"""Pictures drawn with a pen by code: digits from stroke paths (the sample pictures, tests),
and things that are not digits: scribbles, shapes and letters.

Training shows them to the model with a uniform target (outlier exposure), so it learns to be
unsure of what is not a digit; the benchmarks draw their own set with other seeds and fonts.
Shapes that are digits in disguise (a plain circle is a 0, a vertical bar a 1) are left out.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

Stroke = list[tuple[float, float]]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Letters that no one would take for a digit (no O, I, l, Z, S, B, G, q, T, ...).
LETTERS = "ACEFHKMNPRUVWXacefhkmnruvwx"
TRAIN_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")


def arc(cx, cy, rx, ry, start_deg, end_deg, n=40) -> Stroke:
    """Points on an ellipse; angles in degrees, 0 = right, 90 = down (screen coordinates)."""
    return [
        (
            cx + rx * math.cos(math.radians(start_deg + (end_deg - start_deg) * i / n)),
            cy + ry * math.sin(math.radians(start_deg + (end_deg - start_deg) * i / n)),
        )
        for i in range(n + 1)
    ]


# Each digit: strokes in a unit box (x right, y down), as a person might draw them.
DIGITS: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.32, 0.46, -90, 275)],
    1: [[(0.32, 0.22), (0.56, 0.04), (0.54, 0.5), (0.52, 0.96)]],
    2: [arc(0.5, 0.3, 0.3, 0.26, 190, 380) + [(0.45, 0.7), (0.18, 0.95), (0.86, 0.94)]],
    3: [arc(0.48, 0.27, 0.3, 0.23, 200, 450) + arc(0.48, 0.72, 0.34, 0.24, -90, 160)],
    4: [[(0.58, 0.04), (0.12, 0.64), (0.88, 0.64)], [(0.66, 0.3), (0.64, 0.97)]],
    5: [
        [(0.82, 0.05), (0.3, 0.06), (0.26, 0.45)],
        arc(0.5, 0.68, 0.32, 0.27, -120, 150),
    ],
    6: [[(0.7, 0.04), (0.45, 0.25), (0.28, 0.5)] + arc(0.5, 0.72, 0.24, 0.24, 180, 540)],
    7: [[(0.12, 0.06), (0.88, 0.05), (0.62, 0.45), (0.42, 0.96)]],
    8: [arc(0.5, 0.27, 0.23, 0.22, 90, 450), arc(0.5, 0.72, 0.28, 0.25, -90, 270)],
    9: [arc(0.48, 0.3, 0.26, 0.24, 0, 360), [(0.74, 0.3), (0.72, 0.62), (0.66, 0.97)]],
}


def draw_digit(
    digit: int, size: int = 280, pen: int = 18, box=(0.3, 0.12, 0.72, 0.88)
) -> np.ndarray:
    """A pen-drawn digit as ink strength in [0, 1] on a size x size canvas; `box` places it
    (fractions of the canvas)."""
    x0, y0, x1, y1 = (v * size for v in box)
    return blur(draw_strokes(DIGITS[digit], size, pen, (x0, y0, x1, y1)))


def draw_number(
    text: str, height: int = 120, pen: int = 10, gap: float = 0.25, margin: int = 30
) -> np.ndarray:
    """Pen-drawn digits side by side (gap: between digit boxes, as a share of the height)."""
    width = 0.55 * height
    step = width + gap * height
    w = round(2 * margin + len(text) * width + (len(text) - 1) * gap * height)
    canvas = np.zeros((height + 2 * margin, w), dtype=np.float32)
    for i, ch in enumerate(text):
        left = margin + i * step
        box = (left, margin, left + width, margin + height)
        ink = draw_strokes(DIGITS[int(ch)], max(canvas.shape), pen, box)
        canvas = np.maximum(canvas, ink[: canvas.shape[0], : canvas.shape[1]])
    return blur(canvas)


def scribble_page(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A page (uint8, dark on light) of rows x cols wavy strokes wider than digits, none of
    them a digit: few pieces of ink, each a row of touching digits to a segmentation, which
    must refuse the page within its budget rather than search every one."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", (cols * 90 + 20, rows * 70 + 30), 255)
    pen = ImageDraw.Draw(page)
    for r in range(rows):
        for c in range(cols):
            xs = np.linspace(20 + c * 90, 90 + c * 90, 12)
            ys = 50 + r * 70 + rng.uniform(-20, 20, 12)
            pen.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=0, width=4)
    return np.asarray(page)


def blur(ink: np.ndarray, radius: float = 0.8) -> np.ndarray:
    """The soft edge of a real pen (anti-aliasing)."""
    return ndi.gaussian_filter(ink, radius).astype(np.float32)


def _smooth(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Chaikin corner cutting: a polyline becomes a pen-like curve."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def scribble(rng: np.random.Generator) -> list[Stroke]:
    n = int(rng.integers(7, 18))
    pts = rng.random((n, 2)) * 0.9 + 0.05
    return [[tuple(p) for p in _smooth(pts)]]


def _polygon(k: int, rng, star: bool = False) -> Stroke:
    phase = rng.random() * 2 * math.pi
    pts = []
    for i in range(k * (2 if star else 1) + 1):
        radius = 0.45 if not star or i % 2 == 0 else 0.18
        a = phase + 2 * math.pi * i / (k * (2 if star else 1))
        pts.append((0.5 + radius * math.cos(a), 0.5 + radius * math.sin(a)))
    return pts


def shape(rng: np.random.Generator) -> list[Stroke]:
    kind = int(rng.integers(0, 9))
    if kind == 0:  # triangle
        return [_polygon(3, rng)]
    if kind == 1:  # square or rectangle, maybe tilted
        return [_polygon(4, rng)]
    if kind == 2:  # star
        return [_polygon(int(rng.integers(5, 7)), rng, star=True)]
    if kind == 3:  # hash
        return [
            [(0.35, 0.05), (0.3, 0.95)],
            [(0.7, 0.05), (0.65, 0.95)],
            [(0.05, 0.35), (0.95, 0.33)],
            [(0.05, 0.68), (0.95, 0.66)],
        ]
    if kind == 4:  # spiral
        turns = 2 + rng.random() * 1.5
        t = np.linspace(0, turns * 2 * math.pi, 120)
        r = 0.05 + 0.4 * t / t[-1]
        return [list(zip(0.5 + r * np.cos(t), 0.5 + r * np.sin(t), strict=True))]
    if kind == 5:  # zigzag or wave
        n = int(rng.integers(4, 8))
        xs = np.linspace(0.05, 0.95, n)
        ys = 0.5 + (0.3 * (-1) ** np.arange(n))
        return [list(zip(xs, ys, strict=True))]
    if kind == 6:  # arrow
        return [[(0.05, 0.5), (0.95, 0.5)], [(0.7, 0.25), (0.95, 0.5), (0.7, 0.75)]]
    if kind == 7:  # plus or x
        if rng.random() < 0.5:
            return [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]]
        return [[(0.1, 0.1), (0.9, 0.9)], [(0.9, 0.1), (0.1, 0.9)]]
    # a face: circle with eyes and a mouth
    return [
        [(0.5 + 0.45 * math.cos(a), 0.5 + 0.45 * math.sin(a)) for a in np.linspace(0, 6.3, 60)],
        [(0.35, 0.35), (0.36, 0.38)],
        [(0.65, 0.35), (0.66, 0.38)],
        [(0.3 + 0.4 * i / 10, 0.65 + 0.08 * math.sin(math.pi * i / 10)) for i in range(11)],
    ]


def draw_strokes(strokes: list[Stroke], size: int, pen: float, box) -> np.ndarray:
    """Ink in [0, 1] of strokes given in a unit box, drawn inside `box` of a size^2 canvas."""
    x0, y0, x1, y1 = box
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(pen))
    for stroke in strokes:
        pts = [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in stroke]
        draw.line(pts, fill=255, width=width, joint="curve")
        for px, py in (pts[0], pts[-1]):
            draw.ellipse([px - width / 2, py - width / 2, px + width / 2, py + width / 2], fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def letter(rng: np.random.Generator, fonts=TRAIN_FONTS, size: int = 96) -> np.ndarray:
    font = ImageFont.truetype(str(FONT_DIR / fonts[int(rng.integers(len(fonts)))]), 70)
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).text((size / 2, size / 2), rng.choice(list(LETTERS)), 255, font, "mm")
    angle = float(rng.normal(0, 8))
    return np.asarray(canvas.rotate(angle, resample=Image.Resampling.BILINEAR), np.float32) / 255


def non_digit(rng: np.random.Generator, fonts=TRAIN_FONTS, size: int = 96) -> np.ndarray:
    """One picture of something that is not a digit, white on black, size x size."""
    kind = rng.random()
    if kind < 0.3 and fonts:
        return letter(rng, fonts, size)
    strokes = scribble(rng) if kind < 0.6 else shape(rng)
    w, h = rng.uniform(0.45, 0.9) * size, rng.uniform(0.45, 0.9) * size
    left, top = rng.uniform(0, size - w), rng.uniform(0, size - h)
    pen = rng.uniform(0.03, 0.09) * size
    return draw_strokes(strokes, size, pen, (left, top, left + w, top + h))


def non_digit_bank(n: int, seed: int, fonts=TRAIN_FONTS) -> np.ndarray:
    """n non-digit pictures in MNIST form, (n, 28, 28) float32; repeatable from the seed."""
    from ..errors import EmptyImageError
    from ..reading.preprocess import to_mnist

    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    i = 0
    while i < n:
        try:
            out[i] = to_mnist(non_digit(rng, fonts))
        except EmptyImageError:
            continue
        i += 1
    return out
