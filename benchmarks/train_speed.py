"""Time to an MNIST test accuracy on this machine: digitrec's presets next to the classic
PyTorch-example recipe, measured in one run.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/train_speed.py
        [--runs fast,classic] [--preset best --epochs 10] [--target 0.99] [--json FILE]

Runs (comma-separated in --runs):
- `fast`: the command a user types, `digitrec train --preset fast`, as a subprocess: its
  whole wall time (Python and torch start-up, reading and checking MNIST, training, the
  final test evaluation, calibration, writing the files) and the test accuracy it prints.
- `preset`: `fit()` of `--preset` for `--epochs`, with the MNIST test accuracy measured
  after every epoch (the evaluation's time is left out of the clock; the recipe never sees
  the test set): the time at which it first reaches each target.
- `classic`: the pytorch/examples mnist recipe, re-implemented here: conv32-conv64-maxpool-
  dropout-fc128-dropout-fc10, Adadelta lr 1.0, StepLR gamma 0.7 each epoch, batch 64, its
  per-picture data pipeline (PIL picture -> tensor -> normalise, a DataLoader reshuffling
  every epoch), evaluated on the test set after each epoch until it reaches --target.
- `classic-tensors`: the same recipe with the whole dataset as one tensor in memory (what
  digitrec does), to tell the pipeline's cost from the recipe's.
The ratio is the classic recipe's time to --target over the fast preset's whole command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitrec.data import load_mnist
from digitrec.training import fit as train_module
from digitrec.training.config import MNIST_MEAN, MNIST_STD, preset
from digitrec.training.measure import loss_and_accuracy_of
from digitrec.training.nets import build_model


def _machine() -> str:
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def run_fast_command(data_dir: str | None, repeat: int) -> dict:
    """`digitrec train --preset fast` as a user runs it, timed from outside, `repeat` times
    (the same seed: the same model each time; the median wall time is the figure)."""
    exe = Path(sys.executable).parent / "digitrec"
    walls, cards = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            command = [str(exe), "train", "--preset", "fast", "--out", tmp, "--force", "--quiet"]
            if data_dir:
                command += ["--data-dir", data_dir]
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - start)
            cards.append(json.loads((Path(tmp) / "model.json").read_text()))
    return {
        "command": "digitrec train --preset fast",
        "wall_s": round(float(np.median(walls)), 2),
        "wall_s_each": [round(w, 2) for w in walls],
        "training_s_each": [c["training_seconds"] for c in cards],
        "test_accuracy": cards[0]["metrics"]["test_accuracy"],
        "test_accuracy_each": [c["metrics"]["test_accuracy"] for c in cards],
    }


def run_preset(name: str, epochs: int | None, data_dir, targets: list[float]) -> dict:
    """fit() with the test accuracy measured after every epoch, off the clock."""
    cfg = preset(name, epochs=epochs)
    test = load_mnist("test", data_dir, progress=False)
    x_test = torch.from_numpy(test.images.astype(np.float32) / 255.0).unsqueeze(1)
    y_test = torch.from_numpy(test.labels)
    curve: list[dict] = []
    original = train_module._train_epoch
    clock = {"start": time.perf_counter(), "paused": 0.0}

    def epoch_then_test(model, *args, **kwargs):
        row = original(model, *args, **kwargs)
        paused = time.perf_counter()
        _, acc = loss_and_accuracy_of(model, x_test.to(next(model.parameters()).device), y_test)
        elapsed = paused - clock["start"] - clock["paused"]
        curve.append({"epoch": row["epoch"], "seconds": round(elapsed, 1), "test_accuracy": acc})
        clock["paused"] += time.perf_counter() - paused
        return row

    train_module._train_epoch = epoch_then_test
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clock["start"] = time.perf_counter()
            _, card = train_module.fit(cfg, tmp, data_dir=data_dir, progress=False, device="cpu")
    finally:
        train_module._train_epoch = original
    reached = {
        f"{t:.4f}": next((c["seconds"] for c in curve if c["test_accuracy"] >= t), None)
        for t in targets
    }
    return {
        "preset": name,
        "epochs": cfg.epochs,
        "curve": curve,
        "time_to": reached,
        "final_test_accuracy": card["metrics"]["test_accuracy"],
        "training_s": card["training_seconds"],
    }


class _PictureDataset(torch.utils.data.Dataset):
    """The example's torchvision pipeline, without torchvision: PIL picture -> [0, 1] tensor
    -> normalised, one picture at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from PIL import Image

        self.pictures = [Image.fromarray(a) for a in images]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(np.asarray(self.pictures[i], dtype=np.float32) / 255.0)
        return (x.unsqueeze(0) - MNIST_MEAN) / MNIST_STD, int(self.labels[i])


