import hashlib
import json

import numpy as np
import pytest
from helpers import EXAMPLES, run_cli
from PIL import Image

from digitrec.data import load_mnist
from digitrec.errors import ConfigError, DataError, ModelError, OutputExistsError
from digitrec.feedback import FeedbackStore
from digitrec.reading.predictor import Predictor
from digitrec.training.checkpoint import load_checkpoint
from digitrec.training.finetune import (
    FinetuneConfig,
    feedback_source,
    finetune,
    folder_source,
    stratified_split,
)

QUICK = FinetuneConfig(epochs=12, holdout=0.3, seed=1)


def new_hand(folder, mnist_dir, per_digit: int = 30, angle: float = 40.0):
    """A 'new writer': MNIST test digits leaning `angle` degrees, drawn large and dark on
    light paper - a slant the small test model never saw."""
    test = load_mnist("test", mnist_dir, progress=False)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        picks = np.flatnonzero(test.labels == digit)[:per_digit]
        for n, i in enumerate(picks):
            picture = Image.fromarray(255 - test.images[i]).resize((84, 84), Image.BICUBIC)
            picture.rotate(angle, fillcolor=255).save(folder / str(digit) / f"{n}.png")
    return folder


@pytest.fixture(scope="module")
def hand(tmp_path_factory, mnist_dir):
    return new_hand(tmp_path_factory.mktemp("hand"), mnist_dir)


def test_stratified_split_holds_out_a_share_of_every_digit():
    y = np.repeat(np.arange(10), 20)
    y = np.append(y, 9)  # one more 9
    train, held = stratified_split(y, 0.25, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == len(y)
    assert np.bincount(y[held], minlength=10).tolist() == [5] * 10
    assert np.array_equal(stratified_split(y, 0.25, 0)[1], held)  # repeatable
    assert len(stratified_split(np.array([3]), 0.5, 0)[1]) == 0  # a lone sample is learned


def test_folder_source_reads_every_picture_and_digests_its_content(hand, tmp_path):
    source = folder_source(hand)
    assert source.x.shape == (300, 28, 28) and np.bincount(source.y).tolist() == [30] * 10
    assert folder_source(hand).sha256 == source.sha256
    # one picture changed: another digest; a blank one is named and left out, not guessed
    copy = tmp_path / "copy"
    for digit in range(10):
        (copy / str(digit)).mkdir(parents=True)
        for p in (hand / str(digit)).iterdir():
            (copy / str(digit) / p.name).write_bytes(p.read_bytes())
    Image.new("L", (40, 40), 255).save(copy / "3" / "0.png")
    changed = folder_source(copy)
    assert changed.sha256 != source.sha256
    assert len(changed.y) == 299 and "3/0.png" in changed.skipped[0]


def test_finetuning_learns_a_new_hand_without_forgetting_mnist(hand, tiny_run, tmp_path, mnist_dir):
    parent, parent_card = tiny_run
    out = tmp_path / "mine.safetensors"
    path, card = finetune(
        parent, [folder_source(hand)], out, QUICK, data_dir=mnist_dir, progress=False
    )
    m = card["metrics"]
    assert m["heldout_n"] == 90
    assert m["heldout_accuracy"] >= m["heldout_accuracy_before"] + 0.1, m
    assert m["test_accuracy"] >= m["test_accuracy_before"] - 0.02, m
    # the lineage: the parent by name and by the SHA-256 of its weights; every data source
    assert card["parent"]["name"] == parent_card["name"]
    assert card["parent"]["sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    [source] = card["data"]["sources"]
    assert source["kind"] == "folder" and source["samples"] == 300
    assert source["sha256"] == folder_source(hand).sha256
    assert card["data"]["sha256"] == parent_card["data"]["sha256"]  # MNIST's files
    model, loaded = load_checkpoint(path)
    assert loaded == card and 0 < card["calibration"]["threshold"] < 1


def test_feedback_is_a_source_too(tmp_path, hand, mnist_dir):
    db = tmp_path / "feedback.sqlite3"
    with FeedbackStore(db) as store:
        for digit in (1, 7):
            for p in sorted((hand / str(digit)).iterdir())[:3]:
                store.add(p.read_bytes(), digit, predicted=None)
    source = feedback_source(db)
    assert source.kind == "feedback" and sorted(source.y.tolist()) == [1, 1, 1, 7, 7, 7]
    with FeedbackStore(tmp_path / "empty.sqlite3"):
        pass
    with pytest.raises(DataError, match="no samples"):
        feedback_source(tmp_path / "empty.sqlite3")
    with pytest.raises(DataError, match="no feedback database"):
        feedback_source(tmp_path / "missing.sqlite3")


def test_bad_requests_are_refused_clearly(tiny_run, tiny_onnx, hand, tmp_path):
    parent, _ = tiny_run
    source = folder_source(hand)
    with pytest.raises(ConfigError, match="nothing to fine-tune"):
        finetune(parent, [], tmp_path / "a.safetensors")
    with pytest.raises(ConfigError, match=r"\.safetensors"):
        finetune(parent, [source], tmp_path / "a.onnx")
    existing = tmp_path / "b.safetensors"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="--force"):
        finetune(parent, [source], existing)
    assert existing.read_bytes() == b"mine"
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(tiny_onnx.read_bytes())
    with pytest.raises(ModelError, match="no PyTorch weights"):
        finetune(lone, [source], tmp_path / "c.safetensors")


def test_finetune_command_writes_a_model_the_folder_lists(hand, tiny_run, tmp_path, mnist_dir):
    parent, parent_card = tiny_run
    env = {"DIGITREC_MODELS": str(tmp_path / "models"), "DIGITREC_DATA": str(mnist_dir)}
    args = ["finetune", "--from", parent, "--data", hand, "--name", "mine", "--epochs", "4"]
    done = run_cli(*args, "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert "held-out new samples:" in done.stdout and "MNIST test:" in done.stdout
    assert (tmp_path / "models" / "mine.onnx").is_file()
    listed = run_cli("models", "list", "--json", env=env)
    [mine] = [m for m in json.loads(listed.stdout)["models"] if m["name"] == "mine"]
    assert mine["parent"] == parent_card["name"]
    read = run_cli("predict", "--model", "mine", EXAMPLES / "7-photo.jpg", "--json", env=env)
    assert read.returncode in (0, 1), read.stderr
    # --model mine read with the new model (not the bundled one or its parent)
    mine_reads = Predictor(tmp_path / "models" / "mine.onnx").predict(EXAMPLES / "7-photo.jpg")
    assert json.loads(read.stdout)["probabilities"] == pytest.approx(
        mine_reads.probabilities.tolist(), abs=1e-6
    )
    # a name that is a path or the bundled model's is refused before any work
    for bad in ("../elsewhere", "bundled", "x.onnx"):
        refused = run_cli(*args[:-4], "--name", bad, "--quiet", env=env)
        assert refused.returncode == 2 and "plain name" in refused.stderr, bad
    # the same name again is refused without --force, and nothing is lost
    again = run_cli(*args, "--quiet", env=env)
    assert again.returncode == 2 and "--force" in again.stderr
    nothing = run_cli("finetune", "--from", parent, env=env)
    assert nothing.returncode == 2 and "nothing to fine-tune on" in nothing.stderr
