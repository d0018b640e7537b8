"""What the window does outside itself: the event log, saved drawings, stored labels."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import cv2

from ..errors import DigitrecError
from ..reading.predictor import Prediction
from .reader import Reading, value_for
from .state import DIGIT, DrawingState


class EventLog:
    """One JSON line per event (a reading shown, a stroke ended, a key): how the end-to-end
    test reads what the window shows. Off unless a file is given."""

    def __init__(self, path: str | os.PathLike | None):
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, event: str, **fields) -> None:
        if self._file:
            self._file.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()


def _free_name(folder: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"drawing-{stamp}.png", 1
    while path.exists():
        n += 1
        path = folder / f"drawing-{stamp}-{n}.png"
    return path


def save_drawing(state: DrawingState, folder: str | os.PathLike) -> Path:
    """Write the drawing as a PNG (white ink on black) under a new name in `folder`."""
    from ..files import write_atomic

    path = _free_name(Path(folder).expanduser())
    ok, png = cv2.imencode(".png", state.canvas())
    if not ok:
        raise OSError("OpenCV could not encode the drawing")
    write_atomic(path, png.tobytes())
    return path


class Session:
    """What the event loop does with the actions that need the world outside the state."""

    def __init__(self, predictor, db, save_dir, log: EventLog):
        self.predictor, self.db, self.save_dir, self.log = predictor, db, save_dir, log
        self.store = None

    def save(self, state: DrawingState) -> None:
        if state.empty:
            state.message = "nothing to save: the drawing is empty"
            return
        try:
            path = save_drawing(state, self.save_dir)
        except OSError as e:
            state.message = f"cannot save the drawing: {e}"
            return
        state.message = f"saved {path}"
        self.log.write("saved", path=str(path), version=state.version)

    def label(self, state: DrawingState, label: int, reading: Reading | None) -> None:
        from ..feedback import FeedbackStore

        if state.empty:
            state.message = "nothing to store: draw a digit first"
            return
        if state.mode != DIGIT:
            state.message = "labels are for single digits: press m for digit mode first"
            return
        value = value_for(reading, DIGIT) if reading and reading.version == state.version else None
        predicted = value.digit if isinstance(value, Prediction) and not value.refused else None
        try:
            if self.store is None:
                self.store = FeedbackStore(self.db)
            png = cv2.imencode(".png", state.canvas())[1].tobytes()
            sample = self.store.add(png, label, predicted=predicted, model=self.predictor.name)
        except DigitrecError as e:
            state.message = f"not stored: {e}"
            return
        state.message = f"stored as a {label} (sample {sample} in {self.store.path})"
        self.log.write(
            "stored", label=label, predicted=predicted, id=sample, db=str(self.store.path)
        )

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
