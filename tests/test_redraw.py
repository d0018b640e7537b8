"""Training digits drawn again as people draw them: other pens, European 1s and 7s, pairs."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.data import load_mnist
from digitrec.reading.preprocess import PAIR_FIELD
from digitrec.training.redraw import (
    crossed_seven,
    european_one,
    pair_bank,
    pair_ink,
    redrawn_bank,
    touching_pairs,
)
from digitrec.training.synthetic import draw_strokes


@pytest.fixture(scope="module")
def train_digits(mnist_dir):
    split = load_mnist("train", mnist_dir, download=False, progress=False)
    return split.images[:2000], split.labels[:2000]


def upright_one() -> np.ndarray:
    return draw_strokes([[(0.5, 0.0), (0.5, 1.0)]], 120, 8, (20, 10, 100, 110))


def _added(one: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """What european_one drew: the room it made is on the left (for the flag), then on the
    right (for a foot) in the ratio 55:20."""
    extra = flagged.shape[1] - one.shape[1]
    left = round(extra * 55 / 75)
    return (flagged > 0.5) & ~np.pad(one > 0.5, ((0, 0), (left, extra - left)))


@pytest.mark.parametrize("seed", range(6))
def test_a_european_one_gets_a_flag_down_to_the_left_of_its_top(seed):
    one = upright_one()  # the stem runs from y=10 to y=110 at x=60
    flagged = european_one(one, np.random.default_rng(seed))
    pad = round((flagged.shape[1] - one.shape[1]) * 55 / 75)
    added = _added(one, flagged)
    foot = added.copy()
    foot[: 10 + 90] = False  # a foot, if any, lies along the bottom of the stem
    added[10 + 90 :] = False
    if foot.any():
        fx = np.nonzero(foot)[1]
        assert fx.min() < pad + 60 - 10 and fx.max() > pad + 60 + 10  # across the stem
    ys, xs = np.nonzero(added)
    stem_x = pad + 60
    assert added.sum() > 0.1 * (one > 0.5).sum()
    assert xs.max() <= stem_x + 8 and xs.min() < stem_x - 10  # left of the stem (pen 8)
    assert ys.max() < 10 + 0.5 * 100  # in the upper half of the 1
    # falling to the left: its lowest point is its leftmost, not flat like a 7's bar
    slope = (ys[xs == xs.min()].mean() - ys[xs == xs.max()].mean()) / (xs.max() - xs.min())
    assert 0.4 < slope < 2.5  # 30-65 degrees below the horizontal, less the pen's width


def test_a_leaning_one_is_left_alone():
    leaning = draw_strokes([[(0.8, 0.0), (0.2, 1.0)]], 120, 8, (10, 10, 110, 110))
    assert np.array_equal(european_one(leaning, np.random.default_rng(0)), leaning)


def test_a_crossed_seven_gets_a_bar_across_its_stem():
    seven = draw_strokes([[(0.1, 0.0), (0.9, 0.0), (0.45, 1.0)]], 120, 8, (10, 10, 110, 110))
    crossed = crossed_seven(seven, np.random.default_rng(1))
    pad = (crossed.shape[1] - seven.shape[1]) // 2
    added = (crossed > 0.5) & ~np.pad(seven > 0.5, ((0, 0), (pad, pad)))
    ys, xs = np.nonzero(added)
    assert 40 < ys.mean() < 80  # around the middle of its height
    row = int(round(ys.mean()))
    stem = np.flatnonzero(np.pad(seven, ((0, 0), (pad, pad)))[row] > 0.5).mean()
    assert xs.min() < stem - 10 and xs.max() > stem + 10  # on both sides of the stem


def test_redrawn_digits_are_in_mnist_form_and_repeatable(train_digits):
    images, labels = train_digits
    x, y = redrawn_bank(images, labels, 40, seed=3)
    again, y2 = redrawn_bank(images, labels, 40, seed=3)
    assert x.shape == (40, 28, 28) and x.dtype == np.float32 and y.shape == (40,)
    assert np.array_equal(x, again) and np.array_equal(y, y2)
    assert set(y) <= set(range(10)) and x.min() >= 0 and x.max() <= 1
    for digit in x:
        cy, cx = ndi.center_of_mass(digit)
        assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5
        rows, cols = np.nonzero(digit > 0.25)
        assert max(np.ptp(rows), np.ptp(cols)) <= 22


def test_touching_pairs_are_one_piece_of_ink(train_digits):
    images, _ = train_digits
    rng = np.random.default_rng(4)
    pieces = [
        ndi.label(pair_ink(images[i], images[i + 1], rng, touch=True) > 0.1)[1] for i in range(40)
    ]
    assert np.mean(np.array(pieces) == 1) >= 0.9
    apart = [
        ndi.label(pair_ink(images[i], images[i + 1], rng, touch=False) > 0.5)[1] for i in range(40)
    ]
    assert np.mean(np.array(apart) >= 2) >= 0.6


def test_pair_bank_holds_pairs_with_both_labels(train_digits):
    images, labels = train_digits
    x, y = pair_bank(images, labels, 20, seed=5)
    assert x.shape == (20, *PAIR_FIELD) and y.shape == (20, 2)
    assert set(y.ravel()) <= set(range(10))
    # the ink spreads across the wide field: a pair is wider than one digit
    widths = [np.ptp(np.nonzero(p.max(0) > 0.25)[0]) for p in x]
    assert np.median(widths) > 24
    assert touching_pairs(images, 5, seed=6).shape == (5, 28, 28)
