"""Split a picture of several digits into one ink map per digit, in reading order: lines top
to bottom, digits left to right; marks between digits (dots, commas, dashes) apart.

Works on the ink map that preprocess.ink_map makes, cleaned of border lines and dust
(preprocess.clean) and of long rules (guide lines under or through the digits); specks are
told once pieces are grouped into digits. Pieces of ink that overlap in x and nearly touch in
y are one digit (a 5's detached bar, a 4 drawn in two strokes). With a recogniser (a `score`
function the caller gives), neighbouring pieces that read better as one digit are joined,
and a piece too wide for one digit, or one that reads as none, is over-cut along the paths
that cross the least ink (valleys between digits); then the likeliest way to read it as a row
of digits is searched for over those cuts (dynamic programming), every candidate digit read
in one batch by the recogniser, and pairs of digits too entangled for any cut by the pair
reader (`read_pair`).

Work is bounded whatever the ink looks like: grouping is vectorised over at most BUSY_PIECES
pieces and MAX_CANDIDATES candidate digits, the search over at most MAX_CUTS cuts a piece,
each digit spanning at most WIDE_SPAN of them, and the recogniser and the pair reader read at
most MAX_READS candidate digits for the whole picture (a busier picture is refused as
`Busy`); the caller may stop the work (`stop`) between pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import BadImageError, EmptyImageError
from .preprocess import (
    SPECK,
    box_holds,
    clean,
    crop_to_ink,
    empty_box,
    ink_components,
    shear,
    stroke_width,
)

DUST = 0.005  # pieces lighter than this share of the heaviest are dust, never a digit's part
SAME_DIGIT_X = 0.5  # x-overlap, as a share of the narrower piece, that makes one digit
SAME_DIGIT_GAP = 0.35  # ... if the vertical gap is under this share of the taller piece
STACKED = 0.5  # ... but two pieces one over the other, each this share of the other's height
# or more, apart, may be digits of two lines written close (_lines_apart): they are where,
TWO_LINES = 1.6  # ... joined, they would stand this many times as tall as the other digits
LINE_GAP = 0.1  # ... or, with no other digit, where they stand this share of the taller apart
BAR_HEIGHT = 0.3  # a piece this flat beside a taller one (a share of its height) may be a bar
BAR_LENGTH = 1.2  # ... unless it is longer than this times the taller one's height: a rule
SAME_LINE_Y = 0.4  # y-overlap, as a share of the shorter digit, that makes one line
WIDE = 1.15  # a digit wider than this times its height may be two touching digits
SURE = 0.9  # ... and so may a narrower piece read with less confidence than this
NARROW = 0.7  # ... unless it is narrower than this times its height
STROKE = 0.3  # ink above this counts when looking for the thinnest place to cut
OWN_REACH = 0.25  # ink this far from a digit's pieces (a share of its height) may be its own
TURN = 0.05  # what a cut path pays for each column it moves sideways (ink costs up to 1)
CLOSE = 0.15  # neighbours nearer than this share of their height may be one digit
BROKEN = 0.5  # ... and so may an unreadable piece this near its neighbour
JOIN_WIDE = 1.15  # ... but not pieces each read surely, joined wider than this times their height
MAX_PIECES = 3  # the most pieces of ink joined into one digit
PART_HEIGHT = 0.6  # a digit cut from a piece stands at least this share of its height
GAP_SCALE = 0.25  # joining pieces across a gap of this share of their height costs a factor e
SHORT = 0.6  # digits on a line are of a size: one shorter than this share of its neighbours
# is less likely a digit of its own than a piece of one (a 9's loop, a 6's stem)
FLAG_TOP = 0.1  # a flat stroke beside a digit whose top stands this much higher is no bar of it

# Bounded work: a picture with more pieces than this (after dust) is too busy to be numbers
BUSY_PIECES = 400
MAX_CANDIDATES = 200  # ... and so is one with more candidate digits than this
# ... or one that needs more readings than this (recogniser and pair reader together, about a
# millisecond each) to search: numbers of real writers' digits need up to about 160 for a
# line of 8 touching digits; a page of scribbles needs thousands
MAX_READS = 600
# The search over cuts of one piece of ink; its costs were tuned on numbers of the UNIPEN
# train writers that training holds out (benchmarks/tune_segment.py), never on dev
MAX_CUTS = 24  # candidate cuts looked at in one piece
MAX_SPAN = 5  # the most cuts' worth of pieces (atoms) one digit spans, but for the whole
WIDE_SPAN = 6  # ... or this many, where the best path of MAX_SPAN holds a digit narrower
WIDE_THIN = 0.3  # ... than this times its height, or reads the piece whole less than surely
CUT_SPACING = 0.15  # candidate cuts stand at least this share of the piece's height apart
EDGE = 0.1  # ... and this far from its ends
MAX_CROSSED = 4.0  # a cut crossing more strokes than this is no cut between digits
CROSSING = 0.3  # what a cut costs (log odds) for each stroke it crosses
DIGIT_ASPECT = 1.5  # a digit wider than this times its height pays ...
TOO_WIDE = 1.0  # ... this (log odds) per unit of width beyond
MAX_ASPECT = 1.7  # a candidate digit wider than this times its height is not looked at
EXTRA_DIGIT = 0.0  # what each digit beyond the first costs (log odds)
PAIR_ASPECT = (0.8, 2.4)  # widths (times the height) of a piece the pair reader may read whole
PAIR_COST = 1.0  # the pair reader's reading costs this (log odds) beyond a cut's
# ... and only where the middle half of its rows crosses at most this many strokes (median
# of the rows): two digits cross at most two each (0, 8); overlapping runs of 3-6 digits as
# wide as a pair cross more, and the pair reader, which knows only pairs, read them as two
PAIR_STROKES = 4.0
# a digit may end in a flourish drawn out sideways (an 8's top stroke run on to the right),
# read by the pair reader as a second digit: the stretch at either end of a piece where all
# its ink lies in a band no taller than this share of its height may be one
FLOURISH_HEIGHT = 0.4
FLOURISH = 0.7  # ... and reading the piece without it costs this (log odds)
NARROW_TRIM = True  # ... looked at in a piece too narrow for two digits, read unsurely, too
UNSURE_WHOLE = 0.5  # ... and read without it, where it reads surely, if whole it is valued under
# this (its confidence, less what it pays for being wider than a digit: see _wide)
# Marks: a flat candidate (height under this share of its width) is a dash or a rule
FLAT = 0.35
ONE_STROKE = 0.25  # ... and one stroke: fewer than this share of its columns cross two or more
RULE = 2.0  # a horizontal run of ink longer than this times a digit's height is a rule
# ... looked for among runs from this times the pieces' usual height: a line the digits stand
# on joins them into one piece as tall as the tallest, their own height shows once it is out
RULE_FIRST = 1.2
RULE_SPAN = 1.5  # ... and such a run, from one end of its number to the other, from this
RULE_PAST = 0.05  # ... running on past the digits at both ends by this share of a height
RULE_SLOPE = 0.1  # ... or a run that far from level (rows per column): a tilted photo's line
RULE_SLOPES = 61  # slopes looked at from -RULE_SLOPE to RULE_SLOPE
MAX_STROKES = 16  # ... looked for in pictures of at most this many strokes a column on average
FRAME_RUN = 0.6  # a frame's top and bottom: runs of ink this share of the digits' height
FRAME_HOLDS = 0.2  # ... holding a digit whole, but for this share of a height past them
FRAME_PIECES = 8  # ... looked for below RULE_FIRST in pictures of at most this many pieces
FRAME_SIDE = 0.5  # a frame's upright line (a box's side) runs straight from a rule to a rule,
FRAME_THICK = 1.5  # ... this share of the digits' height or longer, and at most this times
CELL = 1.2  # a box round ink, no wider than this times its height, is a cell for one digit
MAX_SIDES = 64  # ... as thick as the rules; looked for where at most this many could be
MARK_SIZE = 0.35  # a candidate this small (share of the line's digit height) low on the line
LOW = 0.55  # ... whose top is this far down the line is a dot or a comma
COMMA = 1.3  # ... a comma if taller than this times its width, or reaching below the line
TAILED = 0.5  # ... a comma reaching below the line may be this tall (share of the digits')
DOT = 0.05  # a round blob of ink, this share of the heaviest digit's height wide at least, is
DOT_FILL = 0.5  # ... a point, not a speck, if it fills this share of its box (a pen's dot)
# a comma run into a digit: ink below the line by this share of the digits' height, ...
TAIL_BELOW = 0.12
TAIL_WIDE = 0.3  # ... no wider than this share of it
TAIL_END = 0.15  # ... reaching to within this share of it of the digit's left or right end
TAIL_HEAD = 0.2  # ... taken off with its head: up to this share of it over the line and beside
UNDERLINE = "_"  # what _mark says of a line under (or over) digits: dropped, not reported
COMMA_LONG, COMMA_FILL = 3.0, 0.3  # ... a comma if at most this times as tall as wide, this full
BARS_TOP = 0.35  # the top of a piece where bars across it are counted (bars_on_top) ...
BAR_SPAN = 0.7  # ... a bar: a row's stroke spanning this share of the piece's width
# A slash before a closing dash or equals sign, as cheques end an amount (1500/-, 1500/=):
SLASH_SLANT = 30.0  # ... one stroke leaning right by this many degrees at least (90% of 1s
# lean less: MNIST's training 1s and those of the held-out UNIPEN train writers)
SLASH_TOP = 0.35  # ... whose top fifth is no wider than this share of its height (no 7's bar)
SLASH_DASH = 0.15  # ... or with a dash joined at its right, this share of its height long
DASH_THICK = 0.5  # ... and no thicker than this share of it (an equals sign's two dashes)

Score = Callable[[list[np.ndarray]], list[float]]
# the pair reader: pieces of ink each holding two touching digits -> probabilities (N, 2, 10)
ReadPair = Callable[[list[np.ndarray]], np.ndarray]
Stop = Callable[[], bool]  # true once the caller no longer wants the work


class Busy(BadImageError):
    """A picture too busy to be numbers (noise, texture, a page of dots): more pieces of
    ink, or candidate digits, than bounded work can look at. read_number refuses it (reason
    busy); elsewhere (the sheet reader) it is an unreadable picture."""

    def __init__(self, what: str):
        super().__init__(f"the picture is too busy to be numbers ({what}): crop it to the digits")


class Stopped(Exception):
    """The work was stopped by its caller (a client that left)."""


@dataclass
class Segment:
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive) in ink-map pixels
    ink: np.ndarray  # the ink map of this digit alone, cropped to its box
    # its digit's probabilities (10,): the pair reader's when it was read whole with its
    # touching neighbour, else the recogniser's once it has read it (Predictor.segment)
    probabilities: np.ndarray | None = None
    input: np.ndarray | None = None  # what the recogniser read: the ink in MNIST form
    mark: str | None = None  # not a digit but a mark between digits: ",", ".", "-" or "="


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
        self.dot = False  # a point as light as a speck: a mark or nothing (_without_specks)
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
        owner = owners[window]
        # np.isin(owner, self.members), through a table of the labels: no sorting
        table = np.zeros(max(int(owner.max(initial=0)), *self.members) + 1, bool)
        table[self.members] = True
        mine = np.where(table[owner], ink[window], 0.0)
        found = crop_to_ink(mine, 0.0)
        if found is None:  # (not for a digit made of pieces of ink)
            return mine, left, top
        crop, dx, dy = found
        return crop, left + dx, top + dy

    def joined(self, other: _Digit) -> _Digit:
        return _Digit(_union_box([self.box, other.box]), self.members + other.members)


def _pairs_joined(join: np.ndarray) -> list[list[int]]:
    """The groups of indices that a symmetric boolean matrix of pairs joins, in order of
    their first index (union-find over the pairs: few, for pictures of numbers)."""
    parent = list(range(len(join)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(join, 1)), strict=True):
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for k in range(len(parent)):
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


def _digits_from_pieces(pieces: list[dict]) -> tuple[list[_Digit], list[_Digit] | None]:
    """Pieces that overlap in x and nearly touch in y, as candidate digits: every pair
    compared at once (numpy), so at most BUSY_PIECES of them. Two pieces of a size one over
    the other and apart are held apart; the candidates with them joined come second (None
    where there are no such pieces), for _lines_apart to choose between."""
    b = np.array([p["box"] for p in pieces], np.int64).reshape(-1, 4)
    top, left, bottom, right = b.T
    h, w = bottom - top, right - left
    x_overlap = np.minimum(right[:, None], right) - np.maximum(left[:, None], left)
    gap = np.maximum(np.maximum(top[None, :] - bottom[:, None], top[:, None] - bottom), 0)
    taller = np.maximum(h[:, None], h)
    flatter = np.minimum(h[:, None], h)
    longer = np.where(h[:, None] <= h, w[:, None], w)  # the flatter one's width
    # a flat piece just above or below another that it overlaps at all is its bar (a 5's
    # flag drawn out to the right), whatever the share of the overlap; not a rule under
    # several digits
    flat = flatter <= BAR_HEIGHT * taller
    bar = flat & (x_overlap > 0) & (longer <= BAR_LENGTH * taller)
    # ... and a flat piece longer than that under or over a shorter one is a line drawn
    # under it (raised cents underlined), not part of it
    near = (x_overlap >= SAME_DIGIT_X * np.minimum(w[:, None], w)) & ~(flat & ~bar)
    join = (bar | near) & (gap <= SAME_DIGIT_GAP * taller)
    # two pieces of a size one over the other, apart: digits of two lines, or one digit?
    stacked = join & (flatter >= STACKED * taller) & (gap > 0)

    def digits(join: np.ndarray) -> list[_Digit]:
        return [
            _Digit(
                _union_box([pieces[m]["box"] for m in members]),
                [pieces[m]["label"] for m in members],
            )
            for members in _pairs_joined(join)
        ]

    return digits(join & ~stacked), digits(join) if stacked.any() else None


def _lines_apart(
    apart: list[_Digit], together: list[_Digit], ink, owners, score: Score | None
) -> list[_Digit]:
    """The candidates, where `together` joins pieces that `apart` holds apart (pieces of a
    size one over the other, apart: _digits_from_pieces): digits of two lines written close
    (a 3 over a 2), or the halves of one digit broken by a faint stroke (_two_lines)."""
    if len(apart) == len(together):
        return apart
    part_of = {m: k for k, d in enumerate(together) for m in d.members}
    parts: dict[int, list[_Digit]] = {}
    out = []
    for d in apart:
        k = part_of.get(d.members[0])
        if k is None:  # a piece that, joined, was a speck of its digit
            out.append(d)
        else:
            parts.setdefault(k, []).append(d)
    # the other digits' height: of those that are not such pieces
    others = [p for ps in parts.values() if len(ps) == 1 for p in ps] + out
    others = [  # (not points, nor flat strokes: a dash, a 5's flag; two at least)
        p.bottom - p.top
        for p in others
        if not p.dot and p.bottom - p.top > BAR_HEIGHT * (p.right - p.left)
    ]
    usual = float(np.median(others)) if len(others) >= 2 else 0.0
    for k, d in enumerate(together):
        split = parts.get(k, [])
        if len(split) > 1 and not _two_lines(d, split, usual, ink, owners, score):
            split = [d]
        out.extend(split)
    return out


def _two_lines(
    whole: _Digit, parts: list[_Digit], usual: float, ink, owners, score: Score | None
) -> bool:
    """Whether pieces one over the other (`parts`; joined, `whole`) are digits of two lines.
    Beside other digits (`usual`: their median height), where the whole would stand
    TWO_LINES times as tall as they do; with none (`usual` 0), where they stand LINE_GAP
    apart, unless the whole reads surely and a part does not."""
    if usual:
        return whole.bottom - whole.top > TWO_LINES * usual
    # a level gap between those above and those below, LINE_GAP of the tallest high: in
    # order of their tops, one whose top stands that far under every bottom before it
    ordered = sorted(parts, key=lambda p: p.top)
    gap = LINE_GAP * max(p.bottom - p.top for p in parts)
    lowest = np.maximum.accumulate([p.bottom for p in ordered])
    apart = any(p.top - lowest[k] >= gap for k, p in enumerate(ordered[1:]))
    if not apart or score is None:
        return apart
    sure = score([whole.ink(ink, owners)] + [p.ink(ink, owners) for p in parts])
    return not min(sure[1:]) < SURE <= sure[0]


def _owners(ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For every pixel of ink, the label of the nearest piece of ink (0 for none): the
    pixels a piece may take beside its own."""
    found = crop_to_ink(ink, 0.0)
    if found is None or not (labels > 0).any():
        return np.where(ink > 0, labels, 0)
    # in the box of the ink only: every piece lies in it, so the nearest one to any of its
    # pixels does too
    crop, left, top = found
    box = np.s_[top : top + crop.shape[0], left : left + crop.shape[1]]
    inside = labels[box]
    nearest = ndi.distance_transform_edt(inside == 0, return_distances=False, return_indices=True)
    owners = np.zeros_like(labels)
    owners[box] = np.where(crop > 0, inside[tuple(nearest)], 0)
    return owners


