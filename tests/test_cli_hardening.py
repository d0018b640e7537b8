"""What a stranger's input does to the `digitrec` command: a bad setting, a damaged or
hostile model, a data file that decompresses without end, a reader that leaves early, a
path that is not a file. Each is one `digitrec: error:` line and status 2 (or, for a reader
that leaves, a quiet stop), never a traceback, a hang or memory beyond the input's size."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import onnx
import pytest
import torch
from helpers import example_pictures, run_cli
from test_cli import one_clear_error
from torch import nn

from digitrec.cli import READER_LEFT
from digitrec.reading.cards import CARD_FORMAT
from digitrec.reading.registry import bundled_path
from digitrec.training.checkpoint import save_checkpoint
from digitrec.training.config import ModelConfig
from digitrec.training.export import embed_card, export_model
from digitrec.training.nets import build_model

PICTURE = example_pictures()[0][0]
SMALL = ModelConfig("quick", width=4, hidden=8, dropout=0.0)


def checkpoint(folder: Path, name: str = "small", **model) -> Path:
    """A real checkpoint of a small net (untrained: these tests never read its answers),
    whose card's model settings are changed by `model`."""
    path = folder / f"{name}.safetensors"
    card = {"name": name, "model": {**asdict(SMALL), **model}}
    return save_checkpoint(path, build_model(SMALL), card)


# ---------------------------------------------------------------- --threshold


@pytest.mark.parametrize("value", ["nan", "2", "-1", "inf", "1.01"])
@pytest.mark.parametrize("command", [["predict", str(PICTURE)], ["draw"]])
def test_a_threshold_is_a_number_from_0_to_1(command, value):
    # draw too: the value is refused before any window (or display) is looked for
    one_clear_error(run_cli(*command, f"--threshold={value}"), "--threshold", "from 0 to 1")


def test_a_threshold_of_zero_refuses_nothing():
    # (1, the other end, is in test_cli: it refuses what the model is not certain of)
    result = run_cli("predict", PICTURE, "--json", "--threshold", "0")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["digit"] == 0 and answer["refused"] is False


# ---------------------------------------------------------------- damaged model cards


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (dict(width=200_000), "width 200000"),  # building it would take 2.88 TB
        (dict(members=10**9), "members"),
        (dict(hidden=-3), "hidden"),
        (dict(dropout=float("nan")), "dropout"),
        (dict(width="wide"), "width"),
        (dict(depth=7), "unknown model settings 'depth'"),
        (dict(parts=[{"arch": "quick"}] * 100_000), "parts"),
        (dict(width=1024, hidden=16384, members=8), "parameters"),  # in range, too big together
        (dict(width=8), "does not fit the weights in the file"),
        (dict(arch="transformer"), "unknown architecture"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "info", "export"])
def test_a_card_asking_for_a_net_the_file_does_not_hold_is_refused(
    tmp_path, command, settings, fragment
):
    path = checkpoint(tmp_path, **settings)
    args = {"predict": ["predict", PICTURE], "info": ["info"], "export": ["export"]}[command]
    one_clear_error(run_cli(*args, "--model", path, timeout=120), str(path), fragment)
    assert not path.with_suffix(".onnx").exists()


# ---------------------------------------------------------------- ONNX files of other shapes


def onnx_model(folder: Path, model: nn.Module, shape=(1, 28, 28), dynamic=None) -> Path:
    """`model` as ONNX with a digitrec card: a file that passes every card check. With
    `dynamic`, those axes of each input and output are declared symbolic."""
    path = folder / "odd.onnx"
    if dynamic is None:
        export_model(model, path)  # as digitrec export writes it: a dynamic batch axis
    else:
        torch.onnx.export(
            model.eval(),
            (torch.zeros(2, *shape),),
            path,
            input_names=["image"],
            output_names=["logits"],
            dynamo=False,
        )
        # by hand: the exporter declares the sizes it can infer, whatever it is asked
        proto = onnx.load(path)
        for arg in (*proto.graph.input, *proto.graph.output):
            dims = arg.type.tensor_type.shape.dim
            for axis, name in dynamic.get(arg.name, {}).items():
                dims[axis].dim_param = name
        onnx.save(proto, path)
    embed_card(path, {"format": CARD_FORMAT, "name": "odd", "model": {"arch": "odd"}})
    return path


class Scaled(nn.Module):
    """Ten outputs, times a factor: NaN everywhere with a factor of NaN."""

    def __init__(self, factor: float):
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)
        self.factor = factor

    def forward(self, x):
        return self.linear(x.flatten(1)) * self.factor


