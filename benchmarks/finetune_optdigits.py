"""Fine-tuning as a new person's handwriting: optdigits32 (43 writers, outside MNIST) split
into a stratified 500 to fine-tune on and the other 4,177 to measure on.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/finetune_optdigits.py
        [--model bundled] [--n 500] [--seed 0] [--json FILE]
        [--epochs E] [--lr LR] [--holdout H] [--mnist-per-batch M]   (default: FinetuneConfig's)

Runs what `digitrec finetune --from MODEL --data <the 500>` runs (the library call, so the
time of fine-tuning is measured apart from reading the pictures), then measures the new
model through its ONNX export, as it is served: accuracy on the 4,177 digits it never saw
(through `to_mnist`, as `digitrec evaluate --images` reads them) and on MNIST's test set,
each next to the parent's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from digitrec import load_predictor
from digitrec.data import list_folder_dataset
from digitrec.evaluate import evaluate_folder, evaluate_mnist
from digitrec.reading.predictor import Predictor, resolve_model_path
from digitrec.training.export import export_checkpoint
from digitrec.training.finetune import FinetuneConfig, finetune, folder_source

REPO = Path(__file__).resolve().parents[1]
OPTDIGITS = REPO.parent / "shared" / "data" / "realworld" / "optdigits32"


def split_folder(root: Path, n: int, seed: int, into: Path) -> tuple[Path, Path]:
    """Links to a stratified `n` of the pictures in into/learn, the rest in into/measure."""
    items = list_folder_dataset(root)
    labels = np.array([label for _, label in items])
    # exactly n, each digit in its share (largest remainders get the odd ones)
    counts = np.bincount(labels, minlength=10)
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota)[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = set()
    for digit in range(10):
        chosen |= set(rng.permutation(np.flatnonzero(labels == digit))[: take[digit]].tolist())
    for i, (path, label) in enumerate(items):
        folder = into / ("learn" if i in chosen else "measure") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).symlink_to(path.resolve())
    return into / "learn", into / "measure"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--data", type=Path, default=OPTDIGITS)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--mnist-per-batch", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    cfg = FinetuneConfig()
    cfg = replace(
        cfg,
        **{
            k: v
            for k, v in dict(
                holdout=args.holdout,
                epochs=args.epochs,
                lr=args.lr,
                mnist_per_batch=args.mnist_per_batch,
            ).items()
            if v is not None
        },
    )
    parent_path = resolve_model_path(args.model)
    parent = load_predictor(parent_path, pairs=False)
    with tempfile.TemporaryDirectory() as tmp:
        learn, measure = split_folder(args.data, args.n, args.seed, Path(tmp))
        n_learn = len(list_folder_dataset(learn))
        n_measure = len(list_folder_dataset(measure))
        before = evaluate_folder(parent, measure, progress=False).accuracy
        start = time.perf_counter()
        source = folder_source(learn)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        checkpoint, card = finetune(
            parent_path, [source], Path(tmp) / "ft.safetensors", cfg, progress=False
        )
        whole_s = time.perf_counter() - start
        onnx, _ = export_checkpoint(checkpoint, checkpoint.with_suffix(".onnx"))
        tuned = Predictor(onnx, pairs=False)
        after = evaluate_folder(tuned, measure, progress=False).accuracy
        mnist_before = evaluate_mnist(parent, progress=False).accuracy
        mnist_after = evaluate_mnist(tuned, progress=False).accuracy
    result = {
        "model": str(parent_path),
        "data": str(args.data),
        "learn": n_learn,
        "measure": n_measure,
        "finetune": {k: v for k, v in card["finetune"].items() if k != "augment"},
        "unseen_accuracy_before": before,
        "unseen_accuracy_after": after,
        "mnist_test_before": mnist_before,
        "mnist_test_after": mnist_after,
        "heldout_of_the_500_before": card["metrics"]["heldout_accuracy_before"],
        "heldout_of_the_500_after": card["metrics"]["heldout_accuracy"],
        "reading_the_500_s": round(read_s, 1),
        "training_s": card["training_seconds"],
        "finetune_call_s": round(whole_s, 1),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
