"""The OpenCV drawing window, `digitrec draw`: draw digits with the mouse, read them live.

Two halves. The pure half (`DrawingState`, `PredictionWorker`, the `render_*` functions)
holds the strokes, turns keys into actions and paints every frame as a numpy BGR image, so it
is tested without a display. The thin half (`run`) is the OpenCV event loop: it feeds mouse
and key events to the state and shows the frames. The model reads the drawing on a worker
thread, so the pen never waits for it.

OpenCV is an install extra (`digitrec[draw]`): nothing else in digitrec imports this module,
so the library and the server install and run without OpenCV, a display or OpenGL.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import DigitrecError
from .reading.predictor import NumberReading, Prediction, blank

try:
    import cv2
except ImportError as e:  # the extra is not installed, or a system library is missing
    cv2 = None
    _CV2_IMPORT_ERROR: ImportError | None = e
else:
    _CV2_IMPORT_ERROR = None

TITLE = "digitrec draw"
DIGIT, NUMBER = "digit", "number"

CANVAS = 480  # side of the square drawing area, in frame pixels
PANEL = 320  # width of the side panel
HELP_BAR = 52  # height of the key help and status lines under both
FRAME = (CANVAS + HELP_BAR, CANVAS + PANEL)  # height, width
PEN = 26  # pen width: a digit drawn across most of the area gets MNIST's proportions

KEYS = (
    ("c", "clear"),
    ("u", "undo"),
    ("m", "digit/number"),
    ("s", "save PNG"),
    ("0-9", "store with that label"),
    ("q/Esc", "quit"),
)
HELP = "   ".join(f"{key} {what}" for key, what in KEYS)

# Panel layout, in panel pixels (tests read the picture back from these places).
INPUT_BOX = (192, 44, 112)  # left, top, side of the enlarged 28x28 input
BARS_TOP, BAR_ROW, BAR_LEFT, BAR_WIDTH = 196, 27, 44, 196
ROWS_TOP, ROW_HEIGHT, ROW_THUMB = 112, 58, 48  # number mode: one row per digit

# BGR
INK = 255
BACKGROUND = (34, 30, 28)
TEXT = (236, 236, 236)
DIM = (150, 150, 150)
TRACK = (62, 58, 56)
BAR = (170, 150, 120)
GOOD = (96, 200, 96)  # an answer
WARN = (40, 170, 250)  # a refusal
NOTE = (235, 200, 140)  # the status line
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX

SHORT_REASONS = {"blank": "blank", "not_a_digit": "not a digit", "unsure": "too unsure"}


class DesktopError(DigitrecError):
    """The window cannot open here: no OpenCV, an OpenCV without GUI, or no display."""


# ----------------------------------------------------------------------------- state


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


# ----------------------------------------------------------------------------- reading


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


# ----------------------------------------------------------------------------- rendering


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


def _shown(reading: Reading | None, mode: str):
    """The value to show for this mode, or None while the model has not answered it yet."""
    if reading is None or reading.mode != mode or reading.error is not None:
        return None
    return reading.value


def render_digit_panel(panel: np.ndarray, p: Prediction | None) -> None:
    left, top, side = INPUT_BOX
    if p is None or p.reason == "blank":
        _text(panel, "draw a digit" if p is not None else "reading...", (16, 110), 0.8, DIM, 2)
    elif p.refused:
        _text(panel, "?", (28, 136), 3.6, WARN, 6)
        _text(panel, SHORT_REASONS[p.reason], (18, 166), 0.6, WARN, 1)
    else:
        _text(panel, str(p.digit), (28, 136), 3.6, GOOD, 6)
        _text(panel, f"{100 * p.confidence:.1f}%", (18, 166), 0.7, TEXT, 1)
    _paste(panel, _thumbnail(p.input if p is not None else None, side), left, top)
    _text(panel, "model input 28x28", (left - 16, top + side + 18), 0.42, DIM)

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
        y = ROWS_TOP + i * ROW_HEIGHT + 4
        _paste(panel, _thumbnail(p.input, ROW_THUMB), 16, y)
        if p.refused:
            label = f"?  {SHORT_REASONS[p.reason]}"
            if p.digit is not None:
                label += f" (maybe {p.digit})"
            _text(panel, label, (80, y + 32), 0.6, WARN, 1)
        else:
            _text(panel, str(p.digit), (80, y + 36), 1.1, GOOD, 2)
            _text(panel, f"{100 * p.confidence:.1f}%", (120, y + 32), 0.6, TEXT, 1)
    if len(shown) < len(digits):
        y = ROWS_TOP + len(shown) * ROW_HEIGHT + 32
        _text(panel, f"+ {len(digits) - len(shown)} more", (16, y), 0.6, DIM, 1)


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
    value = _shown(reading, mode)
    if mode == DIGIT:
        render_digit_panel(panel, value)
    else:
        render_number_panel(panel, value)
    return panel


def render_canvas(state: DrawingState, reading: Reading | None = None) -> np.ndarray:
    """The drawing area; in number mode, a box and its digit around each digit read."""
    image = cv2.cvtColor(state.canvas(), cv2.COLOR_GRAY2BGR)
    value = _shown(reading, state.mode)
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


def render_help(message: str, width: int = FRAME[1]) -> np.ndarray:
    """The key help line and, under it, the status message."""
    bar = np.full((HELP_BAR, width, 3), (24, 22, 20), np.uint8)
    x = 12
    for key, what in KEYS:
        _text(bar, key, (x, 20), 0.5, TEXT, 2)
        x += _text_width(key, 0.5, 2) + 6
        _text(bar, what, (x, 20), 0.5, DIM, 1)
        x += _text_width(what, 0.5) + 18
    if message:
        _text(bar, message, (12, 42), 0.5, NOTE, 1)
    return bar


def render(state: DrawingState, reading: Reading | None = None) -> np.ndarray:
    """The whole window's picture, (FRAME height, FRAME width, 3) BGR."""
    stale = reading is not None and reading.version < state.version
    top = np.hstack([render_canvas(state, reading), render_panel(reading, state.mode, stale)])
    cv2.line(top, (CANVAS, 0), (CANVAS, CANVAS - 1), (80, 80, 80), 1)
    return np.vstack([top, render_help(state.message, top.shape[1])])


