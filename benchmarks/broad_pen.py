"""Digits drawn small with a canvas's broad pen: the held-out UNIPEN train writers' digits
(never dev, never learned from) drawn on a 280x280 canvas with one pen (20 px, as the web
page's and an HTML canvas's), their pen path 56-224 px high, anywhere on the canvas, read
with `predict_many` as PNG bytes. A digit drawn 56 px high with a 20 px pen is mostly ink:
its loops close up. Prints, per height, how many are read right, misread and refused, and
how many the model's likeliest digit gets right (refused or not).

The strokes are real writers'; the drawing (pen, size, place) is our code's, so this measures
how the pipeline copes with a size and pen, not how well it reads people.

    DIGITREC_UNIPEN=../shared/data/realworld/unipen python benchmarks/broad_pen.py
        [--pen 20] [--n 1500] [--model PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from digitrec import load_predictor
from digitrec.training.pen import _unit, find_unipen, held_out_writer, load_pen_digits, paint

CANVAS = 280
HEIGHTS = (0.2, 0.3, 0.45, 0.6, 0.8)  # of the canvas: the pen path's height


def draw(strokes, height: float, pen: float, rng: np.random.Generator) -> bytes:
    """The strokes drawn light on dark with a round pen, path `height` px high (narrowed to
    fit), anywhere on the canvas; PNG bytes."""
    ink = paint(
        _unit(strokes), CANVAS, height, pen, lambda half: rng.uniform(half + 2, CANVAS - half - 2)
    )
    out = io.BytesIO()
    Image.fromarray(255 - ink).save(out, "PNG")
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pen", type=float, default=20.0, help="pen width, px")
    ap.add_argument("--n", type=int, default=1500, help="digits at most, per height")
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    digits = load_pen_digits(find_unipen(None), "train")
    rng = np.random.default_rng(args.seed)
    chosen = [i for i, w in enumerate(digits.writers) if held_out_writer(w)]
    chosen = rng.permutation(chosen)[: args.n]
    labels = digits.labels[chosen]
    predictor = load_predictor(args.model)
    print(f"{len(chosen)} digits of the held-out writers, a {args.pen:g} px pen")
    print("| path height | read right | misread | refused | likeliest digit right |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for share in HEIGHTS:
        pictures = [draw(digits.strokes[i], share * CANVAS, args.pen, rng) for i in chosen]
        read = predictor.predict_many(pictures)
        right = sum(not p.refused and p.digit == y for p, y in zip(read, labels, strict=True))
        refused = sum(p.refused for p in read)
        likeliest = sum(
            int(np.argmax(p.probabilities)) == y for p, y in zip(read, labels, strict=True)
        )
        n = len(chosen)
        print(
            f"| {share * CANVAS:.0f} px | {100 * right / n:.2f}% | {len(read) - right - refused}"
            f" | {refused} | {100 * likeliest / n:.2f}% |",
            flush=True,
        )


if __name__ == "__main__":
    main()