def _dot(d: _Digit, mass: dict, tallest: int) -> bool:
    """Whether a light candidate is a point or a comma drawn with a pen: one piece, DOT of
    the tallest candidate's height wide at least; a point is round, filling DOT_FILL of its
    box, a comma up to COMMA_LONG times as tall as wide, filling COMMA_FILL of it."""
    h, w = d.bottom - d.top, d.right - d.left
    if len(d.members) != 1 or min(h, w) < DOT * tallest:
        return False
    fill = mass[d.members[0]] / (h * w)
    point = max(h, w) <= 2 * min(h, w) and fill >= DOT_FILL
    return point or (w <= h <= COMMA_LONG * w and fill >= COMMA_FILL)


def _without_specks(digits: list[_Digit], pieces: list[dict]) -> list[_Digit]:
    """Candidate digits less specks, judged as for a single digit (preprocess.SPECK): a
    candidate lighter than that share of the heaviest one goes, unless it is a point drawn
    with a pen (_dot: a mark if it lies where points do, else gone once marks are found),
    and so does a piece of a candidate lighter than that share of its heaviest piece."""
    mass = {p["label"]: p["mass"] for p in pieces}
    box = {p["label"]: p["box"] for p in pieces}
    heaviest = max(sum(mass[m] for m in d.members) for d in digits)
    tallest = max(d.bottom - d.top for d in digits)
    out = []
    for d in digits:
        if sum(mass[m] for m in d.members) < SPECK * heaviest:
            if _dot(d, mass, tallest):  # a point drawn with a pen: kept, as a mark at most
                d.dot = True
                out.append(d)
            continue
        top = max(mass[m] for m in d.members)
        members = [m for m in d.members if mass[m] >= SPECK * top]
        if len(members) < len(d.members):
            d = _Digit(_union_box([box[m] for m in members]), members)
        out.append(d)
    return out


