"""Checkpoints: weights in safetensors beside a JSON card that rebuilds the model and records
how it was made. Never pickle. Needs torch (the `train` extra)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import ConfigError, ModelError, OutputExistsError
from ..files import atomic_path, write_atomic
from ..reading.cards import CARD_FORMAT, CARD_KEY, card_path, read_card
from .config import ModelConfig
from .nets import build_model, planned_tensors

WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "train_state.safetensors"
# The largest net a checkpoint may hold: a hundred times the largest recipe here (0.9 M),
# 400 MB of float32 weights. Cards asking for more are refused before anything is built.
MAX_PARAMETERS = 100_000_000


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, card: dict) -> Path:
    """Write weights to `path` (.safetensors) and the card beside it (.json), atomically."""
    path = Path(path)
    card = {**card, "format": CARD_FORMAT}
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(weights, tmp, metadata={CARD_KEY: json.dumps(card)})
    write_atomic(card_path(path), (json.dumps(card, indent=2) + "\n").encode())
    return path


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every weight and buffer, by name: equal digests, equal models."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_new_checkpoint(out: Path, what: str, force: bool) -> None:
    """Refuse a checkpoint path not ending in .safetensors, or one that exists without force."""
    if out.suffix != ".safetensors":
        raise ConfigError(f"{out}: the {what} checkpoint's name must end in .safetensors")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; use --force to overwrite it")


def net_count(model: dict) -> int:
    """How many nets a card's model holds: an ensemble's members, else 1."""
    return len(model.get("parts") or ()) or model.get("members", 1)


def torch_weights(model_path: Path, purpose: str) -> Path:
    """The PyTorch weights of a model: the file itself, or the .safetensors beside an .onnx
    (ModelError naming `purpose`, e.g. "fine-tuning", when there is none)."""
    if model_path.suffix == ".safetensors":
        return model_path
    beside = model_path.with_suffix(".safetensors")
    if beside.is_file():
        return beside
    raise ModelError(
        f"{model_path} has no PyTorch weights beside it ({beside.name}); {purpose} needs "
        "the .safetensors checkpoint that `digitrec train` writes"
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def planned_model(path: Path, card: dict) -> ModelConfig:
    """The settings of the model in checkpoint `path`, checked before anything is built:
    in range, within MAX_PARAMETERS, and making exactly the tensors the file holds (names
    and shapes, from its header). ModelError otherwise: the card or the file is damaged."""
    try:
        cfg = ModelConfig.from_dict(card["model"])
        planned, parameters = planned_tensors(cfg)
    except (ConfigError, ValueError, TypeError, RuntimeError) as e:
        raise ModelError(f"{path} is damaged: its card's model settings are not a net's ({e})")
    if parameters > MAX_PARAMETERS:
        raise ModelError(
            f"{path} is damaged: its card asks for a net of {parameters:,} parameters "
            f"(at most {MAX_PARAMETERS:,})"
        )
    try:
        with safe_open(path, framework="pt") as f:
            held = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{path} is not a readable safetensors file ({e})")
    if held != planned:
        missing = sorted(set(planned) - set(held))
        extra = sorted(set(held) - set(planned))
        differ = [n for n in planned if n in held and planned[n] != held[n]]
        found = []
        if differ:
            name = differ[0]
            found.append(
                f"tensor {name!r} is {held[name]} in the file, {planned[name]} by the card"
            )
        if missing:
            found.append(
                f"{len(missing)} tensors the card needs are not in the file ({missing[0]!r}...)"
            )
        if extra:
            found.append(f"{len(extra)} tensors in the file are not the card's ({extra[0]!r}...)")
        raise ModelError(
            f"{path} is damaged: the net its card describes ({_settings(cfg)}) does not fit "
            f"the weights in the file: {'; '.join(found)}"
        )
    return cfg


def _settings(cfg: ModelConfig) -> str:
    if cfg.parts:
        return f"an ensemble of {len(cfg.parts)} nets"
    nets = f", {cfg.members} members" if cfg.members > 1 else ""
    return f"{cfg.arch}, width {cfg.width}, hidden {cfg.hidden}{nets}"


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model a card describes and load its weights; eval mode."""
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    card = read_card(path)
    model = build_model(planned_model(path, card))
    try:
        state = load_file(path, device=device)
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{path} is not a readable safetensors file ({e})")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelError(f"{path}: its weights do not fit the architecture its card names ({e})")
    return model.to(device).eval(), card


def save_train_state(path: Path, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    """Optimizer tensors in safetensors, everything else as JSON metadata: enough to resume."""
    sd = optimizer.state_dict()
    tensors = {
        f"{idx}.{key}": torch.as_tensor(value).detach().cpu().contiguous()
        for idx, slot in sd["state"].items()
        for key, value in slot.items()
    }
    info = {"param_groups": sd["param_groups"], **meta}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"state": json.dumps(info)})


def load_train_state(path: Path, optimizer: torch.optim.Optimizer) -> dict:
    with safe_open(path, framework="pt") as f:
        info = json.loads(f.metadata()["state"])
        state: dict[int, dict] = {}
        for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            idx, key = name.split(".", 1)
            state.setdefault(int(idx), {})[key] = f.get_tensor(name)
    optimizer.load_state_dict({"state": state, "param_groups": info.pop("param_groups")})
    return info
