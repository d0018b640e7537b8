"""The bundled model's promise: >= 99.6% on MNIST's 10,000 test images, and no less than its
card says (minus 0.05 points)."""

import json

from digitrec.evaluate import evaluate_mnist
from digitrec.reading.predictor import Predictor, bundled_model_path

FLOOR = 0.996  # the bundled model reads 99.63%: a retrained one must not read less


def test_bundled_model_meets_its_accuracy_floor(mnist_dir):
    predictor = Predictor()
    result = evaluate_mnist(predictor, mnist_dir, progress=False)
    card = predictor.card
    assert len(result.labels) == 10000
    assert result.accuracy >= FLOOR, result.accuracy
    assert result.accuracy >= card["metrics"]["test_accuracy"] - 0.0005, (
        result.accuracy,
        card["metrics"]["test_accuracy"],
    )


def test_bundled_model_ships_its_card_and_checkpoint():
    onnx_path = bundled_model_path()
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert onnx_path.with_suffix(".safetensors").is_file()
    assert card["metrics"]["test_accuracy"] >= FLOOR
    assert card["interrupted"] is False
    assert card["onnx"]["parity_max_abs_logit_diff"] <= 1e-4
    assert onnx_path.stat().st_size < 8 * 2**20
