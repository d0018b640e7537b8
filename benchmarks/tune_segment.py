"""Tune segmentation's costs on numbers of the held-out UNIPEN train writers (never on dev):
each setting of the constants named is tried on the same numbers, and the exact-match rate
per kind printed.

    python benchmarks/tune_segment.py --n 80 --try CROSSING=0.4,0.6,0.8 --try EXTRA_DIGIT=0.3,0.6

Every combination of the values is tried (the first value of each is the baseline to beat:
give segment.py's own first). Prints a Markdown table, best mean first.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from number_lines import KINDS, digits_of, held_out_digits, numbers

from digitrec import load_predictor
from digitrec.reading import segment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=80, help="numbers per kind")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--guide", action="store_true", help="a guide line under every number")
    ap.add_argument("--frame", choices=("box", "comb"), default=None, help="a frame round each")
    ap.add_argument(
        "--sign",
        choices=("dash", "equals", "slash", "dollar", "rupee", "euro"),
        default=None,
        help="a sign by each",
    )
    ap.add_argument("--separators", action="store_true", help="thousands separators in each")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME=V1,V2")
    args = ap.parse_args()
    grid = {}
    for t in args.tries:
        name, values = t.split("=")
        if not hasattr(segment, name):
            raise SystemExit(f"segment.py has no {name}")
        grid[name] = [float(v) for v in values.split(",")]
    predictor = load_predictor()
    writers = held_out_digits()
    kinds = args.kinds.split(",")
    cases = {
        k: numbers(
            k, args.n, args.seed, writers, args.guide, args.frame, args.sign, args.separators
        )
        for k in kinds
    }
    rows = []
    for values in itertools.product(*grid.values()):
        for name, v in zip(grid, values, strict=True):
            setattr(segment, name, type(getattr(segment, name))(v))
        exact = {}
        for k in kinds:
            texts = [predictor.read_number(d).text.replace("\n", "") for d, _ in cases[k]]
            exact[k] = np.mean(
                [t == digits_of(truth) for t, (_, truth) in zip(texts, cases[k], strict=True)]
            )
        rows.append(
            (float(np.mean(list(exact.values()))), dict(zip(grid, values, strict=True)), exact)
        )
        print(rows[-1], flush=True)
    print("\n| setting | " + " | ".join(kinds) + " | mean |")
    print("| --- |" + " ---: |" * (len(kinds) + 1))
    for mean, setting, exact in sorted(rows, key=lambda r: -r[0]):
        cells = " | ".join(f"{100 * exact[k]:.1f}%" for k in kinds)
        print(f"| {setting} | {cells} | {100 * mean:.1f}% |")


if __name__ == "__main__":
    main()
