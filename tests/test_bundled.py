"""The bundled model's promise: >= 99.6% on MNIST's 10,000 test images, and no less than its
card says (minus 0.05 points); >= 98.5% on UNIPEN dev, pen digits of writers it never saw;
its 1s stretched to fill a box read as 1s; and a card that names every data source it learned
from, with its licence."""

import json

import numpy as np
from PIL import Image

from digitrec.evaluate import evaluate_folder, evaluate_mnist
from digitrec.reading.predictor import Predictor, bundled_model_path
from digitrec.reading.preprocess import to_mnist

FLOOR = 0.996  # the bundled model reads 99.69% (99.63% before its second look): no less
UNIPEN_FLOOR = 0.985  # it reads 99.33% of UNIPEN dev (4,326 digits by 67 writers)
# UNIPEN dev's 1s stretched to fill a 16x16 box and made binary, as form readers keep digits:
# 97.4% read as 1 (94.6% before such digits were narrowed back to a digit's shape)
STRETCHED_ONES_FLOOR = 0.96


def test_bundled_model_meets_its_accuracy_floor(mnist_dir):
    predictor = Predictor()
    result = evaluate_mnist(predictor, mnist_dir, progress=False)
    card = predictor.card
    assert len(result.labels) == 10000
    assert result.accuracy >= FLOOR, result.accuracy
    # the card's figure as the Predictor answers (with its second look at unsure answers)
    looked = card["metrics"]["test_accuracy_second_look"]
    assert result.accuracy >= looked - 0.0005, (result.accuracy, looked)


def test_bundled_model_ships_its_card_and_checkpoint():
    onnx_path = bundled_model_path()
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert onnx_path.with_suffix(".safetensors").is_file()
    assert card["metrics"]["test_accuracy"] >= FLOOR
    assert card["interrupted"] is False
    assert card["onnx"]["parity_max_abs_logit_diff"] <= 1e-4
    assert onnx_path.stat().st_size < 8 * 2**20


def test_bundled_model_reads_writers_it_never_saw(unipen_file):
    """All of UNIPEN dev, as `digitrec evaluate --images` reads it (refusals count wrong
    nowhere here: argmax, as the floor is stated)."""
    result = evaluate_folder(Predictor(), unipen_file.parent / "dev", progress=False)
    assert len(result.labels) == 4326
    assert result.accuracy >= UNIPEN_FLOOR, result.accuracy


def test_bundled_model_card_names_every_data_source_with_its_licence():
    card = Predictor().card
    sources = card["data"]["sources"]
    names = " ".join(s["name"] for s in sources)
    assert "MNIST" in names and "UNIPEN" in names and "synthetic.py" in names
    assert all(s.get("licence") for s in sources)
    unipen = next(s for s in sources if "UNIPEN" in s["name"])
    assert unipen["licence"] == "CC BY 4.0" and "Unipen" in unipen["credit"]
    assert card["calibration"]["unsure_top_two"] < 2 * card["calibration"]["threshold"]


def test_writers_ones_stretched_to_fill_a_box_read_as_ones(unipen_file):
    """A 1 stretched to fill a square box is as wide as a 0: read at a digit's width, real
    writers' 1s (UNIPEN dev, never trained on), so boxed, black ink or white, read as 1."""
    predictor = Predictor()
    inputs = []
    for k, path in enumerate(sorted((unipen_file.parent / "dev" / "1").glob("*.png"))):
        ink = 255 - np.asarray(Image.open(path).convert("L"))
        rows, cols = np.flatnonzero((ink > 60).any(1)), np.flatnonzero((ink > 60).any(0))
        cut = Image.fromarray(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
        bits = np.asarray(cut.resize((16, 16), Image.Resampling.BILINEAR)) > 127
        inputs.append(to_mnist(bits if k % 2 else ~bits))
    probs = predictor.probabilities(np.stack(inputs))
    assert len(probs) == 464
    assert (probs.argmax(1) == 1).mean() >= STRETCHED_ONES_FLOOR