def data_shaped(folder: Path) -> Path:
    """A model whose number of answers depends on the pictures' values (five, for the
    warm-up's), so that no shape inference can declare it: (N, 1, 28, 28) -> (N, k)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("ReduceMax", ["image"], ["top"], keepdims=0),
        helper.make_node("Mul", ["top", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "five"], ["count"]),
        helper.make_node("Cast", ["count"], ["end"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["end", "axis0"], ["ends"]),
        helper.make_node("Slice", ["flat", "start", "ends", "axis1"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "data-shaped",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", "k"])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("five", TensorProto.FLOAT, [], [5.0]),
            helper.make_tensor("axis0", TensorProto.INT64, [1], [0]),
            helper.make_tensor("start", TensorProto.INT64, [1], [0]),
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
        ],
    )
    path = folder / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    embed_card(path, {"format": CARD_FORMAT, "name": "odd", "model": {"arch": "odd"}})
    return path


ODD_MODELS = {
    "output": (
        lambda f: onnx_model(f, nn.Sequential(nn.Flatten(), nn.Linear(784, 5))),
        "output has shape (N, 5)",
    ),
    # declared (N, k): only reading a batch shows the five answers
    "symbolic": (data_shaped, "answers shape (2, 5)"),
    "input": (
        lambda f: onnx_model(
            f, nn.Sequential(nn.Flatten(), nn.Linear(3 * 784, 10)), (3, 28, 28), {"image": {0: "n"}}
        ),
        "input has shape (N, 3, 28, 28)",
    ),
    "fixed-batch": (
        lambda f: onnx_model(f, nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), dynamic={}),
        "batch axis is fixed",
    ),
    "nan": (lambda f: onnx_model(f, Scaled(float("nan"))), "NaN"),
}


@pytest.mark.parametrize("kind", sorted(ODD_MODELS))
def test_an_onnx_model_that_does_not_read_digits_is_refused_at_load(tmp_path, kind):
    make, fragment = ODD_MODELS[kind]
    path = make(tmp_path)
    (tmp_path / "images" / "0").mkdir(parents=True)
    shutil.copy(PICTURE, tmp_path / "images" / "0")
    for args in (["predict", PICTURE], ["evaluate", "--images", tmp_path / "images"]):
        result = run_cli(*args, "--model", path)
        one_clear_error(result, f"{path} cannot read a digit", fragment)


def test_the_pair_reader_is_not_a_digit_reader():
    pairs = bundled_path("pairs.onnx")
    one_clear_error(
        run_cli("predict", PICTURE, "--model", pairs), "cannot read a digit", "pair reader"
    )


@pytest.mark.parametrize(
    "calibration, fragment",
    [
        ({"temperature": 0, "threshold": 0.3}, "temperature 0"),
        ({"temperature": "hot", "threshold": 0.3}, "temperature 'hot'"),
        ({"temperature": 1.0, "threshold": 7}, "threshold 7"),
        ("calibrated", "calibration is not a table"),
    ],
)
def test_a_card_with_a_calibration_no_calibration_gives_is_refused(tmp_path, calibration, fragment):
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), path)
    card = json.loads(bundled_path().with_suffix(".json").read_text())
    card["calibration"] = calibration
    path.with_suffix(".json").write_text(json.dumps(card))
    one_clear_error(run_cli("predict", PICTURE, "--model", path), "is damaged", fragment)


@pytest.mark.parametrize(
    "card", [{"format": CARD_FORMAT, "model": "bncnn"}, {"format": CARD_FORMAT, "model": [1]}]
)
def test_a_card_whose_model_is_not_a_table_is_refused(tmp_path, card):
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), path)
    path.with_suffix(".json").write_text(json.dumps(card))
    for args in (["info"], ["predict", PICTURE]):
        one_clear_error(run_cli(*args, "--model", path), "not a digitrec model")


def test_info_describes_a_card_of_odd_types_without_failing(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), path)
    card = json.loads(bundled_path().with_suffix(".json").read_text())
    card.update(date=20240101, metrics=["x"], ensemble=[3, {"arch": "bncnn"}], train="fast")
    path.with_suffix(".json").write_text(json.dumps(card))
    result = run_cli("info", "--model", path)
    assert result.returncode == 0, result.stderr
    assert "20240101" in result.stdout and "averages ?, ? (bncnn)" in result.stdout


def test_a_card_too_large_to_be_one_is_not_read(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), path)
    with open(path.with_suffix(".json"), "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MB of card, none of it on disk
    one_clear_error(run_cli("info", "--model", path), "not a digitrec card", "67,108,864 bytes")


def test_a_card_nested_deeper_than_json_parsing_goes_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), path)
    path.with_suffix(".json").write_text("[" * 100_000 + "]" * 100_000)
    one_clear_error(run_cli("info", "--model", path), "its card cannot be read")


# ---------------------------------------------------------------- MNIST files as bombs


def test_a_gzip_bomb_as_an_mnist_file_is_refused(tmp_path, mnist_dir):
    name = "t10k-images-idx3-ubyte"
    header = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (10000, 28, 28))
    # MNIST's header, then 13 GB of zeros in 13 MB: gzip members one after another, as
    # gzip allows (one of 64 MiB of zeros, 200 times)
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    with open(tmp_path / f"{name}.gz", "wb") as f:
        f.write(gzip.compress(header, mtime=0))
        for _ in range(200):
            f.write(zeros)
    assert (tmp_path / f"{name}.gz").stat().st_size < 14 << 20
    labels = "t10k-labels-idx1-ubyte.gz"
    shutil.copy(mnist_dir / labels, tmp_path / labels)
    # the command's memory stays within a few times the real file's 7.8 MB
    limit = "import resource; resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))"
    code = f"{limit}; import sys; from digitrec.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "evaluate", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    one_clear_error(result, f"{name}.gz is corrupted", "too long", "7,840,016")


# ---------------------------------------------------------------- a reader that leaves


@pytest.mark.parametrize(
    "args",
    [["models", "list", "--json"], ["info", "--json"], ["predict", str(PICTURE)], ["--help"]],
)
def test_a_reader_that_leaves_early_stops_the_command_quietly(args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        exe = Path(sys.executable).parent / "digitrec"
        result = subprocess.run(
            [str(exe), *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write)
    assert result.stderr == ""
    # --help is written by argparse, which ignores a closed pipe itself
    assert result.returncode == (0 if args == ["--help"] else READER_LEFT)


# ---------------------------------------------------------------- paths that are not files


@pytest.fixture
def odd_paths(tmp_path) -> dict[str, tuple[Path, str]]:
    """Things that are not model files, each with what the error must call it."""
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    (tmp_path / "loop-a.onnx").symlink_to(tmp_path / "loop-b.onnx")
    (tmp_path / "loop-b.onnx").symlink_to(tmp_path / "loop-a.onnx")
    (tmp_path / "dangling.onnx").symlink_to(tmp_path / "gone.onnx")
    (tmp_path / "empty-run").mkdir()
    return {
        "fifo": (fifo, "is a named pipe (FIFO)"),
        "loop": (tmp_path / "loop-a.onnx", "loop of symbolic links"),
        "dangling": (tmp_path / "dangling.onnx", "symbolic link to nothing"),
        "device": (Path("/dev/zero"), "is a device"),
        "folder": (tmp_path / "empty-run", "folder"),
        "missing": (tmp_path / "missing.onnx", "does not exist"),
    }


@pytest.mark.parametrize("kind", ["fifo", "loop", "dangling", "device", "folder", "missing"])
@pytest.mark.parametrize("command", ["predict", "info", "export"])
def test_a_model_path_that_is_not_a_file_is_named_for_what_it_is(odd_paths, command, kind):
    path, fragment = odd_paths[kind]
    args = {"predict": ["predict", PICTURE], "info": ["info"], "export": ["export"]}[command]
    # a FIFO opened would wait for a writer forever, /dev/zero read would never end
    one_clear_error(run_cli(*args, "--model", path, timeout=120), str(path), fragment)
    if kind != "missing":
        assert "does not exist" not in run_cli(*args, "--model", path).stderr


def test_a_fifo_in_the_models_folder_is_named_not_opened(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    os.mkfifo(models / "mine.onnx")
    result = run_cli("predict", PICTURE, "--model", "mine", env={"DIGITREC_MODELS": str(models)})
    one_clear_error(result, "mine.onnx is a named pipe")


# ---------------------------------------------------------------- export --out


def test_export_refuses_an_out_folder_that_does_not_exist(tmp_path):
    path = checkpoint(tmp_path)
    out = tmp_path / "no" / "such" / "model.onnx"
    one_clear_error(
        run_cli("export", "--model", path, "--out", out),
        f"{tmp_path / 'no' / 'such'} does not exist",
        "create the folder first",
    )
    assert not (tmp_path / "no").exists()
    (tmp_path / "file").write_text("x")
    one_clear_error(
        run_cli("export", "--model", path, "--out", tmp_path / "file" / "m.onnx"),
        "is not a folder",
    )


def test_finetune_and_combine_refuse_an_out_folder_that_does_not_exist(tmp_path):
    """Checked before any work: the models given need not even be read."""
    path = checkpoint(tmp_path)
    out = tmp_path / "no" / "such" / "model.safetensors"
    folder = tmp_path / "hand" / "3"
    folder.mkdir(parents=True)
    shutil.copy(PICTURE, folder / "a.png")
    for args in (
        ["finetune", "--from", path, "--data", tmp_path / "hand", "--out", out],
        ["combine", path, path, "--out", out],
    ):
        one_clear_error(run_cli(*args), f"{tmp_path / 'no' / 'such'} does not exist")
    assert not (tmp_path / "no").exists()
    written = run_cli("export", "--model", path, "--out", tmp_path / "small.onnx")
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "small.onnx").is_file()


def test_export_refuses_a_model_that_is_onnx_already(tmp_path):
    onnx = tmp_path / "model.onnx"
    shutil.copy(bundled_path(), onnx)
    one_clear_error(
        run_cli("export", "--model", onnx, "--out", tmp_path / "again.onnx"), "ONNX already"
    )
