"""Shared fixtures: the real MNIST folder, a tiny trained checkpoint (helpers.py has the rest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = Path(os.environ.get("DIGITREC_DATA") or ROOT.parent / "shared/data/mnist").resolve()
    if (
        not (folder / "t10k-images-idx3-ubyte.gz").exists()
        and not (folder / "t10k-images-idx3-ubyte").exists()
    ):
        pytest.fail(f"MNIST not found in {folder}: set DIGITREC_DATA to the folder holding it")
    return folder


@pytest.fixture(scope="session")
def unipen_file() -> Path:
    """UNIPEN's pen digits (../shared/data/realworld/unipen, or $DIGITREC_UNIPEN)."""
    given = os.environ.get("DIGITREC_UNIPEN")
    path = Path(given) if given else ROOT.parent / "shared/data/realworld/unipen"
    if path.is_dir():
        path = path / "unipen_digits.jsonl.gz"
    if not path.is_file():
        pytest.fail(f"UNIPEN digits not found at {path}: set DIGITREC_UNIPEN to the file")
    return path.resolve()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist_dir) -> tuple[Path, dict]:
    """A small model trained for real on 4,000 MNIST images (a few seconds on 2 cores)."""
    from digitrec.training.config import preset
    from digitrec.training.fit import fit

    out = tmp_path_factory.mktemp("tiny")
    cfg = preset("fast", epochs=3, limit=4000, seed=1)
    return fit(cfg, out, data_dir=mnist_dir, progress=False, command="test")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    from digitrec.training.export import export_checkpoint

    out = tmp_path_factory.mktemp("tiny-onnx") / "tiny.onnx"
    return export_checkpoint(tiny_run[0], out)[0]
