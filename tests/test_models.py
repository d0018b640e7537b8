"""The models folder: listing, damaged and foreign files, names in --model everywhere."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES, run_cli

from digitrec.errors import ModelError
from digitrec.reading.predictor import Predictor, bundled_model_path, resolve_model_path
from digitrec.reading.registry import (
    find_model,
    list_models,
    models_dir,
    onnx_metadata,
    resolve,
    served_name,
)

SHA = "ab" * 32


def add_model(
    folder: Path, name: str, onnx: Path, parent: str | None = None, **metrics
) -> tuple[Path, dict]:
    """A copy of `onnx` kept as NAME in the folder, with a card as a fine-tune writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(onnx.with_suffix(".json").read_text())
    card["name"] = name
    card["metrics"] = {**card["metrics"], **metrics}
    if parent:
        card["parent"] = {"name": parent, "path": str(onnx), "sha256": SHA}
        card["data"] = {
            "sources": [{"kind": "folder", "path": "/data/mine", "sha256": SHA, "samples": 500}]
        }
    path = folder / f"{name}.onnx"
    shutil.copyfile(onnx, path)
    path.with_suffix(".json").write_text(json.dumps(card))
    return path, card


@pytest.fixture
def folder(tmp_path, tiny_onnx, monkeypatch) -> Path:
    """A models folder with a plain model and a fine-tuned child of it, set as the folder."""
    models = tmp_path / "models"
    add_model(models, "tiny", tiny_onnx)
    add_model(
        models,
        "tiny-ft",
        tiny_onnx,
        parent="tiny",
        heldout_accuracy=0.875,
        heldout_accuracy_before=0.5,
        heldout_n=40,
    )
    monkeypatch.setenv("DIGITREC_MODELS", str(models))
    monkeypatch.delenv("DIGITREC_MODEL", raising=False)
    return models


