"""Every frame of the window, painted as a numpy BGR image: no window needed to test it."""

from __future__ import annotations

import cv2
import numpy as np

from ..reading.predictor import REASON_LABELS, NumberReading, Prediction
from .layout import (
    BACKGROUND,
    BAR,
    BAR_LEFT,
    BAR_ROW,
    BAR_WIDTH,
    BARS_TOP,
    CANVAS,
    DIM,
    FONT,
    FRAME,
    GOOD,
    HELP_BACKGROUND,
    HELP_BAR,
    INPUT_BOX,
    KEYS,
    NOTE,
    PANEL,
    ROW_HEIGHT,
    ROW_THUMB,
    ROWS_TOP,
    SEPARATOR,
    TEXT,
    TRACK,
    WARN,
)
from .reader import Reading, value_for
from .state import DIGIT, NUMBER, DrawingState


def render(state: DrawingState, reading: Reading | None = None) -> np.ndarray:
    """The whole window's picture, (FRAME height, FRAME width, 3) BGR."""
    stale = reading is not None and reading.version < state.version
    top = np.hstack([render_canvas(state, reading), render_panel(reading, state.mode, stale)])
    cv2.line(top, (CANVAS, 0), (CANVAS, CANVAS - 1), SEPARATOR, 1)
    return np.vstack([top, render_help(state.message, top.shape[1])])


def render_canvas(state: DrawingState, reading: Reading | None = None) -> np.ndarray:
    """The drawing area; in number mode, a box and its digit around each digit read."""
    image = cv2.cvtColor(state.canvas(), cv2.COLOR_GRAY2BGR)
    value = value_for(reading, state.mode)
    if state.mode == NUMBER and isinstance(value, NumberReading) and not state.empty:
        for p in value.digits:
            if p.box is None:
                continue
            colour = WARN if p.refused else GOOD
            left, top, right, bottom = p.box
            cv2.rectangle(image, (left - 4, top - 4), (right + 3, bottom + 3), colour, 2)
            label = "?" if p.refused else str(p.digit)
            _text(image, label, (left - 2, max(top - 10, 18)), 0.7, colour, 2)
    return image


def render_panel(reading: Reading | None, mode: str, stale: bool = False) -> np.ndarray:
    """The side panel: mode, the answer (or the refusal), the input the model saw and the
    ten probabilities (digit mode) or every digit read (number mode)."""
    panel = np.full((CANVAS, PANEL, 3), BACKGROUND, np.uint8)
    title = "DIGIT MODE" if mode == DIGIT else "NUMBER MODE"
    _text(panel, title, (16, 26), 0.5, DIM, 1)
    if stale:  # the drawing changed since this reading; a newer one is on its way
        cv2.circle(panel, (PANEL - 20, 21), 5, DIM, -1, cv2.LINE_AA)
    if reading is not None and reading.error is not None and reading.mode == mode:
        _text(panel, "cannot read this", (16, 110), 0.8, WARN, 2)
        return panel
    value = value_for(reading, mode)
    if mode == DIGIT:
        render_digit_panel(panel, value)
    else:
        render_number_panel(panel, value)
    return panel


def render_digit_panel(panel: np.ndarray, p: Prediction | None) -> None:
    left, top, side = INPUT_BOX
    if p is None or p.reason == "blank":
        _text(panel, "draw a digit" if p is not None else "reading...", (16, 110), 0.8, DIM, 2)
    elif p.refused:
        _text(panel, "?", (28, 136), 3.6, WARN, 6)
        _text(panel, REASON_LABELS[p.reason], (18, 166), 0.6, WARN, 1)
    else:
        _text(panel, str(p.digit), (28, 136), 3.6, GOOD, 6)
        _text(panel, f"{100 * p.confidence:.1f}%", (18, 166), 0.7, TEXT, 1)
    _paste(panel, _thumbnail(p.input if p is not None else None, side), left, top)
    _text(panel, "model input 28x28", (left - 16, top + side + 18), 0.42, DIM)
    _render_bars(panel, p)


