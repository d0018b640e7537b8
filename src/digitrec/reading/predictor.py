"""The Predictor: one object that every interface uses to read digits.

It reads an ONNX model with ONNX Runtime (torch-free); other formats through the `loaders`
handed to it (digitrec.load_predictor hands in the training wing's torch backend for
.safetensors checkpoints). Pictures become MNIST form through preprocess.to_mnist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadImageError, EmptyImageError
from .backends import DIGITS, PAIRS, Loader, open_backend
from .calibrate import refusal_reasons, second_look, softmax
from .cards import (  # noqa: F401 (DEFAULT_THRESHOLD: re-exported)
    DEFAULT_THRESHOLD,
    calibrated_level,
    calibration,
    check_threshold,
    second_look_setting,
)
from .parallel import check_readers, default_readers, read_many
from .preprocess import (
    IMAGE_SIZE,
    ImageInput,
    MnistInputs,
    fit_and_centre,
    fit_pair,
    picture_ink,
    stroke_width,
)
from .registry import BUNDLED, resolve, served_name
from .registry import bundled_path as bundled_model_path
from .segment import Busy, Segment, Stop, bars_on_top, segment
from .views import views

BUNDLED_PAIR_READER = "pairs.onnx"


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """--model, else $DIGITREC_MODEL, else the model shipped in the package. Each is a
    path, 'bundled', or the name of a model in the models folder (digitrec.reading.registry)."""
    return resolve(model or os.environ.get("DIGITREC_MODEL") or BUNDLED)


# Why an answer is refused: the one list, which the API's schema, the page (through the API)
# and the desktop window take from here. REASONS has the message, REASON_LABELS a short label.
REASONS = {
    "blank": "the picture is blank",
    "not_a_digit": "this does not look like a digit",
    "unsure": "too unsure to say which digit",
    "busy": "too busy to be a number: more pieces of ink than digits could make",
}
REASON_LABELS = {
    "blank": "blank",
    "not_a_digit": "not a digit",
    "unsure": "too unsure",
    "busy": "too busy",
}
# a refused answer whose top two classes hold at least this is unsure between them; one
# whose top two hold less is no digit at all (for models whose card calibrates no level:
# calibrate.calibration_card chooses one on held-out non-digits)
UNSURE_TOP_TWO = 0.8
# a number's first or last piece of ink whose likeliest digit holds less than this is a
# sign written before or after it ($, €), not a digit: the model reads such a piece as no
# digit at all (a near-even spread, 0.11-0.14), and 11 of 9,560 digits of held-out
# writers' numbers read so low, at a number's end only where digits run together
NO_DIGIT = 0.2
SIGN_GAP = 0.02  # ... standing this share of a digit's height apart from it, at least,
SIGN_SIZE = 1.2  # ... and no taller or wider than this times the tallest digit
# ... but a piece whose ink is this many times as thick as the other digits' (their median
# stroke_width) is a digit written over itself, its loops filled in, not a sign: a sign is
# drawn with the digits' pen (1.10 times theirs at most, 8,300 signs drawn round held-out
# writers' numbers), a narrow 8 of a broad pen fills to 1.29-1.64 times
SOLID = 1.2


@dataclass
class Prediction:
    """One digit read from a picture, or a refusal (`refused`, with a `reason` from REASONS).
    A refused prediction still carries the model's best guess in `digit` (None if blank)."""

    digit: int | None
    confidence: float
    probabilities: np.ndarray  # (10,), calibrated
    input: np.ndarray | None  # the (28, 28) picture the model saw
    refused: bool = False
    reason: str | None = None
    box: tuple[int, int, int, int] | None = None  # left, top, right, bottom (read_number)

    @property
    def top3(self) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(d), float(self.probabilities[d])) for d in order]

    @property
    def message(self) -> str:
        return REASONS[self.reason] if self.reason else f"{self.digit}"

    def to_dict(self) -> dict:
        """The wire schema of a digit: wire.DigitDict, wire.BoxedDigitDict with a box."""
        d = {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "refused": self.refused,
            "reason": self.reason,
            "message": self.message,
            "top3": [{"digit": d, "probability": round(p, 6)} for d, p in self.top3],
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }
        if self.box is not None:
            d["box"] = list(self.box)
        return d


def blank() -> Prediction:
    return Prediction(None, 0.0, np.zeros(10, np.float32), None, True, "blank")


