"""How well digitrec reads pictures that people make, next to the naive pipeline most demos use.

    DIGITREC_DATA=../shared/data/mnist python benchmarks/realworld.py [--n 2000] [--json FILE]
        [--samples DIR] [--jobs 2] [--model PATH] [--seed 2024]

Every digit measured here comes from MNIST's *test* set (never its training digits) or from
the real-world development sets (usps, optdigits32). Sets:

1. usps, optdigits32 (folder datasets): accuracy, balanced accuracy, refusals.
2. canvas: MNIST test digits drawn at any size and pen width, anywhere on a canvas, as black
   on white / white on black PNG, coloured ink on a transparent PNG, or a photo (JPEG).
3. numbers: several MNIST test digits on a line (gaps, nearly touching, touching pairs), read
   with `read_number` and scored by whole-number exact match.
4. non-digits: letters in fonts training never used, scribbles, shapes, photos of blank
   paper, noise; how often each is refused.
5. MNIST test itself: refusal rate and accuracy.

The naive pipeline is what most demos do: open, convert to grey, invert if the picture is
mostly bright, resize the whole picture to 28x28, then the same model and refusal threshold.
Prints a Markdown table; --json also writes every figure. Repeatable from --seed.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

from digitrec import load_predictor
from digitrec.data import list_folder_dataset, load_mnist
from digitrec.reading.predictor import Prediction, Predictor
from digitrec.reading.preprocess import crop_to_ink
from digitrec.training import synthetic as synthetic

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REALWORLD = REPO.parent / "shared" / "data" / "realworld"
REALWORLD_SETS = ("usps", "optdigits32")
CHUNK = 256  # pictures per predict_many call
NUMBER_BATCH = 256  # number pictures generated, then read, at a time

STYLES = ("black-on-white", "white-on-black", "transparent", "photo")
NUMBER_MODES = ("gaps-4", "gaps-2to8", "near-touching", "touching-pairs")
NON_DIGIT_KINDS = ("letters", "scribbles", "shapes", "nothing", "noise")
# Serif faces: training draws its letters in TRAIN_FONTS (sans and mono) only.
BENCH_FONTS = tuple(
    f
    for f in ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf")
    if (synthetic.FONT_DIR / f).is_file()
)
# Each set draws from its own stream, default_rng([seed, set]); training's outlier banks use
# default_rng(cfg.seed * 7919 + k), plain integer seeds, so none of these streams is theirs.
CANVAS_STREAM, NUMBER_STREAM, NON_DIGIT_STREAM = 2, 3, 4
INK_CROP = 0.05  # MNIST pixels above this (of 1) are part of the digit's ink box
TOUCH_LEVEL = 0.45  # ink above this counts when checking that two digits' strokes touch


# ---------------------------------------------------------------- drawing helpers


def _resize(x: np.ndarray, size: tuple[int, int], method=Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize a float picture to (width, height)."""
    out = np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize(size, method))
    return np.clip(out, 0.0, 1.0)


def _smoothstep(x: np.ndarray, width: float) -> np.ndarray:
    """Sharpen a blurred stroke into a pen stroke: a smooth step `width` wide around 0.5."""
    v = np.clip((x - 0.5) / width + 0.5, 0.0, 1.0)
    return v * v * (3 - 2 * v)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx * xx + yy * yy <= radius * radius + 0.5


def _loops(ink: np.ndarray, height: int) -> int:
    """How many closed loops (holes in the ink, not specks of paper) a digit has."""
    paper, n = ndi.label(ink <= 0.5)
    sizes = np.bincount(paper.ravel(), minlength=n + 1)[1:]
    border = np.unique(np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]]))
    sizes[border[border > 0] - 1] = 0
    return int((sizes >= (height / 40) ** 2).sum())


def _pieces(ink: np.ndarray) -> int:
    return ndi.label(ink > 0.5, structure=np.ones((3, 3)))[1]


