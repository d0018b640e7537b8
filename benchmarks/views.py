"""Accuracy of a model on each of several views of the same pictures (rotated, zoomed,
squashed, thinner, thicker: digitrec.reading.views) and on their averaged probabilities,
what test-time augmentation of every picture gives (the Predictor's second look averages
them for its unsure answers only; printed too, with the picture's own reading counted as 1,
2, 4 or 8 views, and looking again below other levels of sureness than SECOND_LOOK). Sets: held-out UNIPEN train writers (drawn plainly),
optdigits32, usps, MNIST test.

    DIGITREC_DATA=../shared/data/mnist DIGITREC_UNIPEN=../shared/data/realworld/unipen \
        python benchmarks/views.py [MODEL]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from digitrec import load_predictor
from digitrec.data import list_folder_dataset, load_mnist
from digitrec.reading.calibrate import SECOND_LOOK
from digitrec.reading.preprocess import to_mnist_many
from digitrec.reading.views import VIEWS, view
from digitrec.training.fit import VAL_SPLIT_SEED
from digitrec.training.pen import find_unipen, pen_bank, pen_file_sha256

REALWORLD = Path(__file__).resolve().parents[2] / "shared/data/realworld"


def folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    items = list_folder_dataset(root)
    read = to_mnist_many([f for f, _ in items])
    return read.inputs.astype(np.float32), np.array([label for _, label in items])[read.kept]


def main() -> None:
    predictor = load_predictor(sys.argv[1] if len(sys.argv) > 1 else None)
    path = find_unipen(None)
    pen_x, pen_y = pen_bank(str(path), pen_file_sha256(path), 5000, VAL_SPLIT_SEED, "held_out")
    test = load_mnist("test")
    sets = {
        "held-out pen writers": (np.asarray(pen_x, np.float32), np.asarray(pen_y)),
        "optdigits32": folder(REALWORLD / "optdigits32"),
        "usps": folder(REALWORLD / "usps"),
        "MNIST test": (test.images.astype(np.float32) / 255, np.asarray(test.labels)),
    }
    for name, (x, y) in sets.items():
        probs = {"orig": predictor.classify(x)}
        probs.update({v: predictor.classify(view(x, v)) for v in VIEWS})
        acc = {v: f"{100 * (p.argmax(1) == y).mean():.2f}" for v, p in probs.items()}
        mean = np.mean(list(probs.values()), axis=0)
        print(name, acc, f"all views averaged {100 * (mean.argmax(1) == y).mean():.2f}")
        # the second look (answers under SECOND_LOOK only), the picture's own reading
        # counted as `weight` views
        orig, seen = probs["orig"], np.stack([probs[v] for v in VIEWS])
        unsure = orig.max(1) < SECOND_LOOK
        looked = {}
        for weight in (1, 2, 4, 8):
            p = orig.copy()
            p[unsure] = (weight * orig[unsure] + seen[:, unsure].sum(0)) / (weight + len(seen))
            looked[weight] = f"{100 * (p.argmax(1) == y).mean():.2f}"
        print(name, "second look, own reading weighted 1/2/4/8:", looked)
        # ... and looking again at the answers under other levels of sureness (weight 1)
        wrong = {}
        for below in (0.0, 0.5, 0.7, 0.8, SECOND_LOOK, 0.95, 0.99):
            p, unsure = orig.copy(), orig.max(1) < below
            p[unsure] = (orig[unsure] + seen[:, unsure].sum(0)) / (1 + len(seen))
            wrong[below] = int((p.argmax(1) != y).sum())
        print(name, f"second look below each level, digits wrong of {len(y)}:", wrong)


if __name__ == "__main__":
    main()