def _lines(digits: list[_Digit]) -> list[list[_Digit]]:
    """Candidates that overlap top to bottom by SAME_LINE_Y of the shorter, as lines; and a
    short one (under SHORT of the other) that reaches down into the top of a digit's box
    from above it, as a 5's flag curled up over the line does: read with that digit's line,
    which it may be part of."""
    top, left, bottom, right = np.array([d.box for d in digits]).reshape(-1, 4).T
    overlap = np.minimum(bottom[:, None], bottom) - np.maximum(top[:, None], top)
    x_overlap = np.minimum(right[:, None], right) - np.maximum(left[:, None], left)
    h = bottom - top
    # [i, j]: i, short beside j, stands over j's top and reaches into its box
    over = (top[:, None] < top) & (bottom[:, None] > top) & (h[:, None] < SHORT * h)
    over &= x_overlap > 0
    join = (overlap >= SAME_LINE_Y * np.minimum(h[:, None], h)) | over | over.T
    lines = [sorted((digits[m] for m in ms), key=lambda d: d.left) for ms in _pairs_joined(join)]
    return sorted(lines, key=lambda line: min(d.top for d in line))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal runs of a mask: their rows, first columns and ends (one past)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    edges = np.diff(padded.view(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


def _painted(shape: tuple[int, int], rows, starts, ends, values=1) -> np.ndarray:
    """A map of `shape` holding `values` along the runs given (0 elsewhere)."""
    h, w = shape
    out = np.zeros((h, w + 1), np.int32)
    np.add.at(out, (rows, starts), values)
    np.add.at(out, (rows, ends), -np.asarray(values))
    return np.cumsum(out, axis=1)[:, :w]


def _long_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of a mask in horizontal runs of at least `length`."""
    rows, starts, ends = _runs(mask)
    long = ends - starts >= length
    return _painted(mask.shape, rows[long], starts[long], ends[long]) > 0


def _usual_height(pieces: list[dict]) -> float:
    """The median height of the pieces of ink, specks aside; 0 for none."""
    if not pieces:
        return 0.0
    heaviest = max(p["mass"] for p in pieces)
    return float(
        np.median([p["box"][2] - p["box"][0] for p in pieces if p["mass"] >= SPECK * heaviest])
    )


def _rule_runs(
    mask: np.ndarray, lengths: tuple[int, ...], pieces: list[dict]
) -> tuple[list, float]:
    """For each length, the runs of ink at least that long: level, or else (if a piece is
    long enough to hold one) along the slope of a tilted line, searched for once; and the
    slope the runs were found along (0 for level)."""
    out, tilt, used = [], None, 0.0
    for length in lengths:
        runs = _long_runs(mask, length)
        if not runs.any() and any(p["box"][3] - p["box"][1] >= length for p in pieces):
            if tilt is None:
                tilt = _rule_slope(mask)
            slope, columns = tilt
            if slope and columns >= length:
                runs = _sloped_long_runs(mask, length, slope)
                used = slope
        out.append(runs)
    return out, used


def _without_rules(ink: np.ndarray, pieces: list[dict]) -> tuple[np.ndarray, bool]:
    """The ink less long rules (a guide line under or through the digits, a crossed-out
    line), level or tilted by up to RULE_SLOPE as a photo tilts them: runs of ink, along the
    line, longer than RULE times the digits' usual height. A line under (or over) the whole
    of a short number joins its digits into one piece, as tall as the tallest: such a run,
    from RULE_FIRST times that height, reaching both ends of its piece along its bottom (or
    top), is measured against the height of the pieces left once it is out. It must have
    joined two or more of them, and run on past them at both ends, as a line drawn under a
    number does: a digit's own stroke (a 2's base, a 4's bar) joins none, and the base of
    a 2 run into the next digit ends where that digit does. A frame round the digits (a
    box, a comb of cells) goes whole: its rules, however short, and its upright lines
    (_frame_sides). Also says whether there was such a frame."""
    usual = _usual_height(pieces)
    first = int(RULE_FIRST * usual)
    if first < 8:
        return ink, False
    mask = ink > STROKE
    (found, rules), slope = _rule_runs(mask, (first, int(RULE * usual)), pieces)
    # a frame's top and bottom may be shorter than a rule (a box round one or two digits,
    # a piece that holds the others); where there are rules, they are what it is made of
    # (a digit's stroke, a 2's base on the frame's bottom, is no part of it)
    if found.any():
        runs = found
    elif _enclosing(pieces):
        runs = _long_runs(mask, int(FRAME_RUN * usual))
    else:
        runs = np.zeros_like(mask)
    framing, sides = _frame(ink, mask, runs, slope, usual)
    rules |= framing
    if not found.any() and not sides.any():
        return ink, False
    short = _underlines(found & ~rules, pieces, slack=max(2, int(0.15 * usual)))
    if short:
        _, rest = ink_components(np.where(_widened(found), 0.0, ink))
        own = _usual_height(rest)
        heaviest = max((p["mass"] for p in rest), default=0)
        past = RULE_PAST * usual
        for where, run, (start, end), box in short:
            held = [
                p["box"] for p in rest if p["mass"] >= SPECK * heaviest and box_holds(box, p["box"])
            ]
            if (
                len(held) >= 2
                and end - start >= RULE_SPAN * own
                and start <= min(b[1] for b in held) - past
                and end >= max(b[3] for b in held) + past
            ):
                rules[where] |= run
    if not rules.any():
        return ink, False
    rules = _widened(rules)
    # where a stroke comes into a rule from above or below (a digit crossing it, or
    # standing on it), that rule's ink in that column is the stroke's too: kept (another
    # rule in the column, a box's other side, still goes)
    strokes = mask & ~sides
    into = np.zeros_like(rules)
    into[1:] |= rules[1:] & ~rules[:-1] & strokes[:-1]
    into[:-1] |= rules[:-1] & ~rules[1:] & strokes[1:]
    if into.any():
        labels, n = ndi.label(rules, structure=np.ones((3, 3), bool))
        kept = np.zeros((n + 1, rules.shape[1]), bool)  # (rule, column)
        rows, columns = np.nonzero(into)
        kept[labels[rows, columns], columns] = True
        rules &= ~kept[labels, np.arange(rules.shape[1])]
    return np.where(rules | sides, 0.0, ink).astype(np.float32), bool(sides.any())


def _underlines(runs: np.ndarray, pieces: list[dict], slack: int) -> list[tuple]:
    """The runs (joined into lines) that reach, within `slack` pixels, from the left end of
    the piece of ink that holds them to its right end, along its bottom or its top: each as
    where it lies (a slice) and its mask there, its first and last column (and one past)
    and the box of that piece. A mask the size of its line: a picture may hold hundreds."""
    labels, _ = ndi.label(runs, structure=np.ones((3, 3), bool))
    boxes = np.array([p["box"] for p in pieces]).reshape(-1, 4)
    widest = np.argsort(boxes[:, 1] - boxes[:, 3], kind="stable")  # widest first
    boxes = boxes[widest]
    out = []
    for i, where in enumerate(ndi.find_objects(labels), 1):
        top, bottom = where[0].start, where[0].stop
        left, right = where[1].start, where[1].stop
        holds = (
            (boxes[:, 0] <= top)
            & (bottom <= boxes[:, 2])
            & (boxes[:, 1] <= left)
            & (right <= boxes[:, 3])
        )
        if not holds.any():
            continue
        box = tuple(int(v) for v in boxes[holds.argmax()])
        across = left - box[1] <= slack and box[3] - right <= slack
        if across and (box[2] - bottom <= slack or top - box[0] <= slack):
            out.append((where, labels[where] == i, (left, right), box))
    return out


def _without_a_cell(
    ink: np.ndarray, labels: np.ndarray, pieces: list[dict]
) -> tuple[np.ndarray, bool]:
    """The ink less a form's cell round one digit (a box no wider than CELL times its
    height, holding the rest of the ink), as a single digit's picture loses it (clean:
    the box apart from the digit, or touched or crossed by it), and whether there was one:
    only if the piece that holds the rest lost ink (specks alone make no cell)."""
    if not _enclosing(pieces):
        return ink, False
    outer = max(pieces, key=lambda p: (p["box"][2] - p["box"][0]) * (p["box"][3] - p["box"][1]))
    top, left, bottom, right = outer["box"]
    if right - left > CELL * (bottom - top):
        return ink, False
    cleaned = clean(ink)  # specks too, as in a single digit's picture (the rest of a line)
    where = np.s_[top:bottom, left:right]
    mine = labels[where] == outer["label"]
    if cleaned is ink or not (cleaned[where][mine] < ink[where][mine]).any():
        return ink, False
    return cleaned, True


def _enclosing(pieces: list[dict]) -> bool:
    """Whether one of a few pieces of ink (FRAME_PIECES at most) holds the others in its
    box, or there is only one: what a box round one or two digits makes."""
    if not 0 < len(pieces) <= FRAME_PIECES:
        return False
    boxes = np.array([p["box"] for p in pieces])
    holds = (
        (boxes[:, None, 0] <= boxes[None, :, 0])
        & (boxes[:, None, 1] <= boxes[None, :, 1])
        & (boxes[:, None, 2] >= boxes[None, :, 2])
        & (boxes[:, None, 3] >= boxes[None, :, 3])
    )
    return bool(holds.all(axis=1).any())


def _frame(
    ink: np.ndarray, mask: np.ndarray, runs: np.ndarray, slope: float, usual: float
) -> tuple[np.ndarray, np.ndarray]:
    """A frame round the digits (a box, a comb of cells), if there is one: its top and
    bottom (those of `runs`, the long runs of ink along `slope`, that its upright lines
    meet) and its upright lines (_frame_sides, widened); both empty if there is none. A
    frame has two upright lines or more, and between its outer ones it holds a piece of
    ink whole (a digit, within FRAME_HOLDS of the digits' usual height past its lines,
    which a digit may cross): a square 0 holds nothing, a round one has one straight side."""
    none = np.zeros_like(mask)
    if not runs.any():
        return none, none
    lines = _widened(runs)
    least = max(8, int(FRAME_SIDE * usual))
    sides = _frame_sides(mask & ~lines, lines, slope, least, _thickness(runs))
    if not sides.any():
        return none, none
    columns = np.flatnonzero(sides.any(axis=0))
    if len(columns) < 2 or not (np.diff(columns) > 1).any():
        return none, none  # one upright line: the side of a square digit, not a box
    labels, _ = ndi.label(lines, structure=np.ones((3, 3), bool))
    met = np.unique(labels[ndi.binary_dilation(sides, iterations=3) & (labels > 0)])
    ends = runs & np.isin(labels, met[met > 0])
    frame = _widened(ends) | sides
    rows = np.flatnonzero(frame.any(axis=1))
    slack = FRAME_HOLDS * usual
    # between its outer sides, and its top and bottom, give or take the slack
    inside = (rows[0] - slack, columns[0] - slack, rows[-1] + slack, columns[-1] + slack)
    _, rest = ink_components(np.where(frame, 0.0, ink))
    heaviest = max((p["mass"] for p in rest), default=0)
    holds = any(
        p["mass"] >= SPECK * heaviest
        and box_holds(inside, p["box"])
        and p["box"][2] - p["box"][0] >= FRAME_SIDE * usual
        for p in rest
    )
    return (ends, sides) if holds else (none, none)


def _thickness(rules: np.ndarray) -> float:
    """How thick the rules' lines are: the median count of their pixels in a column."""
    counts = rules.sum(axis=0)
    return float(np.median(counts[counts > 0]))


