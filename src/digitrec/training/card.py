"""Model cards, built in one place: the fields every card carries, the date and time spent,
and the measuring and calibration that finish a card when its model is saved for good."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..reading.calibrate import calibration_card, second_look, softmax
from ..reading.cards import read_card
from ..reading.views import VIEWS, view
from .checkpoint import save_checkpoint
from .config import NUM_CLASSES
from .measure import loss_and_accuracy, loss_and_accuracy_of, predict_logits


def new_card(
    name: str | None,
    command: str,
    seed: int | None,
    device: torch.device,
    model: dict,
    parameters: int | None,
    **made,
) -> dict:
    """The fields every card opens with; `made` says how the model was made (precision,
    train, finetune, parent, ensemble, data, distributed: whichever apply)."""
    return {
        "name": name,
        "version": __version__,
        "command": command,
        "seed": seed,
        "device": device.type,
        "torch": torch.__version__,
        "model": model,
        "parameters": parameters,
        **made,
    }


def stamped(card: dict, seconds: float, metrics: dict) -> dict:
    """The card as the model stands now, after `seconds` of training."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {**card, "date": now, "training_seconds": round(seconds, 1), "metrics": metrics}


def validation_figures(val_logits: torch.Tensor, y_val: torch.Tensor) -> dict:
    loss, accuracy = loss_and_accuracy(val_logits, y_val)
    return {"val_loss": round(loss, 5), "val_accuracy": accuracy}


def finish_card(
    path: Path, model, card: dict, data, max_refused: float, val_logits=None, interrupted=False
) -> dict:
    """Measure `model` on MNIST's test set, calibrate it on the validation split (from these
    logits of it, when the caller has them) and save it at `path` with its card so
    completed; returns the card as written."""
    test_loss, test_accuracy = loss_and_accuracy_of(model, data.x_test, data.y_test)
    test = {"test_loss": round(test_loss, 5), "test_accuracy": test_accuracy}
    calibration = _calibration(model, data, max_refused, val_logits)
    if "second_look" in calibration:  # ... and as the Predictor answers, looking again
        test["test_accuracy_second_look"] = _looked_accuracy(model, data, calibration)
    card = {
        **card,
        "metrics": {**card["metrics"], **test, "test_n": len(data.y_test)},
        "calibration": calibration,
        "interrupted": interrupted,
    }
    save_checkpoint(path, model, card)
    return read_card(path)


def _calibration(model, data, max_refused: float, val_logits=None) -> dict:
    # a model of single digits gets a second look at its unsure answers (reading/views.py),
    # and its refusal rule is chosen on what that look gives; a pair reader reads once
    views = list(VIEWS) if tuple(data.x_val.shape[-2:]) == (28, 28) else None

    def logits_of(x: torch.Tensor, known: torch.Tensor | None = None) -> np.ndarray:
        plain = _digits(predict_logits(model, x) if known is None else known)
        if views is None:
            return plain
        return np.stack([plain] + _view_logits(model, x, views))

    held_out = None if data.held_out is None else logits_of(data.held_out)
    labels = data.y_val.reshape(-1).cpu().numpy()
    pen = data.pen_val
    if pen is not None:  # real writers no training saw: refusals must catch their mistakes
        pen = (logits_of(pen[0]), pen[1].cpu().numpy())
    return calibration_card(
        logits_of(data.x_val, val_logits),
        labels,
        held_out,
        max_refused,
        pen,
        data.pen_max_refused,
        views,
    )


def _view_logits(model, x: torch.Tensor, names: list[str]) -> list[np.ndarray]:
    """Logits of the pictures x (N, 1, 28, 28) in each named view (reading/views.py)."""
    pictures = x.reshape(-1, 28, 28).cpu().numpy()
    seen = [torch.from_numpy(view(pictures, v)).to(x.device).reshape(x.shape) for v in names]
    return [_digits(predict_logits(model, v)) for v in seen]


def _looked_accuracy(model, data, calibration: dict) -> float:
    """Test accuracy with the second look at the answers under its level."""
    t, look = calibration["temperature"], calibration["second_look"]
    logits = [_digits(predict_logits(model, data.x_test))]
    logits += _view_logits(model, data.x_test, look["views"])
    probs = second_look(
        softmax(np.concatenate(logits), t).reshape(len(logits), -1, 10), look["below"]
    )
    return float((probs.argmax(1) == data.y_test.reshape(-1).cpu().numpy()).mean())


def _digits(logits: torch.Tensor) -> np.ndarray:
    # every digit read is calibrated alike: a pair reader's two heads are pooled
    return logits.reshape(-1, NUM_CLASSES).cpu().numpy()
