"""Training digits boxed as form readers box them: stretched to fill a small box, read back."""

import numpy as np
import pytest

from digitrec.errors import DataError
from digitrec.reading.preprocess import crop_to_ink
from digitrec.training.framed import framed, framed_bank
from digitrec.training.synthetic import draw_strokes


def narrow_one() -> np.ndarray:
    """A 1 leaning a little, three times as tall as it is wide, white on black, 28x28."""
    return draw_strokes([[(1.0, 0.0), (0.0, 1.0)]], 28, 2, (11, 4, 17, 24))


def _ink_box(x: np.ndarray) -> tuple[int, int]:
    cut = crop_to_ink(x, 0.1)
    assert cut is not None
    return cut[0].shape


def test_a_narrow_one_stretched_to_fill_its_box_comes_back_wide():
    widths = []
    for seed in range(20):
        x = framed(narrow_one(), np.random.default_rng(seed))
        assert x.shape == (28, 28) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
        h, w = _ink_box(x)
        widths.append(w / h)
    # kept to its aspect the 1 is a third as wide as tall; most boxes stretch it to a square
    assert np.mean(np.array(widths) > 0.8) >= 0.5
    assert max(widths) <= 1.2


def test_a_square_digit_keeps_its_shape():
    """... but for a black-and-white box it fills edge to edge, which to_mnist reads
    narrowed, as it reads every such picture (a digit stretched to fill its box)."""
    zero = draw_strokes(
        [[(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5), (0.5, 0.0)]], 28, 2, (4, 4, 24, 24)
    )
    shapes = []
    for seed in range(12):
        h, w = _ink_box(framed(zero, np.random.default_rng(seed)))
        shapes.append(w / h)
    square = [0.8 <= r <= 1.25 for r in shapes]
    assert all(s or 0.55 <= r <= 0.75 for s, r in zip(square, shapes, strict=True)), shapes
    assert np.mean(square) >= 0.5


def test_the_bank_is_repeatable_and_keeps_labels():
    images = np.stack([narrow_one() * 255, np.zeros((28, 28), np.float32)]).astype(np.uint8)
    labels = np.array([1, 0])
    x, y = framed_bank(images, labels, 12, seed=3)
    x2, y2 = framed_bank(images, labels, 12, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    # the blank picture has nothing to box: every digit in the bank is the 1
    assert (y == 1).all() and (x.reshape(12, -1).max(1) > 0.5).all()
    assert not np.array_equal(x, framed_bank(images, labels, 12, seed=4)[0])


def test_digits_with_no_ink_stop_the_bank_instead_of_looping():
    blank = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(DataError, match="no ink"):
        framed_bank(blank, np.array([0, 1, 2]), 5, seed=0)
