"""Real people's digits to learn from: UNIPEN's pen strokes, drawn again the many ways people
draw on a canvas (pen widths, sizes, places, slants, tablet jaggedness, either polarity) and
read back through `to_mnist`, exactly as a user's drawing is read.

Only the `train` split is ever drawn for training: its writers are not those of `dev`, which
stays for measuring. Among the drawings are European-style 1s (an entry flag, sometimes a
foot) and crossed 7s made from the writers' own 1s and 7s, which MNIST's writers rarely made,
and 5s left without their flag (FLAGLESS_P), as hurried hands write them.

Data: "UNIPEN train_r01_v07, International Unipen Foundation, CC BY 4.0"
(doi:10.5281/zenodo.1195803), as `unipen_digits.jsonl.gz`: one JSON object per digit with
its `label`, `writer`, `split`, `flag` and `strokes` (lists of [x, y] points, y down).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError, EmptyImageError
from ..reading.preprocess import to_mnist

FILE_NAME = "unipen_digits.jsonl.gz"
ENV = "DIGITREC_UNIPEN"
SOURCE = {
    "name": "UNIPEN train_r01_v07, section 1a (isolated digits), train split",
    "credit": "UNIPEN train_r01_v07, International Unipen Foundation, CC BY 4.0",
    "licence": "CC BY 4.0",
    "url": "https://doi.org/10.5281/zenodo.1195803",
}
HELD_OUT = 0.1  # share of the train split's writers kept out of learning, to calibrate on
MAX_BYTES = 64 << 20  # the file is 3 MB; a bigger one is not the data set we know
CANVAS = 112  # px; drawn at twice this and box-reduced, so edges are anti-aliased
FLAG_P, FOOT_P, BAR_P = 0.35, 0.3, 0.35  # shares of 1s given a flag (and a foot), 7s a bar
# share of 5s whose flag, a stroke of its own, is left off (a hurried hand; 0: off): usps
# reads 99.38% (its 5s 98.2%, against 96.5% without); docs/benchmarks.md, "5s without their flag"
FLAGLESS_P = 0.2


@dataclass
class PenDigits:
    """The clean digits of one split: strokes (lists of (k, 2) float arrays), labels, writers."""

    strokes: list[list[np.ndarray]]
    labels: np.ndarray
    writers: list[str]
    sha256: str  # of the file they came from


def find_unipen(given: str | Path | None = None) -> Path:
    """The UNIPEN file: `given` (the file or its folder), else $DIGITREC_UNIPEN."""
    where = given or os.environ.get(ENV)
    if not where:
        raise DataError(
            f"this recipe also learns from UNIPEN's pen digits: give --unipen FILE (the "
            f"{FILE_NAME} of the UNIPEN digits, {SOURCE['url']}) or set ${ENV}, "
            "or train on MNIST alone with --pen 0"
        )
    path = Path(where).expanduser()
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise DataError(f"no UNIPEN file at {path}: give the path of {FILE_NAME}")
    return path


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path} is {path.stat().st_size:,} bytes: not the UNIPEN digits file")
    return path.read_bytes()


def pen_file_sha256(path: str | Path) -> str:
    return hashlib.sha256(_read(Path(path))).hexdigest()


def held_out_writer(writer: str) -> bool:
    """Whether a train-split writer is held out of learning (HELD_OUT of them, by hash;
    salted, as the split into train and dev was made on the writers' bare hash)."""
    digest = hashlib.sha256(f"digitrec held out:{writer}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < HELD_OUT * 2**32


def pen_source(path: Path, sha256: str, drawn: int, held_out: int) -> dict:
    """The card's entry for the pen digits a model learned from."""
    return {
        **SOURCE,
        "file": path.name,
        "sha256": sha256,
        "drawings": drawn,
        "held_out_drawings": held_out,
        "held_out_writers": f"{HELD_OUT:.0%} of the train split's writers, by SHA-256 of "
        "their name: they choose the refusal threshold",
    }


def load_pen_digits(path: str | Path, split: str) -> PenDigits:
    """The clean digits (no flag, two points or more, some height) of `split`."""
    path = Path(path)
    raw = _read(path)
    strokes, labels, writers = [], [], []
    try:
        lines = gzip.decompress(raw).splitlines()
        for line in lines:
            row = json.loads(line)
            if row["split"] != split or row["flag"]:
                continue
            digit = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in row["strokes"] if s]
            points = np.concatenate(digit) if digit else np.zeros((0, 2))
            if len(points) < 2 or np.ptp(points[:, 1]) == 0:
                continue
            strokes.append(digit)
            labels.append(int(row["label"]))
            writers.append(str(row["writer"]))
    except (OSError, EOFError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not the UNIPEN digits file ({e})") from None
    if not labels or not set(labels) <= set(range(10)):
        raise DataError(f"{path} holds no {split} digits labelled 0-9")
    return PenDigits(strokes, np.asarray(labels), writers, hashlib.sha256(raw).hexdigest())


def _unit(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """The strokes moved and scaled so their path is 1 tall, centred on (0, 0)."""
    points = np.concatenate(strokes)
    lo, hi = points.min(0), points.max(0)
    return [(s - (lo + hi) / 2) / (hi[1] - lo[1]) for s in strokes]


def _crossing_x(strokes: list[np.ndarray], y: float) -> float | None:
    """Where the path first crosses height y, left to right; None if it never does."""
    xs = []
    for s in strokes:
        for (x0, y0), (x1, y1) in zip(s[:-1], s[1:], strict=True):
            if (y0 - y) * (y1 - y) <= 0 and y0 != y1:
                xs.append(x0 + (y - y0) / (y1 - y0) * (x1 - x0))
    return min(xs) if xs else None


def european_one(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A 1 given an entry flag down to the left of its top (steeper than a 7's bar), and
    sometimes a foot."""
    points = np.concatenate(strokes)
    top = points[np.argmin(points[:, 1])]
    length, angle = rng.uniform(0.2, 0.45), math.radians(rng.uniform(35, 65))
    start = top + length * np.array([-math.cos(angle), math.sin(angle)])
    out = [np.stack([start, top]), *strokes]
    if rng.random() < FOOT_P:
        bottom = points[np.argmax(points[:, 1])]
        half = rng.uniform(0.12, 0.28)
        out.append(bottom + np.array([[-half, 0.0], [half, rng.normal(0, 0.02)]]))
    return out


def crossed_seven(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A 7 with a bar across its stem near the middle (unchanged if no stem crosses there)."""
    y = rng.uniform(-0.05, 0.12)
    x = _crossing_x(strokes, y)
    if x is None:
        return strokes
    half, tilt = rng.uniform(0.12, 0.25), rng.normal(0, 0.03)
    return [*strokes, np.array([[x - half, y + tilt], [x + half, y - tilt]])]


def flagless_five(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """A 5 without its flag, as hurried hands leave it off: the flag is a stroke of its own
    (not the longest), wider than tall, in the top quarter (unchanged if there is none)."""
    if len(strokes) < 2:
        return strokes
    lengths = [float(np.abs(np.diff(s, axis=0)).sum()) for s in strokes]
    main = int(np.argmax(lengths))
    for i, s in enumerate(strokes):
        if i != main and s[:, 1].mean() < -0.25 and np.ptp(s[:, 0]) > np.ptp(s[:, 1]):
            return strokes[:i] + strokes[i + 1 :]
    return strokes


def _restyle(strokes, label: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The writer's strokes as another hand or tablet would give them: fewer points
    (polygonal), jitter, a slant, a turn and another width."""
    strokes = _unit(strokes)
    if label == 1 and rng.random() < FLAG_P:
        strokes = european_one(strokes, rng)
    elif label == 7 and rng.random() < BAR_P:
        strokes = crossed_seven(strokes, rng)
    elif label == 5 and FLAGLESS_P and rng.random() < FLAGLESS_P:
        strokes = flagless_five(strokes)
    if rng.random() < 0.3:  # a tablet that samples seldom, or a coarse one
        step = int(rng.integers(2, 5))
        strokes = [np.concatenate([s[:-1:step], s[-1:]]) if len(s) > 2 else s for s in strokes]
    jitter = rng.uniform(0, 0.012)
    shear, turn = rng.uniform(-0.35, 0.35), math.radians(rng.normal(0, 6))
    squash = math.exp(rng.normal(0, 0.15))
    c, s = math.cos(turn), math.sin(turn)
    m = np.array([[c, -s], [s, c]]) @ np.array([[squash, shear], [0.0, 1.0]])
    return [(p + rng.normal(0, jitter, p.shape)) @ m.T for p in strokes]


def draw_pen(
    strokes, label: int, rng: np.random.Generator, size: int = CANVAS, plain: bool = False
) -> np.ndarray:
    """One drawing of the digit, (size, size) uint8: dark ink on light paper, or (a quarter
    of the time) light on dark; its height, pen, place and (unless `plain`: the writer's
    strokes as they were) style drawn from rng."""
    strokes = _unit(strokes) if plain else _restyle(strokes, label, rng)
    height = rng.uniform(0.3, 0.78) * size
    pen = height * math.exp(rng.uniform(math.log(0.05), math.log(0.25)))

    def place(half: np.ndarray) -> np.ndarray:
        centre = size / 2 + rng.uniform(-0.2, 0.2, 2) * size
        return np.clip(centre, half + 2, size - half - 2)

    ink = paint(strokes, size, height, pen, place)
    return 255 - ink if rng.random() < 0.25 else ink


def paint(
    strokes: list[np.ndarray],
    size: int,
    height: float,
    pen: float,
    place: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The strokes drawn dark on light, (size, size) uint8, anti-aliased (drawn at twice
    the size and box-reduced), with a round pen `pen` px wide; their path `height` px high
    (narrowed to fit the canvas), its box's centre where `place(half)` puts it (half: the
    box's half size, pen included)."""
    points = np.concatenate(strokes)
    lo, hi = points.min(0), points.max(0)
    room = size - pen - 4
    scale = min(height / (hi[1] - lo[1]), room / max(hi[0] - lo[0], 1e-6))
    centre = place((hi - lo) * scale / 2 + pen / 2)
    k = 2  # supersampling
    picture = Image.new("L", (size * k, size * k), 255)
    draw = ImageDraw.Draw(picture)
    r = pen * k / 2
    for stroke in strokes:
        q = ((stroke - (lo + hi) / 2) * scale + centre) * k
        if len(q) > 1:
            draw.line([tuple(p) for p in q], fill=0, width=max(1, round(2 * r)))
        for x, y in q:  # round caps and joins; a one-point stroke is a dot
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(picture.reduce(k), dtype=np.uint8)


def pen_bank(path: str, sha256: str, n: int, seed: int, part: str) -> tuple[np.ndarray, np.ndarray]:
    """n drawings of UNIPEN's train digits in MNIST form, (n, 28, 28) float32, and their
    labels, from the writers learned from (part "learn") or those held out ("held_out"):
    every digit drawn in turn, in an order and styles repeatable from the seed. The held-out
    writers' digits are drawn plainly (their own strokes, only the pen, size and place
    vary), as people's drawings come to the Predictor: they choose the refusal threshold,
    which must fit real drawings, not the training's harder restyled ones. `sha256` is the
    file's, so a cached bank is built again if the file changes."""
    digits = load_pen_digits(path, "train")
    if digits.sha256 != sha256:
        raise DataError(f"{path} changed while it was being read: try again")
    plain = part == "held_out"
    held = np.array([held_out_writer(w) for w in digits.writers])
    pool = np.flatnonzero(held if part == "held_out" else ~held)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(pool) for _ in range(-(-n // len(pool)))])
    x = np.zeros((n, 28, 28), dtype=np.float32)
    y = np.zeros(n, dtype=np.int64)
    for i, j in enumerate(order[:n]):
        label = int(digits.labels[j])
        while True:  # a drawing to_mnist finds no ink in is drawn again
            try:
                x[i] = to_mnist(draw_pen(digits.strokes[j], label, rng, plain=plain))
                break
            except EmptyImageError:
                continue
        y[i] = label
    return x, y