def test_the_folder_is_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITREC_MODELS", str(tmp_path / "mine"))
    assert models_dir() == tmp_path / "mine"
    monkeypatch.delenv("DIGITREC_MODELS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert models_dir() == tmp_path / "xdg" / "digitrec" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models_dir() == tmp_path / "home" / ".local" / "share" / "digitrec" / "models"


def test_listing_gives_the_bundled_model_first_then_each_with_its_card(folder, tiny_onnx):
    entries = list_models()
    assert [e.name for e in entries] == ["bundled", "tiny", "tiny-ft"]
    assert all(e.problem is None for e in entries), [e.problem for e in entries]
    bundled, tiny, child = entries
    assert bundled.bundled and bundled.path == bundled_model_path()
    assert bundled.formats == ["onnx", "safetensors"] and bundled.parent is None
    assert bundled.accuracies["test_accuracy"] > 0.99
    tiny_card = json.loads(tiny_onnx.with_suffix(".json").read_text())
    assert tiny.path == folder / "tiny.onnx" and tiny.formats == ["onnx"]
    assert tiny.date == tiny_card["date"] and tiny.parent is None
    assert tiny.accuracies["test_accuracy"] == tiny_card["metrics"]["test_accuracy"]
    assert child.parent == "tiny"
    assert child.accuracies["heldout_accuracy"] == 0.875
    assert (
        child.accuracies["heldout_accuracy_before"] == 0.5 and "heldout_n" not in child.accuracies
    )
    assert list(child.accuracies)[0] == "test_accuracy"
    assert child.to_dict()["parent"] == "tiny"


def test_a_checkpoint_beside_its_export_is_one_model_in_two_formats(folder, tiny_run):
    shutil.copyfile(tiny_run[0], folder / "tiny.safetensors")
    shutil.copyfile(tiny_run[0], folder / "torch-only.safetensors")
    (folder / "torch-only.json").write_text(tiny_run[0].with_suffix(".json").read_text())
    entries = {e.name: e for e in list_models()}
    assert entries["tiny"].formats == ["onnx", "safetensors"] and entries["tiny"].problem is None
    assert entries["tiny"].path.suffix == ".onnx"  # ONNX is served: it needs no torch
    assert entries["torch-only"].formats == ["safetensors"]
    assert entries["torch-only"].problem is None
    assert find_model("torch-only") == folder / "torch-only.safetensors"


def test_damaged_and_foreign_files_are_listed_as_such(folder, tiny_onnx, tiny_run):
    blob = tiny_onnx.read_bytes()
    (folder / "cut.onnx").write_bytes(blob[: len(blob) // 2])
    (folder / "cut.json").write_text(tiny_onnx.with_suffix(".json").read_text())
    (folder / "badcard.onnx").write_bytes(blob)
    (folder / "badcard.json").write_text('{"format": "digitrec-model/1", ')
    weights = tiny_run[0].read_bytes()
    (folder / "short.safetensors").write_bytes(weights[:-100])
    (folder / "short.json").write_text(tiny_run[0].with_suffix(".json").read_text())
    (folder / "orphan.json").write_text(tiny_onnx.with_suffix(".json").read_text())
    (folder / "notes.txt").write_text("to do: train a better one")
    (folder / "garbage.onnx").write_bytes(b"\x08\x07 definitely not onnx")
    (folder / "old-runs").mkdir()
    (folder / ".tiny.onnx.x.part").write_bytes(blob[:10])  # a write in progress: not listed
    entries = {e.name: e for e in list_models()}
    assert set(entries) == {
        "bundled",
        "tiny",
        "tiny-ft",
        "cut",
        "badcard",
        "short",
        "orphan",
        "notes.txt",
        "garbage",
        "old-runs",
    }
    assert "damaged" in entries["cut"].problem and "ONNX" in entries["cut"].problem
    assert "card cannot be read" in entries["badcard"].problem
    assert "damaged" in entries["short"].problem and "safetensors" in entries["short"].problem
    assert "without its model file" in entries["orphan"].problem
    assert "not a model file" in entries["notes.txt"].problem
    assert "damaged" in entries["garbage"].problem
    assert "a folder" in entries["old-runs"].problem
    assert all(entries[n].problem is None for n in ("bundled", "tiny", "tiny-ft"))
    # and through the CLI: each on its line, no traceback
    r = run_cli("models", "list", env={"DIGITREC_MODELS": str(folder)})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:-1]}
    assert "damaged" in lines["cut"] and "card cannot be read" in lines["badcard"]
    assert "!" not in lines["tiny-ft"]


def test_the_onnx_header_walk_finds_the_embedded_card(tiny_onnx, tmp_path):
    from digitrec.reading.cards import CARD_KEY

    embedded = json.loads(onnx_metadata(tiny_onnx)[CARD_KEY])
    assert embedded["model"] == json.loads(tiny_onnx.with_suffix(".json").read_text())["model"]
    # a model copied without its card is still listed, from the card inside it
    lone = tmp_path / "models" / "lone.onnx"
    lone.parent.mkdir()
    shutil.copyfile(tiny_onnx, lone)
    (entry,) = list_models(lone.parent, bundled=False)
    assert entry.problem is None and entry.card["model"] == embedded["model"]


def test_names_resolve_everywhere_and_paths_still_work(folder, tiny_onnx, monkeypatch):
    assert resolve("tiny-ft") == folder / "tiny-ft.onnx"
    assert resolve("bundled") == bundled_model_path()
    assert resolve(str(tiny_onnx)) == tiny_onnx and resolve(tiny_onnx) == tiny_onnx
    assert resolve_model_path("tiny") == folder / "tiny.onnx"
    monkeypatch.setenv("DIGITREC_MODEL", "tiny-ft")
    predictor = Predictor()
    assert predictor.path == folder / "tiny-ft.onnx" and predictor.card["name"] == "tiny-ft"
    with pytest.raises(ModelError, match="does not exist"):
        resolve(str(folder / "missing.onnx"))


def test_a_training_run_folder_gives_its_model(tiny_run, tiny_onnx, tmp_path):
    run = tmp_path / "runs" / "fast"
    run.mkdir(parents=True)
    with pytest.raises(
        ModelError, match="folder with no model in it.*model.onnx or model.safetensors"
    ):
        resolve(run)
    shutil.copy(tiny_run[0], run / "model.safetensors")
    shutil.copy(tiny_run[0].with_suffix(".json"), run / "model.json")
    assert (
        resolve(run) == run / "model.safetensors" and resolve(str(run)) == run / "model.safetensors"
    )
    described = run_cli("info", "--model", run)
    assert described.returncode == 0, described.stderr
    assert f"file       {run / 'model.safetensors'}" in described.stdout
    shutil.copy(tiny_onnx, run / "model.onnx")  # the exported model is served first: no torch
    assert resolve(run) == run / "model.onnx"
    read = run_cli("predict", "--model", run, EXAMPLES / "7-photo.jpg", "--json")
    assert read.returncode in (0, 1), read.stderr  # 1: the tiny model may refuse it
    assert len(json.loads(read.stdout)["probabilities"]) == 10


def test_an_unknown_name_lists_the_names_there_are(folder, tiny_onnx):
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelError) as e:
        resolve("tiny-v2")
    message = str(e.value)
    assert "'tiny-v2'" in message and str(folder) in message
    assert "bundled, tiny, tiny-ft" in message and "notes" not in message


