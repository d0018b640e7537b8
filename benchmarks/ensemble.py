"""How an ensemble's accuracy grows with its members: the MNIST test accuracy of each member
of a `digitrec train --ensemble N` run alone, and of its first k members together, k = 1..N.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/ensemble.py runs/best-ensemble5
        [--json FILE]

Members are averaged as the ensemble model does (the mean of their probabilities). Nothing
is chosen on the test set: members are taken in the order they were trained.
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

from digitrec.checkpoint import WEIGHTS_NAME, load_checkpoint
from digitrec.data import load_mnist
from digitrec.ensemble import MEMBER_DIR
from digitrec.train import predict_logits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the ensemble's run folder")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    test = load_mnist("test", args.data_dir, progress=False)
    x = torch.from_numpy(test.images.astype(np.float32) / 255.0).unsqueeze(1)
    members = sorted(
        args.run.glob(MEMBER_DIR.format("*")), key=lambda p: int(p.name.rsplit("-", 1)[1])
    )
    probs, rows = [], []
    for folder in members:
        model, card = load_checkpoint(folder / WEIGHTS_NAME)
        if "calibration" not in card:  # still training, or stopped: not a finished member
            print(f"{folder.name}: not finished, left out")
            continue
        p = predict_logits(model, x).float().softmax(-1).numpy()
        probs.append(p)
        alone = float((p.argmax(1) == test.labels).mean())
        together = float((np.mean(probs, axis=0).argmax(1) == test.labels).mean())
        rows.append(
            {
                "member": folder.name,
                "seed": card["seed"],
                "alone": alone,
                "first_k_together": together,
                "epochs": card["metrics"]["epochs"],
            }
        )
    print("| k | member | seed | alone | first k together |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for k, r in enumerate(rows, 1):
        print(
            f"| {k} | {r['member']} | {r['seed']} | {100 * r['alone']:.2f}% | "
            f"{100 * r['first_k_together']:.2f}% |"
        )
    alone = [r["alone"] for r in rows]
    print(f"members alone: mean {100 * np.mean(alone):.3f}%, min {100 * min(alone):.2f}%")
    if args.json:
        result = {
            "run": str(args.run),
            "rows": rows,
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
