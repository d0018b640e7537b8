"""Time one epoch of a preset on this machine (the first epoch of a real run, full data).

    python benchmarks/train_epoch.py [--preset seed] [--epochs 1]

Prints the wall time of each epoch, images/s and the validation accuracy, from the run's log.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from digitrec.training.config import preset
from digitrec.training.fit import fit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        _, card = fit(preset(args.preset, epochs=args.epochs), tmp, progress=False, device="cpu")
        wall = time.perf_counter() - start
        rows = list(csv.DictReader((Path(tmp) / "log.csv").read_text().splitlines()))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    for r in rows:
        print(
            f"preset {args.preset} epoch {r['epoch']}: {float(r['seconds']):.1f} s, "
            f"{float(r['images_per_s']):.0f} images/s, "
            f"validation {100 * float(r['val_accuracy']):.2f}%"
        )
    print(
        f"whole command {wall:.1f} s (data loading and test evaluation included); "
        f"MNIST test {100 * card['metrics']['test_accuracy']:.2f}%"
    )


if __name__ == "__main__":
    main()