def _render_bars(panel: np.ndarray, p: Prediction | None) -> None:
    """The ten probabilities; the answer's bar in the answer's (or the refusal's) colour."""
    probabilities = p.probabilities if p is not None else np.zeros(10)
    best = int(np.argmax(probabilities)) if p is not None and p.digit is not None else -1
    for d in range(10):
        y = BARS_TOP + d * BAR_ROW
        share = float(probabilities[d])
        _text(panel, str(d), (18, y + 15), 0.55, TEXT if d == best else DIM, 1)
        cv2.rectangle(panel, (BAR_LEFT, y + 2), (BAR_LEFT + BAR_WIDTH, y + 18), TRACK, -1)
        colour = (WARN if p.refused else GOOD) if d == best else BAR
        length = round(share * BAR_WIDTH)
        if length:
            cv2.rectangle(panel, (BAR_LEFT, y + 2), (BAR_LEFT + length, y + 18), colour, -1)
        _text(panel, f"{100 * share:5.1f}%", (BAR_LEFT + BAR_WIDTH + 8, y + 15), 0.45, DIM)


def render_number_panel(panel: np.ndarray, reading: NumberReading | None) -> None:
    if reading is None or not reading.digits:
        _text(panel, "write digits" if reading is not None else "reading...", (16, 90), 0.8, DIM, 2)
        return
    text = reading.text.replace("\n", " / ")
    scale = 2.2
    while scale > 0.6 and _text_width(text, scale, 4) > PANEL - 32:
        scale -= 0.1
    _text(panel, text, (16, 92), scale, WARN if reading.refused else GOOD, 4)
    rows = (FRAME[0] - HELP_BAR - ROWS_TOP) // ROW_HEIGHT
    digits = reading.digits
    shown = digits if len(digits) <= rows else digits[: rows - 1]
    for i, p in enumerate(shown):
        _render_digit_row(panel, p, ROWS_TOP + i * ROW_HEIGHT + 4)
    if len(shown) < len(digits):
        y = ROWS_TOP + len(shown) * ROW_HEIGHT + 32
        _text(panel, f"+ {len(digits) - len(shown)} more", (16, y), 0.6, DIM, 1)


def _render_digit_row(panel: np.ndarray, p: Prediction, y: int) -> None:
    """One digit of a number: the input the model saw, then the digit or why it is refused."""
    _paste(panel, _thumbnail(p.input, ROW_THUMB), 16, y)
    if p.refused:
        label = f"?  {REASON_LABELS[p.reason]}"
        if p.digit is not None:
            label += f" (maybe {p.digit})"
        _text(panel, label, (80, y + 32), 0.6, WARN, 1)
    else:
        _text(panel, str(p.digit), (80, y + 36), 1.1, GOOD, 2)
        _text(panel, f"{100 * p.confidence:.1f}%", (120, y + 32), 0.6, TEXT, 1)


def render_help(message: str, width: int = FRAME[1]) -> np.ndarray:
    """The key help line and, under it, the status message."""
    bar = np.full((HELP_BAR, width, 3), HELP_BACKGROUND, np.uint8)
    x = 12
    for key, what in KEYS:
        _text(bar, key, (x, 20), 0.5, TEXT, 2)
        x += _text_width(key, 0.5, 2) + 6
        _text(bar, what, (x, 20), 0.5, DIM, 1)
        x += _text_width(what, 0.5) + 18
    if message:
        _text(bar, message, (12, 42), 0.5, NOTE, 1)
    return bar


def _text(img, s: str, org, scale: float, color, thickness: int = 1) -> None:
    cv2.putText(img, s, (int(org[0]), int(org[1])), FONT, scale, color, thickness, cv2.LINE_AA)


def _text_width(s: str, scale: float, thickness: int = 1) -> int:
    return cv2.getTextSize(s, FONT, scale, thickness)[0][0]


def _thumbnail(picture: np.ndarray | None, side: int) -> np.ndarray:
    """A 28x28 input enlarged with square pixels, as BGR."""
    if picture is None:
        return np.zeros((side, side, 3), np.uint8)
    grey = np.clip(np.asarray(picture, np.float32) * 255.0, 0, 255).astype(np.uint8)
    grey = cv2.resize(grey, (side, side), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _paste(panel: np.ndarray, tile: np.ndarray, left: int, top: int) -> None:
    h, w = tile.shape[:2]
    panel[top : top + h, left : left + w] = tile
    cv2.rectangle(panel, (left - 1, top - 1), (left + w, top + h), DIM, 1)
