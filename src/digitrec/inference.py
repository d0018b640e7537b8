"""The Predictor: one object that every interface uses to read digits.

It loads an ONNX model with ONNX Runtime (the default, torch-free) or a .safetensors
checkpoint with PyTorch, and turns pictures into MNIST form through preprocess.to_mnist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .cards import CARD_KEY, read_card
from .config import IMAGE_SIZE
from .errors import ModelError
from .preprocess import ImageInput, to_mnist

BUNDLED_MODEL = "default.onnx"


def bundled_model_path() -> Path:
    return Path(str(resources.files("digitrec") / "weights" / BUNDLED_MODEL))


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """--model, else $DIGITREC_MODEL, else the model shipped in the package."""
    chosen = model or os.environ.get("DIGITREC_MODEL")
    path = Path(chosen).expanduser() if chosen else bundled_model_path()
    if not path.is_file():
        where = "the bundled model" if not chosen else "model file"
        raise ModelError(f"{where} {path} does not exist")
    return path


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Prediction:
    digit: int
    confidence: float
    probabilities: np.ndarray  # (10,)
    input: np.ndarray  # the (28, 28) picture the model saw

    @property
    def top3(self) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self) -> dict:
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "top3": [{"digit": d, "probability": round(p, 6)} for d, p in self.top3],
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }


class _OnnxBackend:
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


class _TorchBackend:
    def __init__(self, path: Path, threads: int | None):
        try:
            import torch

            from .checkpoint import load_checkpoint
        except ImportError:
            raise ModelError(
                f"{path} is a PyTorch checkpoint and needs the training extra: "
                "pip install 'digitrec[train]' (or export it to ONNX)"
            )
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model, self.card = load_checkpoint(path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(batch)).numpy()


class Predictor:
    """Reads digits with one model. `predict` takes any picture of a single digit."""

    def __init__(self, model: str | os.PathLike | None = None, threads: int | None = None):
        self.path = resolve_model_path(model)
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            self.backend = _OnnxBackend(self.path, threads)
        elif suffix in (".safetensors", ".json"):
            self.backend = _TorchBackend(self.path, threads)
        else:
            raise ModelError(
                f"{self.path} is not a digitrec model: use a .onnx or .safetensors file"
            )
        self.card: dict = self.backend.card

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.stem))

    def classify(self, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Probabilities (N, 10) for pictures already in MNIST form, (N, 28, 28) in [0, 1]."""
        x = np.asarray(inputs, dtype=np.float32).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        chunks = [
            softmax(self.backend.logits(np.ascontiguousarray(x[i : i + batch_size])))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)

    def predict(self, image: ImageInput) -> Prediction:
        return self.predict_many([image])[0]

    def predict_many(self, images: list[ImageInput]) -> list[Prediction]:
        inputs = np.stack([to_mnist(image) for image in images])
        probs = self.classify(inputs)
        return [
            Prediction(int(p.argmax()), float(p.max()), p, x)
            for p, x in zip(probs, inputs, strict=True)
        ]
