"""The drawing window's state, reader thread and frames, without a display."""

import builtins
import io
import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import ROOT, run_cli
from PIL import Image

from digitrec import desktop
from digitrec.desktop import layout, support
from digitrec.desktop.layout import CANVAS, FRAME, GOOD, INPUT_BOX, PANEL, WARN
from digitrec.desktop.reader import PredictionWorker, Reading, read_drawing
from digitrec.desktop.render import render, render_canvas, render_help, render_panel
from digitrec.desktop.session import EventLog, Session
from digitrec.desktop.state import DIGIT, NUMBER, DrawingState
from digitrec.desktop.support import DesktopError
from digitrec.feedback import FeedbackStore
from digitrec.reading.predictor import NumberReading, Prediction, Predictor, blank

ONE = [[(240, 80), (240, 400)]]
SEVEN = [[(130, 110), (350, 110)], [(350, 110), (220, 400)]]


def drawn(strokes, mode=DIGIT) -> DrawingState:
    state = DrawingState()
    for stroke in strokes:
        state.press(*stroke[0])
        for point in stroke[1:]:
            state.drag(*point)
        state.release()
    if mode != state.mode:
        state.toggle_mode()
    return state


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


def has_colour(image: np.ndarray, colour) -> bool:
    return bool((np.abs(image.astype(int) - colour).sum(axis=-1) < 30).any())


# ----------------------------------------------------------------------------- state


def test_strokes_are_built_from_press_drag_release():
    state = DrawingState()
    assert state.empty and state.canvas().max() == 0
    assert state.press(100, 100) and state.drawing
    assert state.drag(150, 120)
    assert not state.drag(150, 120)  # the same point again is no new ink
    state.drag(900, -50)  # off the area: the pen stays on its edge
    assert state.release() and not state.drawing
    assert state.strokes == [[(100, 100), (150, 120), (CANVAS - 1, 0)]]
    assert not state.drag(200, 200), "moving without the button down draws nothing"
    assert not state.press(CANVAS + 10, 100), "a press on the panel starts no stroke"
    assert len(state.strokes) == 1


