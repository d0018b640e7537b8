"""Single digits of real writers written in a form's cell: a box round each digit, apart
from it, touching it or crossed by it, cropped at its lines or with paper round it, dark on
light and light on dark; read through `Predictor.predict` and `Predictor.read_number`.

    python benchmarks/boxed_digits.py [--writers dev|held-out] [--n 300] [--seed 0] [--tilt 5]

The digits are UNIPEN's (dev: what is reported; held-out: the train writers that training
holds out, what choices are made on); the boxes are drawn by this script, level, 1-4 px
thick, as a form prints its cells: they are ours, not printed forms."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import number_lines as nl  # noqa: E402

# how far the box's top and bottom lie from the digit's ink (negative: the digit crosses them)
KINDS = {"none": None, "apart": (6, 16), "touching": (-1, 1), "crossing": (-10, -3)}
CELL = 0.75  # a cell is at least this times as wide as it is high


def cell(ink: np.ndarray, inset: int, line: int, paper: int, rng: np.random.Generator):
    """A box round the digit's ink (`inset` from it above and below, a cell at least CELL as
    wide as high, the digit anywhere across it but its sides' `inset`), lines `line` thick,
    cropped `paper` pixels outside them."""
    rows = np.flatnonzero((ink > 0.5).any(axis=1))
    cols = np.flatnonzero((ink > 0.5).any(axis=0))
    top, bottom = rows[0] - inset, rows[-1] + 1 + inset
    width = max(cols[-1] + 1 - cols[0] + 2 * max(inset, 2), int(CELL * (bottom - top)))
    spare = width - (cols[-1] + 1 - cols[0])
    left = cols[0] - int(rng.integers(min(inset, spare // 2), spare - min(inset, spare // 2) + 1))
    right = left + width
    room = width + 40  # paper enough round the box, wherever the digit sits in it
    out, (top, left, bottom, right) = nl.boxed(ink, (top, left, bottom, right), line, room)
    return out[
        top - line - paper : bottom + line + paper, left - line - paper : right + line + paper
    ]


def turned(ink: np.ndarray, degrees: float) -> np.ndarray:
    """The picture turned by `degrees` (a photo taken askew), grown to hold it all."""
    picture = Image.fromarray(ink.astype(np.float32), mode="F")
    return np.asarray(picture.rotate(degrees, resample=Image.BILINEAR, expand=True))


def cases(
    kind: str, n: int, seed: int, writers: dict, tilt: float = 0.0
) -> list[tuple[bytes, int, str]]:
    """n pictures of a kind: (PNG bytes, the digit, how it was boxed), each turned by up to
    `tilt` degrees either way."""
    rng = np.random.default_rng([seed, list(KINDS).index(kind)])
    turns = np.random.default_rng([seed, list(KINDS).index(kind), 1])
    names = list(writers)
    out = []
    for i in range(n):
        samples = writers[names[int(rng.integers(len(names)))]]
        digit, picture = samples[int(rng.integers(len(samples)))]
        ink = np.pad(nl._ink_crop(picture), nl.MARGIN)
        cropped = i % 4 < 2  # half cropped at the box's lines
        if KINDS[kind] is not None:
            inset = int(rng.integers(KINDS[kind][0], KINDS[kind][1] + 1))
            paper = 0 if cropped else int(rng.integers(10, 31))
            ink = cell(ink, inset, int(rng.integers(1, 5)), paper, rng)
        if tilt:
            ink = turned(ink, float(turns.uniform(-tilt, tilt)))
        out.append(
            (nl.png(ink, dark_on_light=i % 2 == 0), int(digit), "cropped" if cropped else "paper")
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", choices=("dev", "held-out"), default="dev")
    parser.add_argument("--n", type=int, default=300, help="pictures per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--tilt", type=float, default=0.0, help="turn each by up to this (degrees)")
    args = parser.parse_args(argv)
    from digitrec.reading.predictor import Predictor

    predictor = Predictor()
    if args.writers == "dev":
        writers = {w: v for w, v in nl.unipen_digits().items() if v}
    else:
        writers = nl.held_out_digits()
    print(
        "| kind | pictures | predict: right | refused | wrong | read_number: right | refused | wrong |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in args.kinds.split(","):
        tally = Counter()
        for data, digit, _ in cases(kind, args.n, args.seed, writers, args.tilt):
            one = predictor.predict(data)
            tally[
                "p", "refused" if one.refused else ("right" if one.digit == digit else "wrong")
            ] += 1
            text = predictor.read_number(data).text
            read = "right" if text == str(digit) else ("refused" if text in ("", "?") else "wrong")
            tally["n", read] += 1
        row = [
            f"{100 * tally[w, r] / args.n:.1f}%"
            for w in "pn"
            for r in ("right", "refused", "wrong")
        ]
        print(f"| {kind} | {args.n} | " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
