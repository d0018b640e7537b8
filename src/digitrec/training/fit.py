"""Training and evaluation: `fit(config) -> (checkpoint path, card)`. No argument parsing."""

from __future__ import annotations

import csv
import importlib
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data import load_mnist
from ..errors import ConfigError, DigitrecError, OutputExistsError
from ..reading.cards import read_card
from .augment import augment_batch
from .banks import cached
from .card import finish_card, new_card, stamped
from .charts import curves_png
from .checkpoint import (
    STATE_NAME,
    WEIGHTS_NAME,
    file_sha256,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
    save_train_state,
    torch_weights,
    weights_digest,
)
from .config import TrainConfig
from .framed import framed_bank
from .measure import distill_loss, loss_and_accuracy, loss_and_right, predict_logits
from .nets import build_model, count_parameters
from .pen import find_unipen, pen_bank, pen_file_sha256, pen_source
from .redraw import lone_digits, pair_bank, redrawn_bank, touching_pairs
from .synthetic import non_digit_bank

VAL_SPLIT_SEED = 20260101  # fixed, so every run holds out the same validation images
LOG_NAME = "log.csv"
MNIST_SOURCE = {
    "name": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges): training split",
    "licence": "CC BY-SA 3.0",
}
CURVES_NAME = "curves.png"
LOG_FIELDS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
    "images_per_s",
]


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for, but this PyTorch sees no CUDA GPU "
            "(a CPU build, or no driver); use --device cpu or install the CUDA build of PyTorch"
        )
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a distributed run (torchrun sets RANK, WORLD_SIZE and
    LOCAL_RANK); one process alone is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def ranks_from_env() -> Ranks:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def _join_process_group(ranks: Ranks, dev: torch.device) -> tuple[torch.device, bool]:
    """The device this rank trains on, and whether this call started the process group
    (NCCL between GPUs, gloo between CPU processes)."""
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", ranks.local)
        torch.cuda.set_device(dev)
    if dist.is_initialized():
        return dev, False
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev, True


def _sync_buffers(model: torch.nn.Module) -> None:
    """Rank 0's batch-norm statistics to every rank: parameters agree after every step (their
    gradients are averaged), running statistics only once they are sent."""
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, 0)


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: it doubles the speed of convolutions on
    GPUs and on CPUs with AMX or AVX-512 BF16 units, and slows down those without."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown precision {precision!r}: use auto, fp32 or bf16")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    fast = [
        getattr(torch.cpu, f"_is_{unit}_supported", None) for unit in ("amx_tile", "avx512_bf16")
    ]
    return any(check() for check in fast if check is not None)


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1], channels-last. The bytes go to
    the device and become floats there: a quarter of the copy, no host-side float array."""
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).to(device)
    return x.unsqueeze(1).float().div_(255.0).contiguous(memory_format=torch.channels_last)


def to_tensor_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """float (N, 28, 28) in [0, 1] -> (N, 1, 28, 28), channels-last."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).to(device).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last)


