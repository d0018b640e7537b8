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
    def from_dict(cls, d: dict) -> ModelConfig:
        """The settings a card stores (asdict's output), members' settings included."""
        d = dict(d)
        d["parts"] = tuple(cls.from_dict(p) for p in d.get("parts", ()))
        return cls(**d)


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
    pairs: int = 60000  # task "pairs": pairs of training digits to learn from
    # share of validation digits the refusal threshold may refuse: a refused digit costs a
    # number as much as a wrong one, and non-digits read far less sure than that anyway
    max_refused: float = 0.001
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
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        d["augment"] = AugmentConfig(**d.get("augment", {}))
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
    # The most accurate single net that trains on two CPU cores in about 20 minutes.
    return TrainConfig(preset="best", augment=AugmentConfig(elastic_px=1.5), outliers=20000)


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
