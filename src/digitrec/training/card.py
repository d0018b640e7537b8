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
from .config import IMAGE_SIZE, NUM_CLASSES
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
    if val_logits is None:
        val_logits = predict_logits(model, data.x_val)
    held_out = None if data.held_out is None else _digits(predict_logits(model, data.held_out))
    labels = data.y_val.reshape(-1).cpu().numpy()
    pen = data.pen_val
    if pen is not None:  # real writers no training saw: refusals must catch their mistakes
        pen = (_digits(predict_logits(model, pen[0])), pen[1].cpu().numpy())
    # a model of single digits gets a second look at its unsure answers (reading/views.py),
    # and its refusal rule is chosen on what that look gives; a pair reader reads once
    views = list(VIEWS) if tuple(data.x_val.shape[-2:]) == (IMAGE_SIZE, IMAGE_SIZE) else None
    pictures = {"val": data.x_val, "pen": None if pen is None else data.pen_val[0]}
    pictures["outliers"] = data.held_out

    def view_logits(name: str, rows: np.ndarray) -> np.ndarray:
        x = pictures[name]
        return _view_logits(model, x[torch.as_tensor(rows, device=x.device)], views)

    return calibration_card(
        _digits(val_logits),
        labels,
        held_out,
        max_refused,
        pen,
        data.pen_max_refused,
        views,
        view_logits,
    )


def _view_logits(model, x: torch.Tensor, names: list[str]) -> np.ndarray:
    """Logits (len(names), N, 10) of the pictures x (N, 1, 28, 28) in each named view
    (reading/views.py)."""
    pictures = x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).cpu().numpy()
    seen = [torch.from_numpy(view(pictures, v)).to(x.device).reshape(x.shape) for v in names]
    return np.stack([_digits(predict_logits(model, v)) for v in seen])


def _looked_accuracy(model, data, calibration: dict) -> float:
    """Test accuracy with the second look at the answers under its level."""
    t, look = calibration["temperature"], calibration["second_look"]
    probs = softmax(_digits(predict_logits(model, data.x_test)), t)
    x = data.x_test

    def views_of(rows: np.ndarray) -> np.ndarray:
        picked = x[torch.as_tensor(rows, device=x.device)]
        return softmax(_view_logits(model, picked, look["views"]), t)

    probs = second_look(probs, look["below"], views_of)
    return float((probs.argmax(1) == data.y_test.reshape(-1).cpu().numpy()).mean())


def _digits(logits: torch.Tensor) -> np.ndarray:
    # every digit read is calibrated alike: a pair reader's two heads are pooled
    return logits.reshape(-1, NUM_CLASSES).cpu().numpy()