def outlier_bank(
    cfg: TrainConfig, digits: np.ndarray, device, seed_offset: int = 0
) -> torch.Tensor | None:
    """Synthetic non-digits for outlier exposure: scribbles, shapes and letters, and a
    quarter as many pairs of training digits run together (seed_offset=1: a held-out set)."""
    if not cfg.outliers:
        return None
    n = cfg.outliers if seed_offset == 0 else min(cfg.outliers, 2000)
    seed = cfg.seed * 7919 + seed_offset
    bank = np.concatenate(
        [cached(non_digit_bank, n, seed), cached(touching_pairs, digits, n // 4, seed)]
    )
    return to_tensor_float(bank, device)


@dataclass
class TrainData:
    """Everything a run learns from and is measured on, as tensors on its device."""

    x: torch.Tensor  # training pictures (N, 1, H, W) in [0, 1], and their labels
    y: torch.Tensor
    x_val: torch.Tensor  # the validation split: chooses nothing but the calibration
    y_val: torch.Tensor
    x_test: torch.Tensor  # MNIST's test set: only ever reported
    y_test: torch.Tensor
    sha256: dict
    extra: tuple[torch.Tensor, torch.Tensor] | None = None  # re-drawn digits, labelled
    pen: tuple[torch.Tensor, torch.Tensor] | None = None  # real writers' pen digits, labelled
    framed: tuple[torch.Tensor, torch.Tensor] | None = None  # digits boxed as forms box them
    # pen digits of other writers, never trained on: they choose the refusal threshold
    pen_val: tuple[torch.Tensor, torch.Tensor] | None = None
    pen_max_refused: float = 0.0  # ... refusing at most this share of them
    sources: list[dict] = field(default_factory=list)  # every data source, for the card
    outliers: torch.Tensor | None = None  # non-digits, taught as "none of the ten"
    held_out: torch.Tensor | None = None  # other non-digits, to measure refusals on


def prepare_data(
    cfg: TrainConfig, data_dir, device, progress: bool = True, pen_file=None
) -> TrainData:
    """MNIST split into training and validation images (the same in every run), with the
    synthetic banks and real writers' pen digits (from `pen_file`, else $DIGITREC_UNIPEN)
    the recipe asks for; for the pair reader, pairs made of each split."""
    if cfg.task not in ("digits", "pairs"):
        raise ConfigError(f"unknown task {cfg.task!r}: use digits or pairs")
    train_split = load_mnist("train", data_dir, progress=progress)
    test_split = load_mnist("test", data_dir, progress=progress)
    train_idx, val_idx = split_indices(len(train_split.labels), cfg.val_size)
    if cfg.limit:
        train_idx, val_idx = train_idx[: cfg.limit], val_idx[: min(len(val_idx), cfg.limit)]
    if cfg.task == "pairs":
        return _pair_data(cfg, train_split, test_split, train_idx, val_idx, device)
    images, labels = train_split.images, train_split.labels
    data = TrainData(
        *_labelled(images[train_idx], labels[train_idx], device),
        *_labelled(images[val_idx], labels[val_idx], device),
        *_labelled(test_split.images, test_split.labels, device),
        {**train_split.sha256, **test_split.sha256},
    )
    if cfg.redrawn:
        bank = cached(
            redrawn_bank, images[train_idx], labels[train_idx], cfg.redrawn, cfg.seed * 7919
        )
        data.extra = _labelled(*bank, device)
    if cfg.pen:
        _add_pen_digits(data, cfg, pen_file, device)
    if cfg.framed:
        _add_framed_digits(data, cfg, images[train_idx], labels[train_idx], device)
    data.outliers = outlier_bank(cfg, images[train_idx], device)
    data.held_out = outlier_bank(cfg, images[train_idx], device, seed_offset=1)
    data.sources = [MNIST_SOURCE] + data.sources + _generated(cfg)
    return data


def _add_pen_digits(data: TrainData, cfg: TrainConfig, pen_file, device) -> None:
    """UNIPEN's train digits, drawn: those of most writers to learn from, those of the
    writers held out (pen.HELD_OUT of them) to choose the refusal threshold on."""
    path, sha256, n_val = add_held_out_pen(data, cfg, pen_file, device)
    n = _pen_count(cfg)
    data.pen = _labelled(*cached(pen_bank, str(path), sha256, n, cfg.seed * 7919, "learn"), device)
    data.sources.append(pen_source(path, sha256, n, n_val))


def _add_framed_digits(data: TrainData, cfg: TrainConfig, images, labels, device) -> None:
    """Training digits, MNIST's and (when the recipe learns from them) the pen digits,
    stretched to fill a small box as form readers keep them (training/framed.py)."""
    if data.pen is not None:
        pen_x = (data.pen[0].squeeze(1).cpu().numpy() * 255).round().astype(np.uint8)
        images = np.concatenate([images, pen_x])
        labels = np.concatenate([labels, data.pen[1].cpu().numpy()])
    n = min(cfg.framed, cfg.limit) if cfg.limit else cfg.framed
    data.framed = _labelled(*cached(framed_bank, images, labels, n, cfg.seed * 7919 + 2), device)


def _pen_count(cfg: TrainConfig) -> int:
    return min(cfg.pen, cfg.limit) if cfg.limit else cfg.pen  # smoke runs draw as few


def add_held_out_pen(data: TrainData, cfg: TrainConfig, pen_file, device) -> tuple:
    """The held-out writers' digits, drawn plainly, that the refusal rule is chosen on (the
    same in every run of a recipe); returns the UNIPEN file, its SHA-256 and how many."""
    path = find_unipen(pen_file)
    sha256 = pen_file_sha256(path)
    n_val = min(_pen_count(cfg), cfg.val_size)
    data.pen_val = _labelled(
        *cached(pen_bank, str(path), sha256, n_val, VAL_SPLIT_SEED, "held_out"), device
    )
    data.pen_max_refused = cfg.pen_max_refused
    return path, sha256, n_val


def _generated(cfg: TrainConfig) -> list[dict]:
    made = []
    if cfg.redrawn:
        made.append(
            {"name": "MNIST training digits re-drawn by training/redraw.py", "n": cfg.redrawn}
        )
    if cfg.framed:
        made.append(
            {
                "name": "MNIST training digits and UNIPEN train pen digits stretched to fill a "
                "box as form readers keep them, by training/framed.py",
                "n": cfg.framed,
                "licence": "made here from the MNIST and UNIPEN digits above, under theirs",
            }
        )
    if cfg.outliers:
        made.append(
            {
                "name": "non-digits drawn by training/synthetic.py (scribbles, shapes, DejaVu "
                "letters) and pairs of MNIST training digits run together",
                "n": cfg.outliers + cfg.outliers // 4,
                "licence": "made here; DejaVu fonts: Bitstream Vera licence",
            }
        )
    return made


def _pair_data(cfg: TrainConfig, train_split, test_split, train_idx, val_idx, device) -> TrainData:
    """Pairs of digits run together, made of each split apart; with single digits, which
    the pair reader must not read as two, as its outliers."""
    images, labels = train_split.images, train_split.labels
    seed = cfg.seed * 7919
    n_train, n_val = min(cfg.pairs, len(train_idx) * 2), min(cfg.val_size, len(val_idx) * 2)
    n_test = min(10000, 2 * cfg.limit) if cfg.limit else 10000
    data = TrainData(
        *_labelled(*cached(pair_bank, images[train_idx], labels[train_idx], n_train, seed), device),
        *_labelled(*cached(pair_bank, images[val_idx], labels[val_idx], n_val, seed + 1), device),
        *_labelled(
            *cached(pair_bank, test_split.images, test_split.labels, n_test, seed + 2), device
        ),
        {**train_split.sha256, **test_split.sha256},
    )
    if cfg.outliers:
        lone = cached(lone_digits, images[train_idx], cfg.outliers, seed)
        data.outliers = to_tensor_float(lone, device)
        held = cached(lone_digits, images[val_idx], 2000, seed + 1)
        data.held_out = to_tensor_float(held, device)
    return data


def _labelled(x: np.ndarray, y: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    x = to_tensor(x, device) if x.dtype == np.uint8 else to_tensor_float(x, device)
    return x, torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)


def split_indices(n: int, val_size: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(VAL_SPLIT_SEED).permutation(n)
    return perm[val_size:], perm[:val_size]


def one_cycle(
    peak: float, warmup: float, step: int, total: int, start: float = 0.04, floor: float = 0.002
) -> float:
    """The learning rate at `step` of `total`: up from start*peak over the first `warmup`
    share of the steps, then down a half cosine to floor*peak."""
    warm = max(1, int(warmup * total))
    if step < warm:
        return peak * (start + (1 - start) * step / warm)
    progress = (step - warm) / max(1, total - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    return one_cycle(cfg.lr, cfg.warmup, step, total)


def uniform_loss(logits: torch.Tensor) -> torch.Tensor:
    """Outlier exposure: cross-entropy from these logits to the uniform distribution over
    the ten digits (a non-digit should favour none of them)."""
    return -F.log_softmax(logits, dim=-1).mean()


def _import_optimizer_support() -> None:
    """torch's optimizers import torch._dynamo when the first one is made (a second or
    more): do it on a thread while the data loads, not after."""
    if "torch._dynamo" not in sys.modules:
        threading.Thread(
            target=importlib.import_module, args=("torch._dynamo",), daemon=True
        ).start()


def _make_optimizer(cfg: TrainConfig, model) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer {cfg.optimizer!r}: use adam or adamw")


def _write_log(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def resume_config(out_dir: str | Path, epochs: int | None = None) -> TrainConfig:
    """The recipe a stopped run was started with, optionally given more epochs."""
    saved = TrainConfig.from_dict(read_card(Path(out_dir) / WEIGHTS_NAME)["train"])
    return replace(saved, epochs=epochs or saved.epochs)


def fit(
    cfg: TrainConfig,
    out_dir: str | Path,
    data_dir=None,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    command: str = "",
    data: TrainData | None = None,
    pen_file=None,
) -> tuple[Path, dict]:
    """Train, saving a checkpoint after every epoch; returns the final checkpoint and card.

    With resume=True, `cfg` must be the run's own recipe (see resume_config).
    Ctrl-C stops after cleaning up; the last finished epoch's checkpoint is kept and reported.
    `data` (from prepare_data, on the training device) saves preparing it again.
    Under torchrun, every process trains on its share of each batch (DistributedDataParallel:
    NCCL on GPUs, gloo on CPUs); rank 0 writes the files.
    """
    out = Path(out_dir)
    _check_out(out, resume, force)
    run = _start(cfg, out, data_dir, device, progress, data, pen_file)
    if resume:
        _load_stopped_run(run)
    run.card = _first_card(run, command)
    out.mkdir(parents=True, exist_ok=True)
    interrupted, val_logits = _train_epochs(run)
    return run.weights_path, _finish(run, interrupted, val_logits)


@dataclass
class _Run:
    """A run under way: its recipe and folder, where it trains, how far it has got."""

    cfg: TrainConfig
    out: Path
    ranks: Ranks
    dev: torch.device
    started_group: bool  # this run started the process group, so it ends it
    progress: bool
    data: TrainData
    model: torch.nn.Module
    net: torch.nn.Module  # what trains: the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    teacher: torch.nn.Module | None = None  # the model distilled from (cfg.teacher)
    card: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # the log, on rank 0
    finished: int = 0  # the last epoch finished, on every rank
    elapsed: float = 0.0

    @property
    def weights_path(self) -> Path:
        return self.out / WEIGHTS_NAME

    @property
    def state_path(self) -> Path:
        return self.out / STATE_NAME


def _check_out(out: Path, resume: bool, force: bool) -> None:
    weights_path, state_path = out / WEIGHTS_NAME, out / STATE_NAME
    if resume:
        if not (weights_path.is_file() and state_path.is_file()):
            raise DigitrecError(
                f"nothing to resume in {out}: it has no {WEIGHTS_NAME} and {STATE_NAME}"
            )
    elif weights_path.exists() and not force:
        raise OutputExistsError(f"{weights_path} exists; use --force to overwrite it, or --resume")


def _start(
    cfg: TrainConfig, out: Path, data_dir, device: str, progress: bool, data, pen_file=None
) -> _Run:
    """Join the process group (under torchrun), prepare the data, build the model and its
    optimizer."""
    _import_optimizer_support()
    ranks = ranks_from_env()
    dev, started_group = resolve_device(device), False
    if ranks.world > 1:
        dev, started_group = _join_process_group(ranks, dev)
    progress = progress and ranks.main
    if dev.type == "cuda":  # fixed picture sizes: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
    if data is None:
        data = prepare_data(cfg, data_dir, dev, progress, pen_file)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(dev).to(memory_format=torch.channels_last)
    net = model
    if ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = _make_optimizer(cfg, model)
    teacher = _load_teacher(cfg, dev)
    return _Run(cfg, out, ranks, dev, started_group, progress, data, model, net, optimizer, teacher)


def _load_teacher(cfg: TrainConfig, dev: torch.device) -> torch.nn.Module | None:
    """The model the recipe distills from, frozen; None without one."""
    if not cfg.teacher:
        return None
    if cfg.task != "digits":
        raise ConfigError("a teacher teaches digit readers only; the pair reader has none")
    teacher, card = load_checkpoint(torch_weights(Path(cfg.teacher), "distilling"), str(dev))
    if card.get("train", {}).get("task", "digits") != "digits":
        raise ConfigError(f"{cfg.teacher} reads pairs; a teacher must read single digits")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(memory_format=torch.channels_last)


def _load_stopped_run(run: _Run) -> None:
    saved, _ = load_checkpoint(run.weights_path, device=str(run.dev))
    run.model.load_state_dict(saved.state_dict())
    info = load_train_state(run.state_path, run.optimizer)
    run.rows, run.finished, run.elapsed = info["rows"], info["epoch"], info["seconds"]


def _first_card(run: _Run, command: str) -> dict:
    cfg, data = run.cfg, run.data
    made = {
        "precision": "bf16" if use_bf16(cfg.precision, run.dev) else "fp32",
        "train": cfg.to_dict(),
        "data": {
            "sha256": data.sha256,
            "train_images": len(data.y),
            "validation": {"size": len(data.y_val), "split_seed": VAL_SPLIT_SEED},
            "sources": data.sources,
        },
    }
    if cfg.teacher:
        path = torch_weights(Path(cfg.teacher), "distilling")
        made["teacher"] = {"file": path.name, "sha256": file_sha256(path)}
    if run.ranks.world > 1:
        made["distributed"] = {"world_size": run.ranks.world, "backend": _backend_name()}
    model = cfg.to_dict()["model"]
    return new_card(
        run.out.name, command, cfg.seed, run.dev, model, count_parameters(run.model), **made
    )


def _train_epochs(run: _Run) -> tuple[bool, torch.Tensor | None]:
    """The epochs still to train, each saved as it ends; Ctrl-C keeps the last one saved.
    Returns whether the run was interrupted, and the last epoch's validation logits."""
    cfg = run.cfg
    total_steps = steps_per_epoch(len(run.data.y), cfg.batch_size, run.ranks) * cfg.epochs
    val_logits = None
    try:
        for epoch in range(run.finished + 1, cfg.epochs + 1):
            row = _train_epoch(
                run.net,
                run.optimizer,
                cfg,
                epoch,
                run.data,
                total_steps,
                run.progress,
                run.ranks,
                run.teacher,
            )
            if run.ranks.world > 1:
                _sync_buffers(run.model)
            run.finished = epoch
            if run.ranks.main:
                val_logits = _save_epoch(run, row)
    except KeyboardInterrupt:
        _keep_last_epoch(run)
        return True, None
    return False, val_logits


def _save_epoch(run: _Run, row: dict) -> torch.Tensor:
    """Rank 0's record of an epoch: its validation figures, the checkpoint with its card,
    what a resumed run needs, the log and its curves. Returns the validation logits."""
    val_logits = predict_logits(run.model, run.data.x_val)  # calibration reuses the last
    row["val_loss"], row["val_accuracy"] = loss_and_accuracy(val_logits, run.data.y_val)
    run.rows.append(row)
    run.elapsed += row["seconds"]
    run.card = stamped(run.card, run.elapsed, _metrics(run.rows))
    save_checkpoint(run.weights_path, run.model, run.card)
    state = {"epoch": row["epoch"], "rows": run.rows, "seconds": run.elapsed}
    save_train_state(run.state_path, run.optimizer, state)
    _write_log(run.rows, run.out / LOG_NAME)
    curves_png(run.rows, run.out / CURVES_NAME)
    if run.progress:
        print(
            f"epoch {row['epoch']}/{run.cfg.epochs}: train loss {row['train_loss']:.4f}, "
            f"validation accuracy {100 * row['val_accuracy']:.2f}%",
            file=sys.stderr,
        )
    return val_logits


def _keep_last_epoch(run: _Run) -> None:
    """After Ctrl-C: the model as the last finished epoch saved it."""
    if run.finished < 1:
        raise DigitrecError("interrupted before the first epoch finished; nothing was saved")
    if run.ranks.main:
        print(f"\ninterrupted: keeping the checkpoint of epoch {run.finished}", file=sys.stderr)
    run.model, _ = load_checkpoint(run.weights_path, device=str(run.dev))


def _finish(run: _Run, interrupted: bool, val_logits: torch.Tensor | None) -> dict:
    """The card completed: measured on the test set and calibrated (on the last epoch's
    validation logits, when given)."""
    if run.ranks.world > 1:
        return _finish_distributed(run, interrupted)
    card = read_card(run.weights_path)
    return finish_card(
        run.weights_path, run.model, card, run.data, run.cfg.max_refused, val_logits, interrupted
    )


def _backend_name() -> str:
    import torch.distributed as dist

    return str(dist.get_backend())


def _finish_distributed(run: _Run, interrupted: bool) -> dict:
    """Every rank's weights compared through their digests; rank 0 finishes the card; the
    others wait for it, then read it."""
    import torch.distributed as dist

    digests: list = [None] * run.ranks.world
    dist.all_gather_object(digests, weights_digest(run.model))
    if run.ranks.main:
        card = read_card(run.weights_path)
        card["distributed"]["rank_weights_sha256"] = digests
        finish_card(
            run.weights_path, run.model, card, run.data, run.cfg.max_refused, None, interrupted
        )
    dist.barrier()
    card = read_card(run.weights_path)
    if run.started_group:
        dist.destroy_process_group()
    return card


def steps_per_epoch(n: int, batch_size: int, ranks: Ranks = Ranks()) -> int:
    """Steps in one pass over n pictures. Ranks split every batch between them, so a last
    batch too small to give each rank a picture is left out."""
    if ranks.world == 1:
        return math.ceil(n / batch_size)
    return n // batch_size + (n % batch_size >= ranks.world)


def _metrics(rows: list[dict]) -> dict:
    last = rows[-1]
    return {
        "epochs": last["epoch"],
        "train_loss": last["train_loss"],
        "train_accuracy": last["train_accuracy"],
        "val_loss": round(last["val_loss"], 5),
        "val_accuracy": last["val_accuracy"],
    }


def _train_epoch(
    model,
    optimizer,
    cfg,
    epoch,
    data: TrainData,
    total_steps,
    progress,
    ranks: Ranks = Ranks(),
    teacher=None,
) -> dict:
    """One pass over this rank's share of the training set; the epoch's row of the log,
    validation apart."""
    dev = data.x.device
    steps = steps_per_epoch(len(data.y), cfg.batch_size, ranks)
    order, gen = _epoch_order(cfg, epoch, len(data.y), ranks, dev)
    share = cfg.batch_size / ranks.world
    n_out = int(cfg.outlier_share * share) if data.outliers is not None else 0
    n_extra = int(cfg.redrawn_share * share) if data.extra is not None else 0
    n_pen = int(cfg.pen_share * share) if data.pen is not None else 0
    n_framed = int(cfg.framed_share * share) if data.framed is not None else 0
    extras = ((data.extra, n_extra), (data.pen, n_pen), (data.framed, n_framed))
    bf16 = use_bf16(cfg.precision, dev)
    model.train()
    tally = _Tally(dev)
    bar = tqdm(
        range(steps),
        desc=f"epoch {epoch}/{cfg.epochs}",
        disable=not progress,
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
    )
    lr = cfg.lr
    for i in bar:
        idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size][ranks.rank :: ranks.world]
        xb, yb = _batch(data, idx, extras, n_out, cfg.augment, gen)
        lr = lr_at(cfg, (epoch - 1) * steps + i, total_steps)
        loss, right = _step(model, optimizer, cfg, xb, yb, lr, bf16, teacher)
        tally.add(loss, right, len(yb))
        if progress and (i % 20 == 0 or i == steps - 1):
            bar.set_postfix(**tally.postfix())
    return tally.row(epoch, lr, ranks)


def _epoch_order(
    cfg: TrainConfig, epoch: int, n: int, ranks: Ranks, dev: torch.device
) -> tuple[torch.Tensor, torch.Generator]:
    """The epoch's order of the n training pictures, and the generator its batches draw
    from. Every epoch draws from its own seed, so a resumed run repeats an uninterrupted one."""
    seed = cfg.seed * 100_003 + epoch
    gen = torch.Generator(device=dev).manual_seed(seed)
    torch.manual_seed(seed)
    order = torch.randperm(n, generator=gen, device=dev)  # the same on every rank
    if ranks.world > 1:  # ... but each rank distorts its share of a batch its own way
        gen = torch.Generator(device=dev).manual_seed(seed + 1_000_003 * ranks.rank)
    return order, gen


def _batch(
    data: TrainData, idx, extras, n_out: int, augment, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's pictures, distorted, and the labels of its digits: the training pictures
    at idx, n pictures of each (bank, n) of `extras` (re-drawn, pen and boxed digits), then
    n_out non-digits (which have no label)."""
    xb, yb = data.x[idx], data.y[idx]
    dev = xb.device
    for bank, n in extras:
        if n:
            pick = torch.randint(len(bank[1]), (n,), generator=gen, device=dev)
            xb = torch.cat([xb, bank[0][pick]])
            yb = torch.cat([yb, bank[1][pick]])
    if n_out:
        pick = torch.randint(len(data.outliers), (n_out,), generator=gen, device=dev)
        xb = torch.cat([xb, data.outliers[pick]])
    return augment_batch(xb, augment, gen), yb


def _step(model, optimizer, cfg: TrainConfig, xb, yb, lr: float, bf16: bool, teacher=None):
    """One optimizer step at learning rate lr; the loss and which pictures it read right.
    Pictures past the labelled ones are non-digits, taught as none of the ten. With a
    teacher, each digit's loss is shared between its label and the teacher's answer."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(xb).float()
        if teacher is not None:
            with torch.no_grad():
                taught = teacher(xb[: len(yb)]).float()
    loss, right = loss_and_right(out[: len(yb)], yb, cfg.label_smoothing)
    if teacher is not None:
        soft = distill_loss(out[: len(yb)], taught, cfg.distill_temp)
        loss = (1 - cfg.distill) * loss + cfg.distill * soft
    if len(out) > len(yb):
        loss = loss + cfg.outlier_weight * uniform_loss(out[len(yb) :])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, right


class _Tally:
    """An epoch's loss and accuracy so far, summed on the device: reading them back every
    step would stall a GPU."""

    def __init__(self, dev: torch.device):
        self.loss = torch.zeros((), device=dev)
        self.correct = torch.zeros((), device=dev, dtype=torch.long)
        self.seen = 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, right: torch.Tensor, n: int) -> None:
        self.loss += loss.detach() * n
        self.correct += right.sum()
        self.seen += n

    def postfix(self) -> dict:
        rate = self.seen / (time.perf_counter() - self.start)
        return {
            "loss": f"{self.loss.item() / self.seen:.4f}",
            "acc": f"{100 * self.correct.item() / self.seen:.2f}%",
            "img_s": f"{rate:.0f}",
        }

    def row(self, epoch: int, lr: float, ranks: Ranks) -> dict:
        seconds = time.perf_counter() - self.start
        loss, correct, seen = self.loss, self.correct, self.seen
        if ranks.world > 1:  # the epoch's figures over every rank's share
            import torch.distributed as dist

            totals = torch.stack(
                [loss.float(), correct.float(), torch.tensor(float(seen), device=loss.device)]
            )
            dist.all_reduce(totals)
            loss, correct, seen = totals[0], totals[1], int(totals[2].item())
        return {
            "epoch": epoch,
            "train_loss": round(loss.item() / seen, 5),
            "train_accuracy": correct.item() / seen,
            "lr": lr,
            "seconds": round(seconds, 2),
            "images_per_s": round(seen / seconds, 1),
        }