def _frame_sides(
    upright: np.ndarray, rules: np.ndarray, slope: float, least: int, thick: float
) -> np.ndarray:
    """The upright lines of a frame round the digits (a box's sides, the walls between a
    comb's cells), widened by their grey edges: straight runs of `upright` ink at least
    `least` long, square to the rules (`slope` theirs), that reach from a rule at their
    top to a rule at their bottom and stop there, no thicker than the rules (FRAME_THICK):
    a printed frame is drawn in one weight, a digit's upright stroke in the writer's, and
    a stroke that crosses a rule goes on beyond it."""
    turned, turned_rules = upright.T, rules.T
    if slope:
        level, back = shear(turned.shape, -slope)
        runs = back(_runs_between(level(turned), level(turned_rules), least)).T
    else:
        runs = _runs_between(turned, turned_rules, least).T
    if not runs.any():
        return runs
    labels, n = ndi.label(runs, structure=np.ones((3, 3), bool))
    if n > MAX_SIDES:
        return np.zeros_like(runs)  # a grid, a texture: not a frame round a number
    most = FRAME_THICK * thick + 2
    across = _run_lengths(upright)  # the ink across a side, row by row, with what it meets
    out = np.zeros_like(runs)
    for i, where in enumerate(ndi.find_objects(labels), 1):
        side = labels[where] == i
        # a stroke that touches a wall here and there leaves most rows the wall's own width;
        # a digit's stem whose middle runs straight from rule to rule is its pen's width
        if float(np.median(np.where(side, across[where], 0).max(axis=1))) > most:
            continue
        top, bottom = where[0].start, where[0].stop
        reach = slice(max(0, where[1].start - 2), where[1].stop + 2)
        if _ends_at_a_rule(rules, upright, top, -1, reach) and _ends_at_a_rule(
            rules, upright, bottom - 1, 1, reach
        ):
            out[where] |= side
    return ndi.binary_dilation(out, structure=np.ones((1, 3), bool), iterations=2)


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each pixel of a mask, the length of the horizontal run it is in (0 off it)."""
    rows, starts, ends = _runs(mask)
    return _painted(mask.shape, rows, starts, ends, ends - starts)


def _runs_between(mask: np.ndarray, rules: np.ndarray, least: int) -> np.ndarray:
    """The pixels of a mask in horizontal runs at least `least` long that have a rule
    (within 2 rows) in the 3 columns before their start and in the 3 after their end."""
    h, w = mask.shape
    rows, starts, ends = _runs(mask)
    long = ends - starts >= least
    rows, starts, ends = rows[long], starts[long], ends[long]
    near = np.zeros((h, w + 1), np.int32)  # rule pixels within 2 rows, summed along a row
    near[:, 1:] = np.cumsum(ndi.binary_dilation(rules, structure=np.ones((5, 1), bool)), axis=1)
    before = near[rows, starts] - near[rows, np.maximum(starts - 3, 0)]
    after = near[rows, np.minimum(ends + 3, w)] - near[rows, ends]
    ok = (before > 0) & (after > 0)
    return _painted(mask.shape, rows[ok], starts[ok], ends[ok]) > 0


def _ends_at_a_rule(
    rules: np.ndarray, upright: np.ndarray, end: int, step: int, columns: slice
) -> bool:
    """Whether an upright line whose end is row `end` meets a rule there (within 3 rows,
    going `step`) and stops at it: no ink goes on beyond the rule, as a digit's stroke
    crossing the rule would (a frame's corner, or a comb's wall, ends at the line)."""
    h = rules.shape[0]
    row = end + step
    for _ in range(3):
        if 0 <= row < h and rules[row, columns].any():
            break
        row += step
    else:
        return False
    while 0 <= row < h and rules[row, columns].any():
        row += step
    beyond = upright[max(0, min(row, row + 3 * step)) : max(row, row + 3 * step) + 1, columns]
    return not beyond.any()


def _widened(rules: np.ndarray) -> np.ndarray:
    """A rule's runs with the grey edges of its stroke above and below."""
    return ndi.binary_dilation(rules, structure=np.ones((3, 1), bool), iterations=2)


