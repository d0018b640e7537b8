"""Split a picture of several digits into one ink map per digit, in reading order: lines top
to bottom, digits left to right.

Works on the ink map that preprocess.ink_map makes, cleaned of specks and border lines as
for one digit (preprocess.clean). Pieces of ink that overlap in x and nearly touch in y are
one digit (a 5's detached bar, a 4 drawn in two strokes); a piece too wide for one digit is cut where the shape is thinnest, keeping the cut
only when the recogniser (a `score` function the caller gives) likes the parts better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import EmptyImageError
from .preprocess import clean, crop_to_ink, ink_components

SAME_DIGIT_X = 0.5  # x-overlap, as a share of the narrower piece, that makes one digit
SAME_DIGIT_GAP = 0.35  # ... if the vertical gap is under this share of the taller piece
SAME_LINE_Y = 0.4  # y-overlap, as a share of the shorter digit, that makes one line
WIDE = 1.15  # a digit wider than this times its height may be two touching digits
SURE = 0.9  # ... and so may a narrower piece read with less confidence than this
NARROW = 0.7  # ... unless it is narrower than this times its height
STROKE = 0.3  # ink above this counts when looking for the thinnest place to cut
DIGIT_ASPECT = 0.75  # a handwritten digit's usual width over its height
MAX_TOUCHING = 4  # the most digits looked for in one piece of ink
CLOSE = 0.15  # neighbours nearer than this share of their height may be one digit
BROKEN = 0.5  # ... and so may an unreadable piece this near its neighbour
MORE_CUTS = 0.1  # how much better a reading with more cuts must be

Score = Callable[[list[np.ndarray]], list[float]]


@dataclass
class Segment:
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive) in ink-map pixels
    ink: np.ndarray  # the ink map of this digit alone, cropped to its box


class _Groups:
    """Union-find over indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def sets(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return min(a1, b1) - max(a0, b0)


def _union_box(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around several boxes of that form."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


class _Digit:
    """A candidate digit: the labels of its pieces of ink and their joint box."""

    def __init__(self, box: tuple[int, int, int, int], members: list[int]):
        self.top, self.left, self.bottom, self.right = box
        self.members = members

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.bottom, self.right

    def ink(self, ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """This digit's ink alone, cropped to its box: each piece keeps its anti-aliased
        rim, but none of its neighbours' ink."""
        window = np.s_[self.top : self.bottom, self.left : self.right]
        own = ndi.binary_dilation(np.isin(labels[window], self.members), iterations=1)
        return ink[window] * own

    def joined(self, other: _Digit) -> _Digit:
        return _Digit(_union_box([self.box, other.box]), self.members + other.members)


def _digits_from_pieces(pieces: list[dict]) -> list[_Digit]:
    groups = _Groups(len(pieces))
    for i, a in enumerate(pieces):
        at, al, ab, ar = a["box"]
        for j in range(i + 1, len(pieces)):
            bt, bl, bb, br = pieces[j]["box"]
            x_overlap = _overlap(al, ar, bl, br)
            gap = max(bt - ab, at - bb, 0)
            if x_overlap >= SAME_DIGIT_X * min(ar - al, br - bl) and gap <= SAME_DIGIT_GAP * max(
                ab - at, bb - bt
            ):
                groups.join(i, j)
    return [
        _Digit(
            _union_box([pieces[m]["box"] for m in members]),
            [pieces[m]["label"] for m in members],
        )
        for members in groups.sets()
    ]


def _lines(digits: list[_Digit]) -> list[list[_Digit]]:
    groups = _Groups(len(digits))
    for i, a in enumerate(digits):
        for j in range(i + 1, len(digits)):
            b = digits[j]
            overlap = _overlap(a.top, a.bottom, b.top, b.bottom)
            if overlap >= SAME_LINE_Y * min(a.bottom - a.top, b.bottom - b.top):
                groups.join(i, j)
    lines = [sorted((digits[m] for m in ms), key=lambda d: d.left) for ms in groups.sets()]
    return sorted(lines, key=lambda line: min(d.top for d in line))


def _cut_candidates(ink: np.ndarray, near: float, count: int = 4) -> list[int]:
    """Columns around `near` where a vertical cut meets the least ink."""
    w = ink.shape[1]
    profile = (ink > STROKE).sum(axis=0)
    half = max(2, int(0.4 * near))
    lo, hi = max(1, int(near) - half), min(w - 1, int(near) + half + 1)
    if hi <= lo:
        return []
    return sorted(int(lo + c) for c in np.argsort(profile[lo:hi], kind="stable")[:count])


Parts = list[tuple[np.ndarray, int, int]]  # (ink, left offset, top offset)


def _split_into(ink: np.ndarray, k: int, score: Score) -> tuple[Parts, float]:
    """The best reading of a piece as k digits side by side: the worst digit's confidence."""
    if k == 1:
        return [(ink, 0, 0)], score([ink])[0]
    best: Parts = []
    best_score = -1.0
    for cut in _cut_candidates(ink, ink.shape[1] / k):
        left, right = crop_to_ink(ink[:, :cut], STROKE), crop_to_ink(ink[:, cut:], STROKE)
        if left is None or right is None:
            continue
        left_score = score([left[0]])[0]
        if left_score <= best_score:
            continue
        right_parts, right_score = _split_into(right[0], k - 1, score)
        if min(left_score, right_score) > best_score:
            best_score = min(left_score, right_score)
            best = [left] + [(p, x + cut + right[1], y + right[2]) for p, x, y in right_parts]
    return best, best_score


def _best_split(ink: np.ndarray, score: Score) -> Parts:
    """One digit, or several touching ones cut apart. Cuts are tried for a piece too wide
    for one digit, or one the recogniser does not read as a digit (two digits run together
    look like no digit at all); a cut is kept only if its worst part reads better."""
    h, w = ink.shape
    best, best_score = _split_into(ink, 1, score)
    if w <= WIDE * h and (best_score >= SURE or w <= NARROW * h):
        return best
    guess = max(2, round(w / (DIGIT_ASPECT * h)))
    for k in sorted({2, guess, guess + 1}):
        if k > MAX_TOUCHING:
            continue
        parts, s = _split_into(ink, k, score)
        # more cuts must earn their place: prefer the fewest digits that read well
        if parts and s > best_score + (MORE_CUTS if len(best) > 1 else 0.0):
            best, best_score = parts, s
    return best


def _merge_close(line: list[_Digit], ink, labels, score: Score) -> list[_Digit]:
    """Join neighbours that read better as one digit than apart: pieces that nearly touch
    (a 4 whose upright was drawn apart from its bar; but not a 4 and a 1), and a piece the
    recogniser cannot read with its near neighbour (a stroke broken by a light pen)."""
    out = [line[0]]
    for nxt in line[1:]:
        prev = out[-1]
        height = max(prev.bottom - prev.top, nxt.bottom - nxt.top)
        gap = nxt.left - prev.right
        if gap <= BROKEN * height:
            apart = score([prev.ink(ink, labels), nxt.ink(ink, labels)])
            if gap <= CLOSE * height or min(apart) < SURE:
                joined = prev.joined(nxt)
                if score([joined.ink(ink, labels)])[0] > min(apart):
                    out[-1] = joined
                    continue
        out.append(nxt)
    return out


def segment(ink: np.ndarray, score: Score | None = None) -> list[list[Segment]]:
    """Digits of an ink map, as lines (top to bottom) of segments (left to right).
    With a `score` (confidences of pieces read as digits), pieces that read better joined
    are joined and pieces too wide for one digit are cut where that reads better."""
    try:
        ink = clean(ink)  # specks and border lines go, as for a single digit
    except EmptyImageError:
        return []
    labels, pieces = ink_components(ink)
    lines = []
    for digits in _lines(_digits_from_pieces(pieces)):
        if score:
            digits = _merge_close(digits, ink, labels, score)
        segments = []
        for d in digits:
            digit_ink = d.ink(ink, labels)
            parts = _best_split(digit_ink, score) if score else [(digit_ink, 0, 0)]
            for part, dx, dy in parts:
                h, w = part.shape
                box = (d.left + dx, d.top + dy, d.left + dx + w, d.top + dy + h)
                segments.append(Segment(box, part))
        lines.append(segments)
    return lines
