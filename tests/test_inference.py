import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import example_pictures
from PIL import Image

from digitrec.errors import BadImageError, ConfigError, ModelError
from digitrec.reading.predictor import Predictor, bundled_model_path, resolve_model_path


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def test_bundled_model_reads_every_sample_picture(predictor):
    pictures = example_pictures()
    assert len(pictures) == 10
    results = predictor.predict_many([p for p, _ in pictures])
    for (path, label), result in zip(pictures, results, strict=True):
        assert result.digit == label, (path.name, result.top3)
        assert result.confidence > 0.9, (path.name, result.top3)


def test_prediction_holds_probabilities_top3_and_the_model_input(predictor):
    path, label = example_pictures()[7]
    p = predictor.predict(path)
    assert p.probabilities.shape == (10,) and abs(p.probabilities.sum() - 1) < 1e-5
    assert p.top3[0] == (p.digit, p.confidence)
    assert p.top3[0][1] >= p.top3[1][1] >= p.top3[2][1]
    assert p.input.shape == (28, 28) and p.input.max() <= 1.0
    d = p.to_dict()
    assert d["digit"] == label and len(d["probabilities"]) == 10 and len(d["top3"]) == 3


def test_predict_accepts_arrays_and_pil_images(predictor):
    path, label = example_pictures()[4]
    image = Image.open(path)
    assert predictor.predict(image).digit == label
    assert predictor.predict(np.asarray(image.convert("L"))).digit == label
    assert predictor.predict(path.read_bytes()).digit == label


def test_blank_pictures_are_refused_and_unreadable_ones_raise(predictor, tmp_path):
    p = predictor.predict(np.full((280, 280), 255, np.uint8))
    assert p.refused and p.reason == "blank" and p.digit is None
    assert p.to_dict()["message"] == "the picture is blank"
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(BadImageError, match="notes.png"):
        predictor.predict(text)


def test_model_resolution_order(monkeypatch, tiny_onnx):
    monkeypatch.delenv("DIGITREC_MODEL", raising=False)
    assert resolve_model_path() == bundled_model_path()
    monkeypatch.setenv("DIGITREC_MODEL", str(tiny_onnx))
    assert resolve_model_path() == tiny_onnx
    assert Predictor().card["train"]["preset"] == "fast"
    assert resolve_model_path(bundled_model_path()) == bundled_model_path()


def test_files_that_are_not_digitrec_models_are_refused(tmp_path):
    missing = tmp_path / "none.onnx"
    with pytest.raises(ModelError, match="does not exist"):
        Predictor(missing)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 definitely not onnx")
    with pytest.raises(ModelError, match="not a digitrec model"):
        Predictor(garbage)
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a digitrec model"):
        Predictor(other)


def test_foreign_onnx_without_a_card_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelError, match="not a digitrec model"):
        Predictor(path)


def test_inference_never_imports_torch():
    code = (
        "import sys, digitrec, digitrec.reading.predictor, digitrec.evaluate;"
        "from digitrec.reading.predictor import Predictor;"
        "import numpy as np;"
        "p = Predictor().predict(np.pad(np.ones((20, 4)), 8));"
        "print(p.digit, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    digit, torch_loaded = out.stdout.split()
    assert torch_loaded == "False"
    assert digit == "1"


@pytest.mark.parametrize("threshold", [float("nan"), 2, -1, 1.01, float("inf"), "0.5", True])
def test_a_threshold_that_is_not_a_number_from_0_to_1_is_refused(threshold):
    with pytest.raises(ConfigError, match="threshold .* give a number from 0 to 1"):
        Predictor(threshold=threshold)


@pytest.mark.parametrize("threshold", [0, 0.25, 1, np.float32(0.5)])
def test_a_threshold_from_0_to_1_is_taken(threshold):
    assert Predictor(threshold=threshold, pairs=False).threshold == float(threshold)


def test_a_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path):
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop)
    for path, fragment in [
        (Path("/dev/zero"), "is a device"),
        (fifo, "is a named pipe"),  # never opened: that would wait for a writer
        (loop, "loop of symbolic links"),
        (tmp_path, "a folder with no model in it"),
    ]:
        with pytest.raises(ModelError, match=fragment):
            Predictor(path)


def test_each_model_is_checked_to_read_what_it_is_given_to_read():
    digits, pairs = bundled_model_path(), bundled_model_path("pairs.onnx")
    with pytest.raises(ModelError, match="cannot read a digit: it is the pair reader"):
        Predictor(pairs)
    with pytest.raises(ModelError, match="cannot read a pair of digits: it is not a pair reader"):
        Predictor(digits, pairs=digits)
