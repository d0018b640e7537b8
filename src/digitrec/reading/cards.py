"""Model cards: the JSON that travels with every model file. Torch-free, so the Predictor and
`models`-style listings can read cards without the training extra."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ..errors import ModelError

CARD_FORMAT = "digitrec-model/1"
CARD_KEY = "digitrec_card"  # metadata key inside .safetensors and .onnx files


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def check_card(card: object, where: str) -> dict:
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or "model" not in card:
        raise ModelError(
            f"{where} is not a digitrec model (no digitrec card in it or beside it); "
            "give a .onnx or .safetensors file written by `digitrec train` or `digitrec export`"
        )
    return card


def _safetensors_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return {}
        (size,) = struct.unpack("<Q", head)
        if size > 100_000_000:
            return {}
        header = json.loads(f.read(size))
    return header.get("__metadata__") or {}


def read_card(model_path: str | os.PathLike, embedded: str | None = None) -> dict:
    """The card beside a model file, else the one embedded in it (`embedded` for ONNX)."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        if path.suffix == ".json":
            return check_card(json.loads(path.read_text()), str(path))
        side = card_path(path)
        if side.is_file():
            return check_card(json.loads(side.read_text()), str(path))
        if embedded is None and path.suffix == ".safetensors":
            embedded = _safetensors_metadata(path).get(CARD_KEY)
        return check_card(json.loads(embedded) if embedded else None, str(path))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, struct.error) as e:
        raise ModelError(f"{path} is not a digitrec model: its card cannot be read ({e})")


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def _times(arch: str, n: int) -> str:
    return arch if n == 1 else f"{arch} x {n}"


def _arch(model: dict) -> str:
    """'bncnn', 'bncnn x 4' (an ensemble of one net), 'ensemble: bncnn x 4, deep x 2'."""
    parts = [p.get("arch", "?") for p in model.get("parts") or []]
    if parts:
        return "ensemble: " + ", ".join(_times(a, parts.count(a)) for a in dict.fromkeys(parts))
    return _times(str(model.get("arch")), model.get("members", 1))


def summary(card: dict) -> str:
    """A few human lines about a model, for `digitrec predict` and friends."""
    m = card.get("metrics", {})
    lines = [
        f"model      {card.get('name', '?')} (digitrec {card.get('version', '?')}, "
        f"{card.get('date', '?')[:10]})",
        f"arch       {_arch(card['model'])} ({_count(card.get('parameters'))} parameters)",
    ]
    if "ensemble" in card:
        given = [
            (e.get("name") or e["path"])
            + (f" ({_times(e['arch'], e.get('members', 1))})" if "arch" in e else "")
            for e in card["ensemble"]
        ]
        lines.append(f"ensemble   averages {', '.join(given)}")
    if "train" in card:
        lines.append(
            f"recipe     preset {card['train'].get('preset', '?')}, "
            f"{m.get('epochs', '?')} epochs, seed {card.get('seed', '?')}"
        )
    if "test_accuracy" in m:
        lines.append(
            f"accuracy   MNIST test {100 * m['test_accuracy']:.2f}% "
            f"(validation {100 * m.get('val_accuracy', float('nan')):.2f}%)"
        )
    return "\n".join(lines)
