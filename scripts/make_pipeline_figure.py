"""Draw docs/pipeline.png: how a photo of a handwritten digit becomes MNIST form.

python scripts/make_pipeline_figure.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.reading.preprocess import clean, fit_and_centre, ink_map, to_grey
from digitrec.training.synthetic import draw_digit

TILE = 220


def photo(seed: int = 3) -> Image.Image:
    """A thin-pen 7 on paper under uneven light, with a speck of dirt, as a phone sees it."""
    rng = np.random.default_rng(seed)
    ink = draw_digit(7, size=300, pen=6, box=(0.15, 0.2, 0.5, 0.75))
    ink[240:246, 250:256] = 0.9  # a speck
    yy, xx = np.mgrid[0:300, 0:300] / 300
    light = 0.55 + 0.4 * xx * (0.5 + 0.5 * yy)
    grey = light * (1 - 0.8 * ink) + rng.normal(0, 0.03, ink.shape)
    rgb = np.stack([grey * 0.98, grey * 0.95, grey * 0.85], -1)
    return Image.fromarray((255 * np.clip(rgb, 0, 1)).astype(np.uint8), "RGB")


def tile(a: np.ndarray | Image.Image, label: str) -> Image.Image:
    image = a if isinstance(a, Image.Image) else Image.fromarray((255 * a).astype(np.uint8))
    resample = Image.Resampling.NEAREST if image.width <= 28 else Image.Resampling.BILINEAR
    out = Image.new("RGB", (TILE, TILE + 34), "white")
    out.paste(image.convert("RGB").resize((TILE, TILE), resample), (0, 0))
    ImageDraw.Draw(out).text((6, TILE + 8), label, "black", ImageFont.load_default(15))
    return out


def main() -> None:
    picture = photo()
    ink = ink_map(to_grey(picture))
    kept = clean(ink)
    mnist = fit_and_centre(kept)
    tiles = [
        tile(picture, "1. the photo"),
        tile(ink, "2. ink: polarity, light, noise"),
        tile(kept, "3. specks dropped"),
        tile(mnist, "4. 20x20 fit, pen, centred"),
    ]
    figure = Image.new("RGB", (len(tiles) * (TILE + 10) - 10, TILE + 34), "white")
    for i, t in enumerate(tiles):
        figure.paste(t, (i * (TILE + 10), 0))
    out = Path(__file__).parents[1] / "docs" / "pipeline.png"
    figure.save(out)
    print(out)


if __name__ == "__main__":
    main()
