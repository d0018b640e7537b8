"""Digits as form readers keep them: cut out and stretched to fill a small box (16-32
pixels a side), often made binary, then read back by the same preprocessing as a user's
picture. Scans of forms reach us this way (usps, optdigits and other scanned sets): a narrow
1 stretched to a square comes out with a stem as thick as it is tall, which nothing in
MNIST (fitted keeping its aspect) looks like.

`framed_bank` is repeatable from its seed; callers pass training digits only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import EmptyImageError
from ..reading.preprocess import crop_to_ink, to_mnist

INK = 0.1  # pixels above this are part of a digit when cutting it out
SIDES = (16, 33)  # the box's side, from 16 to 32 pixels
FULL_STRETCH = 0.7  # share of digits stretched to fill the box's width as well as its height
BINARY = 0.6  # share of boxes made binary (black or white pixels only)


def framed(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit (28x28, white on black, 0-1 or 0-255) cut out and stretched into a box,
    in MNIST form again; EmptyImageError when it has no ink."""
    x = np.asarray(digit, dtype=np.float32)
    cut = crop_to_ink(x / 255.0 if x.max() > 1.0 else x, INK)
    if cut is None:
        raise EmptyImageError("no ink")
    ink = cut[0]
    side = int(rng.integers(*SIDES))
    h, w = ink.shape
    kept = max(1, round(side * w / h)) if h >= w else side  # the width keeping its aspect
    width = side if rng.random() < FULL_STRETCH else int(rng.integers(min(kept, side), side + 1))
    height = side if h >= w else max(1, round(side * h / w))
    box = Image.fromarray(ink).resize((width, height), Image.Resampling.BILINEAR)
    box = np.clip(np.asarray(box), 0.0, 1.0)
    if rng.random() < BINARY:
        box = (box > rng.uniform(0.3, 0.6)).astype(np.float32)
    margin = int(rng.integers(0, 3))
    box = np.pad(box, margin)
    return to_mnist((box * 255).astype(np.uint8))


def framed_bank(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """n of these digits, boxed as form readers box them: (n, 28, 28) float32 and labels."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    y = np.zeros(n, dtype=np.int64)
    i = 0
    while i < n:
        j = int(rng.integers(len(images)))
        try:
            out[i] = framed(images[j], rng)
        except EmptyImageError:  # a digit too faint to cut out: take another
            continue
        y[i] = labels[j]
        i += 1
    return out, y
