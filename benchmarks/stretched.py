"""Digits as form readers keep them: the held-out UNIPEN train writers' digits (never dev,
never learned from; drawn as the dev pictures are) cut out, stretched to fill a 16x16 or
32x32 box whatever their shape, and made black and white, half of them black ink on white.
Each is read through `to_mnist` and the model (with its second look), as `predict` reads it.
Prints, per box, how many the model's likeliest digit gets right, how many are read right
and refused by its rule, and the 1s' likeliest right (a stretched 1 is as wide as a 0).

The strokes are real writers'; the stretching is our code's, so this measures how the
pipeline copes with such boxes, not how well it reads people.

    DIGITREC_UNIPEN=../shared/data/realworld/unipen python benchmarks/stretched.py [--model PATH]
"""

from __future__ import annotations

import argparse

import numpy as np
from number_lines import held_out_digits
from PIL import Image

from digitrec import load_predictor
from digitrec.reading.preprocess import to_mnist

INK = 60  # grey levels above the paper counted as ink when cutting a digit out


def stretched(grey: np.ndarray, side: int, dark_ink: bool) -> Image.Image:
    """A digit's picture (dark ink on light) cut out, stretched to side x side, binarised."""
    ink = 255 - grey.astype(np.float32)
    rows, cols = np.flatnonzero((ink > INK).any(1)), np.flatnonzero((ink > INK).any(0))
    cut = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    box = np.asarray(Image.fromarray(cut).resize((side, side), Image.Resampling.BILINEAR))
    bits = np.where(box > 127, 255, 0).astype(np.uint8)
    return Image.fromarray(255 - bits if dark_ink else bits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    digits = [d for writer in held_out_digits().values() for d in writer]
    labels = np.array([label for label, _ in digits])
    print(f"{len(digits)} digits of the held-out writers")
    print("| box | likeliest right | read right | refused | 1s, likeliest right |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for side in (16, 32):
        x = np.stack([to_mnist(stretched(g, side, k % 2 == 1)) for k, (_, g) in enumerate(digits)])
        probs = predictor.probabilities(x)
        read = predictor.judge(probs, x)
        likeliest = probs.argmax(1) == labels
        refused = np.array([p.refused for p in read])
        right = likeliest & ~refused
        ones = labels == 1
        print(
            f"| {side}x{side} | {100 * likeliest.mean():.2f}% | {100 * right.mean():.2f}%"
            f" | {100 * refused.mean():.2f}% | {100 * likeliest[ones].mean():.1f}% |"
        )


if __name__ == "__main__":
    main()