# ----------------------------------------------------------------------------- window


def require_window_support() -> None:
    """Raise a DesktopError that says what to install or where to run, if OpenCV cannot
    open a window here."""
    if cv2 is None:
        e = _CV2_IMPORT_ERROR
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "cv2":
            raise DesktopError("the drawing window needs OpenCV: pip install 'digitrec[draw]'")
        raise DesktopError(
            f"OpenCV is installed but cannot load ({e}); on Debian or Ubuntu install the "
            "libraries it needs: sudo apt-get install libgl1 libglib2.0-0 libsm6 libxext6"
        )
    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui and gui.group(1).upper() == "NONE":
        raise DesktopError(
            f"this OpenCV ({cv2.__version__}) is a build without windows (opencv-python-"
            "headless?): pip uninstall -y opencv-python-headless opencv-python && "
            "pip install 'digitrec[draw]'"
        )
    if sys.platform.startswith(("win", "darwin")):
        return
    display = os.environ.get("DISPLAY")
    if not display:
        raise DesktopError(
            "no display to open the window on ($DISPLAY is not set): run digitrec draw on a "
            "desktop, or on a virtual display with: xvfb-run digitrec draw"
        )
    if not _display_answers(display):
        raise DesktopError(
            f"cannot connect to the display {display!r}: check that its X server runs and "
            "that $DISPLAY names it, or use a virtual display: xvfb-run digitrec draw"
        )


def _display_answers(display: str) -> bool:
    """Whether the X server answers. Asked first because OpenCV's Qt aborts the process
    when it cannot connect. Without libX11 here, OpenCV is left to try."""
    try:
        xlib = ctypes.CDLL("libX11.so.6")
    except OSError:
        return True
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = xlib.XOpenDisplay(display.encode())
    if not connection:
        return False
    xlib.XCloseDisplay(connection)
    return True


class _XImageHead(ctypes.Structure):
    """The first fields of Xlib's XImage."""

    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
    ]


