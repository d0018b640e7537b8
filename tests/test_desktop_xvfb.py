"""End to end: `digitrec draw` on a real X server (Xvfb), driven with xdotool as a user would.

The window writes one JSON line per reading it shows (the hidden --event-log flag); the test
reads what was shown from there and takes a screenshot of the screen with Pillow.
"""

import ctypes
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image, ImageGrab

from digitrec.desktop.layout import BACKGROUND, CANVAS, GOOD, TITLE
from digitrec.desktop.session import EventLog
from digitrec.desktop.x11 import MapRepair, load_xlib
from digitrec.feedback import FeedbackStore

ARTIFACTS = ROOT / "test-artifacts"
ONE = [(240, 80), (240, 400)]
SEVEN = ([(130, 110), (350, 110)], [(350, 110), (220, 400)])


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:  # never a skip: CI installs them (.ci/run)
        pytest.fail(f"{name} is missing: apt-get install xvfb xdotool")
    return path


@pytest.fixture
def display():
    """A private X server on the first free display number (Xvfb picks and reports it)."""
    read, write = os.pipe()
    server = subprocess.Popen(
        [tool("Xvfb"), "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 60)
        number = os.read(read, 32).decode().strip() if ready else ""
        if not number.isdigit():
            pytest.fail(f"Xvfb did not start (exit status {server.poll()})")
        yield f":{number}"
    finally:
        os.close(read)
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


class Window:
    """The running `digitrec draw`: its event log, the mouse and the keyboard."""

    def __init__(self, process: subprocess.Popen, display: str, log: Path, stderr: Path):
        self.process, self.display, self.log, self.stderr = process, display, log, stderr
        self.events: list[dict] = []
        self.cursor = 0
        self.rect = self.frame = None
        self.id = None

    def wait(self, test, timeout: float = 60, anywhere: bool = False) -> dict:
        """The first event from the cursor on (or, `anywhere`, from the start) that passes
        `test`; moves the cursor past it."""
        deadline = time.monotonic() + timeout
        while True:
            if self.log.exists():
                lines = self.log.read_text().splitlines()
                self.events = [json.loads(line) for line in lines if line.endswith("}")]
            for i in range(0 if anywhere else self.cursor, len(self.events)):
                if test(self.events[i]):
                    self.cursor = max(self.cursor, i + 1)
                    return self.events[i]
            if self.process.poll() is not None:
                pytest.fail(f"digitrec draw stopped ({self.process.returncode}): {self.errors()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no such event in {timeout} s; events: {self.events[-5:]}")
            time.sleep(0.05)

    def reading(self, version: int) -> dict:
        """The first reading shown of this version of the drawing or a newer one (it may be
        logged before the event that told us the version, so the whole log is searched)."""
        return self.wait(
            lambda e: e["event"] == "reading" and e["version"] >= version, anywhere=True
        )

    def errors(self) -> str:
        return self.stderr.read_text()[-2000:] if self.stderr.exists() else ""

    def xdotool(self, *args) -> str:
        env = {**os.environ, "DISPLAY": self.display}
        result = subprocess.run(
            [tool("xdotool"), *map(str, args)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def screen(self, x: float, y: float) -> tuple[int, int]:
        """Canvas pixels to screen pixels (the window may be scaled)."""
        left, top, width, height = self.rect
        return round(left + x * width / self.frame[0]), round(top + y * height / self.frame[1])

    def drag(self, points, step: float = 8) -> int:
        """Press, move in small steps (OpenCV draws from motion events), release; returns
        the version of the drawing once the stroke ended."""
        path = [points[0]]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            n = max(1, int(np.hypot(x1 - x0, y1 - y0) / step))
            path += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
        args = ["mousemove", *self.screen(*path[0]), "mousedown", 1]
        for point in path[1:]:
            args += ["mousemove", *self.screen(*point), "sleep", 0.015]
        self.xdotool(*args, "mouseup", 1)
        return self.wait(lambda e: e["event"] == "stroke")["version"]

    def key(self, key: str, kind: str) -> int:
        """Press a key; returns the drawing's version after the window acted on it."""
        self.xdotool("windowfocus", self.id)
        self.xdotool("key", key)
        return self.wait(lambda e: e["event"] == "key" and e["key"] == kind)["version"]

    def wait_painted(self, timeout: float = 30) -> None:
        """Until the window shows its panel (it repairs Qt's rare unpainted start itself)."""
        left, top, width, height = self.rect
        x, y = left + width - 8, top + 6
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pixel = ImageGrab.grab(xdisplay=self.display).getpixel((x, y))
            if max(abs(a - b) for a, b in zip(pixel, BACKGROUND[::-1], strict=True)) <= 12:
                return
            time.sleep(0.1)
        pytest.fail(f"the window was never painted; events: {self.events[-5:]}")

    def screenshot(self, name: str) -> np.ndarray:
        time.sleep(0.3)  # the frame after the last reading is up within a few ms
        left, top, width, height = self.rect
        shot = ImageGrab.grab(xdisplay=self.display).crop((left, top, left + width, top + height))
        ARTIFACTS.mkdir(exist_ok=True)
        shot.save(ARTIFACTS / name)
        return np.asarray(shot.convert("RGB"))[..., ::-1]  # BGR, as the window paints


def bgr_near(image: np.ndarray, colour) -> int:
    return int((np.abs(image.astype(int) - colour).sum(axis=-1) < 40).sum())


def test_draw_a_1_and_a_7_in_the_window(display, tmp_path):
    log, db = tmp_path / "events.jsonl", tmp_path / "feedback.sqlite3"
    stderr = tmp_path / "stderr.txt"
    env = {**os.environ, "DISPLAY": display, "XDG_DATA_HOME": str(tmp_path / "data")}
    exe = Path(sys.executable).parent / "digitrec"
    command = [exe, "draw", "--event-log", log, "--db", db, "--save-dir", tmp_path / "saved"]
    with open(stderr, "w") as err:
        process = subprocess.Popen(command, env=env, stdout=err, stderr=err)
    window = Window(process, display, log, stderr)
    try:
        ready = window.wait(lambda e: e["event"] == "ready", timeout=120)
        window.rect, window.frame = ready["window"], ready["frame"]
        window.id = window.xdotool("search", "--sync", "--name", "^digitrec draw$").split()[0]
        window.wait_painted()
        assert window.reading(0)["reason"] == "blank", "an empty canvas is refused as blank"

        # a 1: read live while the stroke is drawn, and once it ends
        version = window.drag(ONE)
        final = window.reading(version)
        assert (final["digit"], final["refused"]) == (1, False), final
        live = [e for e in window.events if e["event"] == "reading" and e["version"] < version]
        assert any(e["strokes"] == 1 for e in live), "no reading while the pen was down"

        version = window.key("c", "clear")
        cleared = window.reading(version)
        assert cleared["refused"] and cleared["reason"] == "blank" and cleared["strokes"] == 0

        # a 7: a top bar, then a long diagonal
        window.drag(SEVEN[0])
        seven = window.reading(window.drag(SEVEN[1]))
        assert (seven["digit"], seven["refused"], seven["strokes"]) == (7, False, 2), seven
        shot = window.screenshot("draw-window.png")
        assert shot.shape[:2] == (window.frame[1], window.frame[0])
        assert (shot[:CANVAS, :CANVAS] > 240).all(axis=-1).mean() > 0.03, "the ink is on screen"
        assert bgr_near(shot[:CANVAS, CANVAS:], GOOD) > 500, "the answer is on screen"

        window.key("s", "save")
        saved = Path(window.wait(lambda e: e["event"] == "saved")["path"])
        assert Image.open(saved).size == (CANVAS, CANVAS)

        window.key("7", "label")
        stored = window.wait(lambda e: e["event"] == "stored")
        assert (stored["label"], stored["predicted"]) == (7, 7)
        with FeedbackStore(db) as store:
            (sample,) = list(store.samples())
        assert (sample.label, sample.predicted) == (7, 7)

        number = window.reading(window.key("m", "mode"))
        assert number["mode"] == "number" and number["number"] == "7", number
        assert len(number["digits"]) == 1 and number["digits"][0]["box"]
        window.screenshot("draw-window-number.png")

        undone = window.reading(window.key("u", "undo"))
        assert undone["mode"] == "number" and undone["strokes"] == 1

        window.xdotool("windowfocus", window.id)
        window.xdotool("key", "q")
        assert process.wait(60) == 0, window.errors()
        window.wait(lambda e: e["event"] == "quit", timeout=5)
        assert "Traceback" not in window.errors()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_window_left_unpainted_is_mapped_again(display, monkeypatch, tmp_path):
    """OpenCV's Qt now and then never paints a new window; the window notices and maps
    itself again. Here a bare X window with the same title stands in for it: black (never
    painted) it is mapped again each check, then left; in the panel's colour it is left."""
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setattr(MapRepair, "EVERY", 0.0)
    x = load_xlib()
    p, u, i, ui = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_uint
    x.XCreateSimpleWindow.restype = u
    x.XCreateSimpleWindow.argtypes = [p, u, i, i, ui, ui, ui, u, u]
    x.XStoreName.argtypes = [p, u, ctypes.c_char_p]
    x.XSetWindowBackground.argtypes = [p, u, u]
    x.XClearWindow.argtypes = [p, u]
    connection = x.XOpenDisplay(display.encode())
    assert connection, "cannot open the display"
    try:
        root = x.XDefaultRootWindow(connection)
        window = x.XCreateSimpleWindow(connection, root, 0, 0, 800, 532, 0, 0, 0)
        x.XStoreName(connection, window, TITLE.encode())
        x.XMapWindow(connection, window)
        x.XSync(connection, 0)
        where = lambda: (0, 0, 800, 532)  # noqa: E731

        def events(repair_log: Path) -> list[str]:
            return [json.loads(line)["event"] for line in repair_log.read_text().splitlines()]

        black = tmp_path / "black.jsonl"
        repair = MapRepair(TITLE, EventLog(black))
        for _ in range(MapRepair.CHECKS + 2):
            repair.poll(where)
        assert events(black) == ["remapped"] * MapRepair.CHECKS
        assert repair.x is None, "it gives up after a few tries"

        b, g, r = BACKGROUND
        x.XSetWindowBackground(connection, window, r << 16 | g << 8 | b)
        x.XClearWindow(connection, window)
        x.XSync(connection, 0)
        shown = tmp_path / "shown.jsonl"
        repair = MapRepair(TITLE, EventLog(shown))
        repair.poll(where)
        assert events(shown) == ["painted"] and repair.x is None
    finally:
        x.XCloseDisplay(connection)
