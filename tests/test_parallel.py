"""Reading a batch of pictures in several processes (reading/parallel.py): the same readings
as one process, bit for bit, whatever goes wrong where."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from digitrec.data import load_mnist
from digitrec.errors import BadImageError, ConfigError
from digitrec.reading import parallel
from digitrec.reading.parallel import CHUNK, read_many
from digitrec.reading.predictor import Predictor
from digitrec.reading.preprocess import to_mnist_many

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def pictures(mnist_dir) -> list:
    """Five chunks' worth of every kind a batch may hold: MNIST digits as arrays, example
    files as paths and as bytes, blank pictures and bytes that are no picture."""
    digits = list(load_mnist("test", mnist_dir, progress=False).images[: 4 * CHUNK])
    files = sorted(EXAMPLES.glob("*.*"))
    mixed = digits + files + [f.read_bytes() for f in files]
    mixed[7] = np.zeros((28, 28), np.uint8)  # blank
    mixed[CHUNK + 3] = b"not a picture"
    mixed[3 * CHUNK + 1] = np.full((40, 40), 255, np.uint8)  # blank, white
    return mixed


def _same(a, b) -> None:
    assert a.inputs.dtype == b.inputs.dtype == np.float32
    assert np.array_equal(a.inputs, b.inputs)
    assert a.kept == b.kept
    assert [(o.index, o.reason, o.message) for o in a.left_out] == [
        (o.index, o.reason, o.message) for o in b.left_out
    ]


def test_several_processes_read_what_one_does(pictures):
    alone = to_mnist_many(pictures)
    told = []
    shared = read_many(pictures, readers=3, progress=told.append)
    _same(shared, alone)
    assert [o.index for o in shared.left_out] == [7, CHUNK + 3, 3 * CHUNK + 1]
    assert sum(told) == len(pictures)
    # and again, with the reading processes the first batch started
    _same(read_many(pictures, readers=3), alone)


def test_the_first_unreadable_picture_in_order_is_the_one_raised(pictures, tmp_path):
    batch = list(pictures)
    batch[CHUNK + 3] = pictures[0]  # the bytes that are no picture, replaced by a digit
    batch[CHUNK + 5] = tmp_path / "first-missing.png"
    batch[3 * CHUNK] = tmp_path / "second-missing.png"
    with pytest.raises(BadImageError) as alone:
        to_mnist_many(batch, raise_unreadable=True)
    with pytest.raises(BadImageError) as shared:
        read_many(batch, readers=2, raise_unreadable=True)
    assert str(shared.value) == str(alone.value)
    assert "first-missing.png" in str(shared.value)


def test_a_reading_process_that_died_has_its_chunk_read_here(pictures):
    read_many(pictures, readers=2)  # leaves an idle reading process in the pool
    idle = list(parallel._POOL.idle)
    assert idle
    for worker in idle:
        worker.process.kill()
        worker.process.wait()
    _same(read_many(pictures, readers=2), to_mnist_many(pictures))
    assert not any(w in parallel._POOL.idle for w in idle)


def test_a_reading_process_that_dies_in_a_batch_has_its_chunk_read_here(pictures, monkeypatch):
    read = parallel._Worker.read
    sent = []

    def dies_on_its_second_chunk(worker, chunk, raise_unreadable):
        sent.append(worker)
        if len(sent) == 2:
            worker.process.kill()
            worker.process.wait()
        return read(worker, chunk, raise_unreadable)

    monkeypatch.setattr(parallel._Worker, "read", dies_on_its_second_chunk)
    _same(read_many(pictures, readers=2), to_mnist_many(pictures))
    assert len(sent) == 2  # it was not sent another chunk
    assert sent[0] not in parallel._POOL.idle


def test_readers_is_checked(monkeypatch, tiny_onnx):
    with pytest.raises(ConfigError, match="readers"):
        Predictor(tiny_onnx, readers=0)
    monkeypatch.setenv(parallel.ENV, "many")
    with pytest.raises(ConfigError, match="DIGITREC_READERS"):
        Predictor(tiny_onnx)
    monkeypatch.setenv(parallel.ENV, "0")
    with pytest.raises(ConfigError, match="DIGITREC_READERS"):
        Predictor(tiny_onnx)
    monkeypatch.setenv(parallel.ENV, "1")
    assert Predictor(tiny_onnx).readers == 1
    monkeypatch.delenv(parallel.ENV)
    assert Predictor(tiny_onnx).readers == parallel.cores()


def test_a_script_without_a_main_guard_runs_once(tmp_path, tiny_onnx):
    # A multiprocessing child started by "spawn" would run such a script again; a reading
    # process is a plain interpreter that only imports the preprocessing.
    script = tmp_path / "read_all.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from digitrec import Predictor
            files = sorted(Path({str(EXAMPLES)!r}).glob("*.*")) * 10
            readings = Predictor({str(tiny_onnx)!r}, readers=2).predict_many(files)
            print("read", len(readings))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["read 100", ""]
