"""Real writers' pen digits (UNIPEN) as training data: only the train split's writers are
learned from, a tenth of them are held out to choose the refusal threshold, and the card
names every data source with its licence."""

import json

import numpy as np
import pytest
from helpers import run_cli

from digitrec.errors import DataError
from digitrec.reading.calibrate import calibration_card, softmax
from digitrec.reading.preprocess import to_mnist
from digitrec.training import pen


@pytest.fixture(scope="module")
def train_digits(unipen_file):
    return pen.load_pen_digits(unipen_file, "train")


def test_train_and_dev_writers_are_apart_and_held_out_writers_are_train_writers(
    unipen_file, train_digits
):
    dev = pen.load_pen_digits(unipen_file, "dev")
    assert not set(train_digits.writers) & set(dev.writers)
    held = {w for w in train_digits.writers if pen.held_out_writer(w)}
    learned = set(train_digits.writers) - held
    assert 0.05 < len(held) / len(set(train_digits.writers)) < 0.15
    assert len(learned) > 150
    # the dev split was made on the writers' bare hash: the held-out ones must not all be
    # the train writers that hash lowest
    assert len(held) == sum(pen.held_out_writer(w) for w in set(train_digits.writers))


def test_flagged_and_unusable_samples_are_left_out(unipen_file, train_digits):
    assert len(train_digits.labels) == 11521  # the README's "train (clean)" count
    assert np.bincount(train_digits.labels, minlength=10).min() > 1000
    for strokes in train_digits.strokes[:500]:
        points = np.concatenate(strokes)
        assert len(points) >= 2 and np.ptp(points[:, 1]) > 0


def test_drawings_are_pictures_to_mnist_reads(train_digits):
    rng = np.random.default_rng(0)
    dark = 0
    for j in range(40):
        img = pen.draw_pen(train_digits.strokes[j], int(train_digits.labels[j]), rng)
        assert img.shape == (pen.CANVAS, pen.CANVAS) and img.dtype == np.uint8
        dark += img.mean() < 128
        x = to_mnist(img)
        assert x.shape == (28, 28) and x.max() > 0.5
    assert 0 < dark < 40  # both polarities are drawn


def test_a_flag_starts_below_and_left_of_the_top_of_a_one():
    one = [np.array([[0.0, -0.5], [0.0, 0.5]])]
    rng = np.random.default_rng(1)
    flagged = pen.european_one(one, rng)
    (x0, y0), (x1, y1) = flagged[0]
    assert (x1, y1) == (0.0, -0.5)  # it ends at the top
    assert x0 < 0 and y0 > y1
    slope = np.degrees(np.arctan2(y0 - y1, x1 - x0))
    assert 35 <= slope <= 65  # steeper than a 7's bar


def test_a_bar_crosses_the_stem_of_a_seven():
    seven = [np.array([[-0.3, -0.5], [0.3, -0.5], [0.0, 0.5]])]
    crossed = pen.crossed_seven(seven, np.random.default_rng(2))
    assert len(crossed) == 2
    (bx0, by0), (bx1, by1) = crossed[1]
    stem_x = pen._crossing_x(seven, (by0 + by1) / 2)
    assert bx0 < stem_x < bx1


def test_a_five_loses_its_flag_and_nothing_else():
    body = np.array([[-0.2, -0.5], [-0.25, -0.05], [0.2, 0.0], [0.25, 0.3], [-0.25, 0.5]])
    flag = np.array([[-0.2, -0.5], [0.25, -0.48]])
    assert [s.tolist() for s in pen.flagless_five([body, flag])] == [body.tolist()]
    assert [s.tolist() for s in pen.flagless_five([flag, body])] == [body.tolist()]
    # a 5 drawn in one stroke, or whose second stroke is no flag (a dot low down), is kept
    dot = np.array([[0.0, 0.45], [0.01, 0.45]])
    for strokes in ([body], [body, dot]):
        assert pen.flagless_five(strokes) is strokes


def test_a_missing_file_says_how_to_give_it(tmp_path, monkeypatch):
    monkeypatch.delenv(pen.ENV, raising=False)
    with pytest.raises(DataError, match="--unipen"):
        pen.find_unipen(None)
    with pytest.raises(DataError, match="no UNIPEN file"):
        pen.find_unipen(tmp_path)
    bad = tmp_path / pen.FILE_NAME
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not the UNIPEN digits file"):
        pen.load_pen_digits(pen.find_unipen(tmp_path), "train")


def test_threshold_with_pen_digits_refuses_no_more_than_either_budget():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 4000)
    logits = rng.normal(0, 1, (4000, 10))
    logits[np.arange(4000), labels] += 6  # sure and right
    pen_labels = rng.integers(0, 10, 2000)
    pen_logits = rng.normal(0, 1, (2000, 10))
    pen_logits[np.arange(2000), pen_labels] += 2.5  # less sure, sometimes wrong
    card = calibration_card(logits, labels, None, 0.01, (pen_logits, pen_labels), 0.05)
    t = card["threshold"]
    temperature = card["temperature"]
    assert (softmax(logits, temperature).max(1) < t).mean() <= 0.01
    assert card["pen_val_refused"] <= 0.05
    assert card["pen_val_answered_right"] >= card["pen_val_accuracy"]


def test_the_card_names_every_data_source_with_its_licence(tmp_path, mnist_dir, unipen_file):
    out = tmp_path / "run"
    r = run_cli(
        "train", "--preset", "fast", "--limit", "1024", "--pen", "300", "--unipen",
        unipen_file, "--out", out, "--quiet", env={"DIGITREC_DATA": str(mnist_dir)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "model.json").read_text())
    sources = {s["licence"]: s for s in card["data"]["sources"]}
    assert "MNIST" in sources["CC BY-SA 3.0"]["name"]
    unipen = sources["CC BY 4.0"]
    assert unipen["credit"] == "UNIPEN train_r01_v07, International Unipen Foundation, CC BY 4.0"
    assert unipen["drawings"] == 300 and len(unipen["sha256"]) == 64
    assert card["train"]["pen"] == 300
    assert 0 <= card["calibration"]["pen_val_refused"] <= card["train"]["pen_max_refused"]

    # models that learned from pen digits, joined, have their refusal rule chosen on the
    # held-out writers too, as each model's own was
    joined = tmp_path / "joined.safetensors"
    r = run_cli(
        "combine", out, out, "--out", joined, "--unipen", unipen_file, "--quiet",
        env={"DIGITREC_DATA": str(mnist_dir)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    calibration = json.loads(joined.with_suffix(".json").read_text())["calibration"]
    assert calibration["pen_val_accuracy"] == card["calibration"]["pen_val_accuracy"]
    assert calibration["pen_val_refused"] <= card["train"]["pen_max_refused"]


def test_mnist_alone_needs_no_unipen_file(tmp_path, mnist_dir, monkeypatch):
    r = run_cli(
        "train", "--preset", "best", "--dry-run", "--pen", "0", "--out", tmp_path / "run",
        "--quiet", env={"DIGITREC_DATA": str(mnist_dir), pen.ENV: ""},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert [s["licence"] for s in card["data"]["sources"]][0] == "CC BY-SA 3.0"
    assert all(s["licence"] != "CC BY 4.0" for s in card["data"]["sources"])


def test_best_without_the_file_is_one_clear_error(tmp_path, mnist_dir):
    r = run_cli(
        "train", "--preset", "best", "--dry-run", "--out", tmp_path / "run",
        env={"DIGITREC_DATA": str(mnist_dir), pen.ENV: ""},
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.startswith("digitrec: error:") and "--unipen" in r.stderr
    assert "Traceback" not in r.stderr
