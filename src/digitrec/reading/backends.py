"""Where a model's numbers come from. The reading wing runs ONNX models with ONNX Runtime;
other formats (PyTorch checkpoints) are read by loaders that the caller hands in, so nothing
here can reach torch (digitrec.training.torch_backend has the loader for .safetensors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ModelError
from .cards import CARD_KEY, read_card

TORCH_SUFFIXES = (".safetensors", ".json")  # a checkpoint, or the card beside one


class Backend(Protocol):
    card: dict

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


Loader = Callable[[Path, "int | None"], Backend]


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{path} is not a digitrec model: not a loadable ONNX file ({e})")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.card = read_card(path, embedded=meta.get(CARD_KEY))
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


ONNX_LOADERS: dict[str, Loader] = {".onnx": OnnxBackend}


def open_backend(
    path: Path, threads: int | None, loaders: Mapping[str, Loader] | None = None
) -> Backend:
    """The backend that reads `path`, by its suffix, from `loaders` (ONNX only unless given)."""
    loaders = ONNX_LOADERS if loaders is None else loaders
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    suffix = path.suffix.lower()
    loader = loaders.get(suffix)
    if loader is not None:
        return loader(path, threads)
    if suffix in TORCH_SUFFIXES:
        raise ModelError(
            f"{path} is a PyTorch checkpoint: open it with digitrec.load_predictor (needs the "
            "training extra: pip install 'digitrec[train]'), or export it to ONNX with "
            "`digitrec export`"
        )
    raise ModelError(f"{path} is not a digitrec model: use a .onnx or .safetensors file")


def needs_torch(path: Path) -> bool:
    return path.suffix.lower() in TORCH_SUFFIXES
