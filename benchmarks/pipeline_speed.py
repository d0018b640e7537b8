"""How fast a picture goes through the whole pipeline (`to_mnist` and the model), and where
its time goes.

    python benchmarks/pipeline_speed.py [--data ../shared/data/realworld/unipen/dev]
        [--n 1000] [--rounds 3] [--batch 256] [--single 300] [--model PATH] [--json FILE]
        [--cprofile N]

Pictures: `--n` UNIPEN dev canvas drawings (280x280 grey PNG, black ink on white, a 20 px
pen), read four ways: (a) their PNG bytes, (b) the same drawn white on black (PNG bytes),
(c) decoded to uint8 arrays, (d) as the web page sends its pad (canvas.toDataURL: an RGBA PNG,
opaque), which takes the slower path of pictures with an alpha band. For each:

1. `Predictor.predict_many`, `--batch` pictures a call: pictures per second (the median of
   `--rounds` rounds, the sets interleaved in each round so a noisy neighbour hurts them
   alike), with `--readers` reading processes (default: one a core) and, as the baseline in
   the same rounds, with one (`readers=1`); and the first batch's time, which starts the
   reading processes.
2. `Predictor.predict`, one picture a call, `--single` calls: median and 90th percentile.
3. A profile by stage, in one thread: `to_mnist` on each picture, then the model on the
   batch. Each stage is the time spent in the preprocess functions that make it (exclusive:
   a stage's time leaves out the stages it calls; "decode" holds opening the picture and
   reading its header and EXIF too); `rest` is what no stage names (the loop, stacking, the
   Predictor's judging).

`--cprofile N` also prints the N functions with the most time of their own (cProfile, PNG
bytes), to look inside a stage. Prints Markdown tables; `--json` also writes every figure.
Timings on a shared machine are noisy: compare runs made close together, and read `load`.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import platform
import pstats
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import load_predictor
from digitrec.reading import preprocess
from digitrec.reading.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "realworld" / "unipen" / "dev"
SETS = ("png", "png-inverted", "array", "png-rgba")

# stage -> the functions whose own time it is (functions a version lacks are skipped); "decode"
# holds opening the picture and reading its header and EXIF as well
STAGES = {
    "decode": ("grey_within", "_grey_within", "_decode", "load_image", "_array_to_image"),
    "grey": (
        "_levels_or_grey",
        "shrunk_grey",
        "to_grey",
        "_grey_over",
        "_grey_and_alpha",
        "_backing_in_tiles",
    ),
    "ink map": (
        "ink_map",
        "_ink_map",
        "_looked_up",
        "median3_range",
        "median3",
        "_background",
        "_paper_of_a_filled_frame",
    ),
    "cleaning": (
        "clean",
        "_clean",
        "ink_components",
        "_labelled",
        "_pieces",
        "_border_junk",
        "_is_frame",
        "_spanned",
    ),
    "crop": ("crop_to_ink",),
    "resize": ("Image.resize",),  # Pillow's, wherever it is called
    "stroke width": (
        "normalise_stroke",
        "stroke_width",
        "_morph",
        "_morphs",
        "_pieces_and_holes",
    ),
    "centring": ("fit_and_centre",),  # what fit_and_centre does itself: saturate, centre
    "model": ("Predictor.classify",),
}


class StageTimer:
    """Wraps functions so that each call's time, less that of the wrapped calls inside it,
    is added to its stage. One thread at a time."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.stack: list[float] = []  # per open call: time spent in wrapped calls inside it
        self.undo: list = []
        self.owner = threading.get_ident()

    def wrap(self, owner, name: str, stage: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if threading.get_ident() != self.owner:
                return original(*args, **kwargs)
            self.stack.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                inner = self.stack.pop()
                self.seconds[stage] += took - inner
                if self.stack:
                    self.stack[-1] += took

        setattr(owner, name, timed)
        self.undo.append((owner, name, original))

    def __enter__(self):
        for stage, names in STAGES.items():
            for name in names:
                if name == "Image.resize":
                    self.wrap(Image.Image, "resize", stage)
                elif name == "Predictor.classify":
                    self.wrap(Predictor, "classify", stage)
                elif hasattr(preprocess, name):
                    self.wrap(preprocess, name, stage)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.undo):
            setattr(owner, name, original)


def load_pictures(folder: Path, n: int) -> dict[str, list]:
    """n pictures spread evenly over the sorted set, three ways."""
    files = sorted(folder.glob("*/*.png"))
    if not files:
        raise SystemExit(f"no pictures under {folder}")
    chosen = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(n, len(files)))]
    png, inverted, arrays, rgba = [], [], [], []
    for f in chosen:
        data = f.read_bytes()
        grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
        png.append(data)
        inverted.append(_png(Image.fromarray(255 - grey)))
        arrays.append(grey.copy())
        opaque = np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)
        rgba.append(_png(Image.fromarray(opaque)))
    return {"png": png, "png-inverted": inverted, "array": arrays, "png-rgba": rgba}


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def throughput(predictor: Predictor, pictures: list, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(pictures), batch):
        predictor.predict_many(pictures[i : i + batch])
    return len(pictures) / (time.perf_counter() - start)