class _MapRepair:
    """OpenCV's Qt now and then misses the X server's word that its new window is mapped
    (seen on a server with no window manager, such as Xvfb, about one start in ten) and then
    never paints it: the window stays black, though it works. So, during the first seconds,
    this reads back one pixel of the window that is always the panel's colour and, where the
    window shows something else, unmaps and maps it again, which makes Qt paint it. It talks
    to the X server through libX11 on a connection of its own; anything unexpected turns it
    off, never the window."""

    CHECKS, EVERY = 5, 0.4  # seconds between checks

    def __init__(self, title: str, log: EventLog):
        self.x = None
        self.log = log
        self.title = title.encode()
        self.window = None
        self.checks = 0
        self.due = time.monotonic() + self.EVERY
        if sys.platform.startswith(("win", "darwin")) or not os.environ.get("DISPLAY"):
            return
        try:
            self.x = self._load()
            self.display = self.x.XOpenDisplay(None)
        except (OSError, AttributeError):
            self.x = None
            return
        if not self.display:
            self.x = None

    @staticmethod
    def _load():
        x = ctypes.CDLL("libX11.so.6")
        p, u, i, ui = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_uint
        signatures = {
            "XOpenDisplay": (p, [ctypes.c_char_p]),
            "XCloseDisplay": (i, [p]),
            "XDefaultRootWindow": (u, [p]),
            "XQueryTree": (
                i,
                [p, u, ctypes.POINTER(u), ctypes.POINTER(u), ctypes.POINTER(ctypes.POINTER(u))]
                + [ctypes.POINTER(ui)],
            ),
            "XFetchName": (i, [p, u, ctypes.POINTER(ctypes.c_char_p)]),
            "XFree": (i, [p]),
            "XTranslateCoordinates": (
                i,
                [p, u, u, i, i, ctypes.POINTER(i), ctypes.POINTER(i), ctypes.POINTER(u)],
            ),
            "XGetImage": (p, [p, u, i, i, ui, ui, u, i]),
            "XGetPixel": (u, [p, i, i]),
            "XDestroyImage": (i, [p]),
            "XUnmapWindow": (i, [p, u]),
            "XMapWindow": (i, [p, u]),
            "XSync": (i, [p, i]),
            "XSetErrorHandler": (p, [p]),
        }
        for name, (restype, argtypes) in signatures.items():
            f = getattr(x, name)
            f.restype, f.argtypes = restype, argtypes
        return x

    def _find(self, window: int, depth: int = 0) -> int | None:
        """Our window: the one with our title (under a window manager's frame, if any)."""
        x = self.x
        name = ctypes.c_char_p()
        if x.XFetchName(self.display, window, ctypes.byref(name)) and name.value is not None:
            found = name.value == self.title
            x.XFree(name)
            if found:
                return window
        if depth >= 3:
            return None
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, n = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not x.XQueryTree(
            self.display,
            window,
            ctypes.byref(root),
            ctypes.byref(parent),
            ctypes.byref(children),
            ctypes.byref(n),
        ):
            return None
        try:
            for k in range(n.value - 1, -1, -1):  # the topmost first
                found = self._find(children[k], depth + 1)
                if found:
                    return found
        finally:
            if children:
                x.XFree(children)
        return None

    def _pixel(self, screen_x: int, screen_y: int) -> int | None:
        """The colour (0xRRGGBB) the window shows at a point of the screen."""
        x = self.x
        wx, wy, child = ctypes.c_int(), ctypes.c_int(), ctypes.c_ulong()
        root = x.XDefaultRootWindow(self.display)
        if not x.XTranslateCoordinates(
            self.display,
            root,
            self.window,
            screen_x,
            screen_y,
            ctypes.byref(wx),
            ctypes.byref(wy),
            ctypes.byref(child),
        ):
            return None
        image = x.XGetImage(
            self.display, self.window, wx.value, wy.value, 1, 1, ctypes.c_ulong(-1).value, 2
        )
        if not image:  # not viewable, or the point is outside it
            return None
        try:
            if ctypes.cast(image, ctypes.POINTER(_XImageHead)).contents.depth not in (24, 32):
                return None  # a pixel that is not 0xRRGGBB
            return int(x.XGetPixel(image, 0, 0)) & 0xFFFFFF
        finally:
            x.XDestroyImage(image)

    def poll(self, where: Callable[[], tuple[int, int, int, int]]) -> None:
        """Called every turn of the event loop; does nothing until a check is due. `where`
        gives the window's picture on the screen: left, top, width, height."""
        if self.x is None or time.monotonic() < self.due:
            return
        self.checks += 1
        self.due = time.monotonic() + self.EVERY
        ignore = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)
        previous = self.x.XSetErrorHandler(ctypes.cast(ignore, ctypes.c_void_p))
        try:
            if self.window is None:
                self.window = self._find(self.x.XDefaultRootWindow(self.display))
            # a point of the panel above the bars, which is always the panel's colour
            left, top, width, height = where()
            px = left + round((CANVAS + PANEL - 8) * width / FRAME[1])
            py = top + round(6 * height / FRAME[0])
            colour = self._pixel(px, py) if self.window and width > 0 else None
            painted = colour is not None and all(
                abs((colour >> shift & 255) - level) <= 12
                for shift, level in zip((0, 8, 16), BACKGROUND, strict=True)  # B, G, R
            )
            if colour is not None and not painted:
                self.x.XUnmapWindow(self.display, self.window)
                self.x.XSync(self.display, 0)
                self.x.XMapWindow(self.display, self.window)
                self.log.write("remapped", colour=colour)
            self.x.XSync(self.display, 0)
        except Exception:  # a repair must never break the window it repairs
            painted = True
        finally:
            self.x.XSetErrorHandler(previous)
        if painted:
            self.log.write("painted", checks=self.checks)
        if painted or self.checks >= self.CHECKS:
            self.close()

    def close(self) -> None:
        if self.x is not None:
            self.x.XCloseDisplay(self.display)
            self.x = None


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
    from .files import write_atomic

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
        from .feedback import FeedbackStore

        if state.empty:
            state.message = "nothing to store: draw a digit first"
            return
        if state.mode != DIGIT:
            state.message = "labels are for single digits: press m for digit mode first"
            return
        value = _shown(reading, DIGIT) if reading and reading.version == state.version else None
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


