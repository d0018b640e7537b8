"""Talking to the X server through libX11 directly (ctypes), on a connection of our own:
whether the display answers, and the repair of Qt's rare unpainted start (MapRepair)."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Callable

from .layout import BACKGROUND, FRAME, PAINTED_PROBE


def load_xlib() -> ctypes.CDLL:
    """libX11 with the signatures of the calls made here (OSError where it is missing)."""
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


def display_answers(display: str) -> bool:
    """Whether the X server answers. Asked first because OpenCV's Qt aborts the process
    when it cannot connect. Without libX11 here, OpenCV is left to try."""
    try:
        x = load_xlib()
    except (OSError, AttributeError):
        return True
    connection = x.XOpenDisplay(display.encode())
    if not connection:
        return False
    x.XCloseDisplay(connection)
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


class MapRepair:
    """OpenCV's Qt now and then misses the X server's word that its new window is mapped
    (seen on a server with no window manager, such as Xvfb, about one start in ten) and then
    never paints it: the window stays black, though it works. So, during the first seconds,
    this reads back one pixel of the window that is always the panel's colour and, where the
    window shows something else, unmaps and maps it again, which makes Qt paint it. Anything
    unexpected turns it off, never the window.

    `log` is the window's EventLog (anything with `write(event, **fields)`)."""

    CHECKS, EVERY = 5, 0.4  # seconds between checks

    def __init__(self, title: str, log):
        self.x = None
        self.log = log
        self.title = title.encode()
        self.window = None
        self.checks = 0
        self.due = time.monotonic() + self.EVERY
        if sys.platform.startswith(("win", "darwin")) or not os.environ.get("DISPLAY"):
            return
        try:
            self.x = load_xlib()
            self.display = self.x.XOpenDisplay(None)
        except (OSError, AttributeError):
            self.x = None
            return
        if not self.display:
            self.x = None

    def poll(self, where: Callable[[], tuple[int, int, int, int]]) -> None:
        """Called every turn of the event loop; does nothing until a check is due. `where`
        gives the window's picture on the screen: left, top, width, height."""
        if self.x is None or time.monotonic() < self.due:
            return
        self.checks += 1
        self.due = time.monotonic() + self.EVERY
        painted = self._check(where)
        if painted:
            self.log.write("painted", checks=self.checks)
        if painted or self.checks >= self.CHECKS:
            self.close()

    def close(self) -> None:
        if self.x is not None:
            self.x.XCloseDisplay(self.display)
            self.x = None

    def _check(self, where: Callable[[], tuple[int, int, int, int]]) -> bool:
        """Whether the window shows its panel's colour; maps it again where it shows another.
        X errors (a window gone meanwhile) are ignored here: Xlib's default handler exits."""
        ignore = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)
        previous = self.x.XSetErrorHandler(ctypes.cast(ignore, ctypes.c_void_p))
        try:
            if self.window is None:
                self.window = self._find(self.x.XDefaultRootWindow(self.display))
            colour = self._probe(*where())
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
            return True
        finally:
            self.x.XSetErrorHandler(previous)
        return painted

    def _probe(self, left: int, top: int, width: int, height: int) -> int | None:
        """The colour the window shows at PAINTED_PROBE, scaled to the window's size."""
        if not self.window or width <= 0:
            return None
        px = left + round(PAINTED_PROBE[0] * width / FRAME[1])
        py = top + round(PAINTED_PROBE[1] * height / FRAME[0])
        return self._pixel(px, py)

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
