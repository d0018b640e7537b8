"""Ensembles: `fit_ensemble(config, n) -> (checkpoint path, card)` trains n members of one
recipe, each with its own seed, and `combine_models(paths, out)` joins trained models of
any architectures; either saves one model (model.Ensemble) whose logits are the log of the
members' mean probabilities: it exports to one ONNX graph and the Predictor serves it
exactly like a single model."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..errors import ConfigError, ModelError, OutputExistsError
from ..reading.cards import read_card
from .card import finish_card, new_card, stamped, validation_figures
from .checkpoint import (
    STATE_NAME,
    WEIGHTS_NAME,
    check_new_checkpoint,
    file_sha256,
    load_checkpoint,
    net_count,
    torch_weights,
)
from .config import DEFAULT_PRESET, ModelConfig, TrainConfig, preset
from .fit import add_held_out_pen, fit, prepare_data, ranks_from_env, resolve_device
from .measure import predict_logits
from .nets import ENSEMBLE, Ensemble, build_model, count_parameters

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
        TrainConfig.from_dict(card.get("train") or {}) == cfg
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
    pen_file=None,
) -> tuple[Path, dict]:
    """Train `members` nets (out_dir/member-1, -2, ...), then write the ensemble as
    out_dir/model.safetensors with its card: the members' figures and the ensemble's own
    accuracy and calibration. With resume=True, finished members are kept and a stopped
    one continues."""
    out = Path(out_dir)
    _check_ensemble(cfg, members, out / WEIGHTS_NAME, force or resume)
    dev = resolve_device(device)
    data = prepare_data(cfg, data_dir, dev, progress, pen_file)
    loaded, cards = [], []
    for k in range(members):
        folder = out / MEMBER_DIR.format(k + 1)
        member_cfg = member_config(cfg, k)
        if not (resume and _finished(folder, member_cfg)):
            if progress:
                print(f"member {k + 1} of {members} (seed {member_cfg.seed})", file=sys.stderr)
            _fit_member(member_cfg, folder, dev, data, resume, force, progress, command)
        model, card = load_checkpoint(folder / WEIGHTS_NAME, device=str(dev))
        loaded.append(model)
        cards.append(card)
    entries = [
        {"path": f"{MEMBER_DIR.format(k + 1)}/{WEIGHTS_NAME}", **_member_entry(c)}
        for k, c in enumerate(cards)
    ]
    given = {"name": out.name, "command": command, "seed": cfg.seed, "train": cfg.to_dict()}
    return _save_ensemble(out / WEIGHTS_NAME, loaded, cards, entries, data, cfg.max_refused, given)


def _check_ensemble(cfg: TrainConfig, members: int, weights_path: Path, overwrite: bool) -> None:
    if members < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, not {members}")
    if cfg.task != "digits":
        raise ConfigError("ensembles are for the digit reader (task digits)")
    if ranks_from_env().world > 1:
        raise ConfigError(
            "--ensemble trains its members one after another in one process: run it without "
            "torchrun (or train each member under torchrun with --seed, one run each)"
        )
    if weights_path.exists() and not overwrite:
        raise OutputExistsError(f"{weights_path} exists; use --force to overwrite it, or --resume")


def _fit_member(cfg: TrainConfig, folder: Path, dev, data, resume, force, progress, command):
    """Train one member on the ensemble's data, continuing it if it was stopped; Ctrl-C
    stops the whole ensemble."""
    stopped = (folder / WEIGHTS_NAME).is_file() and (folder / STATE_NAME).is_file()
    _, card = fit(
        cfg,
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


def combine_models(
    paths: list[str | Path],
    out: str | Path,
    data_dir=None,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    command: str = "",
    name: str | None = None,
    pen_file=None,
) -> tuple[Path, dict]:
    """Join trained digit readers (of any architectures and recipes) into one model that
    averages their probabilities, written at `out` (.safetensors) with its card: each
    model's file, SHA-256 and figures, the ensemble's own accuracy and calibration. A model
    that is itself an ensemble brings its members, each weighing as much as any other."""
    out = Path(out)
    if len(paths) < 2:
        raise ConfigError(f"an ensemble needs at least 2 models, not {len(paths)}")
    check_new_checkpoint(out, "ensemble", force)
    dev = resolve_device(device)
    loaded, cards, entries = [], [], []
    for given in paths:
        weights = torch_weights(Path(given), "an ensemble")
        model, card = load_checkpoint(weights, device=str(dev))
        if card.get("train", {}).get("task", "digits") != "digits" or "calibration" not in card:
            raise ModelError(
                f"{weights} is not a finished digit reader (a pair reader, or a run still "
                "training); an ensemble joins digit readers"
            )
        loaded.append(model)
        cards.append(card)
        entries.append(
            {"path": str(weights.resolve()), "sha256": file_sha256(weights), **_member_entry(card)}
        )
    # MNIST and held-out non-digits as the first trained model saw them (the validation
    # split is the same in every run; an ensemble made by combine has no recipe of its own),
    # and the held-out writers' pen digits when a model learned from pen digits: the
    # refusal rule is then chosen on real writers, as each model's own was
    trained = next((c["train"] for c in cards if c.get("train")), None)
    recipe = TrainConfig.from_dict(trained) if trained else preset(DEFAULT_PRESET)
    data = prepare_data(replace(recipe, redrawn=0, pen=0, framed=0), data_dir, dev, progress)
    pen = next((c["train"] for c in cards if c.get("train", {}).get("pen")), None)
    if pen:
        add_held_out_pen(data, TrainConfig.from_dict(pen), pen_file, dev)
    given = {"name": name or out.stem, "command": command, "seed": None}
    out.parent.mkdir(parents=True, exist_ok=True)
    return _save_ensemble(out, loaded, cards, entries, data, recipe.max_refused, given)


def _member_entry(card: dict) -> dict:
    m = card["metrics"]
    return {
        "name": card.get("name"),
        "seed": card.get("seed"),
        "preset": card.get("train", {}).get("preset"),
        "arch": card["model"]["arch"],
        "members": net_count(card["model"]),
        "val_accuracy": m["val_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "training_seconds": card.get("training_seconds"),
    }


def _nets(model: torch.nn.Module, card: dict) -> list[tuple[torch.nn.Module, ModelConfig]]:
    """A model's nets with their settings: an ensemble's members, or the model itself."""
    cfg = ModelConfig.from_dict(card["model"])
    if not isinstance(model, Ensemble):
        return [(model, cfg)]
    parts = cfg.parts or (replace(cfg, members=1),) * cfg.members
    return list(zip(model.members, parts, strict=True))


def ensemble_config(parts: list[ModelConfig]) -> ModelConfig:
    """Nets of one architecture and size: `members` of it; else arch "ensemble" with parts."""
    if all(p == parts[0] for p in parts):
        return replace(parts[0], members=len(parts))
    return ModelConfig(ENSEMBLE, parts=tuple(parts))


def _save_ensemble(
    path: Path, loaded: list, cards: list[dict], entries: list[dict], data, max_refused, given
) -> tuple[Path, dict]:
    """Build the ensemble of the loaded models' nets, measure and calibrate it on `data`,
    save it at `path` with its card (`given`: name, command, seed and any recipe)."""
    nets = [net for model, c in zip(loaded, cards, strict=True) for net in _nets(model, c)]
    cfg = ensemble_config([c for _, c in nets])
    dev = data.x_val.device
    ensemble = build_model(cfg).to(dev)
    for slot, (net, _) in zip(ensemble.members, nets, strict=True):
        slot.load_state_dict(net.state_dict())
    ensemble.eval()
    val_logits = predict_logits(ensemble, data.x_val)
    epochs = {c["metrics"].get("epochs") for c in cards}
    metrics = {
        **({"epochs": epochs.pop()} if len(epochs) == 1 else {}),
        **validation_figures(val_logits, data.y_val),
    }
    first = cards[0]
    card = new_card(
        device=dev,
        model=asdict(cfg),
        parameters=count_parameters(ensemble),
        precision=first.get("precision"),
        **given,
        ensemble=entries,
        data=first["data"],
    )
    card = stamped(card, sum(c.get("training_seconds") or 0 for c in cards), metrics)
    return path, finish_card(path, ensemble, card, data, max_refused, val_logits)