def _rule_slope(mask: np.ndarray) -> tuple[float, int]:
    """The slope (rows per column, within RULE_SLOPE) along which the columns' strokes line
    up over the most columns, and about how many columns that is: the slope of a tilted line
    if it is long enough (0 where it is level). A Hough transform of the tops and bottoms of
    the strokes in every other column (a line that digits stand on is the bottom of their
    strokes where they touch it); none is looked for (0, 0) in a picture with no strokes or
    more than MAX_STROKES strokes a column."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1]), np.int8)
    padded[1:-1] = mask
    edges = np.diff(padded[:, ::2], axis=0).T  # (columns, rows): 1 where a stroke starts
    xs, tops = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    if not 0 < len(xs) <= MAX_STROKES * mask.shape[1] // 2:
        return 0.0, 0
    reach = int(np.ceil(RULE_SLOPE * mask.shape[1]))
    slopes = np.linspace(-RULE_SLOPE, RULE_SLOPE, RULE_SLOPES, dtype=np.float32)
    bins = (mask.shape[0] + 2 * reach) // 3 + 2
    first = bins * np.arange(RULE_SLOPES)[:, None]  # each slope's bins apart from the others'
    votes = np.zeros(bins * RULE_SLOPES, np.int64)
    along = slopes[:, None] * (2 * xs[None, :]).astype(np.float32)  # (slopes, strokes)
    for rows in (tops, ends - 1):
        # where it meets the left edge along each slope, in bins of 3 rows, and in bins half
        # a bin off (a line need not lie inside one)
        at = (rows + reach).astype(np.float32)[None, :] - along
        for off in (0.0, 1.5):
            keys = (first + ((at + off) // 3).astype(np.int64)).ravel()
            votes = np.maximum(votes, np.bincount(keys, minlength=len(votes)))
    best = int(votes.argmax())
    most, slope = int(votes[best]), round(float(slopes[best // bins]), 6)
    return slope, 2 * most  # every other column voted


def _sloped_long_runs(mask: np.ndarray, length: int, slope: float) -> np.ndarray:
    """The pixels of a mask in runs of at least `length` along a slope (rows per column):
    the mask sheared level, its long runs found, and sheared back."""
    level, back = shear(mask.shape, slope)
    return back(_long_runs(level(mask), length))


def _seams(ink: np.ndarray, lo: int, hi: int, count: int) -> list[np.ndarray]:
    """Cut paths from the top row to the bottom, between columns lo and hi, that cross the
    least ink while moving at most one column a row: they pass between two digits whose
    strokes overlap left to right, where no straight cut can."""
    paths, acc = _all_seams(ink[:, lo:hi])
    chosen: list[np.ndarray] = []
    for end in np.argsort(acc, kind="stable"):
        path = paths[:, end]
        if all(np.abs(path - other).mean() >= 1.5 for other in chosen):
            chosen.append(path)
            if len(chosen) == count:
                break
    return [lo + path for path in chosen]


def _all_seams(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every bottom column, the top-to-bottom path that crosses the least ink to it
    (moving at most a column a row, TURN a move): paths (h, w) of columns, and their costs."""
    h, n = ink.shape
    cost = ink.astype(np.float64)
    acc = cost[0].copy()
    came_from = np.zeros((h, n), np.int8)  # -1, 0, 1: the previous row's column offset
    from_left = np.full(n, np.inf)
    from_right = np.full(n, np.inf)
    for y in range(1, h):
        from_left[1:] = acc[:-1]
        from_right[:-1] = acc[1:]
        step = came_from[y]
        left = from_left + TURN < acc
        np.copyto(acc, from_left + TURN, where=left)
        step[left] = -1
        right = from_right + TURN < acc
        np.copyto(acc, from_right + TURN, where=right)
        step[right] = 1
        acc += cost[y]
    paths = np.empty((h, n), np.int64)
    x = np.arange(n)
    for y in range(h - 1, -1, -1):
        paths[y] = x
        x = x + came_from[y, x]
    return paths, acc


def _candidate_cuts(ink: np.ndarray, pen: float) -> tuple[list[np.ndarray], list[float]]:
    """Over-segmentation: cut paths through the valleys of a piece (the least ink from top
    to bottom) and straight cuts at the columns of least ink, at most MAX_CUTS, each at
    least CUT_SPACING from the others, and how many strokes each crosses."""
    h, w = ink.shape
    mask = ink > STROKE
    seams, acc = _all_seams(np.where(mask, ink, 0.0))
    straight = np.broadcast_to(np.arange(w), (h, w))
    paths = np.concatenate([seams, straight], axis=1)  # (h, 2w): every candidate
    on_ink = np.take_along_axis(mask, paths, axis=1)
    strokes = _strokes_down(on_ink).astype(np.float64)
    amount = np.concatenate([acc, mask.sum(axis=0)]) / max(pen, 1.0)
    margin = max(2, int(EDGE * h))
    spacing = max(2, int(CUT_SPACING * h))
    most = min(MAX_CUTS, 2 * int(np.ceil(w / (0.5 * h))) + 1)
    middles = paths.mean(axis=0)
    order = np.lexsort((np.abs(middles - w / 2), amount, strokes))
    chosen: list[int] = []
    taken = np.zeros(w + 1, bool)  # around the middles of the paths chosen
    for k in order.tolist():
        if strokes[k] > MAX_CROSSED or len(chosen) == most:
            break
        middle = int(round(middles[k]))
        if middle < margin or middle > w - margin or taken[middle]:
            continue
        chosen.append(k)
        taken[max(0, middle - spacing) : middle + spacing + 1] = True
    chosen.sort(key=lambda k: float(middles[k]))
    return [np.ascontiguousarray(paths[:, k]) for k in chosen], [float(strokes[k]) for k in chosen]


def _without_flourishes(ink: np.ndarray) -> list[tuple[tuple[np.ndarray, int, int], float]]:
    """A piece as one digit with a flourish drawn out at one end or both, cut off: each cut
    straight at the innermost column past which all the ink lies in a band no taller than
    FLOURISH_HEIGHT of the piece, and at least EDGE of it long. For each way to cut (one
    end, the other, both): the rest as _between gives it, and what the cuts cost (log
    odds)."""
    h, w = ink.shape
    mask = ink > STROKE
    rows = np.arange(h)[:, None]
    top = np.where(mask, rows, h).min(axis=0)
    bottom = np.where(mask, rows, -1).max(axis=0)
    least = max(2, int(EDGE * h))
    ends: list[tuple[int, float] | None] = []
    for order in (slice(None), slice(None, None, -1)):  # from the left end, from the right
        band = np.maximum.accumulate(bottom[order]) - np.minimum.accumulate(top[order]) + 1
        low = np.nonzero(band <= FLOURISH_HEIGHT * h)[0]
        if not len(low) or not least <= low[-1] + 1 <= w - least:
            ends.append(None)
            continue
        x = int(low[-1] + 1 if order.step is None else w - 1 - low[-1])
        ends.append((x, CROSSING * float(_strokes_down(mask[:, x : x + 1])[0]) + FLOURISH))
    left, right = ends
    ways = [(left, None), (None, right), (left, right)]
    trims = []
    for k, (left, right) in enumerate(ways):
        if (left is None and right is None) or (left, right) in ways[:k]:
            continue
        if left and right and left[0] >= right[0]:
            continue
        cut = [None if e is None else np.full(h, e[0], np.int64) for e in (left, right)]
        found = _between(ink, *cut)
        if found is not None:
            trims.append((found, sum(e[1] for e in (left, right) if e is not None)))
    return trims


def _between(ink: np.ndarray, left: np.ndarray | None, right: np.ndarray | None):
    """The ink between two cut paths (None: the piece's own edge), cropped, with its left
    and top offsets; None if there is none. Only the columns the paths span are looked at:
    a stretch is a few of a long run's columns."""
    lo = 0 if left is None else max(0, int(left.min()))
    hi = ink.shape[1] if right is None else min(ink.shape[1], int(right.max()))
    if hi <= lo:
        return None
    columns = np.arange(lo, hi)[None, :]
    keep = np.ones((ink.shape[0], hi - lo), bool)
    if left is not None:
        keep &= columns >= left[:, None]
    if right is not None:
        keep &= columns < right[:, None]
    found = crop_to_ink(np.where(keep, ink[:, lo:hi], 0.0), STROKE)
    if found is None:
        return None
    crop, x, y = found
    return crop, x + lo, y


