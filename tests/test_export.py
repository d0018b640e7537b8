import json
from dataclasses import asdict

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec import load_predictor
from digitrec.errors import ModelError, OutputError, OutputExistsError
from digitrec.reading.predictor import Predictor
from digitrec.reading.registry import bundled_path
from digitrec.training.checkpoint import load_checkpoint, save_checkpoint
from digitrec.training.config import ModelConfig
from digitrec.training.export import PARITY_TOLERANCE, export_checkpoint, max_logit_difference
from digitrec.training.nets import build_model


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


def small_checkpoint(folder, **model):
    """A real checkpoint of a small untrained net, its card's model settings changed."""
    cfg = ModelConfig("quick", width=4, hidden=8, dropout=0.0)
    card = {"name": "small", "model": {**asdict(cfg), **model}}
    return save_checkpoint(folder / "small.safetensors", build_model(cfg), card)


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (dict(width=200_000), "width 200000"),  # 2.88 TB were it built
        (dict(width=1024, hidden=16384, members=8), "parameters (at most 100,000,000)"),
        (dict(width=8), "'1.weight' is (4, 1, 5, 5) in the file, (8, 1, 5, 5) by the card"),
        (dict(hidden=0), "6 tensors in the file are not the card's ('13.weight'...)"),
        (dict(arch="seed"), "does not fit the weights in the file"),
    ],
)
def test_a_card_that_does_not_describe_its_weights_is_refused_before_building(
    tmp_path, settings, fragment
):
    path = small_checkpoint(tmp_path, **settings)
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and fragment in str(info.value)
    with pytest.raises(ModelError):
        load_predictor(path)


def test_a_checkpoint_whose_card_fits_loads(tmp_path):
    model, card = load_checkpoint(small_checkpoint(tmp_path))
    assert card["model"]["width"] == 4
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_export_writes_only_into_a_folder_that_exists(tmp_path):
    path = small_checkpoint(tmp_path)
    with pytest.raises(OutputError, match="does not exist; create the folder first"):
        export_checkpoint(path, tmp_path / "missing" / "small.onnx")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        export_checkpoint(path, tmp_path / "dir.onnx", force=True)
    with pytest.raises(ModelError, match="ONNX already"):
        export_checkpoint(bundled_path(), tmp_path / "again.onnx")
    with pytest.raises(ModelError, match="does not exist"):
        export_checkpoint(tmp_path / "none.safetensors", tmp_path / "none.onnx")
