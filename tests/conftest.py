"""Shared fixtures: the real MNIST folder, a tiny trained checkpoint, the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


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
def tiny_run(tmp_path_factory, mnist_dir) -> tuple[Path, dict]:
    """A small model trained for real on 4,000 MNIST images (a few seconds on 2 cores)."""
    from digitrec.config import preset
    from digitrec.train import fit

    out = tmp_path_factory.mktemp("tiny")
    cfg = preset("fast", epochs=3, limit=4000, seed=1)
    return fit(cfg, out, data_dir=mnist_dir, progress=False, command="test")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    from digitrec.export import export_checkpoint

    out = tmp_path_factory.mktemp("tiny-onnx") / "tiny.onnx"
    return export_checkpoint(tiny_run[0], out)[0]


def example_pictures() -> list[tuple[Path, int]]:
    """The shipped sample pictures; each name starts with the digit drawn in it."""
    return [(p, int(p.name[0])) for p in sorted(EXAMPLES.iterdir()) if p.name[0].isdigit()]


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the installed `digitrec` console script, as a user would."""
    exe = Path(sys.executable).parent / "digitrec"
    return subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