@dataclass
class NumberReading:
    """Several digits read from one picture: lines top to bottom, digits left to right; the
    marks written between them (",", ".", "-", "=") in `marks`, per line (digits before, mark).
    `reason` says why a picture with no digit read has none (else blank or None)."""

    lines: list[list[Prediction]]
    marks: list[list[tuple[int, str]]] = field(default_factory=list)
    why: str | None = None

    @property
    def digits(self) -> list[Prediction]:
        return [p for line in self.lines for p in line]

    @property
    def refused(self) -> bool:
        return not self.digits or any(p.refused for p in self.digits)

    @property
    def reason(self) -> str | None:
        if self.digits:
            return None
        return self.why or "blank"

    @property
    def text(self) -> str:
        """The number as written; '?' for a digit the model refused; lines joined by newlines."""
        return "\n".join("".join(_characters(line)) for line in self.lines)

    @property
    def written(self) -> str:
        """The text with the marks written between its digits (1,526; 10.000; 555-1234)."""
        out = []
        for k, line in enumerate(self.lines):
            chars = _characters(line)
            marks = self.marks[k] if k < len(self.marks) else []
            for before, mark in sorted(marks, reverse=True):
                chars.insert(before, mark)
            out.append("".join(chars))
        return "\n".join(out)

    def to_dict(self) -> dict:
        """The wire schema of a number: wire.NumberDict."""
        return {
            "number": self.text,
            "refused": self.refused,
            "reason": self.reason,
            "lines": len(self.lines),
            "digits": [p.to_dict() for p in self.digits],
            "written": self.written,
        }


def _characters(line: list[Prediction]) -> list[str]:
    """Each digit of a line as written: '?' for one the model refused."""
    return ["?" if p.refused else str(p.digit) for p in line]


