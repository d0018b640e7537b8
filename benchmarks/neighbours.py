"""A digit cut from a line of writing, with part of its neighbour: the held-out UNIPEN train
writers' digits (never dev, never learned from; drawn as the dev pictures are) cut out and
set on paper 40 px from the left edge, with the right 10-30% of another of their digits
along that edge (as a crop from a record, a form or a cheque takes in), read with
`predict_many`. Also the same on grey, noisy paper, the digits alone, and two whole digits
side by side, cut close all round or on the left only (a picture of a number given as one
digit, which should be refused, not read as one of them). Prints how many are read right,
the model's likeliest digit right and refused, and how many of the pairs are answered.

The strokes are real writers'; the crops are our code's.

    DIGITREC_UNIPEN=../shared/data/realworld/unipen python benchmarks/neighbours.py [--model PATH]
"""

from __future__ import annotations

import argparse

import numpy as np
from number_lines import held_out_digits
from PIL import Image

from digitrec import load_predictor

MARGIN = 40  # px of paper left of the digit, where the neighbour's part lies


def cut_out(grey: np.ndarray) -> np.ndarray:
    ink = 255 - grey
    rows, cols = np.flatnonzero((ink > 60).any(1)), np.flatnonzero((ink > 60).any(0))
    return grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def crop(digit: np.ndarray, neighbour: np.ndarray | None, rng, paper: bool) -> Image.Image:
    h, w = digit.shape
    page = np.full((h + MARGIN, w + 2 * MARGIN), 255, np.uint8)
    page[MARGIN // 2 : MARGIN // 2 + h, MARGIN : MARGIN + w] = digit
    if neighbour is not None:
        nh, nw = neighbour.shape
        part = neighbour[: h + MARGIN, nw - int(nw * rng.uniform(0.1, 0.3)) :]
        ph, pw = part.shape
        y = int(rng.integers(0, max(1, h + MARGIN - ph)))
        page[y : y + ph, :pw] = np.minimum(page[y : y + ph, :pw], part)
    if paper:
        grain = rng.normal(215, 8, page.shape)
        page = np.clip(np.minimum(grain, page * 0.9 + 30), 0, 255).astype(np.uint8)
    return Image.fromarray(page)


def side_by_side(a: np.ndarray, b: np.ndarray, room: int = 0) -> Image.Image:
    """Two whole digits 20 px apart, cut close on the left, with `room` px of paper round
    the rest (none: cut close all round)."""
    h = max(a.shape[0], b.shape[0]) + 2 * room
    page = np.full((h, a.shape[1] + b.shape[1] + 20 + room), 255, np.uint8)
    page[room : room + a.shape[0], : a.shape[1]] = a
    page[room : room + b.shape[0], a.shape[1] + 20 : a.shape[1] + 20 + b.shape[1]] = b
    return Image.fromarray(page)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    digits = [(d, cut_out(g)) for writer in held_out_digits().values() for d, g in writer]
    labels = np.array([d for d, _ in digits])
    rng = np.random.default_rng(args.seed)
    other = [digits[int(rng.integers(len(digits)))][1] for _ in digits]
    sets = {
        "alone": [crop(g, None, rng, False) for _, g in digits],
        "a neighbour's part": [
            crop(g, o, rng, False) for (_, g), o in zip(digits, other, strict=True)
        ],
        "a neighbour's part, grey paper": [
            crop(g, o, rng, True) for (_, g), o in zip(digits, other, strict=True)
        ],
    }
    print(f"{len(digits)} digits of the held-out writers")
    print("| picture | read right | likeliest right | refused |")
    print("| --- | ---: | ---: | ---: |")
    for name, pictures in sets.items():
        read = predictor.predict_many(pictures)
        refused = np.array([p.refused for p in read])
        likeliest = np.array([int(np.argmax(p.probabilities)) for p in read]) == labels
        print(
            f"| {name} | {100 * (likeliest & ~refused).mean():.2f}% |"
            f" {100 * likeliest.mean():.2f}% | {100 * refused.mean():.2f}% |"
        )
    for room, how in ((0, "cut close all round"), (40, "cut close on the left only")):
        pairs = [side_by_side(g, o, room) for (_, g), o in zip(digits, other, strict=True)]
        answered = sum(not p.refused for p in predictor.predict_many(pairs))
        print(f"\ntwo whole digits given as one, {how}: {answered} of {len(pairs)} answered")


if __name__ == "__main__":
    main()
