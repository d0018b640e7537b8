"""Whether a window can open here, asked before OpenCV is imported: the user gets one line
that says what to install or where to run, never an ImportError or Qt's abort."""

from __future__ import annotations

import os
import re
import sys

from ..errors import DigitrecError
from .x11 import display_answers


class DesktopError(DigitrecError):
    """The window cannot open here: no OpenCV, an OpenCV without GUI, or no display."""


def require_window_support() -> None:
    """Raise a DesktopError that says what to install or where to run, if OpenCV cannot
    open a window here."""
    try:
        import cv2
    except ImportError as e:  # the extra is not installed, or a system library is missing
        raise DesktopError(_missing_opencv(e)) from None
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
    if not display_answers(display):
        raise DesktopError(
            f"cannot connect to the display {display!r}: check that its X server runs and "
            "that $DISPLAY names it, or use a virtual display: xvfb-run digitrec draw"
        )


def _missing_opencv(e: ImportError) -> str:
    if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "cv2":
        return "the drawing window needs OpenCV: pip install 'digitrec[draw]'"
    return (
        f"OpenCV is installed but cannot load ({e}); on Debian or Ubuntu install the "
        "libraries it needs: sudo apt-get install libgl1 libglib2.0-0 libsm6 libxext6"
    )
