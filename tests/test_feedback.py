"""The feedback store: SQLite in WAL mode, one file, and its export to a folder dataset."""

from __future__ import annotations

import io
import json
import sqlite3
import threading

import pytest
from helpers import EXAMPLES, example_pictures, run_cli
from PIL import Image

from digitrec.data import list_folder_dataset
from digitrec.errors import BadImageError, ConfigError, DataError
from digitrec.feedback import FeedbackStore, default_db_path, export_feedback


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def store(tmp_path):
    with FeedbackStore(tmp_path / "fb.sqlite3") as s:
        yield s


def test_a_sample_is_stored_and_read_back(store):
    blob = (EXAMPLES / "1-canvas.png").read_bytes()
    sample_id = store.add(blob, 1, predicted=7, model="bundled")
    sample = store.get(sample_id)
    assert sample.label == 1 and sample.predicted == 7 and sample.model == "bundled"
    assert sample.png == blob  # PNG bytes are kept as they came
    with Image.open(io.BytesIO(sample.png)) as im:
        assert (sample.width, sample.height) == im.size
    assert store.count() == 1
    assert store.get(sample_id + 1) is None


def test_the_database_is_one_file_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "er" / "fb.sqlite3"
    with FeedbackStore(path) as s:
        s.add((EXAMPLES / "4-paper.png").read_bytes(), 4)
    assert path.is_file()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT label FROM feedback").fetchall() == [(4,)]
    db.close()


def test_other_formats_are_stored_as_png(store):
    jpeg = (EXAMPLES / "7-photo.jpg").read_bytes()
    sample = store.get(store.add(jpeg, 7))
    assert sample.png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(sample.png)) as im, Image.open(io.BytesIO(jpeg)) as original:
        assert im.format == "PNG" and im.size == original.size


@pytest.mark.parametrize(
    "label, predicted", [(10, None), (-1, None), ("3", None), (True, None), (3, 11)]
)
def test_labels_must_be_digits(store, label, predicted):
    with pytest.raises(ConfigError, match="digit from 0 to 9"):
        store.add((EXAMPLES / "1-canvas.png").read_bytes(), label, predicted)
    assert store.count() == 0


def test_unreadable_pictures_are_refused(store):
    with pytest.raises(BadImageError):
        store.add(b"\x89PNG\r\n\x1a\n not really", 3)
    with pytest.raises(BadImageError):
        store.add(b"plain text", 3)
    assert store.count() == 0


def test_threads_and_processes_can_share_it(tmp_path):
    """The server's threads share one store; its workers each open the same file."""
    path = tmp_path / "fb.sqlite3"
    blob = png_bytes(Image.new("L", (40, 40), 255))
    first, second = FeedbackStore(path), FeedbackStore(path)
    ids, errors = [], []

    def work(s, digit):
        try:
            for _ in range(10):
                ids.append(s.add(blob, digit))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(s, d)) for d in range(4) for s in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 80 and first.count() == second.count() == 80
    first.close()
    second.close()


def test_export_writes_a_folder_dataset_that_evaluate_reads(tmp_path):
    db = tmp_path / "fb.sqlite3"
    pictures = example_pictures()
    with FeedbackStore(db) as s:
        ids = [s.add(path.read_bytes(), digit) for path, digit in pictures]
    out = tmp_path / "dataset"
    assert export_feedback(db, out) == len(pictures)
    for sample_id, (_, digit) in zip(ids, pictures, strict=True):
        assert (out / str(digit) / f"{sample_id}.png").is_file()
    listed = list_folder_dataset(out)
    assert sorted(label for _, label in listed) == sorted(d for _, d in pictures)
    assert export_feedback(db, out) == len(pictures)  # again: the same files, brought up to date
    assert len(list(out.rglob("*.png"))) == len(pictures)

    # the CLI writes the same, and `evaluate --images` reads it
    cli_out = tmp_path / "cli"
    r = run_cli("feedback", "export", cli_out, "--db", db)
    assert r.returncode == 0, r.stderr
    assert f"wrote {len(pictures)} samples" in r.stdout
    r = run_cli("evaluate", "--images", cli_out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["n"] == len(pictures) and summary["accuracy"] == 1.0


def test_export_without_a_database_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no feedback database"):
        export_feedback(tmp_path / "missing.sqlite3", tmp_path / "out")
    r = run_cli("feedback", "export", tmp_path / "out", "--db", tmp_path / "missing.sqlite3")
    assert r.returncode == 2
    assert r.stderr.startswith("digitrec: error: no feedback database")
    assert not (tmp_path / "missing.sqlite3").exists()


def test_the_default_database_lives_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "digitrec" / "feedback.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local/share/digitrec/feedback.sqlite3"


def test_a_newer_schema_is_not_touched(tmp_path):
    path = tmp_path / "fb.sqlite3"
    FeedbackStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(DataError, match="newer digitrec"):
        FeedbackStore(path)