def _strokes_across(crop: np.ndarray) -> float:
    """How many strokes a row of the middle half of a piece crosses (the median row)."""
    h = crop.shape[0]
    middle = crop[h // 4 : max(h // 4 + 1, 3 * h // 4)] > STROKE
    return float(np.median(_strokes_down(middle.T)))


def _log(p) -> float:
    return float(np.log(max(float(p), 1e-9)))


def _wide(crop: np.ndarray) -> float:
    """What a candidate digit pays for being wider than a digit is."""
    h, w = crop.shape
    return TOO_WIDE * max(0.0, w / h - DIGIT_ASPECT)


Parts = list[tuple[np.ndarray, int, int]]  # (ink, left offset, top offset)


def _read_row(
    ink: np.ndarray, score: Score, read_pair: ReadPair | None, height: int, pen: float
) -> tuple[Parts, list[np.ndarray | None]]:
    """The likeliest reading of a piece of ink as a row of touching digits: a path through
    its candidate cuts (dynamic programming), each stretch between two chosen cuts read as a
    digit by the recogniser, or as two by the pair reader, paying for the strokes each cut
    crosses, for digits too wide, and for each digit beyond the first. A digit spans at most
    MAX_SPAN stretches between cuts, or WIDE_SPAN where the likeliest path of those holds a
    digit as thin as a 1's stroke, or reads the piece whole less than surely: a wide digit
    drawn with a wavering pen offers many cuts, and its side cut off reads as a 1 (a 0 read
    as "10"), or the digits it runs into are not cut from it. The stretches of each span are
    read in one batch. Or one digit with a flourish cut off (_without_flourishes), where that
    reads better. Returns the parts, and for each the pair reader's probabilities (or None)."""
    cuts, crossed = _candidate_cuts(ink, pen)
    edges: list[np.ndarray | None] = [None, *cuts, None]
    paid = [0.0, *(CROSSING * c for c in crossed), 0.0]
    n = len(edges)
    stretches: dict[tuple[int, int], tuple[np.ndarray, int, int]] = {}
    looked: set[tuple[int, int]] = set()  # stretches looked at (read, or not a digit's)
    value: dict[tuple[int, int], float] = {}
    pairs: dict[tuple[int, int], np.ndarray] = {}

    def read(span: int) -> None:
        """Read the stretches of up to `span` that are not read yet."""
        new = []
        for i in range(n - 1):
            for j in [*range(i + 1, min(n, i + span + 1)), *([n - 1] if i == 0 else [])]:
                if (i, j) in looked:
                    continue
                looked.add((i, j))
                found = _between(ink, edges[i], edges[j])
                if found is None:
                    continue
                crop = found[0]
                whole = i == 0 and j == n - 1
                if not whole and (
                    crop.shape[0] < PART_HEIGHT * height
                    or crop.shape[1] > MAX_ASPECT * crop.shape[0]
                ):
                    continue
                stretches[i, j] = found
                new.append((i, j))
        for k, c in zip(new, score([stretches[k][0] for k in new]) if new else [], strict=True):
            value[k] = _log(c) - _wide(stretches[k][0])
        if read_pair is not None:
            wanted = [
                k
                for k in new
                if PAIR_ASPECT[0] * stretches[k][0].shape[0]
                <= stretches[k][0].shape[1]
                <= PAIR_ASPECT[1] * stretches[k][0].shape[0]
                and _strokes_across(stretches[k][0]) <= PAIR_STROKES
            ]
            if wanted:
                for k, p in zip(wanted, read_pair([stretches[k][0] for k in wanted]), strict=True):
                    pairs[k] = np.asarray(p)

    def search(span: int) -> tuple[list[float], list[tuple[int, bool]]]:
        """best[j]: the likeliest reading of the piece up to edge j, and how it was reached."""
        best = [0.0] + [-np.inf] * (n - 1)
        came: list[tuple[int, bool]] = [(0, False)] * n
        for j in range(1, n):
            for i in sorted({*range(max(0, j - span), j), *([0] if j == n - 1 else [])}):
                if best[i] == -np.inf or (i, j) not in stretches:
                    continue
                extra = 0.0 if i == 0 else EXTRA_DIGIT
                if (i, j) in value:
                    v = best[i] + value[i, j] - paid[i] - extra
                    if v > best[j]:
                        best[j], came[j] = v, (i, False)
                if (i, j) in pairs:
                    p = pairs[i, j].max(axis=1)
                    v = best[i] + _log(p[0]) + _log(p[1]) - paid[i] - extra - EXTRA_DIGIT
                    v -= PAIR_COST
                    if v > best[j]:
                        best[j], came[j] = v, (i, True)
        return best, came

    def thin(came: list[tuple[int, bool]]) -> bool:
        """Whether the path ending at the piece's end holds a digit as thin as a 1's stroke,
        which may be the side of a wide digit cut off (a 0's arc read as a 1)."""
        j = n - 1
        while j > 0:
            i, pair = came[j]
            crop = stretches[i, j][0]
            if not pair and crop.shape[1] < WIDE_THIN * crop.shape[0]:
                return True
            j = i
        return False

    read(MAX_SPAN)
    best, came = search(MAX_SPAN)
    one_digit = came[-1] == (0, False)  # the piece read whole
    if best[-1] > -np.inf and (thin(came) or (one_digit and best[-1] < np.log(SURE))):
        read(WIDE_SPAN)
        best, came = search(WIDE_SPAN)
    parts: Parts = []
    readings: list[np.ndarray | None] = []
    j = n - 1
    if best[-1] == -np.inf:  # no reading: the piece whole, unless without a flourish
        parts, readings, j = [(ink, 0, 0)], [None], 0
    while j > 0:
        i, pair = came[j]
        crop, dx, dy = stretches[i, j]
        if pair:
            halves = _halves(crop)
            parts[:0] = [(p, x + dx, y + dy) for p, x, y in halves]
            readings[:0] = list(pairs[i, j])
        else:
            parts.insert(0, (crop, dx, dy))
            readings.insert(0, None)
        j = i
    # ... or one digit with a flourish, read without it: where that reads better (looked
    # at only where it might), or surely where the pair reader read the flourish as a
    # digit (a part as flat as a bar), or where the piece read whole is valued too low to be
    # answered (UNSURE_WHOLE: unsure, or too wide for one digit): a sure digit, not a refusal
    surely = any(part.shape[0] <= BAR_HEIGHT * height for part, _, _ in parts)
    surely |= came[-1] == (0, False) and best[-1] < _log(UNSURE_WHOLE)
    if surely or best[-1] < -FLOURISH:
        for found, v, c in _trims_read(ink, score):
            if v > best[-1] or (surely and c >= SURE):
                best[-1], surely, parts, readings = v, False, [found], [None]
    return parts, readings


def _trims_read(
    ink: np.ndarray, score: Score
) -> list[tuple[tuple[np.ndarray, int, int], float, float]]:
    """Each way to read a piece without a flourish (_without_flourishes), read in one batch:
    (the part, its value in log odds less the cut's cost and its width's, its confidence)."""
    trims = _without_flourishes(ink)
    confidences = score([t[0][0] for t in trims]) if trims else []
    return [
        (found, _log(c) - _wide(found[0]) - cost, c)
        for (found, cost), c in zip(trims, confidences, strict=True)
    ]


def _trimmed(ink: np.ndarray, sure: float, score: Score) -> Parts | None:
    """A piece too narrow for two digits, read at `sure`, as one digit with a flourish cut
    off, where that reads surely (SURE) and better (_trims_read): a 1 with a closing dash
    run into it as its bar (401- read "40?"); not a sign that reads as no digit whole or
    cut (a euro sign's bars cut off). None where nothing does."""
    best, found = _log(sure), None
    for part, v, c in _trims_read(ink, score):
        if c >= SURE and v > best:
            best, found = v, part
    return [found] if found is not None else None


def _halves(ink: np.ndarray) -> Parts:
    """Two parts split at the path crossing the least ink near the middle: the boxes of a
    pair the pair reader read whole."""
    w = ink.shape[1]
    lo, hi = max(1, w // 4), max(2, 3 * w // 4)
    cut = _seams(ink, lo, hi, 1)
    parts = []
    if cut:
        left, right = _between(ink, None, cut[0]), _between(ink, cut[0], None)
        if left is not None and right is not None:
            parts = [left, right]
    mid = w // 2
    return parts or [(ink[:, :mid], 0, 0), (ink[:, mid:], mid, 0)]


def _mark(
    d: _Digit, line: list[_Digit], tall: list[_Digit], flat: bool, tallest: int, baseline: float
) -> str | None:
    """Whether a candidate is a mark between digits rather than a digit: a dash (`flat`, and
    beside the line's `tall` candidates rather than over or under one: another dash may lie
    over it, in an equals sign), or a dot or a comma (small, low on the line); or a line
    under or over digits (UNDERLINE: `flat`, spanning two of them or more wholly)."""
    h, w = d.bottom - d.top, d.right - d.left
    if flat:
        over = [o for o in tall if o is not d and _overlap(d.left, d.right, o.left, o.right) > 0]
        # a line under or over two digits or more, each of them wholly: no digit, no mark
        spans = [o for o in over if d.left <= o.left and o.right <= d.right]
        if len(spans) >= 2 and (
            all(d.top >= o.bottom for o in spans) or all(d.bottom <= o.top for o in spans)
        ):
            return UNDERLINE
        beside = all(_overlap(d.left, d.right, o.left, o.right) < 0.3 * w for o in over)
        return "-" if beside else None
    tailed = d.bottom > baseline + 0.15 * tallest  # a comma's tail, below the line
    if len(line) < 2 or h > (TAILED if tailed else MARK_SIZE) * tallest or w > MARK_SIZE * tallest:
        return None
    line_top = baseline - tallest
    if d.top < line_top + LOW * tallest:
        return None
    return "," if h > COMMA * w or tailed else "."


def _strokes_down(mask: np.ndarray) -> np.ndarray:
    """How many strokes (runs of the mask) each column crosses from top to bottom."""
    return mask[0].astype(np.int64) + (mask[1:] & ~mask[:-1]).sum(axis=0)


def _one_stroke(ink: np.ndarray) -> bool:
    """Whether ink is one stroke from end to end (a dash, a rule) rather than digits run
    together into a flat piece (a row of overlapping digits is as flat as a dash): few of
    its columns cross more than one stroke."""
    strokes = _strokes_down(ink > STROKE)
    inked = strokes > 0
    return not inked.any() or float((strokes[inked] >= 2).mean()) < ONE_STROKE


def _marks(
    line: list[_Digit], ink: np.ndarray, owners: np.ndarray
) -> tuple[dict[int, str], int, float]:
    """The marks of a line (index -> ',', '.', '-' or '='), its digits' height (its
    tallest candidate's that is no dash; 0 if all are) and its baseline (where most of its
    big candidates end)."""
    flat = [
        d.bottom - d.top <= FLAT * (d.right - d.left) and _one_stroke(d.ink(ink, owners))
        for d in line
    ]
    tall = [d for d, f in zip(line, flat, strict=True) if not f]
    if not tall:
        return {i: "-" for i in range(len(line))}, 0, 0.0
    tallest = max(d.bottom - d.top for d in tall)
    big = [d.bottom for d in tall if d.bottom - d.top >= 0.6 * tallest]
    baseline = float(np.median(big))
    out = {}
    for i, (d, f) in enumerate(zip(line, flat, strict=True)):
        # two dashes near enough to be grouped as one candidate: an equals sign
        equals = not f and len(d.members) == 2 and _two_dashes(d.ink(ink, owners))
        mark = _mark(d, line, tall, f or equals, tallest, baseline)
        if mark:
            out[i] = "=" if equals else mark
    return out, tallest, baseline


def _comma_tail(
    ink: np.ndarray, base: float, height: int, score: Score
) -> tuple[np.ndarray, np.ndarray, tuple[int, int], float] | None:
    """A comma run into a digit (its head touching the digit's foot, its tail below the
    line): `ink` is the digit's, `base` the line's baseline in it, `height` the line's digit
    height. The tail is ink below the line by TAIL_BELOW of the height, no wider than
    TAIL_WIDE of it, at either end of the digit. The comma is taken off with a corner of the
    digit's box round its tail (up to TAIL_HEAD of the height over the line and past the
    tail: its head), the corner that reads best, when the digit is read surely without it
    (callers look for one only in a digit not read surely with it). Returns the digit's ink
    less the comma, the comma's ink, where it lies in `ink` (left, top) and the digit's
    confidence without it; None if there is none."""
    h, w = ink.shape
    zone = int(np.ceil(base + TAIL_BELOW * height))
    if not 0 < zone < h or w > WIDE * height:
        return None  # nothing below the line, or all of it (not a digit on the line)
    cols = np.flatnonzero((ink[zone:] > STROKE).any(axis=0))
    if len(cols) == 0 or cols[-1] - cols[0] + 1 > TAIL_WIDE * height:
        return None
    at_left = cols[0] <= TAIL_END * height
    if not at_left and cols[-1] < w - 1 - TAIL_END * height:
        return None  # under the middle of the digit: its own stroke, not a comma
    corners, tries = [], []
    for up in (0.0, TAIL_HEAD / 2, TAIL_HEAD):
        for past in (0.0, TAIL_HEAD / 2, TAIL_HEAD):
            top = max(0, int(base - up * height))
            x0 = cols[0] - (0 if at_left else int(past * height))
            x1 = cols[-1] + 1 + (int(past * height) if at_left else 0)
            x0, x1 = max(0, x0), min(w, x1)
            trimmed = ink.copy()
            trimmed[top:, x0:x1] = 0.0
            kept = crop_to_ink(trimmed, 0.0)
            if kept is not None:
                corners.append((trimmed, ink[top:, x0:x1], (x0, top)))
                tries.append(kept[0])
    if not tries:
        return None
    readings = score(tries)
    best = int(np.argmax(readings))
    if readings[best] < SURE:
        return None
    return (*corners[best], readings[best])


def _closing_slash(line: list[_Digit], found: dict[int, str], ink, owners) -> dict[int, str]:
    """A slash that closes a line's amount with a dash or an equals sign (1500/-, 1500/=): the
    line's last candidate before its closing marks, when it is a slash (_slash), or its last
    candidate when that is a slash with the dash joined to it (_slash_and_dash): index -> '/'."""
    tall = [d.bottom - d.top for i, d in enumerate(line) if i not in found and not d.dot]
    if len(tall) < 2:
        return {}
    tallest = max(tall)
    last = len(line) - 1
    while last in found or line[last].dot:
        last -= 1
    d = line[last]
    if d.bottom - d.top < 0.5 * tallest:
        return {}
    piece = d.ink(ink, owners) > STROKE
    after = [found[i] for i in range(last + 1, len(line)) if i in found]
    closed = bool(after) and after[-1] in ("-", "=")
    return {last: "/"} if (_slash(piece) if closed else _slash_and_dash(piece)) else {}


def _slash(mask: np.ndarray) -> bool:
    """Whether ink (a mask) is a slash: one stroke (few rows cross two), leaning right by
    SLASH_SLANT degrees or more, with no bar across its top (SLASH_TOP)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) < 4:
        return False
    mask = mask[rows[0] : rows[-1] + 1]
    h = mask.shape[0]
    q = max(1, h // 4)
    # the lean: from the middle of its bottom quarter's ink to that of its top quarter
    (y0, x0), (y1, x1) = (np.nonzero(part) for part in (mask[:q], mask[h - q :]))
    lean = (x0.mean() - x1.mean()) / max(1.0, y1.mean() + h - q - y0.mean())
    top = np.flatnonzero(mask[: max(1, h // 5)].any(axis=0))
    return (
        _one_stroke(mask.T)
        and np.degrees(np.arctan(lean)) >= SLASH_SLANT
        and top[-1] - top[0] + 1 <= SLASH_TOP * h
    )


def _slash_and_dash(mask: np.ndarray) -> bool:
    """Whether ink (a mask) is a slash with a dash joined at its right (/-): its right end is
    a flat band at mid height, SLASH_DASH of its height long at least, and the rest, less
    that band's rows, a slash reaching above and below it."""
    h, w = mask.shape
    rows = np.arange(h)[:, None]
    inked = mask.any(axis=0)
    low = np.where(mask, rows, h).min(axis=0)
    high = np.where(mask, rows, -1).max(axis=0)
    x = w
    top, bottom = h, -1
    while x > 0 and inked[x - 1]:
        t, b = min(top, int(low[x - 1])), max(bottom, int(high[x - 1]))
        if b - t + 1 > DASH_THICK * h:  # the band grew too thick for a dash
            break
        top, bottom, x = t, b, x - 1
    if w - x < SLASH_DASH * h or not (0.25 * h <= (top + bottom) / 2 <= 0.75 * h):
        return False
    rest = mask[:, :x].copy()
    rest[top : bottom + 1] = False
    ys = np.flatnonzero(rest.any(axis=1))
    return len(ys) > 0 and ys[0] < top and ys[-1] > bottom and _slash(rest)


def bars_on_top(ink: np.ndarray) -> int:
    """How many bars cross the top BARS_TOP of a piece: runs of rows whose longest stroke
    spans BAR_SPAN of its width, apart from each other (the rupee sign has two, a 7 one)."""
    h, w = ink.shape
    top = ink[: max(1, int(BARS_TOP * h))] > STROKE
    rows, starts, ends = _runs(top)
    longest = np.zeros(len(top), np.int64)
    np.maximum.at(longest, rows, ends - starts)
    return int(_strokes_down((longest >= BAR_SPAN * w)[:, None])[0])


def _two_dashes(ink: np.ndarray) -> bool:
    """Whether ink is two dashes, one over the other: two pieces, each flat (FLAT) and one
    stroke, overlapping left to right by half the shorter. A digit drawn in two strokes
    (a 5 and its bar, a 4) has one flat piece at most."""
    labels, n = ndi.label(ink > STROKE, structure=np.ones((3, 3), bool))
    if n != 2:
        return False
    spans = []
    for i, where in enumerate(ndi.find_objects(labels), 1):
        h, w = where[0].stop - where[0].start, where[1].stop - where[1].start
        if h > FLAT * w or not _one_stroke(np.where(labels[where] == i, ink[where], 0.0)):
            return False
        spans.append((where[1].start, where[1].stop))
    return _stacked(*spans[0], *spans[1])


def _stacked(a0: int, a1: int, b0: int, b1: int) -> bool:
    """Whether two dashes (from column a0 to a1, b0 to b1) lie one over the other: they
    overlap left to right by half the shorter, as an equals sign's do."""
    return _overlap(a0, a1, b0, b1) >= 0.5 * min(a1 - a0, b1 - b0)


def _equals(line: list[_Digit], found: dict[int, str]) -> list[tuple[_Digit, str]]:
    """The marks of a line as candidates: two dashes one over the other (overlapping left
    to right by half the shorter) are one equals sign, as cheques end an amount."""
    marks = sorted(found.items(), key=lambda m: line[m[0]].left)
    out: list[tuple[_Digit, str]] = []
    for i, mark in marks:
        d = line[i]
        if out and mark == "-" and out[-1][1] == "-":
            last = out[-1][0]
            if _stacked(last.left, last.right, d.left, d.right):
                out[-1] = (last.joined(d), "=")
                continue
        out.append((d, mark))
    return out


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
    heights = [d.bottom - d.top for d in line]

    def likely(d: _Digit, confidence: float, i: int, j: int) -> float:
        """How likely pieces i..j-1, joined as `d`, are one digit: its confidence, less if
        it is short beside its taller neighbour or its pieces stand apart (a stray stroke
        is nearer the digit it belongs to). Beside its neighbours, not the line's tallest:
        a cheque's raised cents are two small digits, and the second stands beside the
        first, so that two read apart are not judged short twice to once joined."""
        height = d.bottom - d.top
        around = [heights[k] for k in (i - 1, j) if 0 <= k < len(line)]
        short = min(1.0, height / (SHORT * max(around))) if around else 1.0
        return confidence * short * short * np.exp(-d.gaps / (GAP_SCALE * height))

    confidences = score([d.ink(ink, owners) for d in line])
    alone = [likely(d, c, i, i + 1) for i, (d, c) in enumerate(zip(line, confidences, strict=True))]

    def apart(k: int) -> bool:
        """Whether pieces k and k+1 are two digits: each read surely, one short beside the
        other, wholly apart from it left to right (a small digit raised beside a big one:
        a cheque's cents; a stroke come off a digit lies over it or under it)."""
        a, b = line[k], line[k + 1]
        return (
            b.left > a.right
            and min(confidences[k], confidences[k + 1]) >= SURE
            and min(heights[k], heights[k + 1]) < SHORT * max(heights[k], heights[k + 1])
        )

    def flag_beside(k: int) -> bool:
        """Whether pieces k and k+1 are no digit together: one a stroke as flat as a bar,
        wholly beside the other, up in its upper half, whose top stands over the flat one's by
        more than FLAG_TOP of its height (a 5's flag drawn out to the right meets the next
        digit's stem below its top; a 7's bar is its top; a 2's base drawn apart is low)."""
        a, b = line[k], line[k + 1]
        if b.left <= a.right:
            return False
        for flat, other in ((a, b), (b, a)):
            h = other.bottom - other.top
            if (
                flat.bottom - flat.top <= BAR_HEIGHT * h
                and flat.top < other.top + h / 2
                and other.top < flat.top - FLAG_TOP * h
            ):
                return True
        return False

    # only runs that may be joined are read: pieces that nearly touch, or one unreadable;
    # pieces each read surely (however short: a cheque's raised cents), that joined would
    # be wider than a digit, are digits apart
    runs = {
        (i, j): d
        for (i, j), d in runs.items()
        if (
            min(confidences[i:j]) < SURE
            or (d.close and d.right - d.left <= JOIN_WIDE * (d.bottom - d.top))
        )
        and not any(apart(k) or flag_beside(k) for k in range(i, j - 1))
    }
    together = {
        key: likely(d, c, *key)
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
                if p <= worst:
                    continue
            if likeliest[i] + np.log(max(p, 1e-9)) > likeliest[j]:
                likeliest[j], start[j] = likeliest[i] + np.log(max(p, 1e-9)), i
    out, j = [], len(line)
    while j > 0:
        i = start[j]
        out.append(line[i] if j - i == 1 else runs[i, j])
        j = i
    return out[::-1]


def _budgeted(read: Callable, left: list[int]) -> Callable:
    """`read`, counting the pieces it is given against the picture's budget (`left`, shared
    by the recogniser and the pair reader): Busy once it is spent."""

    def counted(pieces: list[np.ndarray]):
        left[0] -= len(pieces)
        if left[0] < 0:
            raise Busy(f"more than {MAX_READS} candidate digits to read")
        return read(pieces)

    return counted


def _check(stop: Stop | None) -> None:
    if stop is not None and stop():
        raise Stopped


def _single(w: int, h: int, confidence: float) -> bool:
    """A piece read as one digit without looking for cuts: not too wide for one, and read
    confidently (or too narrow for two)."""
    return w <= WIDE * h and (confidence >= SURE or w <= NARROW * h)


def _pen(ink: np.ndarray) -> float:
    """The pen's width: twice the widest distance to the stroke's edge along its middle,
    about; four times the mean distance inside the ink."""
    return max(1.0, 4.0 * stroke_width(ink, STROKE))


def segment(
    ink: np.ndarray,
    score: Score | None = None,
    read_pair: ReadPair | None = None,
    stop: Stop | None = None,
) -> list[list[Segment]]:
    """Digits of an ink map, as lines (top to bottom) of segments (left to right); marks
    between digits (dots, commas, dashes) come as segments with their `mark` (a line may
    hold marks only: a dash alone).
    With a `score` (confidences of pieces read as digits), pieces that read better joined
    are joined and pieces too wide for one digit, or read as none, are cut where that reads
    best; with `read_pair`, two touching digits may be read whole. Raises Busy for a picture
    too busy to be numbers, Stopped once `stop()` is true."""
    left = [MAX_READS]
    score = score and _budgeted(score, left)
    read_pair = read_pair and _budgeted(read_pair, left)
    try:
        # dust goes first, then rules and frames (a frame along the picture's edges, with
        # digits crossing it, is one piece with them), then what is left along the border;
        # specks are told only once pieces are grouped into digits: a 7's faint bar may
        # weigh less than a twentieth of a bold 8 beside it
        ink = clean(ink, DUST, borders=False)
        labels, pieces = ink_components(ink)
        if len(pieces) > BUSY_PIECES:
            raise Busy(f"{len(pieces)} pieces of ink")
        if score and len(pieces) <= 2 and empty_box(ink) and score([ink])[0] < SURE:
            return []  # a form's empty cell (the model reads it as no digit): no digits
        ruled, framed = _without_a_cell(ink, labels, pieces)
        if ruled is ink:
            ruled, framed = _without_rules(ink, pieces)
        h, w = ink.shape
        edges = any(
            p["box"][0] == 0 or p["box"][1] == 0 or p["box"][2] == h or p["box"][3] == w
            for p in pieces
        )
        if ruled is not ink or edges:
            # once a frame along the picture's edges is out, what meets those edges is a
            # digit that crossed the frame, not a line along the border
            cleaned = clean(ruled, DUST, borders=not framed)
            if cleaned is not ink:
                ink = cleaned
                labels, pieces = ink_components(ink)
    except EmptyImageError:
        return []
    _check(stop)
    apart, together = _digits_from_pieces(pieces)
    candidates = _without_specks(apart, pieces)
    if len(candidates) > MAX_CANDIDATES:
        raise Busy(f"{len(candidates)} candidate digits")
    owners = _owners(ink, labels)
    if together is not None:
        together = _without_specks(together, pieces)
        candidates = _lines_apart(candidates, together, ink, owners, score)
    lines = []
    for line in _lines(candidates):
        _check(stop)
        found, height, base = _marks(line, ink, owners)
        under = {i for i, mark in found.items() if mark == UNDERLINE}
        found = {i: mark for i, mark in found.items() if i not in under}
        found.update(_closing_slash(line, found, ink, owners))
        digits = [d for i, d in enumerate(line) if i not in found.keys() | under and not d.dot]
        if score and digits:
            digits = _merge_broken(digits, ink, owners, score)
        segments = []
        for d in digits:
            _check(stop)
            digit_ink, left, top = d.cut(ink, owners)
            sure = score([digit_ink])[0] if score else 1.0
            tail = sure < SURE and height and _comma_tail(digit_ink, base - top, height, score)
            if tail:
                digit_ink, comma, (x, y), sure = tail
                box = (left + x, top + y, left + x + comma.shape[1], top + y + comma.shape[0])
                segments.append(Segment(box, comma, mark=","))
                digit_ink, dx, dy = crop_to_ink(digit_ink, 0.0)
                left, top = left + dx, top + dy
            h, w = digit_ink.shape
            parts: Parts = [(digit_ink, 0, 0)]
            readings: list[np.ndarray | None] = [None]
            if score and not _single(w, h, sure):
                parts, readings = _read_row(digit_ink, score, read_pair, h, _pen(digit_ink))
            elif score and sure < SURE and NARROW_TRIM:
                parts = _trimmed(digit_ink, sure, score) or parts
            for (part, dx, dy), reading in zip(parts, readings, strict=True):
                ph, pw = part.shape
                box = (left + dx, top + dy, left + dx + pw, top + dy + ph)
                segments.append(Segment(box, part, reading))
        for d, mark in _equals(line, found):
            box = (d.left, d.top, d.right, d.bottom)
            segments.append(Segment(box, d.ink(ink, owners), mark=mark))
        segments.sort(key=lambda s: (s.box[0] + s.box[2]) / 2)
        if segments:  # (a line of points that are no marks has none)
            lines.append(segments)
    return lines