def run(
    model: str | os.PathLike | None = None,
    *,
    threshold: float | None = None,
    db: str | os.PathLike | None = None,
    save_dir: str | os.PathLike = ".",
    event_log: str | os.PathLike | None = None,
) -> int:
    """Open the window and run until q, Esc or the window is closed. Returns the exit status."""
    from .loading import load_predictor

    require_window_support()
    # One ONNX Runtime thread: the model is small, and the window keeps the other cores.
    predictor = load_predictor(model, threads=1, threshold=threshold)
    state = DrawingState()
    log = EventLog(event_log)
    session = Session(predictor, db, save_dir, log)
    worker = PredictionWorker(lambda image, mode: read_drawing(predictor, image, mode))

    try:
        cv2.namedWindow(TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
    except cv2.error as e:
        raise DesktopError(
            f"this OpenCV cannot open windows ({str(e).strip().splitlines()[-1]}): "
            "pip uninstall -y opencv-python-headless && pip install 'digitrec[draw]'"
        )

    repair = _MapRepair(TITLE, log)

    def on_mouse(event, x, y, flags, _param) -> None:
        if state.handle_mouse(event, x, y, flags) == "release":
            log.write("stroke", strokes=len(state.strokes), version=state.version)

    try:
        cv2.resizeWindow(TITLE, FRAME[1], FRAME[0])
        cv2.setMouseCallback(TITLE, on_mouse)
        shown: Reading | None = None
        submitted, painted = -1, None
        while True:
            if state.version != submitted:
                worker.submit(state.version, state.canvas(), state.mode, len(state.strokes))
                submitted = state.version
            latest = worker.latest()
            if latest is not None and (shown is None or latest.version > shown.version):
                shown = latest
                if shown.error is not None and not isinstance(shown.error, DigitrecError):
                    raise shown.error
                if shown.error is not None:
                    state.message = f"cannot read the drawing: {shown.error}"
                log.write("reading", **shown.to_dict())
            look = (state.version, id(shown), state.message)
            if look != painted:
                cv2.imshow(TITLE, render(state, shown))
            key = cv2.waitKey(15)
            if painted is None:  # the first frame is up: say where the window lies
                log.write(
                    "ready",
                    pid=os.getpid(),
                    title=TITLE,
                    frame=[FRAME[1], FRAME[0]],
                    canvas=[0, 0, CANVAS, CANVAS],
                    window=list(cv2.getWindowImageRect(TITLE)),
                )
            painted = look
            repair.poll(lambda: cv2.getWindowImageRect(TITLE))
            if cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) < 1:
                break  # closed with the window's own button
            action = state.handle_key(key)
            if action is None:
                continue
            log.write("key", key=action.kind, label=action.label, version=state.version)
            if action.kind == "quit":
                break
            if action.kind == "save":
                session.save(state)
            elif action.kind == "label":
                session.label(state, action.label, shown)
    finally:
        repair.close()
        worker.close()
        session.close()
        log.write("quit")
        log.close()
        with contextlib.suppress(Exception):  # the window may be gone already
            cv2.destroyWindow(TITLE)
            cv2.waitKey(1)
    return 0
