"""The second look: an answer less sure than the card's level is read again in other views
of its picture (reading/views.py) and the readings averaged; the refusal rule is chosen on
what that gives."""

import json
import shutil

import numpy as np
import pytest

from digitrec.data import load_mnist
from digitrec.errors import ModelError
from digitrec.reading.calibrate import SECOND_LOOK, calibration_card, second_look, softmax
from digitrec.reading.predictor import Predictor
from digitrec.reading.views import VIEWS, view, views


def test_sure_answers_keep_their_reading_and_only_unsure_ones_are_looked_at_again():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(0, 3, (9, 400, 10)))
    asked = []

    def views_of(rows):
        asked.append(rows)
        return probs[1:, rows]

    looked = second_look(probs[0], 0.9, views_of)
    sure = probs[0].max(1) >= 0.9
    assert 0 < sure.sum() < 400
    assert len(asked) == 1 and set(asked[0]) == set(np.flatnonzero(~sure))
    assert np.array_equal(looked[sure], probs[0][sure])
    assert np.allclose(looked[~sure], probs[:, ~sure].mean(0))
    assert np.allclose(looked.sum(1), 1)
    # nothing unsure: nothing looked at again
    sure_only = probs[0][sure]
    assert np.array_equal(second_look(sure_only, 0.9, views_of), sure_only) and len(asked) == 1


def test_each_view_keeps_the_digit_where_it_was(mnist_dir):
    x = load_mnist("test", mnist_dir).images[:200].astype(np.float32) / 255
    rows, cols = np.mgrid[:28, :28]
    for name in VIEWS:
        seen = view(x, name)
        assert seen.shape == x.shape and seen.dtype == np.float32
        assert seen.min() >= 0 and seen.max() <= 1
        # the centre of the ink moves by under a pixel on average: views turn and stretch the
        # digit about the middle of the field, where to_mnist put its centre of mass
        for grid in (rows, cols):
            before = (x * grid).sum((1, 2)) / x.sum((1, 2))
            after = (seen * grid).sum((1, 2)) / seen.sum((1, 2))
            assert np.abs(after - before).mean() < 1.0, name
    ink = {name: view(x, name).sum() for name in ("thin", "thick")}
    assert ink["thin"] < x.sum() < ink["thick"]
    # turning 8 degrees one way and back comes close to the picture again
    back = view(view(x, "r+8"), "r-8")
    assert np.abs(back - x).mean() < 0.05
    assert views(x[:3]).shape == (len(VIEWS), 3, 28, 28)


def test_calibration_with_views_chooses_the_rule_on_the_second_look():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 3000)
    logits = rng.normal(0, 1, (9, 3000, 10))
    logits[:, np.arange(3000), labels] += rng.normal(4, 2, 3000)  # every view leans right

    def view_logits(name, rows):
        assert name == "val"
        return logits[1:, rows]

    card = calibration_card(
        logits[0], labels, None, 0.02, views=list(VIEWS), view_logits=view_logits
    )
    assert card["second_look"] == {"below": SECOND_LOOK, "views": list(VIEWS)}
    t = card["temperature"]
    looked = second_look(softmax(logits[0], t), SECOND_LOOK, lambda r: softmax(logits[1:, r], t))
    # the threshold refuses at most the share asked for of what the second look gives
    assert (looked.max(1) < card["threshold"]).mean() <= 0.02
    assert card["threshold"] == pytest.approx(
        np.quantile(looked.max(1), 0.02, method="lower"), abs=1e-5
    )
    plain = calibration_card(logits[0], labels, None, 0.02)
    assert "second_look" not in plain and plain["temperature"] == t


@pytest.fixture(scope="module")
def bundled() -> Predictor:
    return Predictor(pairs=False)


def test_the_bundled_model_looks_again_at_unsure_answers_only(bundled, mnist_dir):
    below, names = bundled.second_look
    x = load_mnist("test", mnist_dir).images[:3000].astype(np.float32) / 255
    plain = bundled.classify(x)
    looked = bundled.probabilities(x)
    unsure = plain.max(1) < below
    assert 0 < unsure.sum() < 0.1 * len(x)
    assert np.array_equal(looked[~unsure], plain[~unsure])
    again = [plain[unsure]] + [bundled.classify(view(x[unsure], n)) for n in names]
    assert np.allclose(looked[unsure], np.mean(again, axis=0), atol=1e-6)
    # predict answers what the second look gives
    for i in np.flatnonzero(unsure)[:5]:
        p = bundled.predict((x[i] * 255).astype(np.uint8))
        assert p.digit == int(bundled.probabilities(p.input[None])[0].argmax())


@pytest.mark.parametrize(
    "look", [{"below": 2, "views": ["thin"]}, {"below": 0.9, "views": ["upside-down"]}, "yes"]
)
def test_a_card_with_a_damaged_second_look_is_refused(tmp_path, look):
    from digitrec.reading.predictor import bundled_model_path

    onnx = bundled_model_path()
    shutil.copy(onnx, tmp_path / "m.onnx")
    card = json.loads(onnx.with_suffix(".json").read_text())
    card["calibration"]["second_look"] = look
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="second_look"):
        Predictor(tmp_path / "m.onnx", pairs=False)
