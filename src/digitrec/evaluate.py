"""Accuracy of a Predictor on MNIST's test set or a folder dataset, with a PNG report
(confusion matrix, grid of the misread digits). Torch-free."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data import list_folder_dataset, load_mnist
from .errors import OutputExistsError
from .reading.parallel import read_many
from .reading.predictor import Predictor
from .reading.preprocess import IMAGE_SIZE

UNREADABLE = -1  # the prediction recorded for a picture that could not be read


@dataclass
class EvalResult:
    labels: np.ndarray  # (N,) true digits
    predicted: np.ndarray  # (N,) predicted digits, UNREADABLE where the picture failed
    confidence: np.ndarray  # (N,)
    inputs: np.ndarray  # (N, 28, 28) what the model saw
    names: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else 0.0

    def confusion(self) -> np.ndarray:
        """Rows: true digit; columns: predicted digit (unreadable pictures are left out)."""
        m = np.zeros((10, 10), dtype=np.int64)
        ok = self.predicted != UNREADABLE
        np.add.at(m, (self.labels[ok], self.predicted[ok]), 1)
        return m

    def per_class(self) -> dict[str, dict]:
        m = self.confusion()
        out = {}
        for d in range(10):
            n = int((self.labels == d).sum())
            said = int(m[:, d].sum())
            out[str(d)] = {
                "n": n,
                "precision": round(m[d, d] / said, 6) if said else None,
                "recall": round(m[d, d] / n, 6) if n else None,
            }
        return out

    def summary(self) -> dict:
        s = {
            "accuracy": round(self.accuracy, 6),
            "n": len(self.labels),
            "per_class": self.per_class(),
            "source": self.source,
        }
        recalls = [c["recall"] for c in s["per_class"].values() if c["recall"] is not None]
        s["balanced_accuracy"] = round(float(np.mean(recalls)), 6) if recalls else 0.0
        s["unreadable"] = int((self.predicted == UNREADABLE).sum())
        return s

    def text(self) -> str:
        s = self.summary()
        lines = [
            f"{s['source']}: accuracy {100 * s['accuracy']:.2f}% of {s['n']:,} "
            f"(balanced {100 * s['balanced_accuracy']:.2f}%, "
            f"{s['n'] - round(s['accuracy'] * s['n'])} wrong)",
            "digit      n  precision  recall",
        ]
        for d, c in s["per_class"].items():
            p = "-" if c["precision"] is None else f"{100 * c['precision']:.2f}%"
            r = "-" if c["recall"] is None else f"{100 * c['recall']:.2f}%"
            lines.append(f"{d:>5} {c['n']:>6} {p:>10} {r:>7}")
        if s["unreadable"]:
            lines.append(f"{s['unreadable']} pictures could not be read and count as wrong")
        return "\n".join(lines)


def evaluate_mnist(predictor: Predictor, data_dir=None, progress: bool = True) -> EvalResult:
    split = load_mnist("test", data_dir, progress=progress)
    inputs = split.images.astype(np.float32) / 255.0  # already in MNIST form
    probs = predictor.probabilities(inputs)
    return EvalResult(
        labels=split.labels,
        predicted=probs.argmax(1),
        confidence=probs.max(1),
        inputs=inputs,
        names=[f"test[{i}]" for i in range(len(inputs))],
        source="MNIST test set",
    )


def evaluate_folder(predictor: Predictor, root, progress: bool = True) -> EvalResult:
    from tqdm import tqdm

    items = list_folder_dataset(root)
    # a picture that is blank or cannot be read counts as a wrong answer, shown blank
    with tqdm(total=len(items), desc="reading", disable=not progress, file=sys.stderr) as bar:
        read = read_many([path for path, _ in items], predictor.readers, progress=bar.update)
    inputs = np.zeros((len(items), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    inputs[read.kept] = read.inputs
    readable = np.zeros(len(items), dtype=bool)
    readable[read.kept] = True
    probs = predictor.probabilities(inputs)
    predicted = np.where(readable, probs.argmax(1), UNREADABLE)
    return EvalResult(
        labels=np.array([label for _, label in items]),
        predicted=predicted,
        confidence=np.where(readable, probs.max(1), 0.0),
        inputs=inputs,
        names=[str(p) for p, _ in items],
        source=str(root),
    )


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def confusion_png(result: EvalResult, path: Path) -> None:
    m = result.confusion()
    cell, margin = 48, 70
    img = Image.new("RGB", (margin + 10 * cell + 10, margin + 10 * cell + 10), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(16), _font(13)
    row_sums = m.sum(1, keepdims=True).clip(min=1)
    for t in range(10):
        draw.text((margin - 22, margin + t * cell + 16), str(t), fill="black", font=font)
        draw.text((margin + t * cell + 20, margin - 24), str(t), fill="black", font=font)
        for p in range(10):
            share = m[t, p] / row_sums[t, 0]
            if t == p:
                colour = (int(255 - 180 * share), int(255 - 90 * share), int(255 - 180 * share))
            else:
                colour = (
                    255,
                    int(255 - 255 * min(1, 8 * share)),
                    int(255 - 255 * min(1, 8 * share)),
                )
            x0, y0 = margin + p * cell, margin + t * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline="#ccc")
            if m[t, p]:
                draw.text((x0 + 4, y0 + 16), str(m[t, p]), fill="black", font=small)
    draw.text((margin, 8), "true digit (rows) / predicted (columns)", fill="black", font=small)
    img.save(path)


def errors_png(result: EvalResult, path: Path, limit: int = 200) -> None:
    wrong = np.flatnonzero(result.predicted != result.labels)[:limit]
    cols, tile, label_h = 20, 56, 16
    rows = max(1, -(-len(wrong) // cols))
    img = Image.new("RGB", (cols * tile, rows * (tile + label_h)), "white")
    draw = ImageDraw.Draw(img)
    font = _font(12)
    for k, i in enumerate(wrong):
        x, y = (k % cols) * tile, (k // cols) * (tile + label_h)
        digit = Image.fromarray((255 * (1 - result.inputs[i])).astype(np.uint8)).resize(
            (tile - 4, tile - 4)
        )
        img.paste(digit, (x + 2, y + 2))
        said = "?" if result.predicted[i] == UNREADABLE else str(result.predicted[i])
        draw.text((x + 4, y + tile - 2), f"{result.labels[i]}->{said}", fill="#b00", font=font)
    img.save(path)


REPORT_FILES = ("confusion.png", "errors.png", "summary.json")


def check_report_folder(folder, force: bool = False) -> None:
    """A report goes into a new folder; an existing one is replaced only with `force`
    (asked before evaluating, so a long run never ends on this refusal)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder} exists and is not a folder: give --report a folder")
    if folder.exists() and any(folder.iterdir()) and not force:
        raise OutputExistsError(f"{folder} exists; use --force to write the report over it")


def write_report(result: EvalResult, folder, force: bool = False) -> Path:
    """confusion.png, errors.png (true->predicted under each misread digit), summary.json."""
    check_report_folder(folder, force)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    confusion_png(result, folder / "confusion.png")
    errors_png(result, folder / "errors.png")
    (folder / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return folder
