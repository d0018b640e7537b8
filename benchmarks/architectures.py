"""The accuracy / speed trade-off of the networks digitrec can build, to choose the bundled one.

    python benchmarks/architectures.py [--only NAME [--only NAME ...]] [--json FILE]
    DIGITREC_DATA=../shared/data/mnist python benchmarks/architectures.py --train NAME
        [--epochs 30] [--seed 0] [--preset best] [--out DIR]

Speed (always): each network is exported to ONNX untrained (speed does not depend on the
weights) and served by the Predictor's ONNX Runtime backend on this machine: parameters,
multiply-adds per picture, batch-1 latency with one thread (median of single calls) and
throughput with every core (images/s, batches of 256), medians of --rounds interleaved
rounds. Accuracy (--train): the `best` recipe (augmentation, outlier exposure, one-cycle,
--epochs), or --preset's, with that network in place of the preset's; MNIST test accuracy of
the final epoch. --out keeps the trained run there (its model.safetensors, for `digitrec
export` and the real-data benchmarks); without it the run is thrown away.
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
import torch
from torch import nn

from digitrec import load_predictor
from digitrec.training.config import PRESETS, ModelConfig, preset
from digitrec.training.export import export_model
from digitrec.training.nets import build_model, count_parameters

NETWORKS = {
    "seed (original design)": ModelConfig("seed", 32, 128, 0.5),
    "quick w16, dense 64 (preset fast)": ModelConfig("quick", 16, 64, 0.0),
    "compact w16": ModelConfig("compact", 16, 0, 0.1),
    "compact w16, dense 128": ModelConfig("compact", 16, 128, 0.3),
    "compact w16, dense 256 (bundled)": ModelConfig("compact", 16, 256, 0.3),
    "compact w32, dense 256": ModelConfig("compact", 32, 256, 0.3),
    "bncnn w32, dense 256 (bundled until 2026-12)": ModelConfig("bncnn", 32, 256, 0.3),
    "deep w16 (7 conv)": ModelConfig("deep", 16, 0, 0.3),
    "deep w32 (7 conv)": ModelConfig("deep", 32, 0, 0.3),
}


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one 28x28 picture through the convolutions and dense layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * np.prod(module.kernel_size)
            total += int(output[0].numel() * per_output)
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return total


def _median_call(run, x: np.ndarray, seconds: float) -> float:
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def speed(configs: dict[str, ModelConfig], rounds: int, seconds: float) -> dict[str, dict]:
    one = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    batch = np.random.default_rng(1).random((256, 28, 28), dtype=np.float32)
    readers, out = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in configs.items():
            torch.manual_seed(0)
            model = build_model(cfg)
            path = Path(tmp) / f"{len(readers)}.onnx"
            export_model(model, path)
            card = {"format": "digitrec-model/1", "model": cfg.__dict__, "name": name}
            path.with_suffix(".json").write_text(json.dumps(card))
            single = load_predictor(path, threads=1, pairs=False)
            every = load_predictor(path, threads=os.cpu_count(), pairs=False)
            readers[name] = (single, every)
            out[name] = {
                "parameters": count_parameters(model),
                "multiply_adds": multiply_adds(model),
                "latency_ms": [],
                "images_per_s": [],
            }
            single.classify(one), every.classify(batch)  # warm up
        for _ in range(rounds):
            for name, (single, every) in readers.items():
                out[name]["latency_ms"].append(1e3 * _median_call(single.classify, one, seconds))
                per_batch = _median_call(every.classify, batch, seconds)
                out[name]["images_per_s"].append(len(batch) / per_batch)
    for r in out.values():
        r["latency_ms"] = float(np.median(r["latency_ms"]))
        r["images_per_s"] = float(np.median(r["images_per_s"]))
    return out


def train(name: str, epochs: int, seed: int, recipe: str = "best", out: Path | None = None) -> dict:
    from digitrec.training.fit import fit

    cfg = replace(preset(recipe, epochs=epochs, seed=seed), model=NETWORKS[name])
    if out is not None:
        _, card = fit(cfg, out, progress=False, command="benchmarks/architectures.py --train")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _, card = fit(cfg, tmp, progress=False)
    m = card["metrics"]
    return {
        "network": name,
        "recipe": recipe,
        "epochs": epochs,
        "seed": seed,
        "val_accuracy": m["val_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "training_s": card["training_seconds"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        help="a network's name as in the table (names hold commas: "
        "repeat --only for several; default: all)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--train", default=None, help="train this network with --preset's recipe")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--preset", default="best", choices=list(PRESETS), help="the recipe --train trains with"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep --train's run here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    meta = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    names = [args.train] if args.train else args.only or list(NETWORKS)
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown[0]!r}: choose from {'; '.join(NETWORKS)}")
    if args.train:
        result = {**train(args.train, args.epochs, args.seed, args.preset, args.out), **meta}
    else:
        result = {"speed": speed({n: NETWORKS[n] for n in names}, args.rounds, args.seconds)}
        print("| network | parameters | multiply-adds | batch-1 latency | images/s (batch 256) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, r in result["speed"].items():
            print(
                f"| {name} | {r['parameters']:,} | {r['multiply_adds'] / 1e6:.1f} M | "
                f"{r['latency_ms']:.3f} ms | {r['images_per_s']:,.0f} |"
            )
        result.update(meta)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
