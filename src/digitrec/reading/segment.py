"""Split a picture of several digits into one ink map per digit, in reading order: lines top
to bottom, digits left to right.

Works on the ink map that preprocess.ink_map makes, cleaned of border lines and dust
(preprocess.clean); specks are told once pieces are grouped into digits. Pieces of ink that
overlap in x and nearly touch in y are one digit (a 5's detached bar, a 4 drawn in two
strokes). With a recogniser (a `score` function the caller gives), neighbouring pieces that
read better as one digit are joined, and a piece too wide for one digit, or one that reads
as none, is cut along the paths that cross the least ink, or read whole as two digits by the
pair reader (`read_pair`), whichever reading of the line is likeliest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import EmptyImageError
from .preprocess import SPECK, clean, crop_to_ink, ink_components

DUST = 0.005  # pieces lighter than this share of the heaviest are dust, never a digit's part
SAME_DIGIT_X = 0.5  # x-overlap, as a share of the narrower piece, that makes one digit
SAME_DIGIT_GAP = 0.35  # ... if the vertical gap is under this share of the taller piece
BAR_HEIGHT = 0.3  # a piece this flat beside a taller one (a share of its height) may be a bar
SAME_LINE_Y = 0.4  # y-overlap, as a share of the shorter digit, that makes one line
WIDE = 1.15  # a digit wider than this times its height may be two touching digits
SURELY_WIDE = 1.6  # ... and one wider than this is taken for two without the odds against
SURE = 0.9  # ... and so may a narrower piece read with less confidence than this
NARROW = 0.7  # ... unless it is narrower than this times its height
STROKE = 0.3  # ink above this counts when looking for the thinnest place to cut
OWN_REACH = 0.25  # ink this far from a digit's pieces (a share of its height) may be its own
CUT_BAND = 0.5  # cuts are looked for this share of a digit's width either side of a guess
TURN = 0.05  # what a cut path pays for each column it moves sideways (ink costs up to 1)
DIGIT_ASPECT = 0.75  # a handwritten digit's usual width over its height
MAX_TOUCHING = 4  # the most digits looked for in one piece of ink
CLOSE = 0.15  # neighbours nearer than this share of their height may be one digit
BROKEN = 0.5  # ... and so may an unreadable piece this near its neighbour
EXTRA_DIGIT = 0.5  # the odds against a piece not too wide for one digit holding one more
MAX_PIECES = 3  # the most pieces of ink joined into one digit
PART_HEIGHT = 0.6  # a digit cut from a piece stands at least this share of its height
GAP_SCALE = 0.25  # joining pieces across a gap of this share of their height costs a factor e
SHORT = 0.6  # digits on a line are of a size: one shorter than this share of the line's
# tallest is less likely a digit of its own than a piece of one (a 9's loop, a 6's stem)

Score = Callable[[list[np.ndarray]], list[float]]
# the pair reader: a piece of ink holding two touching digits -> their probabilities (2, 10)
ReadPair = Callable[[np.ndarray], np.ndarray]


@dataclass
class Segment:
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive) in ink-map pixels
    ink: np.ndarray  # the ink map of this digit alone, cropped to its box
    # its digit's probabilities (10,): the pair reader's when it was read whole with its
    # touching neighbour, else the recogniser's once it has read it (Predictor.segment)
    probabilities: np.ndarray | None = None
    input: np.ndarray | None = None  # what the recogniser read: the ink in MNIST form


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
        self.close = True  # whether its pieces nearly touch (see _merge_broken)
        self.gaps = 0  # the gaps between its pieces left to right, in pixels, summed

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.bottom, self.right

    def ink(self, ink: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """This digit's ink alone, cropped to its box: every pixel of ink nearer its pieces
        than any other (their anti-aliased rims, a faint stroke too light to be a piece),
        none of its neighbours'."""
        return self.cut(ink, owners)[0]

    def cut(self, ink: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, int, int]:
        """(ink, left, top): this digit's ink cropped to where it lies, and where that is."""
        h, w = ink.shape
        pad = OWN_REACH * (self.bottom - self.top)
        top, left = max(0, int(self.top - pad)), max(0, int(self.left - pad))
        bottom, right = min(h, int(self.bottom + pad) + 1), min(w, int(self.right + pad) + 1)
        window = np.s_[top:bottom, left:right]
        mine = np.where(np.isin(owners[window], self.members), ink[window], 0.0)
        found = crop_to_ink(mine, 0.0)
        if found is None:  # (not for a digit made of pieces of ink)
            return mine, left, top
        crop, dx, dy = found
        return crop, left + dx, top + dy

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
            taller = max(ab - at, bb - bt)
            # a flat piece just above or below another that it overlaps at all is its bar
            # (a 5's flag drawn out to the right), whatever the share of the overlap
            bar = min(ab - at, bb - bt) <= BAR_HEIGHT * taller and x_overlap > 0
            if (
                bar or x_overlap >= SAME_DIGIT_X * min(ar - al, br - bl)
            ) and gap <= SAME_DIGIT_GAP * taller:
                groups.join(i, j)
    return [
        _Digit(
            _union_box([pieces[m]["box"] for m in members]),
            [pieces[m]["label"] for m in members],
        )
        for members in groups.sets()
    ]