def test_the_canvas_is_white_ink_on_black_with_a_round_pen():
    state = drawn(ONE)
    image = state.canvas()
    assert image.shape == (CANVAS, CANVAS) and image.dtype == np.uint8
    assert image[240, 240] == 255 and image[240, 240 + state.pen // 2 - 2] == 255
    assert image[240, 240 + state.pen] == 0 and image[40, 240] == 0
    assert image[80 - state.pen // 2 + 2, 240] == 255, "round end beyond the last point"
    assert image[240, 100] == 0
    dot = drawn([[(50, 50)]]).canvas()
    assert dot[50, 50] == 255 and dot[50, 50 + state.pen // 2 - 2] == 255


def test_the_canvas_array_is_replaced_not_changed():
    state = drawn(ONE)
    before = state.canvas()
    copy = before.copy()
    assert state.canvas() is before, "cached while the ink is the same"
    state.toggle_mode()
    assert state.canvas() is before, "a mode change is no new ink"
    state.press(20, 20)
    after = state.canvas()
    assert after is not before and np.array_equal(before, copy)
    assert after[20, 20] == 255


def test_undo_clear_and_mode_change_the_version():
    state = drawn(SEVEN)
    versions = [state.version]
    state.undo()
    assert state.strokes == [[(130, 110), (350, 110)]]
    versions.append(state.version)
    state.toggle_mode()
    assert state.mode == NUMBER and "number" in state.message
    versions.append(state.version)
    state.clear()
    assert state.empty
    versions.append(state.version)
    assert versions == sorted(set(versions)), "every change is a new version"
    state.undo()
    assert state.message == "nothing to undo" and state.version == versions[-1]
    state.toggle_mode()
    assert state.mode == DIGIT


def test_undo_during_a_stroke_drops_it():
    state = drawn(ONE)
    state.press(10, 10)
    state.drag(60, 60)
    state.undo()
    assert len(state.strokes) == 1 and not state.drawing


def test_mouse_events():
    state = DrawingState()
    assert state.handle_mouse(cv2.EVENT_MOUSEMOVE, 10, 10, 0) is None
    assert state.handle_mouse(cv2.EVENT_LBUTTONDOWN, 10, 10, cv2.EVENT_FLAG_LBUTTON) == "press"
    assert state.handle_mouse(cv2.EVENT_MOUSEMOVE, 40, 40, cv2.EVENT_FLAG_LBUTTON) == "drag"
    # the button came up outside the window: the next move without it ends the stroke
    assert state.handle_mouse(cv2.EVENT_MOUSEMOVE, 50, 50, 0) == "release"
    assert state.handle_mouse(cv2.EVENT_LBUTTONUP, 50, 50, 0) is None
    assert state.strokes == [[(10, 10), (40, 40)]]
    assert state.handle_mouse(cv2.EVENT_LBUTTONDOWN, 600, 10, 1) is None, "on the panel"


@pytest.mark.parametrize(
    "key, kind, label",
    [
        (ord("c"), "clear", None),
        (ord("u"), "undo", None),
        (ord("m"), "mode", None),
        (ord("M"), "mode", None),
        (ord("s"), "save", None),
        (ord("q"), "quit", None),
        (27, "quit", None),
        (ord("0"), "label", 0),
        (ord("7"), "label", 7),
    ],
)
def test_keys_become_actions(key, kind, label):
    action = drawn(ONE).handle_key(key)
    assert (action.kind, action.label) == (kind, label)


def test_keys_act_on_the_state():
    state = drawn(SEVEN)
    state.handle_key(ord("u"))
    assert len(state.strokes) == 1
    state.handle_key(ord("m"))
    assert state.mode == NUMBER
    state.handle_key(ord("c"))
    assert state.empty
    for key in (-1, ord("x"), ord(" "), 0x1000012):  # none, unknown, space, an arrow
        assert state.handle_key(key) is None


def test_the_help_line_names_every_key():
    for key in ("c clear", "u undo", "m ", "s save", "0-9 ", "q/Esc quit"):
        assert key in layout.HELP


# ----------------------------------------------------------------------------- reading


def test_drawings_are_read_through_the_predictor(predictor):
    one = read_drawing(predictor, drawn(ONE).canvas(), DIGIT)
    seven = read_drawing(predictor, drawn(SEVEN).canvas(), DIGIT)
    assert (one.digit, one.refused) == (1, False)
    assert (seven.digit, seven.refused) == (7, False)
    empty = read_drawing(predictor, DrawingState().canvas(), DIGIT)
    assert empty.refused and empty.reason == "blank"
    assert read_drawing(predictor, DrawingState().canvas(), NUMBER).digits == []


def test_number_mode_reads_several_digits_with_boxes(predictor):
    one = [[(110, 120), (110, 360)]]
    seven = [[(230, 130), (400, 130), (290, 370)]]
    reading = read_drawing(predictor, drawn(one + seven).canvas(), NUMBER)
    assert reading.text == "17"
    (l1, _, r1, _), (l7, _, r7, _) = (p.box for p in reading.digits)
    assert l1 < 110 < r1 < l7 < 290 < r7


def test_the_worker_never_blocks_and_reads_only_the_newest_drawing():
    gate, seen = threading.Event(), []

    def read(image, mode):
        seen.append(int(image[0, 0]))
        gate.wait(5)
        return blank()

    worker = PredictionWorker(read)
    try:
        start = time.perf_counter()
        worker.submit(1, np.full((2, 2), 1, np.uint8), DIGIT)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.005)
        for v in (2, 3, 4):  # while the model is busy with 1
            worker.submit(v, np.full((2, 2), v, np.uint8), DIGIT)
        assert time.perf_counter() - start < 1, "submit waited for the model"
        gate.set()
        latest = worker.wait(4)
        assert latest.version == 4
        assert seen == [1, 4], "drawings superseded while waiting are skipped"
    finally:
        gate.set()
        worker.close()


def test_a_stale_reading_never_replaces_a_newer_one():
    def read(image, mode):
        time.sleep(0.002 * int(image[0, 0] % 5))
        return blank()

    worker = PredictionWorker(read)
    try:
        versions = []
        for v in range(1, 40):
            worker.submit(v, np.full((2, 2), v, np.uint8), DIGIT)
            latest = worker.latest()
            versions.append(latest.version if latest else 0)
        assert worker.wait(39).version == 39
        assert versions == sorted(versions)
        # a reading of an older version arriving late is dropped
        worker._latest = Reading(100, DIGIT, 0)
        worker.submit(50, np.zeros((2, 2), np.uint8), DIGIT)
        time.sleep(0.2)
        assert worker.latest().version == 100
    finally:
        worker.close()


def test_the_worker_hands_errors_to_the_window():
    def read(image, mode):
        raise ValueError("broken")

    worker = PredictionWorker(read)
    try:
        worker.submit(1, np.zeros((2, 2), np.uint8), DIGIT)
        reading = worker.wait(1)
        assert isinstance(reading.error, ValueError) and reading.value is None
        assert reading.to_dict()["error"] == "broken"
    finally:
        worker.close()


# ----------------------------------------------------------------------------- rendering


def answer(digit=7, confidence=0.98, refused=False, reason=None) -> Prediction:
    probabilities = np.full(10, (1 - confidence) / 9, np.float32)
    probabilities[digit] = confidence
    picture = np.zeros((28, 28), np.float32)
    picture[4:24, 12:16] = 1.0
    return Prediction(digit, confidence, probabilities, picture, refused, reason)


def test_the_frame_holds_the_drawing_the_panel_and_the_help():
    state = drawn(ONE)
    frame = render(state, Reading(state.version, DIGIT, 1, answer(1)))
    assert frame.shape == (*FRAME, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[:CANVAS, :CANVAS, 0], state.canvas())
    assert np.array_equal(frame[:CANVAS, :CANVAS, 2], state.canvas())
    assert has_colour(frame[:CANVAS, CANVAS:], GOOD)


def test_the_panel_shows_the_answer_its_input_and_ten_bars():
    p = answer(7, 0.98)
    panel = render_panel(Reading(1, DIGIT, 2, p), DIGIT)
    assert panel.shape == (CANVAS, PANEL, 3)
    left, top, side = INPUT_BOX
    shown = panel[top : top + side, left : left + side, 0]
    expected = cv2.resize(
        (p.input * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST
    )
    assert np.array_equal(shown, expected), "the 28x28 input, enlarged"
    assert has_colour(panel, GOOD) and not has_colour(panel, WARN)
    # the top bar is the longest, as long as its probability
    row = layout.BARS_TOP + 7 * layout.BAR_ROW + 10
    filled = np.flatnonzero(np.abs(panel[row].astype(int) - GOOD).sum(axis=-1) < 30)
    assert abs(len(filled) - 0.98 * layout.BAR_WIDTH) <= 2


@pytest.mark.parametrize("reason", ["unsure", "not_a_digit"])
def test_refusals_are_shown_as_refusals_not_guesses(reason):
    panel = render_panel(Reading(1, DIGIT, 1, answer(4, 0.4, True, reason)), DIGIT)
    assert has_colour(panel, WARN) and not has_colour(panel, GOOD)
    accepted = render_panel(Reading(1, DIGIT, 1, answer(4, 0.4)), DIGIT)
    left, top, _ = INPUT_BOX
    big = (slice(40, 180), slice(0, left - 4))  # where the digit or the '?' goes
    assert not np.array_equal(panel[big], accepted[big])


def test_a_blank_drawing_shows_neither_answer_nor_refusal_colour():
    panel = render_panel(Reading(0, DIGIT, 0, blank()), DIGIT)
    assert not has_colour(panel, GOOD) and not has_colour(panel, WARN)
    number = render_panel(Reading(0, NUMBER, 0, NumberReading([])), NUMBER)
    assert not has_colour(number, GOOD) and not has_colour(number, WARN)


def test_a_reading_for_the_other_mode_is_not_shown():
    state = drawn(ONE, mode=NUMBER)
    reading = Reading(state.version - 1, DIGIT, 1, answer(1))
    frame = render(state, reading)
    assert not has_colour(frame[:CANVAS], GOOD), "a digit answer is not a number reading"
    assert not has_colour(render_panel(None, DIGIT), GOOD)


def test_number_mode_draws_boxes_around_each_digit(predictor):
    state = drawn([[(110, 120), (110, 360)], [(230, 130), (400, 130), (290, 370)]], NUMBER)
    value = read_drawing(predictor, state.canvas(), NUMBER)
    reading = Reading(state.version, NUMBER, 2, value)
    canvas = render_canvas(state, reading)
    for p in value.digits:
        left, top, right, bottom = p.box
        assert has_colour(canvas[top - 6 : bottom + 6, left - 6 : left - 2], GOOD)
    assert not has_colour(render_canvas(drawn(ONE), reading), GOOD), "no boxes in digit mode"
    panel = render_panel(reading, NUMBER)
    assert has_colour(panel, GOOD)
    # one enlarged input per digit, one row each
    for i in range(len(value.digits)):
        y = layout.ROWS_TOP + i * layout.ROW_HEIGHT + 4
        thumb = panel[y : y + layout.ROW_THUMB, 16 : 16 + layout.ROW_THUMB, 0]
        assert thumb.max() > 200


def test_number_mode_marks_refused_digits_and_many_digits_fit(predictor):
    many = [answer(d % 10) for d in range(12)] + [answer(3, 0.3, True, "unsure")]
    panel = render_panel(Reading(1, NUMBER, 13, NumberReading([many])), NUMBER)
    assert has_colour(panel, WARN), "a number with a '?' is not shown as read"


def test_the_status_message_is_shown():
    quiet, loud = render_help(""), render_help("saved drawing.png")
    assert not has_colour(quiet, layout.NOTE) and has_colour(loud, layout.NOTE)


# ----------------------------------------------------------------------------- actions


def test_s_saves_the_drawing_as_a_png(tmp_path, predictor):
    state = drawn(ONE)
    session = Session(predictor, tmp_path / "fb.sqlite3", tmp_path / "saved", EventLog(None))
    session.save(state)
    session.save(state)
    files = sorted((tmp_path / "saved").glob("drawing-*.png"), key=lambda f: len(f.name))
    assert len(files) == 2, "a second save never overwrites the first"
    assert np.array_equal(np.asarray(Image.open(files[0])), state.canvas())
    assert str(files[1]) in state.message
    empty = DrawingState()
    session.save(empty)
    assert "nothing to save" in empty.message


def test_digit_keys_store_the_drawing_in_the_feedback_store(tmp_path, predictor):
    db = tmp_path / "fb.sqlite3"
    state = drawn(SEVEN)
    reading = Reading(state.version, DIGIT, 2, read_drawing(predictor, state.canvas(), DIGIT))
    session = Session(predictor, db, tmp_path, EventLog(tmp_path / "events.jsonl"))
    session.label(state, 7, reading)
    session.label(drawn(ONE, mode=NUMBER), 1, None)
    session.label(DrawingState(), 3, None)
    session.close()
    with FeedbackStore(db) as store:
        (sample,) = list(store.samples())
    assert (sample.label, sample.predicted, sample.model) == (7, 7, predictor.name)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(sample.png))), state.canvas())
    assert "stored as a 7" in state.message
    assert '"event": "stored"' in (tmp_path / "events.jsonl").read_text()


