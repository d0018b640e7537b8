"""Digits as form readers keep them: cut out and stretched to fill a small box (16-32
pixels a side), often made binary, then read back by the same preprocessing as a user's
picture. Scans of forms reach us this way (usps and optdigits are kept so, by their
READMEs): a narrow 1 stretched towards a square comes out with a thick stem, which nothing
in MNIST (fitted keeping its aspect) looks like. (A black-and-white box that the digit
fills edge to edge is read narrowed by to_mnist, here as in use: preprocess._unstretched.)

`framed_bank` is repeatable from its seed; callers pass training digits only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import DataError, EmptyImageError
from ..reading.preprocess import to_mnist
from .redraw import cut_out, resized

SIDES = (16, 33)  # the box's side, from 16 to 32 pixels
FULL_STRETCH = 0.7  # share of digits stretched to fill the box's width as well as its height
BINARY = 0.6  # share of boxes made binary (black or white pixels only)


def framed(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit (28x28, white on black, 0-1 or 0-255) cut out and stretched into a box,
    in MNIST form again; EmptyImageError when it has no ink."""
    ink = cut_out(digit)
    side = int(rng.integers(*SIDES))
    h, w = ink.shape
    kept = max(1, round(side * w / h)) if h >= w else side  # the width keeping its aspect
    width = side if rng.random() < FULL_STRETCH else int(rng.integers(kept, side + 1))
    height = side if h >= w else max(1, round(side * h / w))
    box = resized(ink, width, height, Image.Resampling.BILINEAR)
    if rng.random() < BINARY:
        box = (box > rng.uniform(0.3, 0.6)).astype(np.float32)
    margin = int(rng.integers(0, 3))
    box = np.pad(box, margin)
    return to_mnist((box * 255).astype(np.uint8))


def framed_bank(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """n of these digits, boxed as form readers box them: (n, 28, 28) float32 and labels.
    A digit that comes out with no ink is replaced by another; DataError when over
    10 n + 100 picks had none, so digits nearly all blank cannot loop forever."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    y = np.zeros(n, dtype=np.int64)
    i, failed = 0, 0
    while i < n:
        j = int(rng.integers(len(images)))
        try:
            out[i] = framed(images[j], rng)
        except EmptyImageError:
            failed += 1
            if failed > 10 * n + 100:
                raise DataError(
                    f"{failed} of the digits picked to box had no ink: check the training images"
                ) from None
            continue
        y[i] = labels[j]
        i += 1
    return out, y
