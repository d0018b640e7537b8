"""digitrec: handwritten digit recognition, from MNIST training to a drawing page.

    from digitrec import Predictor
    Predictor().predict("seven.png").digit

Importing the package is cheap and never imports torch: `Predictor` (ONNX models, read with
ONNX Runtime) and `load_predictor` (any model file; torch only for PyTorch checkpoints) are
loaded on first use. The reading wing is digitrec.reading, the training wing digitrec.training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Predictor", "Prediction", "NumberReading", "load_predictor", "__version__"]

if TYPE_CHECKING:
    from .loading import load_predictor
    from .reading.predictor import NumberReading, Prediction, Predictor

_LAZY = {
    "Predictor": "digitrec.reading.predictor",
    "Prediction": "digitrec.reading.predictor",
    "NumberReading": "digitrec.reading.predictor",
    "load_predictor": "digitrec.loading",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")