def run_classic(data_dir, target: float, max_epochs: int, tensors: bool) -> dict:
    """The pytorch/examples recipe until the test accuracy reaches `target`."""
    torch.manual_seed(1)
    start = time.perf_counter()
    train, test = (
        load_mnist("train", data_dir, progress=False),
        load_mnist("test", data_dir, progress=False),
    )
    # SeedNet is that network; the example normalises in its data pipeline, not in the net
    model = build_model(preset("seed").model)
    model[0] = torch.nn.Identity()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def normalised(images: np.ndarray) -> torch.Tensor:  # the example's transform, at once
        return (torch.from_numpy(images / np.float32(255.0)).unsqueeze(1) - MNIST_MEAN) / MNIST_STD

    x_test = normalised(test.images)
    y_test = torch.from_numpy(test.labels)
    if tensors:
        x = normalised(train.images)
        y = torch.from_numpy(train.labels)

        def batches():
            order = torch.randperm(len(y))
            for i in range(0, len(y), 64):
                idx = order[i : i + 64]
                yield x[idx], y[idx]
    else:
        loader = torch.utils.data.DataLoader(
            _PictureDataset(train.images, train.labels), batch_size=64, shuffle=True
        )

        def batches():
            yield from loader

    curve = []
    for epoch in range(1, max_epochs + 1):
        model.train()
        for xb, yb in batches():
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        scheduler.step()
        _, acc = loss_and_accuracy_of(model, x_test, y_test)
        curve.append(
            {"epoch": epoch, "seconds": round(time.perf_counter() - start, 1), "test_accuracy": acc}
        )
        print(f"  classic{' (tensors)' if tensors else ''} epoch {epoch}: {curve[-1]}", flush=True)
        if acc >= target:
            break
    reached = next((c["seconds"] for c in curve if c["test_accuracy"] >= target), None)
    return {"curve": curve, "time_to_target_s": reached}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", default="fast,classic", help="fast, preset, classic, classic-tensors"
    )
    parser.add_argument("--preset", default="best", help="the preset of the `preset` run")
    parser.add_argument(
        "--epochs", type=int, default=None, help="its epochs (default: the preset's)"
    )
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--targets", default="0.99,0.995,0.997", help="targets of the `preset` run")
    parser.add_argument("--max-classic-epochs", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the fast command")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    results: dict = {
        "machine": _machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if "fast" in runs:
        results["fast"] = run_fast_command(args.data_dir, args.repeat)
        print(f"fast: {results['fast']}", flush=True)
    if "preset" in runs:
        targets = [float(t) for t in args.targets.split(",")]
        results["preset"] = run_preset(args.preset, args.epochs, args.data_dir, targets)
        print(f"preset: {results['preset']}", flush=True)
    for kind in ("classic", "classic-tensors"):
        if kind in runs:
            results[kind] = run_classic(
                args.data_dir, args.target, args.max_classic_epochs, kind == "classic-tensors"
            )
            print(f"{kind}: {results[kind]}", flush=True)
    fast = results.get("fast")
    if fast and results.get("classic", {}).get("time_to_target_s"):
        results["ratio_classic_over_fast"] = round(
            results["classic"]["time_to_target_s"] / fast["wall_s"], 1
        )
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
