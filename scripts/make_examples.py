"""Draw the sample pictures in examples/: one digit each, pen strokes on a 280x280 canvas in
the styles people send (dark ink on paper, light ink on a dark canvas, a transparent canvas
PNG, a photo-like JPEG). Drawn from stroke paths written here, never from MNIST.

    python scripts/make_examples.py [OUT_DIR]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Stroke = list[tuple[float, float]]


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
    """The digit as ink strength in [0, 1] on a size x size canvas; `box` places it."""
    x0, y0, x1, y1 = box
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in DIGITS[digit]:
        pts = [(size * (x0 + x * (x1 - x0)), size * (y0 + y * (y1 - y0))) for x, y in stroke]
        draw.line(pts, fill=255, width=pen, joint="curve")
        for px, py in (pts[0], pts[-1]):
            draw.ellipse([px - pen / 2, py - pen / 2, px + pen / 2, py + pen / 2], fill=255)
    canvas = canvas.filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def dark_on_paper(ink: np.ndarray) -> Image.Image:
    return Image.fromarray((255 * (1 - ink)).astype(np.uint8), "L")


def light_on_dark(ink: np.ndarray) -> Image.Image:
    return Image.fromarray((255 * ink).astype(np.uint8), "L")


def transparent_canvas(ink: np.ndarray) -> Image.Image:
    rgba = np.zeros(ink.shape + (4,), dtype=np.uint8)
    rgba[..., 2] = 120  # blue ink
    rgba[..., 3] = (255 * ink).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def photo_like(ink: np.ndarray, seed: int) -> Image.Image:
    """Blue-black ink on slightly yellow paper under uneven light, with sensor noise."""
    rng = np.random.default_rng(seed)
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 0.78 + 0.18 * (1 - xx) * (0.6 + 0.4 * yy)
    paper = np.stack([light * 0.97, light * 0.95, light * 0.86], -1)
    ink_colour = np.array([0.12, 0.14, 0.3])
    rgb = paper * (1 - ink[..., None]) + ink_colour * ink[..., None]
    rgb += rng.normal(0, 0.025, rgb.shape)
    return Image.fromarray((255 * np.clip(rgb, 0, 1)).astype(np.uint8), "RGB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    styles = [
        ("paper", dark_on_paper, ".png"),
        ("canvas", light_on_dark, ".png"),
        ("transparent", transparent_canvas, ".png"),
        ("photo", None, ".jpg"),
    ]
    for digit in range(10):
        name, render, ext = styles[digit % len(styles)]
        pen = (12, 18, 24)[digit % 3]
        ink = draw_digit(digit, pen=pen)
        image = photo_like(ink, seed=digit) if render is None else render(ink)
        path = out / f"{digit}-{name}{ext}"
        image.save(path, quality=85) if ext == ".jpg" else image.save(path)
        print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "examples")