class Predictor:
    """Reads digits with one model: `predict` a single digit, `read_number` several.

    Probabilities are calibrated with the temperature in the model's card; an answer whose
    confidence is under `threshold` (the card's, unless given) is refused. `loaders` maps a
    file suffix to the backend that reads it (ONNX only unless given)."""

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        threads: int | None = None,
        threshold: float | None = None,
        pairs: str | os.PathLike | bool = True,
        loaders: Mapping[str, Loader] | None = None,
        readers: int | None = None,
    ):
        # checked first: a bad setting is refused before a model is loaded for nothing
        if threshold is not None:
            threshold = check_threshold(threshold)
        # processes that bring a batch of pictures to MNIST form (predict_many): this one
        # and readers - 1 more (reading/parallel.py); by default one a core
        self.readers = default_readers() if readers is None else check_readers(readers)
        self.path = resolve_model_path(model)
        self.backend = open_backend(self.path, threads, loaders, DIGITS)
        self.card: dict = self.backend.card
        self.name = served_name(self.path, self.card)  # what --model calls it, else its card's
        self.temperature, calibrated = calibration(self.card, self.path)
        self.threshold = threshold if threshold is not None else calibrated
        self.unsure_top_two = calibrated_level(
            self.card, self.path, "unsure_top_two", UNSURE_TOP_TWO
        )
        # near ties are refused by the card's rule, not under a threshold given instead of it
        tie = calibrated_level(self.card, self.path, "tie_margin", 0.0)
        self.tie_margin = tie if threshold is None else 0.0
        # answers less sure than this are read again in other views of their picture
        # (probabilities): (level, view names), or None for a model that reads once
        self.second_look = second_look_setting(self.card, self.path)
        # The pair reader (read_number): the bundled one unless another file or False is given
        self.pairs = None
        if pairs is True and bundled_model_path(BUNDLED_PAIR_READER).is_file():
            pairs = bundled_model_path(BUNDLED_PAIR_READER)
        if pairs not in (True, False, None):
            self.pairs = open_backend(Path(pairs), threads, loaders, PAIRS)
            self.pair_temperature, _ = calibration(self.pairs.card, Path(pairs))

    def classify(self, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Calibrated probabilities (N, 10) for pictures already in MNIST form, (N, 28, 28)."""
        x = np.asarray(inputs, dtype=np.float32).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        chunks = [
            softmax(
                self.backend.logits(np.ascontiguousarray(x[i : i + batch_size])), self.temperature
            )
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 10) as the model answers pictures in MNIST form: what
        `classify` gives, and for an answer less sure than the card's second-look level, the
        mean of what it gives for the picture and for each of its other views (views.py),
        as the refusal rule was chosen on."""
        probs = self.classify(inputs)
        return self._look_again(np.asarray(inputs, np.float32), probs)

    def _look_again(self, inputs: np.ndarray, probs: np.ndarray) -> np.ndarray:
        if self.second_look is None:
            return probs
        below, names = self.second_look
        x = inputs.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)

        def views_of(rows: np.ndarray) -> np.ndarray:
            seen = self.classify(views(x[rows], names).reshape(-1, IMAGE_SIZE, IMAGE_SIZE))
            return seen.reshape(len(names), len(rows), 10)

        return second_look(probs, below, views_of) if names else probs

    def judge(self, probs: np.ndarray, inputs: np.ndarray) -> list[Prediction]:
        reasons = refusal_reasons(probs, self.threshold, self.tie_margin, self.unsure_top_two)
        return [
            Prediction(int(p.argmax()), float(p.max()), p, x, reason is not None, reason)
            for p, x, reason in zip(probs, inputs, reasons, strict=True)
        ]

    def predict(self, image: ImageInput) -> Prediction:
        return self.predict_many([image])[0]

    def predict_many(self, images: list[ImageInput]) -> list[Prediction]:
        """One Prediction per picture; blank pictures are refused, unreadable ones raise."""
        # a blank picture has an answer (refused: blank); an unreadable one is the caller's
        # to fix, so the batch stops at the first
        return self._answers(read_many(images, self.readers, raise_unreadable=True), len(images))

    def predict_each(self, images: list[ImageInput]) -> list[Prediction | BadImageError]:
        """predict_many, but an unreadable picture (missing, not a picture, damaged) gets
        its error in its place instead of stopping the batch."""
        read = read_many(images, self.readers)
        results: list = self._answers(read, len(images))
        for out in read.left_out:
            if out.reason == "unreadable":
                results[out.index] = BadImageError(out.message)
        return results

    def _answers(self, read: MnistInputs, n: int) -> list[Prediction]:
        results = [blank() for _ in range(n)]
        if read.kept:
            judged = self.judge(self.probabilities(read.inputs), read.inputs)
            for i, p in zip(read.kept, judged, strict=True):
                results[i] = p
        return results

    def read_pair(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (N, 2, 10) of the two touching digits in each piece of
        ink, read in one batch."""
        x = np.stack([fit_pair(ink) for ink in pieces])[:, None].astype(np.float32)
        logits = self.pairs.logits(x).reshape(-1, 10)
        return softmax(logits, self.pair_temperature).reshape(len(pieces), 2, 10)

    def segment(
        self, ink: np.ndarray, stop: Stop | None = None, marks: bool = False
    ) -> list[list[Segment]]:
        """The digits of an ink map (preprocess.picture_ink), lines of segments, cut and
        joined where this model reads them best (see segment.segment), each with the
        model's reading of it: its `input` in MNIST form and its `probabilities` (the pair
        reader's for a digit read whole with its touching neighbour). Marks between digits
        (segments with a `mark`) are not read, and left out unless `marks`; so are lines of
        marks only."""
        readings = _Readings(self.classify)
        lines = segment(ink, readings.confidences, self.read_pair if self.pairs else None, stop)
        if not marks:
            lines = [[s for s in line if s.mark is None] for line in lines]
            lines = [line for line in lines if line]
        digits = [s for line in lines for s in line if s.mark is None]
        alone = []  # the digits the recogniser read alone, not the pair reader with another
        for s, (x, p) in zip(digits, readings.of([s.ink for s in digits]), strict=True):
            s.input = x
            if s.probabilities is None:
                alone.append((s, p))
        if alone:  # ... with a second look at the unsure ones, as `probabilities` gives them
            inputs = np.stack([s.input for s, _ in alone])
            looked = self._look_again(inputs, np.stack([p for _, p in alone]))
            for (s, _), p in zip(alone, looked, strict=True):
                s.probabilities = p
        return lines

    def read_number(self, image: ImageInput, stop: Stop | None = None) -> NumberReading:
        """Every digit in the picture: lines top to bottom, digits left to right, each with
        its box (in the picture's pixels) and confidence; marks between them (dots, commas,
        dashes, equals signs) apart, signs at a line's ends ($, €) dropped. A picture too
        busy to be numbers is refused (reason busy); `stop` (true once the caller no longer
        wants the answer) ends the work with segment.Stopped."""
        try:
            ink, scale = picture_ink(image)
        except EmptyImageError:
            return NumberReading([])
        try:
            found = self.segment(ink, stop, marks=True)
        except Busy:
            return NumberReading([], why="busy")
        lines, marks = [], []
        for line in found:
            line = _without_signs(line)
            digits = [s for s in line if s.mark is None]
            if not digits:
                continue
            inputs = np.stack([s.input for s in digits])
            # float32 as classify gives them, whatever a pair reader's backend gives
            probs = np.stack([s.probabilities for s in digits]).astype(np.float32, copy=False)
            predictions = self.judge(probs, inputs)
            for p, s in zip(predictions, digits, strict=True):
                p.box = tuple(round(v / scale) for v in s.box)
            lines.append(predictions)
            # a mark counts between digits only: one before the first or after the last
            # digit (a full stop, a dash drawn under) is dropped
            before = 0
            line_marks = []
            for s in line:
                if s.mark is None:
                    before += 1
                elif 0 < before < len(digits):
                    line_marks.append((before, s.mark))
            marks.append(line_marks)
        if not lines:
            # ink, but no digit: marks only (a dash, dots), or a rule alone
            return NumberReading([], why="not_a_digit")
        return NumberReading(lines, marks)


def _without_signs(line: list[Segment]) -> list[Segment]:
    """A line less the signs at its ends: the pieces of ink first or last on a line of
    digits that the model reads as no digit at all (their likeliest digit under NO_DIGIT,
    as it reads a currency sign: $, €, or what segmentation cut one into), or a rupee sign
    first (_rupee), standing apart from the digits (SIGN_GAP) and of their size
    (SIGN_SIZE), are a sign, not digits; a piece of ink thicker than the digits' (SOLID),
    a digit written over itself, is no sign. What is left of digits run together, cut apart,
    touches its neighbour, and digits run together with a frame's remains are bigger than
    a digit: refused, never dropped."""
    digits = [s for s in line if s.mark is None]
    no = [float(s.probabilities.max()) < NO_DIGIT for s in digits]
    if any(no) and not all(no):
        pen = float(
            np.median([stroke_width(s.ink) for s, n in zip(digits, no, strict=True) if not n])
        )
        if pen > 0:  # (digits too faint to measure leave the rule as it was)
            no = [n and stroke_width(s.ink) <= SOLID * pen for s, n in zip(digits, no, strict=True)]
    if len(digits) > 1 and _rupee(digits[0]):
        no[0] = True
    first = next((i for i, n in enumerate(no) if not n), len(no))  # the first digit read
    last = len(no) - next((i for i, n in enumerate(reversed(no)) if not n), len(no))
    if first >= last:
        return line  # no digit read at all: refused as a whole
    # a sign is of the digits' size: no bigger than SIGN_SIZE times the tallest
    most = SIGN_SIZE * max(s.box[3] - s.box[1] for s in digits[first:last])
    keep = set(range(len(digits)))
    ends = (range(first), range(last, len(digits)))
    for end, (a, b) in zip(ends, ((first - 1, first), (last - 1, last)), strict=True):
        if end and _apart(digits[a], digits[b]) and all(_within(digits[i], most) for i in end):
            keep -= set(end)
    dropped = {id(digits[i]) for i in range(len(digits)) if i not in keep}
    return [s for s in line if id(s) not in dropped]


def _rupee(s: Segment) -> bool:
    """Whether a number's first piece is a rupee sign, which the model reads as a 7: two
    bars across its top (segment.bars_on_top; a 7 has one)."""
    return int(s.probabilities.argmax()) == 7 and bars_on_top(s.ink) >= 2


def _within(s: Segment, most: float) -> bool:
    """Whether a piece is no taller and no wider than `most`."""
    return s.box[3] - s.box[1] <= most and s.box[2] - s.box[0] <= most


def _apart(left: Segment, right: Segment) -> bool:
    """Whether two neighbours on a line stand SIGN_GAP of the taller's height apart."""
    height = max(left.box[3] - left.box[1], right.box[3] - right.box[1])
    return right.box[0] - left.box[2] >= SIGN_GAP * height


class _Readings:
    """The model's readings of pieces of ink as single digits, each distinct piece fitted
    and classified once: segmentation reads a digit while joining strokes and again while
    looking for cuts, and read_number wants the readings of the pieces it keeps. Equal
    pixels make an equal reading (fit_and_centre is deterministic, classify reads each row
    apart from its batch), so a piece is known by its pixels."""

    def __init__(self, classify: Callable[[np.ndarray], np.ndarray]):
        self.classify = classify
        self.known: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # -> (input, probabilities)

    def of(self, pieces: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(input in MNIST form, probabilities) of each piece."""
        keys = [(p.shape, p.dtype.str, p.tobytes()) for p in pieces]
        new = {k: p for k, p in zip(keys, pieces, strict=True) if k not in self.known}
        if new:
            inputs = np.stack([_fitted(p) for p in new.values()])
            for key, x, p in zip(new, inputs, self.classify(inputs), strict=True):
                self.known[key] = (x, p)
        return [self.known[k] for k in keys]

    def confidences(self, pieces: list[np.ndarray]) -> list[float]:
        """The `score` that segmentation consults."""
        return [float(p.max()) for _, p in self.of(pieces)]


def _fitted(piece: np.ndarray) -> np.ndarray:
    """A piece in MNIST form; one too faint to fit (no ink above preprocess's crop level) is
    an empty field, which reads as no digit: a picture with ink is answered, never raises."""
    try:
        return fit_and_centre(piece)
    except EmptyImageError:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
