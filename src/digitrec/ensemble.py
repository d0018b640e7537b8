"""Ensembles: `fit_ensemble(config, n) -> (checkpoint path, card)` trains n members of one
recipe, each with its own seed, and saves them as one model (model.Ensemble) whose logits
are the log of the members' mean probabilities: it exports to one ONNX graph and the
Predictor serves it exactly like a single model."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path

import torch

from . import __version__
from .calibrate import calibration_card
from .cards import read_card
from .checkpoint import STATE_NAME, WEIGHTS_NAME, load_checkpoint, save_checkpoint
from .config import NUM_CLASSES, TrainConfig
from .errors import ConfigError, OutputExistsError
from .model import build_model, count_parameters
from .train import evaluate, fit, predict_logits, prepare_data, ranks_from_env, resolve_device

MEMBER_DIR = "member-{}"


def member_config(cfg: TrainConfig, k: int) -> TrainConfig:
    """The recipe of member k (0-based): the same one, seeded seed + k."""
    return replace(cfg, seed=cfg.seed + k)


def _finished(folder: Path, cfg: TrainConfig) -> bool:
    """Whether a member's folder holds a complete run of exactly this recipe."""
    try:
        card = read_card(folder / WEIGHTS_NAME)
    except Exception:
        return False
    return (
        card.get("train") == cfg.to_dict()
        and not card.get("interrupted", True)
        and card.get("metrics", {}).get("epochs") == cfg.epochs
        and "calibration" in card
    )


def fit_ensemble(
    cfg: TrainConfig,
    members: int,
    out_dir: str | Path,
    data_dir=None,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    command: str = "",
) -> tuple[Path, dict]:
    """Train `members` nets (out_dir/member-1, -2, ...), then write the ensemble as
    out_dir/model.safetensors with its card: the members' figures and the ensemble's own
    accuracy and calibration. With resume=True, finished members are kept and a stopped
    one continues."""
    if members < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, not {members}")
    if cfg.task != "digits":
        raise ConfigError("ensembles are for the digit reader (task digits)")
    if ranks_from_env().world > 1:
        raise ConfigError(
            "--ensemble trains its members one after another in one process: run it without "
            "torchrun (or train each member under torchrun with --seed, one run each)"
        )
    out = Path(out_dir)
    weights_path = out / WEIGHTS_NAME
    if weights_path.exists() and not (force or resume):
        raise OutputExistsError(f"{weights_path} exists; use --force to overwrite it, or --resume")
    dev = resolve_device(device)
    data = prepare_data(cfg, data_dir, dev, progress)
    loaded, cards = [], []
    for k in range(members):
        folder = out / MEMBER_DIR.format(k + 1)
        member_cfg = member_config(cfg, k)
        if not (resume and _finished(folder, member_cfg)):
            if progress:
                print(f"member {k + 1} of {members} (seed {member_cfg.seed})", file=sys.stderr)
            stopped = (folder / WEIGHTS_NAME).is_file() and (folder / STATE_NAME).is_file()
            _, card = fit(
                member_cfg,
                folder,
                device=str(dev),
                resume=resume and stopped,
                force=force,
                progress=progress,
                command=command,
                data=data,
            )
            if card.get("interrupted"):
                raise KeyboardInterrupt
        model, card = load_checkpoint(folder / WEIGHTS_NAME, device=str(dev))
        loaded.append(model)
        cards.append(card)

    ensemble = build_model(replace(cfg.model, members=members)).to(dev)
    for slot, model in zip(ensemble.members, loaded, strict=True):
        slot.load_state_dict(model.state_dict())
    ensemble.eval()
    val_loss, val_acc = evaluate(ensemble, data.x_val, data.y_val)
    test_loss, test_acc = evaluate(ensemble, data.x_test, data.y_test)
    first = cards[0]
    card = {
        "name": out.name,
        "version": __version__,
        "command": command,
        "seed": cfg.seed,
        "device": dev.type,
        "precision": first.get("precision"),
        "torch": torch.__version__,
        "model": {**first["model"], "members": members},
        "train": cfg.to_dict(),
        "ensemble": [
            {
                "path": f"{MEMBER_DIR.format(k + 1)}/{WEIGHTS_NAME}",
                "seed": c["seed"],
                "val_accuracy": c["metrics"]["val_accuracy"],
                "test_accuracy": c["metrics"]["test_accuracy"],
                "training_seconds": c["training_seconds"],
            }
            for k, c in enumerate(cards)
        ],
        "parameters": count_parameters(ensemble),
        "data": first["data"],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "training_seconds": round(sum(c["training_seconds"] for c in cards), 1),
        "metrics": {
            "epochs": cfg.epochs,
            "val_loss": round(val_loss, 5),
            "val_accuracy": val_acc,
            "test_loss": round(test_loss, 5),
            "test_accuracy": test_acc,
            "test_n": len(data.y_test),
        },
        "calibration": calibration_card(
            predict_logits(ensemble, data.x_val).cpu().numpy(),
            data.y_val.cpu().numpy(),
            None
            if data.held_out is None
            else predict_logits(ensemble, data.held_out).reshape(-1, NUM_CLASSES).cpu().numpy(),
            cfg.max_refused,
        ),
        "interrupted": False,
    }
    save_checkpoint(weights_path, ensemble, card)
    return weights_path, read_card(weights_path)
