"""Opening a Predictor for any model file, for the interfaces and for library users.

An ONNX model is read by the torch-free reading wing alone; a PyTorch checkpoint brings in
the training wing's torch backend, imported only then (so serving ONNX never loads torch)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelError
from .reading.backends import needs_torch
from .reading.predictor import Predictor, resolve_model_path


def load_predictor(model: str | os.PathLike | None = None, **options) -> Predictor:
    """Predictor(model, **options) for a model of any format: a path, a name in the models
    folder, 'bundled', else $DIGITREC_MODEL, else the bundled model."""
    path = resolve_model_path(model)
    pairs = options.get("pairs", True)
    torch_files = needs_torch(path) or (
        isinstance(pairs, str | os.PathLike) and needs_torch(Path(pairs))
    )
    if torch_files and options.get("loaders") is None:
        try:
            from .training.torch_backend import LOADERS
        except ImportError:
            raise ModelError(
                f"{path} is a PyTorch checkpoint and needs the training extra: "
                "pip install 'digitrec[train]' (or export it to ONNX)"
            )
        options["loaders"] = LOADERS
    return Predictor(path, **options)
