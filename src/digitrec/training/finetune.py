"""Fine-tuning: `finetune(parent, sources) -> (checkpoint path, card)` adapts a trained model
to new handwriting (folder datasets, the feedback database) without forgetting MNIST.

Every new picture goes through preprocess.to_mnist, as at inference. A stratified part of
the new samples is held out to measure; the rest is learned in batches that mix them with
MNIST's training digits (and, when the parent learned to refuse non-digits, with the same
kind of non-digits), from the parent's weights, at a low learning rate. The new model is
calibrated on MNIST's validation split like any other, and its card names its parent and
the SHA-256 of every data source.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import list_folder_dataset
from ..errors import ConfigError, DataError, ModelError
from ..reading.parallel import default_readers, read_many
from .augment import augment_batch
from .card import finish_card, new_card, stamped, validation_figures
from .checkpoint import (
    check_new_checkpoint,
    file_sha256,
    load_checkpoint,
    torch_weights,
)
from .config import AugmentConfig, TrainConfig
from .fit import one_cycle, prepare_data, resolve_device, to_tensor_float, uniform_loss
from .measure import loss_and_accuracy_of, predict_logits


@dataclass(frozen=True)
class FinetuneConfig:
    """How a model is adapted. The defaults keep MNIST's accuracy while learning a new hand."""

    # Chosen on optdigits32 (benchmarks/finetune_optdigits.py, docs/benchmarks.md): more
    # epochs or a higher rate learn the new hand better and cost MNIST more; a larger share
    # of MNIST in each batch keeps MNIST and learns the hand less.
    epochs: int = 40  # passes over the new training samples
    new_per_batch: int = 64  # new samples in each batch ...
    mnist_per_batch: int = 64  # ... beside this many MNIST training digits
    lr: float = 1e-3  # peak learning rate: a third of training's, the model is already good
    weight_decay: float = 1e-4
    warmup: float = 0.1
    holdout: float = 0.1  # share of the new samples held out to measure (stratified)
    outliers: int = 4000  # non-digits kept in view when the parent learned to refuse them
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(elastic_px=1.0))
    seed: int = 0


@dataclass
class Source:
    """New labelled pictures in MNIST form, and what they came from."""

    kind: str  # "folder" or "feedback"
    path: Path
    x: np.ndarray  # (N, 28, 28) float32
    y: np.ndarray  # (N,) int64
    sha256: str  # of the pictures and their labels, as read
    skipped: list[str] = field(default_factory=list)  # pictures that could not be read

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "sha256": self.sha256,
            "samples": len(self.y),
            "skipped": len(self.skipped),
        }


def _mnist_form(pictures, what: str) -> tuple[list[np.ndarray], list[int], list[str]]:
    """to_mnist over (name, picture, label) triples; unreadable or blank pictures are named
    and left out, never guessed."""
    pictures = list(pictures)
    read = read_many([picture for _, picture, _ in pictures], default_readers())
    if not read.kept:
        raise DataError(f"{what} holds no readable picture of a digit")
    skipped = [f"{pictures[out.index][0]}: {out.message}" for out in read.left_out]
    return list(read.inputs), [pictures[i][2] for i in read.kept], skipped


def folder_source(root: str | Path) -> Source:
    """A folder dataset, DIR/<digit>/*.png|jpg; its digest covers every file and label."""
    items = list_folder_dataset(root)
    digest = hashlib.sha256()
    pictures, unreadable = [], []
    for path, label in items:
        try:
            data = path.read_bytes()
        except OSError as e:  # permissions, a broken link: named and left out, like a bad picture
            unreadable.append(f"{path}: cannot be read ({e.strerror or e})")
            continue
        digest.update(f"{label}/{path.name}\0".encode())
        digest.update(hashlib.sha256(data).digest())
        pictures.append((str(path), data, label))
    xs, ys, skipped = _mnist_form(pictures, str(root))
    return Source(
        "folder", Path(root), np.stack(xs), np.array(ys), digest.hexdigest(), unreadable + skipped
    )


def feedback_source(db: str | Path) -> Source:
    """The corrected samples people stored from the page and the window."""
    from ..feedback import FeedbackStore

    path = Path(db).expanduser()
    if not path.is_file():
        raise DataError(f"no feedback database at {path}")
    digest = hashlib.sha256()
    pictures = []
    with FeedbackStore(path) as store:
        for s in store.samples():
            digest.update(f"{s.id}:{s.label}\0".encode())
            digest.update(hashlib.sha256(s.png).digest())
            pictures.append((f"{path} sample {s.id}", s.png, s.label))
    if not pictures:
        raise DataError(f"the feedback database {path} holds no samples yet")
    xs, ys, skipped = _mnist_form(pictures, str(path))
    return Source("feedback", path, np.stack(xs), np.array(ys), digest.hexdigest(), skipped)


