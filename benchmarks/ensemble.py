"""How an ensemble's accuracy grows with its members: the validation and MNIST test accuracy
of each model alone, and of the first k together, k = 1..N.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/ensemble.py MODEL_OR_RUN...
        [--json FILE]

Each argument is a `digitrec train --ensemble N` run folder (its members, in the order they
were trained) or a model's .safetensors file. Models are averaged as the ensemble model does
(the mean of their probabilities; a model that is itself an ensemble counts as one). Nothing
is chosen on the test set: models are taken in the order given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from digitrec.data import load_mnist
from digitrec.training.checkpoint import WEIGHTS_NAME, load_checkpoint
from digitrec.training.config import TrainConfig
from digitrec.training.ensemble import MEMBER_DIR
from digitrec.training.fit import predict_logits, split_indices


def model_files(given: list[Path]) -> list[Path]:
    files = []
    for path in given:
        if path.is_dir():
            members = path.glob(MEMBER_DIR.format("*"))
            files += [m / WEIGHTS_NAME for m in sorted(members, key=lambda p: int(p.name[7:]))]
        else:
            files.append(path)
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="run folders or .safetensors files")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    train, test = (load_mnist(s, args.data_dir, progress=False) for s in ("train", "test"))
    _, val_idx = split_indices(len(train.labels), TrainConfig().val_size)
    sets = {
        "val": (train.images[val_idx], train.labels[val_idx]),
        "test": (test.images, test.labels),
    }
    x = {k: torch.from_numpy(v[0].astype(np.float32) / 255.0).unsqueeze(1) for k, v in sets.items()}
    probs: dict[str, list] = {"val": [], "test": []}
    rows = []
    for path in model_files(args.models):
        model, card = load_checkpoint(path)
        if "calibration" not in card:  # still training, or stopped: not a finished model
            print(f"{path}: not finished, left out")
            continue
        row = {"model": str(path), "arch": card["model"]["arch"], "seed": card.get("seed")}
        for k, (_, labels) in sets.items():
            p = predict_logits(model, x[k]).float().softmax(-1).numpy()
            probs[k].append(p)
            row[f"{k}_alone"] = float((p.argmax(1) == labels).mean())
            row[f"{k}_first_k"] = float((np.mean(probs[k], axis=0).argmax(1) == labels).mean())
        rows.append(row)
    print("| k | model | arch | seed | alone (val / test) | first k together (val / test) |")
    print("| ---: | --- | --- | ---: | ---: | ---: |")
    for k, r in enumerate(rows, 1):
        print(
            f"| {k} | {r['model']} | {r['arch']} | {r['seed']} | {100 * r['val_alone']:.2f}% / "
            f"{100 * r['test_alone']:.2f}% | {100 * r['val_first_k']:.2f}% / "
            f"{100 * r['test_first_k']:.2f}% |"
        )
    alone = [r["test_alone"] for r in rows]
    print(f"alone on test: mean {100 * np.mean(alone):.3f}%, min {100 * min(alone):.2f}%")
    if args.json:
        result = {
            "models": [str(m) for m in args.models],
            "rows": rows,
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
