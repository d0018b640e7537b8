"""Model cards, built in one place: the fields every card carries, the date and time spent,
and the measuring and calibration that finish a card when its model is saved for good."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..reading.calibrate import calibration_card
from ..reading.cards import read_card
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
    card = {
        **card,
        "metrics": {**card["metrics"], **test, "test_n": len(data.y_test)},
        "calibration": _calibration(model, data, max_refused, val_logits),
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
    return calibration_card(
        _digits(val_logits), labels, held_out, max_refused, pen, data.pen_max_refused
    )


def _digits(logits: torch.Tensor) -> np.ndarray:
    # every digit read is calibrated alike: a pair reader's two heads are pooled
    return logits.reshape(-1, NUM_CLASSES).cpu().numpy()
