"""The backend that reads PyTorch checkpoints (.safetensors with their card) for the
Predictor, which gets it handed in (`Predictor(..., loaders=LOADERS)`, or
digitrec.load_predictor): the reading wing itself never imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..reading.backends import ONNX_LOADERS, TORCH_SUFFIXES, Loader
from .checkpoint import load_checkpoint


class TorchBackend:
    def __init__(self, path: Path, threads: int | None):
        if threads:
            torch.set_num_threads(threads)
        self.model, self.card = load_checkpoint(path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()


# every format a model is saved in: ONNX through ONNX Runtime, checkpoints through torch
LOADERS: dict[str, Loader] = {**ONNX_LOADERS, **dict.fromkeys(TORCH_SUFFIXES, TorchBackend)}
