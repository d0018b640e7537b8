"""Draw the sample pictures in examples/: one digit each, pen strokes on a 280x280 canvas in
the styles people send (dark ink on paper, light ink on a dark canvas, a transparent canvas
PNG, a photo-like JPEG), and two numbers in examples/numbers/ (named by what they read).
Drawn from the stroke paths in digitrec.training.synthetic, never from MNIST.

    python scripts/make_examples.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.training.synthetic import draw_digit, draw_number


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
    numbers = out / "numbers"
    numbers.mkdir(exist_ok=True)
    for text, render, gap in (("4096", dark_on_paper, 0.25), ("271", light_on_dark, 0.1)):
        path = numbers / f"{text}.png"
        render(draw_number(text, gap=gap)).save(path)
        print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "examples")