def stratified_split(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: `share` of every digit held out (at least one of a digit
    that has two or more samples, none of a digit with one)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for digit in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == digit))
        k = 0 if share <= 0 or len(idx) < 2 else max(1, round(share * len(idx)))
        held += list(idx[:k])
        train += list(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float | None:
    return loss_and_accuracy_of(model, x, y)[1] if len(y) else None


def finetune(
    parent: str | Path,
    sources: list[Source],
    out: str | Path,
    cfg: FinetuneConfig = FinetuneConfig(),
    data_dir=None,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    command: str = "",
    name: str | None = None,
) -> tuple[Path, dict]:
    """Adapt the model at `parent` (.safetensors, or an .onnx with one beside it) to the
    new samples; write the new checkpoint at `out` (.safetensors) with its card."""
    out = Path(out)
    _check_request(out, sources, cfg, force)
    weights = torch_weights(Path(parent), "fine-tuning")
    dev = resolve_device(device)
    model, parent_card = _digit_reader(weights, dev)
    recipe = TrainConfig.from_dict(parent_card.get("train", {}))
    learn, held = _new_samples(sources, cfg, dev)
    # MNIST as the parent saw it (the same validation split), non-digits if it learned them
    mnist_cfg = replace(
        recipe,
        outliers=min(recipe.outliers, cfg.outliers),
        redrawn=0,
        pen=0,
        framed=0,
        seed=cfg.seed,
        limit=None,
    )
    data = prepare_data(mnist_cfg, data_dir, dev, progress)
    before = {
        "heldout_accuracy_before": _accuracy(model, *held),
        "test_accuracy_before": _accuracy(model, data.x_test, data.y_test),
    }
    start = time.perf_counter()
    _adapt(model, cfg, *learn, data, recipe, progress)
    seconds = time.perf_counter() - start
    val_logits = predict_logits(model, data.x_val)
    metrics = {
        **before,
        "heldout_accuracy": _accuracy(model, *held),
        "heldout_n": len(held[1]),
        **validation_figures(val_logits, data.y_val),
        "epochs": cfg.epochs,
    }
    fields = _card_fields(cfg, weights, parent_card, sources, data, len(learn[1]))
    card = stamped(new_card(name or out.stem, command, cfg.seed, dev, **fields), seconds, metrics)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, finish_card(out, model, card, data, recipe.max_refused, val_logits)


def _check_request(out: Path, sources: list[Source], cfg: FinetuneConfig, force: bool) -> None:
    check_new_checkpoint(out, "fine-tuned", force)
    if not sources:
        raise ConfigError("nothing to fine-tune on: give --data DIR or --feedback DB")
    if not 0 <= cfg.holdout < 1:
        raise ConfigError(f"--holdout must be at least 0 and under 1, not {cfg.holdout}")


def _digit_reader(weights: Path, dev: torch.device) -> tuple[torch.nn.Module, dict]:
    model, card = load_checkpoint(weights, device=str(dev))
    if card.get("train", {}).get("task", "digits") != "digits":
        raise ModelError(f"{weights} is not a digit reader; only digit readers are fine-tuned")
    return model, card


def _new_samples(sources: list[Source], cfg: FinetuneConfig, dev: torch.device) -> list[tuple]:
    """The new samples to learn and those held out to measure, each as (pictures, labels)
    on the device."""
    x = np.concatenate([s.x for s in sources])
    y = np.concatenate([s.y for s in sources])
    learn, held = stratified_split(y, cfg.holdout, cfg.seed)
    if len(learn) == 0:
        raise DataError("every new sample was held out: give more samples or a lower --holdout")
    return [
        (to_tensor_float(x[idx], dev), torch.from_numpy(y[idx]).to(dev)) for idx in (learn, held)
    ]


def _card_fields(cfg: FinetuneConfig, weights: Path, parent_card: dict, sources, data, learned):
    """A fine-tuned model's own fields of its card: its parent's architecture and recipe,
    this recipe, the parent by name and SHA-256, MNIST's files and every new source."""
    return {
        "model": parent_card["model"],
        "parameters": parent_card.get("parameters"),
        "train": parent_card.get("train", {}),
        "finetune": {
            **{k: v for k, v in cfg.__dict__.items() if k != "augment"},
            "augment": cfg.augment.__dict__,
            "new_train_samples": learned,
        },
        "parent": {
            "name": parent_card.get("name", weights.stem),
            "path": str(weights.resolve()),
            "sha256": file_sha256(weights),
        },
        "data": {
            "sha256": data.sha256,
            "sources": [s.describe() for s in sources],
            "validation": parent_card.get("data", {}).get("validation"),
        },
    }


def _adapt(model, cfg: FinetuneConfig, x, y, data, recipe: TrainConfig, progress: bool) -> None:
    """The training loop: every step a batch of new samples beside MNIST digits (and
    non-digits taught as none of the ten), one-cycle learning rate."""
    from tqdm import tqdm

    dev = x.device
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = max(1, -(-len(y) // cfg.new_per_batch))
    total = cfg.epochs * per_epoch
    n_out = int(recipe.outlier_share * cfg.mnist_per_batch) if data.outliers is not None else 0
    model.train()
    steps = tqdm(range(total), desc="fine-tuning", disable=not progress, file=sys.stderr)
    for step in steps:
        lr = one_cycle(cfg.lr, cfg.warmup, step, total, start=0.1, floor=0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        new = torch.randint(len(y), (min(cfg.new_per_batch, len(y)),), generator=gen, device=dev)
        old = torch.randint(len(data.y), (cfg.mnist_per_batch,), generator=gen, device=dev)
        xb = torch.cat([x[new], data.x[old]])
        yb = torch.cat([y[new], data.y[old]])
        if n_out:
            pick = torch.randint(len(data.outliers), (n_out,), generator=gen, device=dev)
            xb = torch.cat([xb, data.outliers[pick]])
        out = model(augment_batch(xb, cfg.augment, gen)).float()
        loss = F.cross_entropy(out[: len(yb)], yb)
        if n_out:
            loss = loss + recipe.outlier_weight * uniform_loss(out[len(yb) :])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
