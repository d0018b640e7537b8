"""ONNX export with a dynamic batch axis, and a parity check against PyTorch."""

from __future__ import annotations

import json
import os
import shlex
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from ..errors import ModelError, OutputError, OutputExistsError
from ..files import atomic_path, write_atomic
from ..reading.cards import CARD_KEY, card_path, check_model_file
from .checkpoint import load_checkpoint
from .config import IMAGE_SIZE

OPSET = 18
PARITY_TOLERANCE = 1e-4


def parity_inputs(
    n: int = 64, seed: int = 0, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)
) -> np.ndarray:
    """Random pictures plus the extremes (all black, all white), (N, 1, H, W) float32."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, *size), dtype=np.float32)
    x[0] = 0.0
    x[1] = 1.0
    return x


def max_logit_difference(model: torch.nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    return float(np.abs(got - want).max())


def embed_card(path: Path, card: dict) -> None:
    """Store the card inside the ONNX file too, so the file alone says what it is."""
    proto = onnx.load(path)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card)
    onnx.save(proto, path)


def export_model(model: torch.nn.Module, out: Path) -> None:
    """Write `model` as ONNX (input `image` (N, 1, 28, 28), output `logits` (N, 10); for
    the pair reader (N, 1, 28, 48) and (N, 2, 10))."""
    model = model.eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(2, 1, *getattr(model, "input_size", (IMAGE_SIZE, IMAGE_SIZE)))
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        onnx.checker.check_model(tmp)


def check_output_folder(out: Path) -> None:
    """Refuse to write `out` into a folder that does not exist: a mistyped folder would
    otherwise be made, and the file lost in it."""
    folder = out.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(
            f"cannot write {out}: {folder} {state}; create the folder first "
            f"(mkdir -p {shlex.quote(str(folder))}), or give a file in an existing one"
        )


def export_checkpoint(
    checkpoint: str | os.PathLike, out: str | os.PathLike, force: bool = False
) -> tuple[Path, float]:
    """Export a checkpoint, check parity, write the card beside the .onnx; returns the
    path and the largest absolute logit difference between ONNX Runtime and PyTorch."""
    out = Path(out)
    check_model_file(Path(checkpoint))  # first: a missing checkpoint is the news, not its .onnx
    if Path(checkpoint).suffix == ".onnx":
        raise ModelError(
            f"{checkpoint} is ONNX already: export reads a .safetensors checkpoint "
            "(the file `digitrec train` writes)"
        )
    if out.suffix != ".onnx":
        raise ModelError(f"{out}: the exported file's name must end in .onnx")
    check_output_folder(out)
    if out.is_dir():
        raise OutputError(f"{out} is a folder: give the .onnx file to write")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; use --force to overwrite it")
    model, card = load_checkpoint(checkpoint)
    card = {**card, "onnx": {"opset": OPSET, "input": "image", "output": "logits"}}
    try:
        export_model(model, out)
    except OSError as e:  # a read-only folder, a full disk: the first write says so
        raise OutputError(f"cannot write {out}: {e.strerror or e}")
    size = getattr(model, "input_size", (IMAGE_SIZE, IMAGE_SIZE))
    diff = max_logit_difference(model, out, parity_inputs(size=size))
    if diff > PARITY_TOLERANCE:
        out.unlink()
        raise ModelError(
            f"ONNX export of {checkpoint} disagrees with PyTorch by {diff:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}); the file was not kept"
        )
    card["onnx"]["parity_max_abs_logit_diff"] = diff
    embed_card(out, card)
    write_atomic(card_path(out), (json.dumps(card, indent=2) + "\n").encode())
    return out, diff
