import shutil

import numpy as np
import pytest
import torch

from digitrec.checkpoint import load_checkpoint
from digitrec.config import ModelConfig, preset
from digitrec.ensemble import fit_ensemble
from digitrec.errors import ConfigError, OutputExistsError
from digitrec.export import export_checkpoint
from digitrec.inference import Predictor
from digitrec.model import Ensemble, build_model


def test_an_ensemble_returns_logits_of_its_members_mean_probabilities():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="compact", width=8, members=3)).eval()
    assert isinstance(model, Ensemble) and len(model.members) == 3
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        mean = torch.stack([m(x).softmax(-1) for m in model.members]).mean(0)
        assert torch.allclose(model(x).softmax(-1), mean, atol=1e-6)
        # members differ, so the mean is not any one of them
        assert not torch.allclose(model.members[0](x).softmax(-1), mean, atol=1e-3)


def test_an_ensemble_needs_a_member():
    with pytest.raises(ConfigError, match="at least one member"):
        build_model(ModelConfig(members=0))


def test_an_ensemble_is_refused_under_torchrun(monkeypatch, tmp_path):
    # members are trained one after another in one process; torchrun would train each on
    # every rank with the data on one device, so it says how to do it instead
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="without torchrun"):
        fit_ensemble(preset("fast"), 2, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("ensemble")
    cfg = preset("fast", epochs=3, limit=2000, seed=3)
    return fit_ensemble(cfg, 2, out, data_dir=mnist_dir, progress=False, command="test")


def test_ensemble_training_writes_members_and_one_model(ensemble_run):
    path, card = ensemble_run
    assert card["model"]["members"] == 2 and card["model"]["arch"] == "quick"
    assert [m["seed"] for m in card["ensemble"]] == [3, 4]
    for member in card["ensemble"]:
        assert (path.parent / member["path"]).is_file()
    model, loaded = load_checkpoint(path)
    assert isinstance(model, Ensemble) and loaded == card
    # averaging probabilities reads at least about as well as its members do on average
    members = [m["test_accuracy"] for m in card["ensemble"]]
    assert card["metrics"]["test_accuracy"] >= sum(members) / len(members) - 0.005
    assert card["metrics"]["test_accuracy"] > 0.9
    assert 0 < card["calibration"]["threshold"] < 1


def test_an_ensemble_is_served_like_a_single_model(ensemble_run, tmp_path):
    path, card = ensemble_run
    onnx, diff = export_checkpoint(path, tmp_path / "ensemble.onnx")
    assert diff < 1e-4
    from_onnx, from_torch = Predictor(onnx, pairs=False), Predictor(path, pairs=False)
    x = np.zeros((2, 28, 28), np.float32)
    x[:, 6:22, 13:16] = 1.0  # a 1
    a, b = from_onnx.classify(x), from_torch.classify(x)
    assert np.allclose(a, b, atol=1e-4) and np.allclose(a.sum(1), 1, atol=1e-5)
    assert from_onnx.threshold == pytest.approx(card["calibration"]["threshold"])


def test_ensemble_resume_keeps_finished_members(ensemble_run, mnist_dir, tmp_path):
    path, card = ensemble_run
    run = shutil.copytree(path.parent, tmp_path / "run")  # the module's run stays as it is
    cfg = preset("fast", epochs=3, limit=2000, seed=3)
    member = run / card["ensemble"][0]["path"]
    before = member.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--resume"):
        fit_ensemble(cfg, 2, run, data_dir=mnist_dir, progress=False)
    _, again = fit_ensemble(cfg, 2, run, data_dir=mnist_dir, progress=False, resume=True)
    assert member.stat().st_mtime_ns == before
    assert again["metrics"]["test_accuracy"] == card["metrics"]["test_accuracy"]