def _owners(ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every pixel of ink, the label of the nearest piece of ink (0 for none): the
    pixels a piece may take beside its own."""
    if not (labels > 0).any():
        return labels
    nearest = ndi.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    return np.where(ink > 0, labels[tuple(nearest)], 0)


def _without_specks(digits: list[_Digit], pieces: list[dict]) -> list[_Digit]:
    """Candidate digits less specks, judged as for a single digit (preprocess.SPECK): a
    candidate lighter than that share of the heaviest one goes, and so does a piece of a
    candidate lighter than that share of its heaviest piece."""
    mass = {p["label"]: p["mass"] for p in pieces}
    box = {p["label"]: p["box"] for p in pieces}
    heaviest = max(sum(mass[m] for m in d.members) for d in digits)
    out = []
    for d in digits:
        if sum(mass[m] for m in d.members) < SPECK * heaviest:
            continue
        top = max(mass[m] for m in d.members)
        members = [m for m in d.members if mass[m] >= SPECK * top]
        if len(members) < len(d.members):
            d = _Digit(_union_box([box[m] for m in members]), members)
        out.append(d)
    return out


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


def _straight_cuts(ink: np.ndarray, lo: int, hi: int, count: int) -> list[np.ndarray]:
    """Vertical cuts at the columns between lo and hi that meet the least ink."""
    profile = (ink[:, lo:hi] > STROKE).sum(axis=0)
    columns = lo + np.argsort(profile, kind="stable")[:count]
    return [np.full(ink.shape[0], c) for c in sorted(columns)]


def _seams(ink: np.ndarray, lo: int, hi: int, count: int) -> list[np.ndarray]:
    """Cut paths from the top row to the bottom, between columns lo and hi, that cross the
    least ink while moving at most one column a row: they pass between two digits whose
    strokes overlap left to right, where no straight cut can."""
    h, n = ink.shape[0], hi - lo
    cost = ink[:, lo:hi].astype(np.float64)
    acc = cost[0].copy()
    came_from = np.zeros((h, n), np.int8)  # -1, 0, 1: the previous row's column offset
    columns = np.arange(n)
    for y in range(1, h):
        options = np.stack([np.r_[np.inf, acc[:-1]] + TURN, acc, np.r_[acc[1:], np.inf] + TURN])
        choice = options.argmin(axis=0)
        came_from[y] = choice - 1
        acc = options[choice, columns] + cost[y]
    paths: list[np.ndarray] = []
    for end in np.argsort(acc, kind="stable"):
        path = np.empty(h, np.int64)
        x = int(end)
        for y in range(h - 1, -1, -1):
            path[y] = x
            x += int(came_from[y, x])
        if all(np.abs(path - other).mean() >= 1.5 for other in paths):
            paths.append(path)
            if len(paths) == count:
                break
    return [lo + path for path in paths]


def _cuts(ink: np.ndarray, near: float) -> list[np.ndarray]:
    """Candidate cuts (the column the cut passes in each row) around column `near`."""
    w = ink.shape[1]
    half = max(2, int(CUT_BAND * near))
    lo, hi = max(1, int(near) - half), min(w - 1, int(near) + half + 1)
    if hi <= lo:
        return []
    return _straight_cuts(ink, lo, hi, 4) + _seams(ink, lo, hi, 3)


Parts = list[tuple[np.ndarray, int, int]]  # (ink, left offset, top offset)


def _split_at(ink: np.ndarray, cut: np.ndarray) -> tuple[tuple, tuple] | None:
    """The ink left and right of a cut, each cropped, with its offsets; None if a side
    holds no ink."""
    left_of_cut = np.arange(ink.shape[1])[None, :] < cut[:, None]
    left = crop_to_ink(np.where(left_of_cut, ink, 0.0), STROKE)
    right = crop_to_ink(np.where(left_of_cut, 0.0, ink), STROKE)
    return None if left is None or right is None else (left, right)


def _log(confidences) -> float:
    return float(np.log(np.maximum(np.asarray(confidences, dtype=np.float64), 1e-9)).sum())


def _split_into(
    ink: np.ndarray, k: int, score: Score, height: int | None = None
) -> tuple[Parts, list[float]]:
    """The likeliest reading of a piece as k digits side by side, and their confidences.
    Each part must stand at least PART_HEIGHT of the piece's `height`: digits on a line are
    of a size, and a digit cut in half still reads as a digit once fitted into 20x20."""
    if k == 1:
        return [(ink, 0, 0)], score([ink])
    height = height or ink.shape[0]
    splits = [
        s
        for s in (_split_at(ink, cut) for cut in _cuts(ink, ink.shape[1] / k))
        if s and min(s[0][0].shape[0], s[1][0].shape[0]) >= PART_HEIGHT * height
    ]
    if not splits:
        return [], []
    lefts = score([left[0] for left, _ in splits])
    rights = score([right[0] for _, right in splits]) if k == 2 else None
    best: Parts = []
    best_conf: list[float] = []
    for i in np.argsort(lefts)[::-1]:
        (left, right), left_conf = splits[i], lefts[i]
        if best and np.log(left_conf) <= _log(best_conf):
            break  # the rest read worse on their left alone
        if rights is not None:
            right_parts, right_conf = [(right[0], 0, 0)], [rights[i]]
        else:
            right_parts, right_conf = _split_into(right[0], k - 1, score, height)
        if right_parts and (not best or _log([left_conf, *right_conf]) > _log(best_conf)):
            best_conf = [left_conf, *right_conf]
            best = [left] + [(p, x + right[1], y + right[2]) for p, x, y in right_parts]
    return best, best_conf


def _halves(ink: np.ndarray) -> Parts:
    """Two parts split down the middle: the boxes of a pair no cut reads apart."""
    mid = ink.shape[1] // 2
    cut = _split_at(ink, np.full(ink.shape[0], mid))
    return list(cut) if cut else [(ink[:, :mid], 0, 0), (ink[:, mid:], mid, 0)]


def _best_split(
    ink: np.ndarray, score: Score, read_pair: ReadPair | None = None
) -> tuple[Parts, np.ndarray | None]:
    """One digit, or several touching ones cut apart. Cuts are tried for a piece too wide
    for one digit, or one the recogniser does not read as a digit (two digits run together
    look like no digit at all). Two digits may also be read whole by the pair reader, when
    they overlap too much for any cut: then the pair's probabilities (2, 10) come back with
    the parts of the best cut. Of the readings, the likeliest wins, each digit beyond the
    first costing EXTRA_DIGIT unless the piece is too wide for one: a recogniser reads the
    pieces of a cut digit too willingly."""
    h, w = ink.shape
    best, confidences = _split_into(ink, 1, score)
    pair = None
    if w <= WIDE * h and (confidences[0] >= SURE or w <= NARROW * h):
        return best, pair
    extra = 0.0 if w > SURELY_WIDE * h else np.log(EXTRA_DIGIT)
    likeliest = _log(confidences)
    guess = max(2, round(w / (DIGIT_ASPECT * h)))
    for k in range(2, min(MAX_TOUCHING, guess + 1) + 1):
        if len(best) > 1 and min(confidences) >= SURE:
            break  # the fewest digits that read well: halves of a 0 may read as two 1s
        parts, conf = _split_into(ink, k, score)
        probabilities = None
        if k == 2 and read_pair is not None:
            whole = read_pair(ink)
            if not parts or _log(whole.max(axis=1)) > _log(conf):
                parts, conf, probabilities = parts or _halves(ink), list(whole.max(1)), whole
        if parts and _log(conf) + (k - 1) * extra > likeliest:
            best, confidences, pair = parts, conf, probabilities
            likeliest = _log(conf) + (k - 1) * extra
    return best, pair


def _merge_broken(line: list[_Digit], ink, owners, score: Score) -> list[_Digit]:
    """Join neighbouring pieces that read better as one digit than apart: a stroke broken
    in two or three by a light pen, a 4 whose upright was drawn apart from its bar (but not
    a 4 and a 1). A run of up to MAX_PIECES near pieces may be one digit if it reads better
    than its worst piece alone, and its pieces nearly touch or one of them is unreadable;
    of the ways to group the line, the one whose digits are likeliest together wins."""
    runs: dict[tuple[int, int], _Digit] = {}  # pieces i..j-1 joined, for runs that may be
    for i in range(len(line)):
        joined, close = line[i], True
        for j in range(i + 1, min(len(line), i + MAX_PIECES)):
            nxt = line[j]
            height = max(joined.bottom - joined.top, nxt.bottom - nxt.top)
            gap = nxt.left - joined.right
            if gap > BROKEN * height:
                break
            close = close and gap <= CLOSE * height
            gaps = joined.gaps + max(gap, 0)
            joined = joined.joined(nxt)
            runs[i, j + 1] = joined
            joined.close, joined.gaps = close, gaps
    if not runs:
        return line
    tallest = max(d.bottom - d.top for d in line)

    def likely(d: _Digit, confidence: float) -> float:
        """How likely a candidate is one digit: its confidence, less if it is short or its
        pieces stand apart (a stray stroke is nearer the digit it belongs to)."""
        height = d.bottom - d.top
        short = min(1.0, height / (SHORT * tallest))
        return confidence * short * short * np.exp(-d.gaps / (GAP_SCALE * height))

    alone = [
        likely(d, c) for d, c in zip(line, score([d.ink(ink, owners) for d in line]), strict=True)
    ]
    together = {
        key: likely(d, c)
        for (key, d), c in zip(
            runs.items(), score([d.ink(ink, owners) for d in runs.values()]), strict=True
        )
    }
    likeliest = [0.0] + [-np.inf] * len(line)  # log-likelihood of the best grouping so far
    start = list(range(len(line) + 1))
    for j in range(1, len(line) + 1):
        for i in range(max(0, j - MAX_PIECES), j):
            if j - i == 1:
                p = alone[i]
            else:
                worst = min(alone[i:j])
                p = together.get((i, j), 0.0)
                if p <= worst or not (runs[i, j].close or worst < SURE):
                    continue
            if likeliest[i] + np.log(max(p, 1e-9)) > likeliest[j]:
                likeliest[j], start[j] = likeliest[i] + np.log(max(p, 1e-9)), i
    out, j = [], len(line)
    while j > 0:
        i = start[j]
        out.append(line[i] if j - i == 1 else runs[i, j])
        j = i
    return out[::-1]


def segment(
    ink: np.ndarray, score: Score | None = None, read_pair: ReadPair | None = None
) -> list[list[Segment]]:
    """Digits of an ink map, as lines (top to bottom) of segments (left to right).
    With a `score` (confidences of pieces read as digits), pieces that read better joined
    are joined and pieces too wide for one digit are cut where that reads better; with
    `read_pair`, two touching digits may be read whole."""
    try:
        # border lines and dust go first; specks are told only once pieces are grouped
        # into digits: a 7's faint bar may weigh less than a twentieth of a bold 8 beside it
        ink = clean(ink, DUST)
    except EmptyImageError:
        return []
    labels, pieces = ink_components(ink)
    owners = _owners(ink, labels)
    lines = []
    for digits in _lines(_without_specks(_digits_from_pieces(pieces), pieces)):
        if score:
            digits = _merge_broken(digits, ink, owners, score)
        segments = []
        for d in digits:
            digit_ink, left, top = d.cut(ink, owners)
            parts, pair = (
                _best_split(digit_ink, score, read_pair) if score else ([(digit_ink, 0, 0)], None)
            )
            for i, (part, dx, dy) in enumerate(parts):
                h, w = part.shape
                box = (left + dx, top + dy, left + dx + w, top + dy + h)
                segments.append(Segment(box, part, None if pair is None else pair[i]))
        lines.append(segments)
    return lines
