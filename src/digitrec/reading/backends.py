"""Where a model's numbers come from. The reading wing runs ONNX models with ONNX Runtime;
other formats (PyTorch checkpoints) are read by loaders that the caller hands in, so nothing
here can reach torch (digitrec.training.torch_backend has the loader for .safetensors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ModelError
from .cards import CARD_KEY, check_model_file, read_card
from .preprocess import IMAGE_SIZE

TORCH_SUFFIXES = (".safetensors", ".json")  # a checkpoint, or the card beside one

# What each kind of model reads and answers, after the batch axis: a digit reader one
# 28x28 picture -> ten logits; the pair reader two touching digits, 28x48 -> 2 x 10.
DIGITS = "digits"
PAIRS = "pairs"
SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    DIGITS: ((1, IMAGE_SIZE, IMAGE_SIZE), (10,)),
    PAIRS: ((1, IMAGE_SIZE, 48), (2, 10)),
}
_WHAT = {DIGITS: "a digit", PAIRS: "a pair of digits"}
_FLOAT = "tensor(float)"


class Backend(Protocol):
    card: dict

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


Loader = Callable[[Path, "int | None"], Backend]


def _first_line(error: Exception, limit: int = 300) -> str:
    """An error of ONNX Runtime or torch, short enough for a one-line message."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shape(dims) -> str:
    return "(" + ", ".join("N" if i == 0 else str(d) for i, d in enumerate(dims)) + ")"


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's threads spin between calls by default: on a busy machine that takes
        # the cores preprocessing needs; a batch of digits is too small to gain from spinning
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(
                f"{path} is not a digitrec model: not a loadable ONNX file ({_first_line(e)})"
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.card = read_card(path, embedded=meta.get(CARD_KEY))
        self.input_name = self.session.get_inputs()[0].name if self.session.get_inputs() else None

    def declared_problem(self, kind: str) -> str | None:
        """What is wrong with the inputs and outputs the file declares, for a model of `kind`
        (None: nothing seen; a symbolic size is taken on trust, for the warm-up to check)."""
        takes, gives = SHAPES[kind]
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            return f"it takes {len(inputs)} inputs, where digitrec gives one: the pictures"
        if not outputs:
            return "it has no output"
        for role, arg, want, what in (
            ("input", inputs[0], takes, "gives it float pictures"),
            ("output", outputs[0], gives, "reads float logits"),
        ):
            if arg.type != _FLOAT:
                return f"its {role} is {arg.type}, where digitrec {what}"
            if arg.shape is None:  # no shape declared: the warm-up finds out
                continue
            dims = list(arg.shape)
            fixed = [d if isinstance(d, int) else None for d in dims]
            if len(dims) != 1 + len(want) or any(
                d is not None and d != w for d, w in zip(fixed[1:], want, strict=True)
            ):
                return (
                    f"its {role} has shape {_shape(dims)}, where a reader of {_WHAT[kind]} "
                    f"{'takes' if role == 'input' else 'gives'} {_shape((0, *want))}"
                )
            if fixed[0] is not None:
                return (
                    f"its batch axis is fixed at {fixed[0]}, where digitrec reads batches of "
                    "any size: export it with a dynamic batch axis (digitrec export does)"
                )
        return None

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


ONNX_LOADERS: dict[str, Loader] = {".onnx": OnnxBackend}


def _card_kind_problem(card: dict, kind: str) -> str | None:
    train = card.get("train")
    task = train.get("task", DIGITS) if isinstance(train, dict) else DIGITS
    pairs = task == PAIRS or card["model"].get("arch") == PAIRS
    if kind == DIGITS and pairs:
        return (
            "it is the pair reader (two touching digits read as one 28x48 picture), "
            "not a digit reader"
        )
    if kind == PAIRS and task != PAIRS:
        return "it is not a pair reader (its card names no task pairs)"
    return None


def check_backend(backend: Backend, path: Path, kind: str = DIGITS) -> None:
    """Refuse a model that cannot serve as a reader of `kind`: its card says it is another
    kind, the shapes it declares do not fit, or a warm-up batch (a black picture and a white
    one) fails, answers in another shape, or answers NaN. Cheap: one batch of two."""
    problem = _card_kind_problem(backend.card, kind)
    if problem is None and isinstance(backend, OnnxBackend):
        problem = backend.declared_problem(kind)
    if problem is None:
        takes, gives = SHAPES[kind]
        x = np.zeros((2, *takes), np.float32)
        x[1] = 1.0
        try:
            out = np.asarray(backend.logits(x))
        except Exception as e:  # ONNX Runtime's and torch's own errors: shapes, types
            problem = f"it fails on a batch of {_shape(x.shape)} pictures ({_first_line(e)})"
        else:
            if out.shape != x.shape[:1] + gives:
                problem = (
                    f"for a batch of 2 pictures it answers shape {tuple(out.shape)}, "
                    f"not {(2, *gives)}"
                )
            elif not np.isfinite(out).all():
                problem = "it answers NaN or infinite logits for a plain picture: damaged weights"
    if problem is not None:
        raise ModelError(f"{path} cannot read {_WHAT[kind]}: {problem}")


def open_backend(
    path: Path,
    threads: int | None,
    loaders: Mapping[str, Loader] | None = None,
    kind: str = DIGITS,
) -> Backend:
    """The backend that reads `path`, by its suffix, from `loaders` (ONNX only unless given),
    checked to read pictures as a model of `kind` (DIGITS or PAIRS) must."""
    loaders = ONNX_LOADERS if loaders is None else loaders
    check_model_file(path)
    suffix = path.suffix.lower()
    loader = loaders.get(suffix)
    if loader is not None:
        backend = loader(path, threads)
        check_backend(backend, path, kind)
        return backend
    if suffix in TORCH_SUFFIXES:
        raise ModelError(
            f"{path} is a PyTorch checkpoint: open it with digitrec.load_predictor (needs the "
            "training extra: pip install 'digitrec[train]'), or export it to ONNX with "
            "`digitrec export`"
        )
    raise ModelError(f"{path} is not a digitrec model: use a .onnx or .safetensors file")


def needs_torch(path: Path) -> bool:
    return path.suffix.lower() in TORCH_SUFFIXES
