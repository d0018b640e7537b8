"""The thin half: OpenCV's window and its event loop. It feeds mouse events and keys to the
DrawingState, hands each new drawing to the reader and shows the frames `render` paints, so
only the end-to-end test (tests/test_desktop_xvfb.py) needs a display."""

from __future__ import annotations

import contextlib
import os

import cv2

from ..errors import DigitrecError
from ..loading import load_predictor
from .layout import CANVAS, FRAME, TITLE
from .reader import PredictionWorker, Reading, read_drawing
from .render import render
from .session import EventLog, Session
from .state import DrawingState
from .support import DesktopError
from .x11 import MapRepair


def run(model, *, threshold, db, save_dir, event_log) -> int:
    """The window until q, Esc or its own close button (digitrec.desktop.run, once it has
    found that a window can open here)."""
    # One ONNX Runtime thread: the model is small, and the window keeps the other cores.
    predictor = load_predictor(model, threads=1, threshold=threshold)
    log = EventLog(event_log)
    session = Session(predictor, db, save_dir, log)
    loop = EventLoop(predictor, session, log)
    _open_window()
    repair = MapRepair(TITLE, log)
    try:
        cv2.resizeWindow(TITLE, FRAME[1], FRAME[0])
        cv2.setMouseCallback(TITLE, loop.on_mouse)
        loop.run(repair)
    finally:
        repair.close()
        loop.close()
        session.close()
        log.write("quit")
        log.close()
        with contextlib.suppress(Exception):  # the window may be gone already
            cv2.destroyWindow(TITLE)
            cv2.waitKey(1)
    return 0


def _open_window() -> None:
    try:
        cv2.namedWindow(TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
    except cv2.error as e:
        raise DesktopError(
            f"this OpenCV cannot open windows ({str(e).strip().splitlines()[-1]}): "
            "pip uninstall -y opencv-python-headless && pip install 'digitrec[draw]'"
        )


class EventLoop:
    """The window's turns: hand a changed drawing to the reader, take up a new reading,
    paint when what is shown changed, act on the key pressed."""

    def __init__(self, predictor, session: Session, log: EventLog):
        self.state = DrawingState()
        self.session, self.log = session, log
        self.worker = PredictionWorker(lambda image, mode: read_drawing(predictor, image, mode))
        self.shown: Reading | None = None
        self._submitted = -1  # the version of the drawing last handed to the reader
        self._painted = None  # what the frame on screen shows; None before the first frame

    def on_mouse(self, event, x, y, flags, _param) -> None:
        if self.state.handle_mouse(event, x, y, flags) == "release":
            self.log.write("stroke", strokes=len(self.state.strokes), version=self.state.version)

    def run(self, repair: MapRepair) -> None:
        while True:
            self._submit()
            self._take_reading()
            key = self._paint()
            repair.poll(lambda: cv2.getWindowImageRect(TITLE))
            if cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) < 1:
                return  # closed with the window's own button
            if not self._act(key):
                return

    def close(self) -> None:
        self.worker.close()

    def _submit(self) -> None:
        state = self.state
        if state.version != self._submitted:
            self.worker.submit(state.version, state.canvas(), state.mode, len(state.strokes))
            self._submitted = state.version

    def _take_reading(self) -> None:
        """Take up the newest reading. The model's errors of our own (DigitrecError) go to
        the status line; any other is a bug, raised here rather than lost on the thread."""
        latest = self.worker.latest()
        if latest is None or (self.shown is not None and latest.version <= self.shown.version):
            return
        self.shown = latest
        if latest.error is not None and not isinstance(latest.error, DigitrecError):
            raise latest.error
        if latest.error is not None:
            self.state.message = f"cannot read the drawing: {latest.error}"
        self.log.write("reading", **latest.to_dict())

    def _paint(self) -> int:
        """Show a new frame where what it shows changed; the key pressed meanwhile (or -1)."""
        look = (self.state.version, id(self.shown), self.state.message)
        if look != self._painted:
            cv2.imshow(TITLE, render(self.state, self.shown))
        key = cv2.waitKey(15)
        if self._painted is None:  # the first frame is up: say where the window lies
            self.log.write(
                "ready",
                pid=os.getpid(),
                title=TITLE,
                frame=[FRAME[1], FRAME[0]],
                canvas=[0, 0, CANVAS, CANVAS],
                window=list(cv2.getWindowImageRect(TITLE)),
            )
        self._painted = look
        return key

    def _act(self, key: int) -> bool:
        """Do what the key asks; False when it asks to quit."""
        action = self.state.handle_key(key)
        if action is None:
            return True
        self.log.write("key", key=action.kind, label=action.label, version=self.state.version)
        if action.kind == "save":
            self.session.save(self.state)
        elif action.kind == "label":
            self.session.label(self.state, action.label, self.shown)
        return action.kind != "quit"