def latencies(predictor: Predictor, pictures: list) -> np.ndarray:
    times = []
    for p in pictures:
        start = time.perf_counter()
        predictor.predict(p)
        times.append(time.perf_counter() - start)
    return np.array(times) * 1e3


def profile(predictor: Predictor, pictures: list) -> dict[str, float]:
    """Milliseconds a picture per stage, and the whole."""
    with StageTimer() as timer:
        start = time.perf_counter()
        inputs = np.stack([preprocess.to_mnist(p) for p in pictures])
        judged = predictor.judge(predictor.probabilities(inputs), inputs)
        total = time.perf_counter() - start
    assert len(judged) == len(pictures)
    ms = {stage: s * 1e3 / len(pictures) for stage, s in timer.seconds.items()}
    ms["rest"] = total * 1e3 / len(pictures) - sum(ms.values())
    ms["total"] = total * 1e3 / len(pictures)
    return ms


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=1000, help="pictures per set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256, help="pictures per predict_many call")
    ap.add_argument("--single", type=int, default=300, help="predict calls per set")
    ap.add_argument("--model", default=None)
    ap.add_argument(
        "--readers", type=int, default=None, help="reading processes (default: one a core)"
    )
    ap.add_argument("--cprofile", type=int, default=0, metavar="N")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    sets = load_pictures(args.data, args.n)
    predictor = load_predictor(args.model, pairs=False, readers=args.readers)
    alone = load_predictor(args.model, pairs=False, readers=1)  # the baseline: one process
    load_before = load()
    # the first batch starts the reading processes (kept for the next ones): timed alone
    start = time.perf_counter()
    predictor.predict_many(sets["png"][: args.batch])
    first_batch = time.perf_counter() - start
    for name in SETS:  # warm up: first calls set things up
        alone.predict_many(sets[name][:16])

    rates: dict[str, list[float]] = {name: [] for name in SETS}
    rates_alone: dict[str, list[float]] = {name: [] for name in SETS}
    for _ in range(args.rounds):
        for name in SETS:
            rates[name].append(throughput(predictor, sets[name], args.batch))
            rates_alone[name].append(throughput(alone, sets[name], args.batch))
    single = {name: latencies(predictor, sets[name][: args.single]) for name in SETS}
    stages = {name: profile(predictor, sets[name]) for name in SETS}
    inputs = np.stack([preprocess.to_mnist(p) for p in sets["png"][: args.batch]])
    model_rates = []
    for _ in range(max(3, args.rounds)):
        start = time.perf_counter()
        predictor.classify(inputs)
        model_rates.append(len(inputs) / (time.perf_counter() - start))

    n = len(sets["png"])
    print(
        f"# Pipeline speed: {n} UNIPEN dev pictures (280x280) a set, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average before {load_before}, after {load()}"
    )
    print(
        f"\n| set | predict_many, {predictor.readers} reading processes (pictures/s, median of "
        f"{args.rounds}) | rounds | one process (median) | ratio | predict median (ms) | "
        "predict p90 (ms) |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for name in SETS:
        r, one = rates[name], rates_alone[name]
        ratio = np.median(np.array(r) / np.array(one))  # each round's own ratio
        print(
            f"| {name} | {np.median(r):,.0f} | {', '.join(f'{x:,.0f}' for x in r)} | "
            f"{np.median(one):,.0f} | {ratio:.2f} | "
            f"{np.median(single[name]):.2f} | {np.percentile(single[name], 90):.2f} |"
        )
    print(
        f"\nThe first batch of {args.batch}, which starts the reading processes: "
        f"{first_batch * 1e3:,.0f} ms"
    )
    print(
        f"\nThe model alone (`Predictor.classify`, batches of {len(inputs)}): "
        f"{np.median(model_rates):,.0f} digits/s"
    )
    print("\nWhere a picture's time goes (ms a picture, one thread, `to_mnist` then the model):\n")
    print("| stage | " + " | ".join(SETS) + " |")
    print("| --- | " + " | ".join("---:" for _ in SETS) + " |")
    for stage in [*STAGES, "rest", "total"]:
        cells = [f"{stages[name][stage]:.3f}" for name in SETS]
        label = f"**{stage}**" if stage == "total" else stage
        print(f"| {label} | " + " | ".join(cells) + " |")

    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        for p in sets["png"]:
            preprocess.to_mnist(p)
        profiler.disable()
        print(f"\ncProfile, `to_mnist` on the PNG bytes, top {args.cprofile} by own time:\n")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.cprofile)
        print("```\n" + out.getvalue().strip() + "\n```")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "pictures": n,
                    "readers": predictor.readers,
                    "predict_many_per_s": {k: v for k, v in rates.items()},
                    "predict_many_one_process_per_s": {k: v for k, v in rates_alone.items()},
                    "first_batch_s": first_batch,
                    "predict_ms": {
                        k: {"median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
                        for k, v in single.items()
                    },
                    "model_per_s": float(np.median(model_rates)),
                    "stages_ms": stages,
                    "load": [load_before, load()],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