def test_a_model_in_the_folder_is_served_by_its_name_there(folder, tiny_onnx):
    card = json.loads((folder / "tiny.json").read_text())
    assert served_name(folder / "tiny.onnx", {**card, "name": "runs-fast"}) == "tiny"
    assert served_name(tiny_onnx, {**card, "name": "runs-fast"}) == "runs-fast"
    assert served_name(bundled_model_path(), {"name": "bundled"}) == "bundled"


def test_the_cli_lists_and_takes_names(folder):
    env = {"DIGITREC_MODELS": str(folder)}
    r = run_cli("models", "list", env=env)
    assert r.returncode == 0, r.stderr
    header, *rows, footer = r.stdout.strip().splitlines()
    assert header.split() == [
        "name",
        "parent",
        "date",
        "test",
        "heldout",
        "train",
        "val",
        "formats",
    ]
    assert [row.split()[0] for row in rows] == ["bundled", "tiny", "tiny-ft"]
    child = rows[2].split()
    assert child[1] == "tiny" and child[5] == "87.50%" and child[-1] == "onnx"
    assert rows[0].split()[1] == "-" and rows[0].split()[-1] == "onnx+safetensors"
    assert str(folder) in footer
    listing = json.loads(run_cli("models", "list", "--json", env=env).stdout)
    assert listing["folder"] == str(folder)
    assert [m["name"] for m in listing["models"]] == ["bundled", "tiny", "tiny-ft"]
    assert listing["models"][2]["accuracies"]["heldout_accuracy"] == 0.875
    assert listing["models"][2]["accuracies"]["heldout_accuracy_before"] == 0.5

    r = run_cli("info", "--model", "tiny-ft", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["parent"]["name"] == "tiny"
    r = run_cli(
        "predict", EXAMPLES / "7-photo.jpg", "--json", env={**env, "DIGITREC_MODEL": "tiny"}
    )
    assert r.returncode in (0, 1) and json.loads(r.stdout)["digit"] is not None, r.stderr
    r = run_cli("predict", EXAMPLES / "7-photo.jpg", "--model", "tiny-v2", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("digitrec: error: no model named 'tiny-v2'")
    assert "bundled, tiny, tiny-ft" in line
    r = run_cli("serve", "--model", "tiny-v2", "--db", folder / "fb.sqlite3", env=env)
    assert r.returncode == 2 and "no model named 'tiny-v2'" in r.stderr


def test_things_in_the_folder_that_are_not_files_are_named_never_opened(folder):
    os.mkfifo(folder / "pipe.onnx")  # opened, it would wait for a writer forever
    (folder / "loop.onnx").symlink_to(folder / "loop.onnx")
    (folder / "gone.onnx").symlink_to(folder / "elsewhere.onnx")
    entries = {e.name: e for e in list_models()}
    for name in ("pipe.onnx", "loop.onnx", "gone.onnx"):
        assert "not a model file" in entries[name].problem
    for name, fragment in [
        ("pipe", "pipe.onnx is a named pipe"),
        ("loop", "loop.onnx is a loop of symbolic links"),
        ("gone", "gone.onnx is a symbolic link to nothing"),
    ]:
        with pytest.raises(ModelError, match=fragment):
            resolve(name)
    listed = run_cli("models", "list", env={"DIGITREC_MODELS": str(folder)}, timeout=120)
    assert listed.returncode == 0 and "pipe.onnx" in listed.stdout, listed.stderr
