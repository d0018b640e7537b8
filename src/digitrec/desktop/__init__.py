"""The OpenCV drawing window, `digitrec draw`: draw digits with the mouse, read them live.

Two halves. The pure half holds the strokes and turns keys into actions (state), reads the
drawing on a worker thread so the pen never waits for the model (reader), and paints every
frame as a numpy BGR image (render, with its sizes and colours in layout), so it is tested
without a display. The thin half (window) is OpenCV's event loop; session does what the
window does outside itself (event log, saved PNGs, stored labels); x11 holds the repair of a
Qt painting bug, talking to the X server directly.

OpenCV is an install extra (`digitrec[draw]`) and importing this package does not import it:
nothing else in digitrec imports the window, so the library and the server install and run
without OpenCV, a display or OpenGL.
"""

from __future__ import annotations

import os

from .support import DesktopError, require_window_support

__all__ = ["DesktopError", "require_window_support", "run"]


def run(
    model: str | os.PathLike | None = None,
    *,
    threshold: float | None = None,
    db: str | os.PathLike | None = None,
    save_dir: str | os.PathLike = ".",
    event_log: str | os.PathLike | None = None,
) -> int:
    """Open the window and run until q, Esc or the window is closed. Returns the exit status."""
    require_window_support()  # before OpenCV is imported: a missing one is a DesktopError
    from .window import run as run_window

    return run_window(model, threshold=threshold, db=db, save_dir=save_dir, event_log=event_log)
