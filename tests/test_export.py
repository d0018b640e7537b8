import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec import load_predictor
from digitrec.errors import ModelError, OutputExistsError
from digitrec.reading.predictor import Predictor
from digitrec.training.checkpoint import load_checkpoint
from digitrec.training.export import PARITY_TOLERANCE, export_checkpoint, max_logit_difference


def test_onnx_matches_pytorch_on_real_digits(tiny_run, tiny_onnx, mnist_dir):
    from digitrec.data import load_mnist

    model, _ = load_checkpoint(tiny_run[0])
    digits = load_mnist("test", mnist_dir).images[:256].astype(np.float32)[:, None] / 255
    diff = max_logit_difference(model, tiny_onnx, digits)
    assert diff <= PARITY_TOLERANCE, diff
    card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert card["onnx"]["parity_max_abs_logit_diff"] <= PARITY_TOLERANCE


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_onnx_batch_axis_is_dynamic(tiny_onnx, batch):
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.shape[1:] == [1, 28, 28]
    out = session.run(None, {"image": np.zeros((batch, 1, 28, 28), np.float32)})[0]
    assert out.shape == (batch, 10)


def test_onnx_file_carries_its_card(tiny_run, tiny_onnx):
    meta = {p.key: p.value for p in onnx.load(tiny_onnx).metadata_props}
    card = json.loads(meta["digitrec_card"])
    assert card["model"] == tiny_run[1]["model"]
    assert card["metrics"]["test_accuracy"] == tiny_run[1]["metrics"]["test_accuracy"]
    # the file alone is enough: without the JSON beside it the Predictor still knows it
    alone = tiny_onnx.parent / "alone.onnx"
    alone.write_bytes(tiny_onnx.read_bytes())
    assert Predictor(alone).card["model"] == card["model"]


def test_torch_and_onnx_predictors_agree(tiny_run, tiny_onnx):
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    a = Predictor(tiny_onnx).classify(x)
    b = load_predictor(tiny_run[0]).classify(x)
    assert np.abs(a - b).max() < 1e-5
    assert np.allclose(a.sum(1), 1, atol=1e-5)


def test_export_refuses_to_overwrite_and_bad_names(tiny_run, tiny_onnx):
    with pytest.raises(OutputExistsError, match="--force"):
        export_checkpoint(tiny_run[0], tiny_onnx)
    with pytest.raises(ModelError, match=".onnx"):
        export_checkpoint(tiny_run[0], tiny_onnx.with_suffix(".bin"))


def test_parity_check_notices_a_different_model(tiny_run, tiny_onnx):
    model, _ = load_checkpoint(tiny_run[0])
    with torch.no_grad():
        model[-1].bias += 0.01
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    assert max_logit_difference(model, tiny_onnx, x) > PARITY_TOLERANCE
