"""Whether a digit reads as well in a number as alone: six-digit numbers with wide gaps
(20-50 px, where cutting is not in question) of the held-out UNIPEN train writers' digits
(never dev), read with `Predictor.read_number`, and each of their digits read alone with
`predict_many`. Prints, over the digits of the numbers whose digit count came out right,
how many are misread and refused each way, and the share read less than 90% sure.

    DIGITREC_UNIPEN=../shared/data/realworld/unipen python benchmarks/digits_in_numbers.py [--n 200]
"""

from __future__ import annotations

import argparse

import numpy as np
from number_lines import held_out_digits, one_number, png

from digitrec import load_predictor

LENGTH = 6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="numbers")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    predictor = load_predictor()
    writers = held_out_digits()
    names = [w for w, v in writers.items() if len(v) >= LENGTH]
    rng = np.random.default_rng(args.seed)
    counts = {"in numbers": [0, 0], "alone": [0, 0]}  # misread, refused
    confidence = {"in numbers": [], "alone": []}
    digits = miscounted = 0
    for i in range(args.n):
        samples = writers[names[int(rng.integers(len(names)))]]
        chosen, ink, _ = one_number(samples, LENGTH, "wide", rng)
        read = predictor.read_number(png(ink, dark_on_light=i % 2 == 0)).digits
        if len(read) != LENGTH:
            miscounted += 1
            continue
        alone = predictor.predict_many([p for _, p in chosen])
        for (label, _), ways in zip(chosen, zip(read, alone, strict=True), strict=True):
            digits += 1
            for name, p in zip(counts, ways, strict=True):
                counts[name][0] += (not p.refused) and p.digit != label
                counts[name][1] += p.refused
                confidence[name].append(p.confidence)
    print(f"{args.n} numbers of {LENGTH} digits, {miscounted} with another count; {digits} digits")
    print("| read | misread | refused | under 90% sure |")
    print("| --- | ---: | ---: | ---: |")
    for name, (wrong, refused) in counts.items():
        under = 100 * float(np.mean(np.asarray(confidence[name]) < 0.9))
        print(f"| {name} | {wrong} | {refused} | {under:.1f}% |")


if __name__ == "__main__":
    main()
