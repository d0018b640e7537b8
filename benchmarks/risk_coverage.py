"""Risk and coverage of a model's refusals on real handwriting: how many digits it refuses,
and how many of those it answers are right, at its own threshold and at fixed shares refused.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/risk_coverage.py [--model PATH]
        [--realworld ../shared/data/realworld] [--non-digits 2000] [--json FILE]

Sets: UNIPEN dev (writers no model here learned from, 280x280 canvas drawings), usps,
optdigits32 (development sets), MNIST test, and generated non-digits (benchmarks/realworld.py's,
which must be refused). Each picture goes through `to_mnist` and the model once; the rows
"refuse k%" refuse the k% least confident digits of that set, whatever the threshold; the
other columns use the model's own refusal rule (Predictor.judge: its threshold and tie margin).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from realworld import non_digit_picture  # benchmarks/realworld.py, beside this script

from digitrec import load_predictor
from digitrec.data import list_folder_dataset, load_mnist
from digitrec.reading.preprocess import to_mnist_many

REPO = Path(__file__).resolve().parents[1]
SHARES = (0.005, 0.01, 0.02, 0.05)
FOLDERS = {"UNIPEN dev": "unipen/dev", "usps": "usps", "optdigits32": "optdigits32"}


def folder_set(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    items = list_folder_dataset(root)
    files, labels = [f for f, _ in items], [label for _, label in items]
    read = to_mnist_many(files)
    if read.left_out:
        print(f"{root}: {len(read.left_out)} pictures left out (count as refused)", file=sys.stderr)
    return read.inputs, np.asarray(labels)[read.kept], [str(files[i]) for i in read.kept]


def rows_for(name: str, probs: np.ndarray, labels: np.ndarray, predictor) -> dict:
    conf, guess = probs.max(1), probs.argmax(1)
    right = guess == labels
    order = np.argsort(conf, kind="stable")
    reasons = [p.reason for p in predictor.judge(probs, np.zeros(len(probs)))]
    refused = np.array([r is not None for r in reasons])
    row = {
        "set": name,
        "n": len(labels),
        "accuracy": float(right.mean()),
        "refused": float(refused.mean()),
        "answered_right": float(right[~refused].mean()) if (~refused).any() else None,
        "errors_refused": float(refused[~right].mean()) if (~right).any() else None,
        "unsure": reasons.count("unsure"),
        "not_a_digit": reasons.count("not_a_digit"),
    }
    for share in SHARES:
        k = int(round(share * len(labels)))
        kept = np.ones(len(labels), bool)
        kept[order[:k]] = False
        row[f"refuse {share:.1%}"] = float(right[kept].mean())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model path or name (default: the bundled one)")
    ap.add_argument("--realworld", default=str(REPO.parent / "shared/data/realworld"))
    ap.add_argument("--non-digits", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--json", help="also write every figure here")
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    threshold = predictor.threshold
    rows, per_writer = [], {}
    for name, sub in FOLDERS.items():
        x, y, names = folder_set(Path(args.realworld) / sub)
        probs = predictor.probabilities(x)
        rows.append(rows_for(name, probs, y, predictor))
        if name == "UNIPEN dev":
            per_writer = unipen_writers(Path(args.realworld) / "unipen", names, probs, y)
    test = load_mnist("test", progress=False)
    probs = predictor.probabilities(test.images.astype(np.float32) / 255.0)
    rows.append(rows_for("MNIST test", probs, test.labels, predictor))
    rng = np.random.default_rng([args.seed, 4])
    pictures = [non_digit_picture(rng)[0] for _ in range(args.non_digits)]
    read = to_mnist_many(pictures)
    probs = predictor.probabilities(read.inputs)
    answered = sum(p.reason is None for p in predictor.judge(probs, read.inputs))
    blank = len(read.left_out)
    non_digits = {
        "n": args.non_digits,
        "refused": float((len(probs) - answered + blank) / args.non_digits),
    }
    print(
        f"model {predictor.name}, threshold {threshold:.4f}, tie margin "
        f"{predictor.tie_margin:.3f}, unsure at top two >= {predictor.unsure_top_two:.3f}; {platform.node()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n"
    )
    cols = ["n", "accuracy", "refused", "answered_right", "errors_refused"] + [
        f"refuse {s:.1%}" for s in SHARES
    ]
    print("| set | " + " | ".join(cols) + " | unsure | not a digit |")
    print("| --- |" + " ---: |" * (len(cols) + 2))
    for r in rows:
        cells = [f"{r['n']:,}"] + ["-" if r[c] is None else f"{100 * r[c]:.2f}%" for c in cols[1:]]
        print(f"| {r['set']} | " + " | ".join(cells) + f" | {r['unsure']} | {r['not_a_digit']} |")
    print(f"\nnon-digits refused: {100 * non_digits['refused']:.2f}% of {args.non_digits:,}")
    worst = sorted(per_writer.items(), key=lambda kv: kv[1]["accuracy"])[:8]
    print(
        "\nUNIPEN dev, worst writers: "
        + ", ".join(f"{w} {100 * v['accuracy']:.1f}% of {v['n']}" for w, v in worst)
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "threshold": threshold,
                    "rows": rows,
                    "non_digits": non_digits,
                    "per_writer": per_writer,
                },
                indent=1,
            )
        )


def unipen_writers(root: Path, names: list[str], probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy per writer of UNIPEN dev (the file names are the sample ids)."""
    import gzip

    writer_of = {}
    with gzip.open(root / "unipen_digits.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["split"] == "dev":
                writer_of[r["id"]] = r["writer"]
    right = probs.argmax(1) == labels
    n, ok = Counter(), Counter()
    for name, r in zip(names, right, strict=True):
        w = writer_of.get(int(Path(name).stem), "?")
        n[w] += 1
        ok[w] += int(r)
    return {w: {"n": n[w], "accuracy": ok[w] / n[w]} for w in n}


if __name__ == "__main__":
    main()