# ----------------------------------------------------------------------------- no window


def no_opencv(monkeypatch, error: ImportError) -> None:
    """`import cv2` fails with `error`, as without the extra or without libGL."""
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split(".")[0] == "cv2":
            raise error
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_without_opencv_the_error_says_what_to_install(monkeypatch):
    no_opencv(monkeypatch, ModuleNotFoundError("no cv2", name="cv2"))
    with pytest.raises(DesktopError, match=r"pip install 'digitrec\[draw\]'"):
        support.require_window_support()
    with pytest.raises(DesktopError, match=r"pip install 'digitrec\[draw\]'"):
        desktop.run()  # before the predictor or the window: the front door checks first
    no_opencv(monkeypatch, ImportError("libGL.so.1: cannot open shared object file"))
    with pytest.raises(DesktopError, match="libGL.so.1.*apt-get install libgl1 libglib2.0-0"):
        support.require_window_support()


def test_a_headless_opencv_says_how_to_get_windows(monkeypatch):
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:     NONE\n")
    with pytest.raises(DesktopError, match="headless.*pip install 'digitrec\\[draw\\]'"):
        support.require_window_support()


def test_without_a_display_the_error_says_where_to_run(monkeypatch):
    monkeypatch.setattr(support.sys, "platform", "linux")  # X11's rules, wherever this runs
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DesktopError, match=r"\$DISPLAY is not set.*xvfb-run digitrec draw"):
        support.require_window_support()
    monkeypatch.setenv("DISPLAY", ":4093")  # no X server there
    with pytest.raises(DesktopError, match="cannot connect to the display ':4093'"):
        support.require_window_support()


def test_digitrec_draw_without_a_display_exits_with_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    exe = os.path.join(os.path.dirname(sys.executable), "digitrec")
    result = subprocess.run([exe, "draw"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitrec: error: no display"), lines
    assert "xvfb-run" in lines[0]


def test_the_library_and_the_other_commands_never_import_opencv():
    code = (
        "import sys, digitrec.cli, digitrec.reading.predictor, digitrec.feedback\n"
        "import digitrec.desktop\n"  # only opening the window needs OpenCV
        "digitrec.cli.build_parser()\n"
        "digitrec.reading.predictor.Predictor().predict(sys.argv[1])\n"
        "assert 'cv2' not in sys.modules, 'cv2 imported'\n"
    )
    picture = sorted(ROOT.joinpath("examples").glob("*.png"))[0]
    result = subprocess.run([sys.executable, "-c", code, str(picture)], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


def test_draw_is_listed_with_its_keys():
    assert "draw" in run_cli("--help").stdout
    out = " ".join(run_cli("draw", "--help").stdout.split())
    assert "--model" in out and "q or Esc quit" in out and "--event-log" not in out
