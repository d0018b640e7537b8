"""Settings for models and training, in plain dataclasses; the presets live here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import ConfigError
from ..reading.preprocess import IMAGE_SIZE  # noqa: F401 (the nets' input side, re-exported)

# MNIST's pixel statistics on [0, 1] (the pytorch/examples normalisation); the models apply
# them as their first step, so every caller feeds plain [0, 1] pixels, white ink on black.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
NUM_CLASSES = 10


# What model settings may ask for: far beyond every recipe here (widths 16 to 32, dense
# layers up to 256 units, a few members), far below a net whose building alone would
# exhaust memory. A card comes with a file anyone can hand us.
MAX_WIDTH = 1024
MAX_HIDDEN = 16384
MAX_NETS = 64  # nets in one model: an ensemble's members, or its parts


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} {value!r} is not a whole number from {low:,} to {high:,}")
    return value


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an architecture; stored in every checkpoint card."""

    arch: str = "bncnn"
    width: int = 32  # channels of the first block (bncnn); doubled in the second
    hidden: int = 256  # units of the dense layer
    dropout: float = 0.3
    members: int = 1  # over 1: an ensemble of that many such nets, averaging probabilities
    # an ensemble of different nets (arch "ensemble"): each member's own settings
    parts: tuple[ModelConfig, ...] = ()

    @classmethod
    def from_dict(cls, d: dict, _part: bool = False) -> ModelConfig:
        """The settings a card stores (asdict's output), members' settings included;
        ConfigError for settings that are not a net's (see check)."""
        if not isinstance(d, dict):
            raise ConfigError(f"model settings {d!r} are not a table of settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown model settings {', '.join(map(repr, unknown))}")
        d = dict(d)
        parts = d.get("parts", ())
        if not isinstance(parts, list | tuple) or len(parts) > MAX_NETS or (_part and parts):
            raise ConfigError(
                f"parts must be a list of at most {MAX_NETS} nets, none an ensemble of parts"
            )
        d["parts"] = tuple(cls.from_dict(p, _part=True) for p in parts)
        return cls(**d).check()

    def check(self) -> ModelConfig:
        """self, if its settings are in range; ConfigError naming the first that is not."""
        if not isinstance(self.arch, str) or not self.arch:
            raise ConfigError(f"arch {self.arch!r} is not the name of an architecture")
        if type(self.members) is int and self.members < 1:
            raise ConfigError(f"an ensemble needs at least one member, not {self.members}")
        _whole(self.members, "members", 1, MAX_NETS)
        _whole(self.width, "width", 1, MAX_WIDTH)
        _whole(self.hidden, "hidden", 0, MAX_HIDDEN)
        dropout = self.dropout
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, int | float)
            or not 0 <= dropout < 1
        ):
            raise ConfigError(f"dropout {dropout!r} is not a number from 0 to under 1")
        if not isinstance(self.parts, tuple) or not all(
            isinstance(p, ModelConfig) for p in self.parts
        ):
            raise ConfigError("parts must be model settings")
        for part in self.parts:
            if part.parts:
                raise ConfigError("a part of an ensemble cannot itself be made of parts")
            part.check()
        nets = sum(p.members for p in self.parts) if self.parts else self.members
        if nets > MAX_NETS:
            raise ConfigError(f"{nets} nets in one model: at most {MAX_NETS}")
        return self


