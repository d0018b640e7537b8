"""How fast the Predictor reads digits already in MNIST form: batch-1 latency and batched
throughput, with ONNX Runtime (several session settings) and with PyTorch eager.

    python benchmarks/inference.py [--model src/digitrec/weights/default.onnx] [--rounds 5]
        [--seconds 0.5] [--json FILE]

The "Predictor" rows time `Predictor.classify` (the model call and the calibrated softmax,
what every interface pays per batch once pictures are in MNIST form); the "session" rows
time the bare ONNX Runtime session under other settings, to show what each setting is
worth. Preprocessing is measured by benchmarks/realworld.py, the service by
benchmarks/serve_load.py. Every configuration is timed for `--seconds` per measure in each
of `--rounds` rounds, interleaved, so a noisy neighbour hurts them all alike; figures are
medians over rounds (latency: the median and the 99th percentile of the single calls of a
round). The PyTorch rows need the training extra and the .safetensors checkpoint beside the
.onnx file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from digitrec import load_predictor
from digitrec.reading.predictor import resolve_model_path

BATCHES = (256, 1024)


def session(path: Path, threads: int, level: str, spinning: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})[0]


def predictor(path: Path, threads: int):
    p = load_predictor(path, threads=threads, pairs=False)
    return lambda x: p.classify(x)


def latency(run, x: np.ndarray, seconds: float) -> tuple[float, float]:
    """(median, 99th percentile) of single calls made for `seconds`, in milliseconds."""
    times = []
    end = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        run(x)
        done = time.perf_counter()
        times.append(done - t)
        if done > end:
            break
    return float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3)


def throughput(run, x: np.ndarray, seconds: float) -> float:
    """Images per second, calling `run` on batch `x` for about `seconds`."""
    calls, start = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed > seconds:
            return calls * len(x) / elapsed


def configurations(path: Path) -> dict:
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    configs = {}
    for n in threads:
        configs[f"Predictor, onnxruntime, {n} thread(s)"] = predictor(path, n)
    checkpoint = path.with_suffix(".safetensors")
    if checkpoint.is_file():
        try:
            for n in threads:
                configs[f"Predictor, pytorch eager, {n} thread(s)"] = predictor(checkpoint, n)
        except Exception as e:  # no torch: say so and measure the rest
            print(f"PyTorch rows left out: {e}")
    for n in threads:
        for level in ("basic", "all"):
            for spinning in (True, False):
                name = f"session, {n} thread(s), {level} optimisation, spinning {'on' if spinning else 'off'}"
                configs[name] = session(path, n, level, spinning)
    return configs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per configuration")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per measure")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    path = resolve_model_path(args.model)
    configs = configurations(path)
    rng = np.random.default_rng(0)
    one = rng.random((1, 1, 28, 28), dtype=np.float32)
    batches = {b: rng.random((b, 1, 28, 28), dtype=np.float32) for b in BATCHES}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in configs}
    for run in configs.values():  # warm up: first calls allocate and pick kernels
        for x in [one, *batches.values()]:
            run(x)
    for _ in range(args.rounds):
        for name, run in configs.items():
            r = results[name]
            median, p99 = latency(run, one, args.seconds)
            r.setdefault("latency_median_ms", []).append(median)
            r.setdefault("latency_p99_ms", []).append(p99)
            for b, x in batches.items():
                r.setdefault(f"images_per_s_batch_{b}", []).append(throughput(run, x, args.seconds))

    summary = {name: {k: float(np.median(v)) for k, v in r.items()} for name, r in results.items()}
    print(
        "| configuration | batch-1 median | batch-1 p99 | "
        + " | ".join(f"images/s, batch {b}" for b in BATCHES)
        + " |"
    )
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in BATCHES) + " |")
    for name, s in summary.items():
        cells = " | ".join(f"{s[f'images_per_s_batch_{b}']:,.0f}" for b in BATCHES)
        print(
            f"| {name} | {s['latency_median_ms']:.3f} ms | {s['latency_p99_ms']:.3f} ms | {cells} |"
        )
    meta = {
        "model": str(path),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "machine": f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(
        f"\nmodel {path}; medians of {args.rounds} rounds of {args.seconds} s; "
        f"{meta['machine']}; {meta['date']}"
    )
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
