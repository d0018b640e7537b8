"""Reading the drawing on a worker thread, so the pen never waits for the model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..reading.predictor import NumberReading, Prediction, blank
from .state import DIGIT, NUMBER


@dataclass
class Reading:
    """The model's answer for one version of the drawing."""

    version: int
    mode: str
    strokes: int
    value: Prediction | NumberReading | None = None
    error: Exception | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = {"version": self.version, "mode": self.mode, "strokes": self.strokes}
        d["seconds"] = round(self.seconds, 4)
        if self.error is not None:
            d["error"] = str(self.error)
        elif self.value is not None:
            d.update(self.value.to_dict())
        return d


def value_for(reading: Reading | None, mode: str) -> Prediction | NumberReading | None:
    """The value to show for this mode, or None while the model has not answered it yet."""
    if reading is None or reading.mode != mode or reading.error is not None:
        return None
    return reading.value


def read_drawing(predictor, image: np.ndarray, mode: str) -> Prediction | NumberReading:
    """The same Predictor (and so the same preprocessing) as every other interface."""
    if not image.any():  # an empty canvas: no need to ask the model
        return blank() if mode == DIGIT else NumberReading([])
    return predictor.read_number(image) if mode == NUMBER else predictor.predict(image)


class PredictionWorker:
    """Reads drawings on its own thread. `submit` never waits: a drawing submitted while the
    model is busy replaces any older one still waiting, and a reading never replaces the
    reading of a newer version."""

    def __init__(self, read: Callable[[np.ndarray, str], Prediction | NumberReading]):
        self._read = read
        self._cond = threading.Condition()
        self._job: tuple[int, str, int, np.ndarray] | None = None
        self._latest: Reading | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="digitrec-reader", daemon=True)
        self._thread.start()

    def submit(self, version: int, image: np.ndarray, mode: str, strokes: int = 0) -> None:
        with self._cond:
            self._job = (version, mode, strokes, image)
            self._cond.notify_all()

    def latest(self) -> Reading | None:
        with self._cond:
            return self._latest

    def wait(self, version: int, timeout: float = 10.0) -> Reading | None:
        """The latest reading once it is of `version` or newer (or None on timeout)."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._latest is not None and self._latest.version >= version, timeout
            )
            return self._latest

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._closed:
                    return
                (version, mode, strokes, image), self._job = self._job, None
            start = time.perf_counter()
            reading = Reading(version, mode, strokes)
            try:
                reading.value = self._read(image, mode)
            except Exception as e:  # shown (or raised) by the window, never lost
                reading.error = e
            reading.seconds = time.perf_counter() - start
            with self._cond:
                if self._latest is None or reading.version > self._latest.version:
                    self._latest = reading
                self._cond.notify_all()