def _crop_ink(digit28: np.ndarray) -> np.ndarray:
    """An MNIST digit as float ink in [0, 1], cropped to its ink box."""
    x = np.asarray(digit28, dtype=np.float32)
    if x.max() > 1.0:
        x = x / 255.0
    return crop_to_ink(x, INK_CROP)[0]


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pen_digit(digit28: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit redrawn `height` pixels tall as a pen stroke (ink in [0, 1]): upscaled
    (bicubic), edges sharpened with a smoothstep, then the pen made thicker or thinner by
    grey dilation or erosion (radius 1-6 px at a 160-px working height), then scaled down."""
    crop = _crop_ink(digit28)
    h, w = crop.shape
    work = max(height, 160)
    scale = work / h
    big = _resize(crop, (max(1, round(w * scale)), work))
    big = _smoothstep(big, float(np.clip(2.0 / scale, 0.2, 1.0)))
    change = rng.choice(["thicker", "thinner", "same"], p=[0.4, 0.3, 0.3])
    if change != "same":
        radius = round(int(rng.integers(1, 7)) * work / 160)
        big = np.pad(big, radius + 1)
        before, loops, pieces = (big > 0.5).sum(), _loops(big, work), _pieces(big)
        while radius > 0:
            if change == "thicker":  # a marker, but one that fills in none of the loops
                pen = ndi.grey_dilation(big, footprint=_disk(radius))
                ok = _loops(pen, work) >= loops
            else:  # a thinner pen, but never a stroke worn away
                pen = ndi.grey_erosion(big, footprint=_disk(radius))
                ok = (pen > 0.5).sum() >= 0.45 * before and _pieces(pen) <= pieces
            if ok:
                big = pen
                break
            radius -= 1
    rows = np.flatnonzero((big > INK_CROP).any(axis=1))
    cols = np.flatnonzero((big > INK_CROP).any(axis=0))
    big = big[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    bh, bw = big.shape
    out_w = max(1, round(bw * height / bh))
    if bh == height:
        return big
    return _resize(big, (out_w, height), Image.Resampling.BOX)


def _paper_light(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A photo's uneven light: a brightness gradient, sometimes a soft shadow, in (0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    along = (along - along.min()) / max(1e-6, float(np.ptp(along)))
    light = 1.0 - rng.uniform(0.05, 0.3) * along
    if rng.random() < 0.5:  # the shadow of a hand or phone across one side
        angle = rng.uniform(0, 2 * np.pi)
        dist = (xx - rng.uniform(0, w)) * np.cos(angle) + (yy - rng.uniform(0, h)) * np.sin(angle)
        soft = rng.uniform(0.03, 0.15) * max(h, w)
        light = light * (1.0 - rng.uniform(0.1, 0.35) / (1.0 + np.exp(-dist / soft)))
    return light.astype(np.float32)


def render(ink: np.ndarray, rng: np.random.Generator, style: str | None = None) -> bytes:
    """Ink in [0, 1] (1 = ink) on a canvas of its size, rendered in one of STYLES, encoded."""
    style = style or str(rng.choice(STYLES))
    if style == "black-on-white":
        return _encode(Image.fromarray(np.uint8(np.round(255 * (1 - ink)))), "PNG")
    if style == "white-on-black":
        return _encode(Image.fromarray(np.uint8(np.round(255 * ink))), "PNG")
    if style == "transparent":
        # what a drawing app exports: coloured ink, alpha = ink, hidden pixels black or white
        colour = np.array(
            [
                (0, 0, 0),
                (255, 255, 255),
                (220, 30, 30),
                (30, 60, 200),
                (20, 140, 60),
                (120, 40, 160),
                (255, 160, 0),
            ][int(rng.integers(7))],
            dtype=np.uint8,
        )
        hidden = np.uint8(255 if rng.random() < 0.5 else 0)
        rgba = np.empty((*ink.shape, 4), dtype=np.uint8)
        rgba[..., :3] = np.where(ink[..., None] > 0, colour, hidden)
        rgba[..., 3] = np.uint8(np.round(255 * ink))
        return _encode(Image.fromarray(rgba, mode="RGBA"), "PNG")
    # photo: paper colour under uneven light, pen ink, noise, a little blur, JPEG
    paper = rng.uniform(0.78, 0.98) + rng.uniform(-0.04, 0.04, 3) + np.array([0.01, 0.0, -0.03])
    pen = np.array([(0.12, 0.15, 0.42), (0.1, 0.1, 0.12)][int(rng.integers(2))])
    pen = np.clip(pen + rng.uniform(-0.05, 0.05, 3), 0, 1)
    a = (ink * rng.uniform(0.8, 1.0))[..., None]
    rgb = (paper * (1 - a) + pen * a) * _paper_light(ink.shape, rng)[..., None]
    rgb = rgb + rng.normal(0, rng.uniform(0.02, 0.05), rgb.shape)
    image = Image.fromarray(np.uint8(np.round(255 * np.clip(rgb, 0, 1))), mode="RGB")
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    return _encode(image, "JPEG", quality=int(rng.integers(40, 91)))


# ---------------------------------------------------------------- set 2: canvas digits


def canvas_picture(digit28: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """An MNIST digit as a person would draw or photograph it: 24-220 px tall, any pen
    width, off centre on a 200-500 px canvas, in a random style. Returns (encoded, style)."""
    cw = int(rng.integers(200, 501))
    ch = cw if rng.random() < 0.5 else int(rng.integers(200, 501))
    height = min(int(rng.integers(24, 221)), ch - 4)
    digit = pen_digit(digit28, height, rng)
    if digit.shape[1] > cw - 4:  # a wide digit on a narrow canvas: draw it smaller
        dh = max(8, digit.shape[0] * (cw - 4) // digit.shape[1])
        digit = _resize(digit, (cw - 4, dh), Image.Resampling.BOX)
    h, w = digit.shape
    top, left = int(rng.integers(2, ch - h - 1)), int(rng.integers(2, cw - w - 1))
    ink = np.zeros((ch, cw), dtype=np.float32)
    ink[top : top + h, left : left + w] = digit
    style = str(rng.choice(STYLES))
    return render(ink, rng, style), style


# ---------------------------------------------------------------- set 3: numbers


def number_length(mode: str, rng: np.random.Generator) -> int:
    if mode == "gaps-2to8":
        return int(rng.integers(2, 9))
    return 2 if mode == "touching-pairs" else 4


def _gap(mode: str, rng: np.random.Generator) -> int:
    """Pixels between two digits' ink boxes at MNIST scale (negative: the boxes overlap)."""
    if mode == "near-touching":
        return int(rng.integers(0, 3))
    if mode == "touching-pairs":
        return -int(rng.integers(1, 5))
    return int(rng.integers(3, 13))


def _line_of(crops: list[np.ndarray], gaps: list[int], jitter: list[int]) -> list[np.ndarray]:
    """Each digit's ink on one shared line canvas (MNIST scale), one layer per digit."""
    pad = 4
    height = max(c.shape[0] for c in crops) + 2 * pad
    width = sum(c.shape[1] for c in crops) + sum(gaps) + 2 * pad
    layers, x = [], pad
    for i, c in enumerate(crops):
        layer = np.zeros((height, width), dtype=np.float32)
        top = (height - c.shape[0]) // 2 + jitter[i]
        layer[top : top + c.shape[0], x : x + c.shape[1]] = c
        layers.append(layer)
        x += c.shape[1] + (gaps[i] if i < len(gaps) else 0)
    return layers


def _touch(layers: list[np.ndarray]) -> bool:
    """Whether the strokes of two digits meet: one connected piece of ink holds both."""
    a, b = (layer > TOUCH_LEVEL for layer in layers)
    labels, _ = ndi.label(np.maximum(*layers) > TOUCH_LEVEL, structure=np.ones((3, 3)))
    shared = np.intersect1d(labels[a], labels[b])
    return bool((shared > 0).any())


def number_picture(
    digits28: list[np.ndarray], mode: str, rng: np.random.Generator, tries: int = 8
) -> np.ndarray | None:
    """MNIST digits written on one line as a number (uint8 grey picture, random polarity):
    spaced as `mode` says (NUMBER_MODES), jittered +-2 px, scaled up 1-4x, with a margin.
    For 'touching-pairs' the two digits' strokes must touch; None when `tries` layouts fail."""
    crops = [_crop_ink(d) for d in digits28]
    scale = rng.uniform(1.0, 4.0)
    for _ in range(tries):
        gaps = [_gap(mode, rng) for _ in crops[1:]]
        jitter = [int(v) for v in rng.integers(-2, 3, len(crops))]
        layers = _line_of(crops, gaps, jitter)
        h, w = layers[0].shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        layers = [_resize(layer, size) for layer in layers]
        if mode != "touching-pairs" or _touch(layers):
            break
    else:
        return None
    line = np.maximum.reduce(layers)
    margins = rng.integers(8, 61, 4)
    ink = np.pad(line, ((margins[0], margins[1]), (margins[2], margins[3])))
    if rng.random() < 0.5:
        ink = 1.0 - ink
    return np.uint8(np.round(255 * ink))


# ---------------------------------------------------------------- set 4: non-digits


def _nothing(rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    """A photo of blank paper: texture, uneven light, noise, maybe a shadow; no ink."""
    return render(np.zeros(size[::-1], dtype=np.float32), rng, "photo")


def _noise(rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    w, h = size
    if rng.random() < 0.5:  # pixel noise
        grey = rng.random((h, w))
    else:  # blotches
        grey = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(2, 8))
        grey = (grey - grey.min()) / max(1e-6, float(np.ptp(grey)))
    if rng.random() < 0.5:
        rgb = np.stack([grey, np.roll(grey, 7, 0), np.roll(grey, 7, 1)], -1)
        return _encode(Image.fromarray(np.uint8(255 * rgb), mode="RGB"), "PNG")
    return _encode(Image.fromarray(np.uint8(255 * grey)), "PNG")


def non_digit_picture(rng: np.random.Generator) -> tuple[bytes, str]:
    """Something that is not a digit on a 120-300 px canvas. Returns (encoded, kind):
    10% photos of nothing, 5% noise, else letters in BENCH_FONTS, scribbles or shapes drawn
    as synthetic.non_digit draws them, rendered in one of STYLES."""
    side = int(rng.integers(120, 301))
    u = rng.random()
    if u < 0.10:
        other = side if rng.random() < 0.5 else int(rng.integers(120, 301))
        return _nothing(rng, (side, other)), "nothing"
    if u < 0.15:
        return _noise(rng, (side, side)), "noise"
    kind = rng.random()  # as synthetic.non_digit chooses, keeping the kind
    if kind < 0.3 and BENCH_FONTS:
        ink, name = synthetic.letter(rng, BENCH_FONTS, side), "letters"
    else:
        if kind < 0.6:
            strokes, name = synthetic.scribble(rng), "scribbles"
        else:
            strokes, name = synthetic.shape(rng), "shapes"
        w, h = rng.uniform(0.45, 0.9) * side, rng.uniform(0.45, 0.9) * side
        left, top = rng.uniform(0, side - w), rng.uniform(0, side - h)
        pen = rng.uniform(0.03, 0.09) * side
        ink = synthetic.draw_strokes(strokes, side, pen, (left, top, left + w, top + h))
    return render(ink, rng), name


# ---------------------------------------------------------------- the two pipelines


def naive_input(image: str | os.PathLike | bytes) -> np.ndarray:
    """The demo pipeline: grey, invert if mostly bright, resize the whole picture to 28x28."""
    source = io.BytesIO(image) if isinstance(image, bytes) else image
    with Image.open(source) as im:
        grey = im.convert("L")
    x = np.asarray(grey.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    if np.asarray(grey, dtype=np.float32).mean() / 255 > 0.5:
        x = 1.0 - x
    return x


def naive_predict(predictor: Predictor, images: list) -> list[Prediction]:
    x = np.stack([naive_input(i) for i in images]) if images else np.zeros((0, 28, 28))
    return predictor.judge(predictor.probabilities(x), x)


def digitrec_predict(predictor: Predictor, images: list) -> list[Prediction]:
    out: list[Prediction] = []
    for i in range(0, len(images), CHUNK):
        out += predictor.predict_many(images[i : i + CHUNK])
    return out


def number_summary(reading) -> tuple[str, int, int, bool]:
    """What scoring needs of a NumberReading: text, digits, lines, whether a digit was refused."""
    return (
        reading.text,
        len(reading.digits),
        len(reading.lines),
        any(p.refused for p in reading.digits),
    )


_WORKER: Predictor | None = None


def _init_worker(model: str, threshold: float) -> None:
    global _WORKER
    _WORKER = load_predictor(model, threads=1, threshold=threshold)


def _worker_predict(images: list) -> list[Prediction]:
    return _WORKER.predict_many(images)


def _worker_read(picture) -> tuple[str, int, int, bool]:
    return number_summary(_WORKER.read_number(picture))


class Reader:
    """digitrec's pipeline (predict_many, read_number), in this process (jobs=1) or spread
    over `jobs` worker processes, each with its own Predictor of the same model; the results
    and their order are the same either way."""

    def __init__(self, predictor: Predictor, jobs: int = 1):
        self.predictor = predictor
        self.pool = None
        if jobs > 1:
            self.pool = multiprocessing.get_context("spawn").Pool(
                jobs, _init_worker, (str(predictor.path), predictor.threshold)
            )

    def predict(self, images: list) -> list[Prediction]:
        if self.pool is None:
            return digitrec_predict(self.predictor, images)
        chunks = [images[i : i + CHUNK] for i in range(0, len(images), CHUNK)]
        return [p for chunk in self.pool.map(_worker_predict, chunks) for p in chunk]

    def read_numbers(self, pictures: list) -> list[tuple[str, int, int, bool]]:
        if self.pool is None:
            return [number_summary(self.predictor.read_number(p)) for p in pictures]
        return self.pool.map(_worker_read, pictures, chunksize=8)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


# ---------------------------------------------------------------- scoring


def scores(preds: list[Prediction], labels: np.ndarray) -> dict:
    """Accuracy (refused counted wrong), balanced accuracy, refusal rate, accuracy on the
    answered ones, and the plain argmax accuracy (refusals ignored)."""
    labels = np.asarray(labels)
    refused = np.array([p.refused for p in preds], dtype=bool)
    guess = np.array([-1 if p.digit is None else p.digit for p in preds])
    right = (guess == labels) & ~refused
    recalls = [right[labels == d].mean() for d in range(10) if (labels == d).any()]
    answered = ~refused
    return {
        "n": len(preds),
        "accuracy": float(right.mean()) if len(preds) else 0.0,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,
        "refusal_rate": float(refused.mean()) if len(preds) else 0.0,
        "accuracy_answered": float(right[answered].mean()) if answered.any() else None,
        "argmax_accuracy": float((guess == labels).mean()) if len(preds) else 0.0,
    }


class Table:
    """Rows of (set, figure, naive, digitrec, n); values are shares (shown as %) or None."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, group: str, figure: str, naive, digitrec, n: int) -> None:
        self.rows.append(
            {"set": group, "figure": figure, "naive": naive, "digitrec": digitrec, "n": n}
        )

    def add_scores(self, group: str, naive: dict | None, ours: dict, keys=None) -> None:
        names = {
            "accuracy": "accuracy (refused = wrong)",
            "balanced_accuracy": "balanced accuracy (refused = wrong)",
            "refusal_rate": "refusal rate",
            "accuracy_answered": "accuracy on answered",
            "argmax_accuracy": "argmax accuracy (no refusals)",
        }
        for key in keys or names:
            self.add(group, names[key], naive[key] if naive else None, ours[key], ours["n"])

    def markdown(self) -> str:
        def cell(v) -> str:
            return "n/a" if v is None else f"{100 * v:.2f}%"

        lines = ["| set | figure | naive | digitrec | n |", "| --- | --- | ---: | ---: | ---: |"]
        for r in self.rows:
            lines.append(
                f"| {r['set']} | {r['figure']} | {cell(r['naive'])} | {cell(r['digitrec'])} "
                f"| {r['n']:,} |"
            )
        return "\n".join(lines)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the sets


def bench_realworld(reader: Reader, root: Path, table: Table, figures: dict) -> None:
    predictor = reader.predictor
    for name in REALWORLD_SETS:
        folder = root / name
        if not folder.is_dir():
            _log(f"{folder} not found: skipping {name}")
            continue
        items = list_folder_dataset(folder)
        paths, labels = [p for p, _ in items], np.array([d for _, d in items])
        ours = scores(reader.predict(paths), labels)
        naive = scores(naive_predict(predictor, paths), labels)
        figures[name] = {"digitrec": ours, "naive": naive}
        table.add_scores(name, naive, ours)


def bench_canvas(reader: Reader, test, n, seed, table, figures, samples: Path | None) -> None:
    predictor = reader.predictor
    rng = np.random.default_rng([seed, CANVAS_STREAM])
    index = rng.choice(len(test.labels), size=n, replace=n > len(test.labels))
    pictures, styles = [], []
    for k, i in enumerate(index):
        data, style = canvas_picture(test.images[i], rng)
        pictures.append(data)
        styles.append(style)
        if samples and styles.count(style) <= 3:
            ext = "jpg" if style == "photo" else "png"
            (samples / f"canvas-{style}-{k}-digit{test.labels[i]}.{ext}").write_bytes(data)
    labels, styles = test.labels[index], np.array(styles)
    ours = reader.predict(pictures)
    naive = naive_predict(predictor, pictures)
    figures["canvas"] = {"digitrec": scores(ours, labels), "naive": scores(naive, labels)}
    table.add_scores(
        "canvas (all styles)",
        figures["canvas"]["naive"],
        figures["canvas"]["digitrec"],
        ["accuracy", "refusal_rate", "accuracy_answered", "argmax_accuracy"],
    )
    for style in STYLES:
        pick = np.flatnonzero(styles == style)
        o = scores([ours[i] for i in pick], labels[pick])
        v = scores([naive[i] for i in pick], labels[pick])
        figures["canvas"][style] = {"digitrec": o, "naive": v}
        table.add_scores(f"canvas: {style}", v, o, ["accuracy", "refusal_rate"])


def bench_numbers(reader: Reader, test, n, seed, table, figures, samples: Path | None) -> None:
    figures["numbers"] = {}
    for m, mode in enumerate(NUMBER_MODES):
        rng = np.random.default_rng([seed, NUMBER_STREAM, m])
        exact = count = refused = redrawn = done = 0
        while done < n:
            pictures, truths = [], []
            for _ in range(min(NUMBER_BATCH, n - done)):
                while True:
                    index = rng.integers(0, len(test.labels), number_length(mode, rng))
                    picture = number_picture([test.images[i] for i in index], mode, rng)
                    if picture is not None:
                        break
                    redrawn += 1
                truth = "".join(str(test.labels[i]) for i in index)
                if samples and done + len(pictures) < 2:
                    Image.fromarray(picture).save(
                        samples / f"number-{mode}-{done + len(pictures)}-{truth}.png"
                    )
                pictures.append(picture)
                truths.append(truth)
            for truth, (text, digits, lines, some_refused) in zip(
                truths, reader.read_numbers(pictures), strict=True
            ):
                exact += text == truth
                count += digits == len(truth) and lines == 1
                refused += some_refused
            done += len(pictures)
        figures["numbers"][mode] = {
            "n": n,
            "exact_match": exact / n,
            "digit_count_right": count / n,
            "some_digit_refused": refused / n,
            "redrawn_digit_sets": redrawn,
        }
        table.add(f"numbers: {mode}", "whole number exact match", None, exact / n, n)
        table.add(f"numbers: {mode}", "digit count right (one line)", None, count / n, n)
        table.add(f"numbers: {mode}", "pictures with a refused digit ('?')", None, refused / n, n)


def bench_non_digits(reader: Reader, n, seed, table, figures, samples: Path | None) -> None:
    predictor = reader.predictor
    rng = np.random.default_rng([seed, NON_DIGIT_STREAM])
    pictures, kinds = [], []
    for k in range(n):
        data, kind = non_digit_picture(rng)
        pictures.append(data)
        kinds.append(kind)
        if samples and kinds.count(kind) <= 4:
            ext = "jpg" if data[:2] == b"\xff\xd8" else "png"
            (samples / f"nondigit-{kind}-{k}.{ext}").write_bytes(data)
    kinds = np.array(kinds)
    ours = np.array([p.refused for p in reader.predict(pictures)])
    naive = np.array([p.refused for p in naive_predict(predictor, pictures)])
    figures["non_digits"] = {
        "all": {"n": n, "digitrec": float(ours.mean()), "naive": float(naive.mean())}
    }
    table.add("non-digits (all)", "refusal rate", float(naive.mean()), float(ours.mean()), n)
    for kind in NON_DIGIT_KINDS:
        pick = kinds == kind
        if not pick.any():
            continue
        o, v = float(ours[pick].mean()), float(naive[pick].mean())
        figures["non_digits"][kind] = {"n": int(pick.sum()), "digitrec": o, "naive": v}
        table.add(f"non-digits: {kind}", "refusal rate", v, o, int(pick.sum()))


def bench_mnist(predictor, test, table, figures) -> None:
    x = test.images.astype(np.float32) / 255.0  # already in MNIST form: one pipeline
    s = scores(predictor.judge(predictor.probabilities(x), x), test.labels)
    figures["mnist_test"] = s
    table.add_scores(
        "MNIST test (already 28x28)",
        None,
        s,
        ["accuracy", "refusal_rate", "accuracy_answered", "argmax_accuracy"],
    )


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default $DIGITREC_DATA)")
    parser.add_argument("--realworld", type=Path, default=DEFAULT_REALWORLD)
    parser.add_argument("--n", type=int, default=2000, help="pictures per generated set")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--samples", type=Path, default=None, help="save example pictures here")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="worker processes for digitrec's pipeline (1: all in this one); same figures",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    predictor = load_predictor(args.model)
    test = load_mnist("test", args.data_dir, progress=False)
    if args.samples:
        args.samples.mkdir(parents=True, exist_ok=True)
    table, figures, seconds = Table(), {}, {}
    n, seed, samples = args.n, args.seed, args.samples
    reader = Reader(predictor, args.jobs)
    steps = [
        ("realworld", lambda: bench_realworld(reader, args.realworld, table, figures)),
        ("canvas", lambda: bench_canvas(reader, test, n, seed, table, figures, samples)),
        ("numbers", lambda: bench_numbers(reader, test, n, seed, table, figures, samples)),
        ("non_digits", lambda: bench_non_digits(reader, n, seed, table, figures, samples)),
        ("mnist_test", lambda: bench_mnist(predictor, test, table, figures)),
    ]
    try:
        for name, step in steps:
            t = time.perf_counter()
            step()
            seconds[name] = round(time.perf_counter() - t, 2)
            _log(f"{name}: {seconds[name]:.1f} s")
    finally:
        reader.close()
    wall = time.perf_counter() - start

    meta = {
        "model": str(predictor.path),
        "model_name": predictor.name,
        "threshold": predictor.threshold,
        "n": n,
        "seed": seed,
        "jobs": args.jobs,
        "wall_s": round(wall, 2),
        "seconds": seconds,
        "machine": f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print(table.markdown())
    print()
    print(
        f"model {meta['model_name']} ({predictor.path.name}, refusal threshold "
        f"{predictor.threshold:.3g}); n={n} per generated set, seed {seed}; "
        f"wall time {wall:.1f} s with {args.jobs} worker process(es) "
        f"({', '.join(f'{k} {v:.1f} s' for k, v in seconds.items())}); "
        f"{meta['machine']}; Python {meta['python']}; {meta['date']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"meta": meta, "rows": table.rows, "figures": figures}
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
