import hashlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import run_cli

from digitrec import load_predictor
from digitrec.errors import ConfigError, ModelError, OutputExistsError
from digitrec.reading.predictor import Predictor
from digitrec.training.checkpoint import load_checkpoint, save_checkpoint
from digitrec.training.config import ModelConfig, preset
from digitrec.training.ensemble import combine_models, fit_ensemble
from digitrec.training.export import export_checkpoint
from digitrec.training.fit import fit
from digitrec.training.nets import Ensemble, build_model


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
    from_onnx, from_torch = Predictor(onnx, pairs=False), load_predictor(path, pairs=False)
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


@pytest.fixture(scope="module")
def compact_run(tmp_path_factory, mnist_dir):
    """A net of another architecture than the ensemble run's, for combining."""
    cfg = replace(
        preset("fast", epochs=2, limit=2000, seed=5), model=ModelConfig("compact", 8, 32, 0.1)
    )
    out = tmp_path_factory.mktemp("compact")
    return fit(cfg, out, data_dir=mnist_dir, progress=False, command="test")


def test_combine_joins_nets_of_different_architectures(ensemble_run, compact_run, tmp_path):
    (run, run_card), (single, single_card) = ensemble_run, compact_run
    out = tmp_path / "joined.safetensors"
    path, card = combine_models([run, single], out, progress=False, command="test")
    # the 2-member ensemble brings its two nets: three nets, each weighing a third
    assert card["model"]["arch"] == "ensemble"
    assert [p["arch"] for p in card["model"]["parts"]] == ["quick", "quick", "compact"]
    assert [e["members"] for e in card["ensemble"]] == [2, 1]
    assert card["ensemble"][1]["sha256"] == hashlib.sha256(single.read_bytes()).hexdigest()
    assert card["ensemble"][0]["test_accuracy"] == run_card["metrics"]["test_accuracy"]
    assert 0 < card["calibration"]["threshold"] < 1 and "epochs" not in card["metrics"]
    model, loaded = load_checkpoint(path)
    assert loaded == card
    nets = [*load_checkpoint(run)[0].members, load_checkpoint(single)[0]]
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        mean = torch.stack([net(x).softmax(-1) for net in nets]).mean(0)
        assert torch.allclose(model(x).softmax(-1), mean, atol=1e-6)
    onnx, diff = export_checkpoint(path, tmp_path / "joined.onnx")
    assert diff < 1e-4
    assert Predictor(onnx, pairs=False).threshold == pytest.approx(card["calibration"]["threshold"])
    # a combined ensemble (no recipe of its own) given again brings its three nets
    _, nested = combine_models([path, single], tmp_path / "nested.safetensors", progress=False)
    assert [p["arch"] for p in nested["model"]["parts"]] == ["quick", "quick", "compact", "compact"]
    assert [e["members"] for e in nested["ensemble"]] == [3, 1]
    assert (
        nested["calibration"]
        and nested["parameters"] == card["parameters"] + (single_card["parameters"])
    )
    # nets of one architecture and size stay a plain `members` ensemble
    _, same = combine_models([run, run], tmp_path / "twice.safetensors", progress=False)
    assert same["model"]["arch"] == "quick" and same["model"]["members"] == 4


def test_combine_refuses_what_it_cannot_join(compact_run, tiny_onnx, tmp_path):
    single, _ = compact_run
    with pytest.raises(ConfigError, match="at least 2 models"):
        combine_models([single], tmp_path / "a.safetensors", progress=False)
    with pytest.raises(ConfigError, match=r"\.safetensors"):
        combine_models([single, single], tmp_path / "a.onnx", progress=False)
    existing = tmp_path / "b.safetensors"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="--force"):
        combine_models([single, single], existing, progress=False)
    assert existing.read_bytes() == b"mine"
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(tiny_onnx.read_bytes())
    with pytest.raises(ModelError, match="no PyTorch weights"):
        combine_models([single, lone], tmp_path / "c.safetensors", progress=False)
    model, card = load_checkpoint(single)
    del card["calibration"]  # as while it trains
    training = save_checkpoint(tmp_path / "training.safetensors", model, card)
    with pytest.raises(ModelError, match="not a finished digit reader"):
        combine_models([single, training], tmp_path / "d.safetensors", progress=False)
    assert not (tmp_path / "c.safetensors").exists() and not (tmp_path / "d.safetensors").exists()


def test_combine_command_writes_a_model_the_folder_lists(
    ensemble_run, compact_run, tmp_path, mnist_dir
):
    env = {"DIGITREC_MODELS": str(tmp_path / "models"), "DIGITREC_DATA": str(mnist_dir)}
    args = ["combine", ensemble_run[0], compact_run[0], "--name", "both", "--quiet"]
    done = run_cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert "ensemble of 3 nets: MNIST test" in done.stdout
    assert (tmp_path / "models" / "both.onnx").is_file()
    info = run_cli("info", "--model", "both", env=env)
    assert info.returncode == 0, info.stderr
    assert "arch       ensemble: quick x 2, compact (" in info.stdout
    assert f"averages {ensemble_run[0].parent.name} (quick x 2), " in info.stdout
    # --out DIR/model.safetensors is called DIR, as a training run's folder is
    out = tmp_path / "mine" / "model.safetensors"
    out.parent.mkdir()  # combine makes no folder (a mistyped one would swallow the model)
    named = run_cli(*args[:3], "--out", out, "--quiet", env=env)
    assert named.returncode == 0, named.stderr
    assert json.loads(out.with_suffix(".json").read_text())["name"] == "mine"
    again = run_cli(*args, env=env)
    assert again.returncode == 2 and "--force" in again.stderr
