"""The training notebook runs end to end with its short defaults, and is stored clean."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "digit_recognition_cnn.ipynb"
# Its defaults take well under two minutes on two CPU cores; this catches defaults that train
# for real (many minutes), with room left for a machine shared with other jobs.
TIME_LIMIT_S = 240


def cells_tagged(nb, tag: str) -> list:
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert found, f"no cell tagged {tag!r}"
    return found


def figures(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def text_of(cell) -> str:
    return "".join(
        o.get("text", "")
        if o["output_type"] == "stream"
        else o.get("data", {}).get("text/plain", "")
        for o in cell.get("outputs", [])
    )


def venv_kernel() -> KernelManager:
    """The python3 kernel that ipykernel provides, run by this interpreter (the venv's): no
    kernel spec from the user's or the system's Jupyter folders is looked at."""
    return KernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )


def test_notebook_runs_end_to_end(tmp_path, monkeypatch, mnist_dir):
    # laid out like the repository: the notebook's folder beside examples/
    work = tmp_path / "notebooks"
    work.mkdir()
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.setenv("DIGITREC_DATA", str(mnist_dir))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("DIGITREC_MODEL", raising=False)  # the bundled model, as documented

    nb = nbformat.read(NOTEBOOK, as_version=4)
    km = venv_kernel()
    client = NotebookClient(
        nb, km=km, timeout=600, allow_errors=False, resources={"metadata": {"path": str(work)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first cell that raises
    seconds = time.perf_counter() - start
    assert km.kernel_spec.argv[0] == sys.executable

    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.source
    assert seconds < TIME_LIMIT_S, f"the notebook took {seconds:.0f} s"

    # every figure the story promises was drawn
    for tag in ("data-grid", "class-counts", "curves", "confusion", "errors", "pipeline", "reads"):
        assert figures(cells_tagged(nb, tag)[0]) >= 1, f"no figure from the {tag!r} cell"
    assert figures(cells_tagged(nb, "examples")[0]) >= 1

    (train_cell,) = cells_tagged(nb, "train")
    assert "validation accuracy" in text_of(train_cell)
    run = work / "runs" / "notebook"
    for name in ("model.safetensors", "model.json", "log.csv", "curves.png"):
        assert (run / name).is_file(), name
    for name in ("confusion.png", "errors.png", "summary.json"):
        assert (run / "report" / name).is_file(), name

    (accuracy_cell,) = cells_tagged(nb, "accuracy")
    found = re.search(r"test accuracy: (\d+\.\d+)%", text_of(accuracy_cell))
    assert found, text_of(accuracy_cell)
    # 3 epochs on 2,000 images reach about 96%; far below means training did not work
    assert 90.0 <= float(found.group(1)) <= 100.0

    (pipeline_cell,) = cells_tagged(nb, "pipeline")
    assert "the steps give what to_mnist gives: True" in text_of(pipeline_cell)
    (reads_cell,) = cells_tagged(nb, "reads")
    assert "the model reads the MNIST form above: True" in text_of(reads_cell)

    (export_cell,) = cells_tagged(nb, "export")
    export_text = text_of(export_cell)
    assert (run / "model.onnx").is_file()
    scores = dict(re.findall(r"test accuracy, ([\w ]+?): +(\d+\.\d+)%", export_text))
    assert set(scores) == {
        "checkpoint with PyTorch",
        "exported with ONNX Runtime",
        "bundled model",
    }, export_text
    assert scores["exported with ONNX Runtime"] == scores["checkpoint with PyTorch"]
    assert float(scores["bundled model"]) >= 99.0

    (examples_cell,) = cells_tagged(nb, "examples")
    read_lines = [line for line in text_of(examples_cell).splitlines() if " bundled " in line]
    assert len(read_lines) == 10, text_of(examples_cell)
    # the bundled model reads every sample picture, and reads it right
    for line in read_lines:
        name, bundled = line.split()[0], line.split(" bundled ")[1]
        assert bundled.split()[0] == name[0], line


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], cell.source[:80]
        assert cell.execution_count is None, cell.source[:80]
    assert nb.metadata.kernelspec.name == "python3"
    # the notebook calls the library rather than carrying a copy of it
    sources = "\n".join(c.source for c in code)
    for call in ("load_mnist(", "fit(", "evaluate_mnist(", "Predictor(", "export_checkpoint("):
        assert call in sources, call
