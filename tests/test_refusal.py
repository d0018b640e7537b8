"""Refusal: calibrated confidence (temperature scaling), the threshold, and pictures that are
not digits."""

import numpy as np
import pytest

from digitrec.reading.calibrate import (
    calibration_card,
    expected_calibration_error,
    fit_temperature,
    refusal_threshold,
    softmax,
)
from digitrec.reading.predictor import Predictor
from digitrec.training.synthetic import FONT_DIR, draw_strokes, letter, scribble, shape


def overconfident_logits(n=4000, true_t=2.5, seed=0):
    """Logits whose calibrated temperature is known: labels drawn from softmax(z / true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (n, 10))
    p = softmax(z, true_t)
    labels = np.array([rng.choice(10, p=row) for row in p])
    return z, labels


def test_temperature_scaling_finds_the_true_temperature_and_lowers_ece():
    z, labels = overconfident_logits()
    t = fit_temperature(z, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    before = expected_calibration_error(softmax(z), labels)
    after = expected_calibration_error(softmax(z, t), labels)
    assert after < before / 3


def test_threshold_refuses_the_share_asked_for():
    conf = np.linspace(0.01, 1, 1000)
    t = refusal_threshold(conf, 0.01)
    assert (conf < t).mean() <= 0.01
    assert (conf < t).mean() >= 0.005


def test_calibration_card_reports_before_after_and_outliers():
    z, labels = overconfident_logits()
    outliers = np.zeros((50, 10))  # uniform: confidence 0.1, always refused
    card = calibration_card(z, labels, outliers, max_refused=0.05)
    assert card["ece_after"] < card["ece_before"]
    assert card["val_refused"] <= 0.05 and card["val_outliers_refused"] == 1.0
    assert 0 < card["threshold"] < 1


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def test_bundled_model_is_calibrated(predictor):
    cal = predictor.card["calibration"]
    assert cal["ece_after"] <= cal["ece_before"]
    assert cal["val_refused"] <= 0.01
    assert predictor.threshold == cal["threshold"] and predictor.temperature == cal["temperature"]


def paper(ink):
    return np.round(255 * (1 - np.clip(ink, 0, 1))).astype(np.uint8)


def test_pictures_that_are_not_digits_are_refused(predictor):
    """Shapes, scribbles and letters in a font training never used (DejaVu Serif)."""
    rng = np.random.default_rng(12345)
    serif = tuple(p.name for p in sorted(FONT_DIR.glob("DejaVuSerif*.ttf")))
    assert serif
    pictures = [paper(letter(rng, serif, 120)) for _ in range(20)]
    for make in (scribble, shape):
        for _ in range(20):
            pictures.append(paper(draw_strokes(make(rng), 160, 9, (30, 30, 130, 130))))
    refused = [p.refused for p in predictor.predict_many(pictures)]
    assert np.mean(refused) >= 0.8, np.mean(refused)


def test_digits_are_not_refused(predictor, mnist_dir):
    from digitrec.data import load_mnist

    x = load_mnist("test", mnist_dir).images[:2000].astype(np.float32) / 255
    refused = np.mean([p.refused for p in predictor.judge(predictor.classify(x), x)])
    assert refused <= 0.01


def test_refusal_reasons_tell_unsure_from_not_a_digit():
    from digitrec.reading.predictor import Prediction

    predictor = Predictor(threshold=0.6)  # the reasons, whatever the bundled threshold
    two_way = np.array([0.45, 0.45] + [0.1 / 8] * 8)
    spread = np.full(10, 0.1)
    a, b = predictor.judge(np.stack([two_way, spread]), np.zeros((2, 28, 28)))
    assert isinstance(a, Prediction) and a.refused and a.reason == "unsure"
    assert b.refused and b.reason == "not_a_digit"
    assert "digit" in b.message
