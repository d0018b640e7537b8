"""The drawing: strokes, mode and status message, changed by mouse events and keys."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .layout import CANVAS, INK, PEN

DIGIT, NUMBER = "digit", "number"


@dataclass(frozen=True)
class Action:
    """What a key asks for. clear, undo and mode are done by the state itself; save, label
    and quit need the outside world and are done by the event loop."""

    kind: str  # clear, undo, mode, save, label, quit
    label: int | None = None


class DrawingState:
    """The drawing (strokes of points, in canvas pixels), the mode and the status message.

    `version` grows with every change that calls for a new reading (ink or mode), so a
    reading can be matched to the drawing it was made from."""

    def __init__(self, width: int = CANVAS, height: int = CANVAS, pen: int = PEN):
        self.width, self.height, self.pen = width, height, pen
        self.strokes: list[list[tuple[int, int]]] = []
        self.drawing = False  # a stroke is under way (the button is down)
        self.mode = DIGIT
        self.message = ""
        self.version = 0
        self._ink_version = 0
        self._raster: np.ndarray | None = None
        self._raster_version = -1

    @property
    def empty(self) -> bool:
        return not self.strokes

    def _changed(self, ink: bool = True) -> None:
        self.version += 1
        self._ink_version += ink

    def press(self, x: int, y: int) -> bool:
        """Start a stroke; a press outside the drawing area (on the panel) is ignored."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            return False
        self.strokes.append([(int(x), int(y))])
        self.drawing = True
        self.message = ""
        self._changed()
        return True

    def drag(self, x: int, y: int) -> bool:
        """Extend the stroke under way; the pen stays inside the area when the mouse leaves."""
        if not self.drawing:
            return False
        point = (min(max(int(x), 0), self.width - 1), min(max(int(y), 0), self.height - 1))
        if point == self.strokes[-1][-1]:
            return False
        self.strokes[-1].append(point)
        self._changed()
        return True

    def release(self) -> bool:
        """End the stroke under way; True if there was one."""
        was, self.drawing = self.drawing, False
        return was

    def handle_mouse(self, event: int, x: int, y: int, flags: int) -> str | None:
        """An OpenCV mouse event; returns 'press', 'drag' or 'release' when the ink changed
        or a stroke ended."""
        if event == cv2.EVENT_LBUTTONDOWN:
            return "press" if self.press(x, y) else None
        if event == cv2.EVENT_LBUTTONUP:
            return "release" if self.release() else None
        if event == cv2.EVENT_MOUSEMOVE and self.drawing:
            if not flags & cv2.EVENT_FLAG_LBUTTON:  # the button came up outside the window
                return "release" if self.release() else None
            return "drag" if self.drag(x, y) else None
        return None

    def clear(self) -> None:
        if self.strokes:
            self.strokes.clear()
            self._changed()
        self.drawing = False
        self.message = ""

    def undo(self) -> None:
        if not self.strokes:
            self.message = "nothing to undo"
            return
        self.strokes.pop()
        self.drawing = False
        self.message = ""
        self._changed()

    def toggle_mode(self) -> None:
        self.mode = NUMBER if self.mode == DIGIT else DIGIT
        self.message = (
            "number mode: write several digits side by side"
            if self.mode == NUMBER
            else "digit mode: one digit at a time"
        )
        self._changed(ink=False)

    def handle_key(self, key: int) -> Action | None:
        """A key code from cv2.waitKey; None for keys that do nothing."""
        if key < 0:
            return None
        if key == 27:  # Esc
            return Action("quit")
        char = chr(key & 0xFF).lower()
        if char.isdigit():
            return Action("label", int(char))
        kind = {"c": "clear", "u": "undo", "m": "mode", "s": "save", "q": "quit"}.get(char)
        if kind == "clear":
            self.clear()
        elif kind == "undo":
            self.undo()
        elif kind == "mode":
            self.toggle_mode()
        return Action(kind) if kind else None

    def canvas(self) -> np.ndarray:
        """The drawing as a (height, width) uint8 picture, white ink on black. The array is
        replaced, never changed, when the ink changes, so it can be handed to another thread."""
        if self._raster_version != self._ink_version:
            raster = np.zeros((self.height, self.width), np.uint8)
            for stroke in self.strokes:
                draw_stroke(raster, stroke, self.pen)
            self._raster, self._raster_version = raster, self._ink_version
        return self._raster


def draw_stroke(image: np.ndarray, points: list[tuple[int, int]], pen: int) -> None:
    """A round pen: OpenCV's thick lines have round ends, so the joins are round too."""
    if len(points) == 1:
        cv2.circle(image, points[0], pen // 2, INK, -1, cv2.LINE_AA)
    else:
        cv2.polylines(image, [np.array(points, np.int32)], False, INK, pen, cv2.LINE_AA)
