import csv
import json

import numpy as np
import pytest
import torch

from digitrec.data import MNIST_FILES
from digitrec.errors import DigitrecError, ModelError, OutputExistsError
from digitrec.training import fit as train_module
from digitrec.training.checkpoint import load_checkpoint
from digitrec.training.config import preset
from digitrec.training.fit import fit, resume_config


def test_short_training_run_learns(tiny_run):
    path, card = tiny_run
    m = card["metrics"]
    assert m["epochs"] == 3
    assert m["val_accuracy"] > 0.90, m  # held-back training images
    assert m["test_accuracy"] > 0.90, m
    assert m["test_n"] == 10000


def test_run_writes_log_curves_and_a_complete_card(tiny_run):
    path, card = tiny_run
    rows = list(csv.DictReader((path.parent / "log.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    assert (path.parent / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk == card
    assert card["format"] == "digitrec-model/1"
    assert card["model"]["arch"] == "quick" and card["train"]["preset"] == "fast"
    assert card["data"]["sha256"] == MNIST_FILES
    assert card["seed"] == 1 and card["command"] == "test" and card["version"]
    assert card["date"].startswith("20") and card["interrupted"] is False


def test_checkpoint_round_trip_gives_the_same_logits(tiny_run):
    path, card = tiny_run
    model, loaded_card = load_checkpoint(path)
    again, _ = load_checkpoint(path.with_suffix(".json"))
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert loaded_card == card
    assert b"pickle" not in path.read_bytes()[:200]


def test_checkpoint_files_are_not_pickles(tiny_run):
    path, _ = tiny_run
    head = path.read_bytes()[:2]
    assert head != b"\x80\x04" and head != b"PK"  # neither pickle protocol nor torch zip


def test_existing_checkpoint_is_not_overwritten_without_force(tiny_run, mnist_dir):
    path, _ = tiny_run
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="--force"):
        fit(preset("fast", epochs=1, limit=256), path.parent, data_dir=mnist_dir, progress=False)
    assert path.read_bytes() == before


def test_resume_repeats_an_uninterrupted_run(tmp_path, mnist_dir):
    cfg = preset("fast", epochs=2, limit=512, seed=5)
    whole, _ = fit(cfg, tmp_path / "whole", data_dir=mnist_dir, progress=False)
    half_cfg = preset("fast", epochs=2, limit=512, seed=5)
    calls = {"n": 0}
    original = train_module._train_epoch

    def stop_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    train_module._train_epoch = stop_in_second_epoch
    try:
        path, card = fit(half_cfg, tmp_path / "half", data_dir=mnist_dir, progress=False)
    finally:
        train_module._train_epoch = original
    assert card["interrupted"] is True and card["metrics"]["epochs"] == 1
    assert "test_accuracy" in card["metrics"]

    cfg2 = resume_config(tmp_path / "half")
    assert cfg2 == half_cfg
    path, card = fit(cfg2, tmp_path / "half", data_dir=mnist_dir, resume=True, progress=False)
    assert card["metrics"]["epochs"] == 2 and card["interrupted"] is False
    a, _ = load_checkpoint(whole)
    b, _ = load_checkpoint(path)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), name


def test_interrupt_before_first_epoch_saves_nothing(tmp_path, mnist_dir, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_train_epoch", boom)
    with pytest.raises(DigitrecError, match="before the first epoch"):
        fit(preset("fast", epochs=1, limit=256), tmp_path / "x", data_dir=mnist_dir, progress=False)
    assert not (tmp_path / "x" / "model.safetensors").exists()


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path, mnist_dir):
    with pytest.raises(DigitrecError, match="nothing to resume"):
        fit(preset("fast"), tmp_path, data_dir=mnist_dir, resume=True, progress=False)


def test_not_a_checkpoint_is_refused(tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a digitrec model"):
        load_checkpoint(bogus)


def test_validation_split_is_fixed_and_disjoint():
    a_train, a_val = train_module.split_indices(60000, 5000)
    b_train, b_val = train_module.split_indices(60000, 5000)
    assert np.array_equal(a_val, b_val) and len(a_val) == 5000
    assert not set(a_val) & set(a_train) and len(a_train) + len(a_val) == 60000


def test_learning_rate_schedule_warms_up_and_decays():
    cfg = preset("best")
    lrs = [train_module.lr_at(cfg, s, 1000) for s in range(1000)]
    peak = int(np.argmax(lrs))
    assert 100 <= peak <= 200 and max(lrs) == pytest.approx(cfg.lr, rel=0.02)
    assert lrs[0] < 0.1 * cfg.lr and lrs[-1] < 0.01 * cfg.lr
    assert train_module.lr_at(preset("seed"), 500, 1000) == preset("seed").lr


def test_distill_loss_is_nothing_on_the_teachers_own_answers_and_pulls_towards_them():
    from digitrec.training.measure import distill_loss

    taught = torch.tensor([[4.0, 1.0, -2.0, 0.5, 0, 0, 0, 0, 0, 0]])
    assert distill_loss(taught.clone(), taught, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(1, 10, requires_grad=True)
    loss = distill_loss(student, taught, 2.0)
    assert loss.item() > 0.1
    loss.backward()
    # a step against the gradient raises the teacher's favourite most, its least liked least
    step = -student.grad[0]
    assert step.argmax().item() == 0 and step.argmin().item() == 2


def _teacher_that_always_says(digit: int, run, out):
    """The tiny run's net made to answer `digit` whatever it is shown, saved with its card."""
    from digitrec.training.checkpoint import save_checkpoint

    model, card = load_checkpoint(run[0])
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[digit] = 8.0
    return save_checkpoint(out, model, card)


def test_a_net_learns_what_its_teacher_says_and_its_card_names_the_teacher(
    tiny_run, tmp_path, mnist_dir
):
    from digitrec.reading.cards import summary
    from digitrec.training.checkpoint import file_sha256

    (tmp_path / "teacher").mkdir()
    teacher = _teacher_that_always_says(3, tiny_run, tmp_path / "teacher" / "model.safetensors")
    cards = {}
    teachings = {"labels": {}, "teacher": {"teacher": str(teacher), "distill": 1.0}}
    for name, teaching in teachings.items():
        recipe = preset("fast", epochs=2, limit=1024, seed=3, **teaching)
        cards[name] = fit(recipe, tmp_path / f"by-{name}", data_dir=mnist_dir, progress=False)[1]
    assert cards["teacher"]["teacher"] == {
        "file": "model.safetensors",
        "sha256": file_sha256(teacher),
    }
    assert "teacher" not in cards["labels"]
    assert "teacher    model.safetensors (SHA-256" in summary(cards["teacher"])  # digitrec info
    assert "teacher" not in summary(cards["labels"])
    # taught by the labels, the net reads digits; taught by a teacher that answers 3 to
    # everything, it answers 3 (a tenth of MNIST's test digits are 3s)
    assert cards["labels"]["metrics"]["test_accuracy"] > 0.6
    assert cards["teacher"]["metrics"]["test_accuracy"] < 0.2


def test_the_pair_reader_has_no_teacher(tiny_run, tmp_path, mnist_dir):
    from digitrec.errors import ConfigError

    recipe = preset("pairs", epochs=1, limit=256, teacher=str(tiny_run[0]))
    with pytest.raises(ConfigError, match="pair reader"):
        fit(recipe, tmp_path / "pairs", data_dir=mnist_dir, progress=False)
