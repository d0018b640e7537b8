"""Several digits in one picture: grouping strokes into digits, lines, specks, touching digits."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitrec.inference import Predictor
from digitrec.preprocess import ink_map
from digitrec.segment import segment
from digitrec.synthetic import draw_number, draw_strokes


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def paper(ink: np.ndarray) -> np.ndarray:
    """Dark ink on white paper, as uint8 grey."""
    return np.round(255 * (1 - np.clip(ink, 0, 1))).astype(np.uint8)


def strokes_picture(strokes, size=200, pen=12) -> np.ndarray:
    return draw_strokes(strokes, size, pen, (40, 20, 160, 180))


def boxes(lines):
    return [[s.box for s in line] for line in lines]


@pytest.mark.parametrize(
    "upright",
    [[(0.72, 0.25), (0.7, 1.0)], [(0.62, 0.75), (0.6, 1.0)]],
    ids=["upright-beside-the-bar", "upright-below-the-bar"],
)
def test_a_four_drawn_in_two_separate_strokes_is_one_digit(predictor, upright):
    bar = [(0.55, 0.0), (0.1, 0.62)] + ([(0.58, 0.62)] if upright[0][1] < 0.5 else [(0.9, 0.62)])
    ink = strokes_picture([bar, upright])
    assert ndi.label(ink > 0.3)[1] == 2  # really two pieces of ink
    assert predictor.read_number(paper(ink)).text == "4"
    assert predictor.predict(paper(ink)).digit == 4


def test_a_five_with_a_detached_bar_is_one_digit():
    five = [
        [(0.3, 0.0), (0.9, 0.0)],
        [(0.28, 0.14), (0.25, 0.45), (0.6, 0.4), (0.85, 0.62), (0.7, 0.92), (0.2, 0.95)],
    ]
    ink = strokes_picture(five)
    assert ndi.label(ink > 0.3)[1] == 2
    assert [len(line) for line in segment(ink_map(paper(ink)))] == [1]


def test_a_crossed_seven_is_one_digit(predictor):
    seven = [[(0.1, 0.0), (0.9, 0.0), (0.45, 1.0)], [(0.35, 0.5), (0.85, 0.48)]]
    ink = strokes_picture(seven)
    reading = predictor.read_number(paper(ink))
    assert reading.text == "7"


def test_specks_are_ignored(predictor):
    ink = draw_number("12")
    rng = np.random.default_rng(0)
    for y, x in rng.integers(5, min(ink.shape) - 5, size=(6, 2)):
        ink[y : y + 2, x : x + 2] = 1.0  # pen dots and dust
    assert predictor.read_number(paper(ink)).text == "12"


def test_digits_are_read_left_to_right_with_boxes(predictor):
    ink = draw_number("4096")
    reading = predictor.read_number(paper(ink))
    assert reading.text == "4096" and not reading.refused
    lefts = [p.box[0] for p in reading.digits]
    assert lefts == sorted(lefts)
    for p in reading.digits:
        left, top, right, bottom = p.box
        assert right > left and bottom > top
        assert ink[top:bottom, left:right].max() > 0.5  # the box holds ink
        assert p.confidence > 0.5


def test_lines_are_read_top_to_bottom(predictor):
    top, bottom = draw_number("12"), draw_number("345")
    width = max(top.shape[1], bottom.shape[1])
    ink = np.zeros((top.shape[0] + bottom.shape[0], width), np.float32)
    ink[: top.shape[0], : top.shape[1]] = top
    ink[top.shape[0] :, : bottom.shape[1]] = bottom
    reading = predictor.read_number(paper(ink))
    assert reading.text == "12\n345" and len(reading.lines) == 2
    data = reading.to_dict()
    assert data["number"] == "12\n345" and data["lines"] == 2 and len(data["digits"]) == 5


def test_touching_digits_are_cut_apart(predictor):
    ink = draw_number("40", gap=-0.12)
    assert ndi.label(ink > 0.3)[1] == 1  # one piece of ink: the digits touch
    reading = predictor.read_number(paper(ink))
    assert reading.text == "40"
    assert len(segment(ink_map(paper(ink)))[0]) == 1  # without a recogniser: one piece


def test_read_number_on_a_blank_picture_is_refused(predictor):
    reading = predictor.read_number(np.full((100, 300), 255, np.uint8))
    assert reading.refused and reading.text == "" and reading.to_dict()["reason"] == "blank"