@dataclass(frozen=True)
class AugmentConfig:
    """Random distortions applied batch-wise on the training device (see augment.py)."""

    enabled: bool = True
    rotate_deg: float = 12.0
    scale: float = 0.12  # zoom drawn from [1 - scale, 1 + scale]
    shear_deg: float = 10.0
    translate_px: float = 2.5
    stroke_p: float = 0.3  # share of a batch whose strokes are thinned or thickened
    elastic_px: float = 0.0  # largest elastic displacement, in pixels of the 28x28 picture


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe. `preset(name)` gives the named ones."""

    preset: str = "best"
    task: str = "digits"  # "digits": the digit reader; "pairs": the reader of touching pairs
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"  # "adam" or "adamw"
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # "constant" or "onecycle" (linear warm-up, cosine decay)
    warmup: float = 0.15  # share of the steps spent warming up (onecycle)
    label_smoothing: float = 0.0
    outliers: int = 0  # synthetic non-digits shown with a uniform target (outlier exposure)
    outlier_share: float = 0.25  # non-digits added to each batch, as a share of its digits
    outlier_weight: float = 0.5  # weight of their loss
    redrawn: int = 0  # training digits re-drawn with other pens and read back by to_mnist
    redrawn_share: float = 0.25  # re-drawn digits added to each batch, as a share of it
    # real writers: drawings of UNIPEN's train digits (training/pen.py), read by to_mnist
    pen: int = 0
    pen_share: float = 0.3  # pen digits added to each batch, as a share of it
    # training digits (MNIST's and the pen digits) stretched to fill a small box, as form
    # readers keep them (training/framed.py)
    framed: int = 0  # best and bundled: 30,000
    framed_share: float = 0.15  # boxed digits added to each batch, as a share of it
    pairs: int = 60000  # task "pairs": pairs of training digits to learn from
    # a trained digit model (.safetensors) whose answers, softened, the net learns besides
    # the labels (knowledge distillation); "" for none
    teacher: str = ""
    distill: float = 0.5  # the teacher's share of the loss on each digit
    distill_temp: float = 2.0  # the temperature both nets' logits are softened by
    # share of validation digits the refusal threshold may refuse: a refused digit costs a
    # number as much as a wrong one, and non-digits read far less sure than that anyway
    max_refused: float = 0.001
    # ... and of the pen digits of writers held out of training (recipes with pen > 0)
    pen_max_refused: float = 0.015
    val_size: int = 5000  # held out of the 60,000 training images; the test set only reports
    seed: int = 0
    limit: int | None = None  # train on the first N images of the training split (smoke runs)
    # "auto": bfloat16 autocast where the hardware does it fast (CUDA; CPUs with AMX or
    # AVX-512 BF16), float32 elsewhere; "fp32" or "bf16" force one
    precision: str = "auto"

    def to_dict(self) -> dict:
        """As a card stores it (plain JSON types: lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict) or not isinstance(d.get("augment", {}), dict):
            raise ConfigError("a training recipe and its augment settings are tables")
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        # settings a later version adds are left out, as the recipe's own are below
        augment = {f.name for f in fields(AugmentConfig)}
        d["augment"] = AugmentConfig(
            **{k: v for k, v in d.get("augment", {}).items() if k in augment}
        )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _seed() -> TrainConfig:
    # The original design: two 3x3 convolutions (32, 64), 2x2 max pooling, dense 128 with
    # dropout, softmax output; Adam at Keras' default rate, cross-entropy, batch 64, 50 epochs.
    return TrainConfig(
        preset="seed",
        model=ModelConfig(arch="seed", width=32, hidden=128, dropout=0.5),
        augment=AugmentConfig(enabled=False),
        epochs=50,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="constant",
    )


def _fast() -> TrainConfig:
    # >= 99.0% in under 15 s of wall time on two CPU cores, start-up and data loading
    # included: a 0.2 M-parameter net with one convolution per scale, one epoch, no
    # augmentation, a one-cycle schedule, bfloat16 where the CPU does it fast.
    return TrainConfig(
        preset="fast",
        model=ModelConfig(arch="quick", width=16, hidden=64, dropout=0.0),
        augment=AugmentConfig(enabled=False),
        epochs=1,
        batch_size=128,
        lr=4e-3,
        warmup=0.2,
    )


def _best() -> TrainConfig:
    # The most accurate single net that trains on two CPU cores in about 25 minutes: MNIST,
    # and real writers' pen digits (UNIPEN train) drawn the ways people draw on a canvas,
    # and both boxed as form readers box digits (framed: scans such as optdigits and usps).
    # Its refusal threshold refuses at most 1.5% of held-out writers' pen digits and 0.3% of
    # MNIST's validation digits (under the 0.5% of MNIST's test digits the model promises).
    return TrainConfig(
        preset="best",
        augment=AugmentConfig(elastic_px=1.5),
        outliers=20000,
        pen=40000,
        framed=30000,
        max_refused=0.003,
    )


def _bundled() -> TrainConfig:
    # The model shipped in the package: the best recipe, longer, on a net small enough to
    # read 10,000+ digits a second on two cores (see benchmarks/architectures.py).
    return replace(_best(), preset="bundled", model=ModelConfig("compact", 16, 256, 0.3), epochs=50)


def _deep() -> TrainConfig:
    # The best recipe on the seven-convolution net (no pooling: strided 5x5 convolutions),
    # about as accurate as the BN-CNN: another architecture for ensembles of mixed nets.
    return replace(_best(), preset="deep", model=ModelConfig("deep", 32, 0, 0.3))


def _pairs() -> TrainConfig:
    # The pair reader: two digits written so close they touch, read as one picture.
    return TrainConfig(
        preset="pairs",
        task="pairs",
        model=ModelConfig(arch="pairs", width=32, hidden=256, dropout=0.3),
        augment=AugmentConfig(rotate_deg=8.0, scale=0.08, shear_deg=8.0, translate_px=2.0),
        epochs=8,
        outliers=10000,
    )


PRESETS = {
    "seed": _seed,
    "fast": _fast,
    "best": _best,
    "deep": _deep,
    "bundled": _bundled,
    "pairs": _pairs,
}
DEFAULT_PRESET = "best"


def preset(name: str, **overrides) -> TrainConfig:
    """The named recipe, with any non-None overrides (epochs, batch_size, seed, limit)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name](), **{k: v for k, v in overrides.items() if v is not None})
