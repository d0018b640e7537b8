"""The architectures. Each takes (N, 1, 28, 28) pixels in [0, 1], white ink on black, and
returns logits; the MNIST normalisation is the first layer, so no caller repeats it. No I/O."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .config import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES, ModelConfig


class Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - MNIST_MEAN) / MNIST_STD


class SeedNet(nn.Sequential):
    """The original design: conv3x3(32) ReLU, conv3x3(64) ReLU, maxpool 2, dropout,
    dense(hidden) ReLU, dropout, dense(10)."""

    def __init__(self, cfg: ModelConfig):
        w = cfg.width
        side = (IMAGE_SIZE - 4) // 2
        super().__init__(
            Normalize(),
            nn.Conv2d(1, w, 3),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(2 * w * side * side, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, NUM_CLASSES),
        )


def _conv_bn(
    cin: int, cout: int, size: int = 3, stride: int = 1, padding: int | None = None
) -> list[nn.Module]:
    """Convolution (padded to keep the size, unless told), batch norm, ReLU."""
    pad = size // 2 if padding is None else padding
    conv = nn.Conv2d(cin, cout, size, stride=stride, padding=pad, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()]


def _head(features: int, cfg: ModelConfig) -> list[nn.Module]:
    """Flattened maps to ten logits: a batch-normalised dense layer of `hidden` units with
    dropout (most of the parameters for a sliver of the arithmetic, as the maps are small),
    or with hidden=0 dropout and one dense layer."""
    if not cfg.hidden:
        return [nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(features, NUM_CLASSES)]
    return [
        nn.Flatten(),
        nn.Linear(features, cfg.hidden, bias=False),
        nn.BatchNorm1d(cfg.hidden),
        nn.ReLU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden, NUM_CLASSES),
    ]


class BNCNN(nn.Sequential):
    """Two blocks of two 3x3 conv-BN-ReLU layers, each ending in 2x2 max pooling, then a
    batch-normalised dense layer with dropout."""

    def __init__(self, cfg: ModelConfig):
        w = cfg.width
        super().__init__(
            Normalize(),
            *_conv_bn(1, w),
            *_conv_bn(w, w),
            nn.MaxPool2d(2),
            *_conv_bn(w, 2 * w),
            *_conv_bn(2 * w, 2 * w),
            nn.MaxPool2d(2),
            *_head(2 * w * 7 * 7, cfg),
        )


class CompactNet(nn.Sequential):
    """Small and quick: a 5x5 conv-BN-ReLU, max pooling, two 3x3 conv-BN-ReLU, max pooling,
    one more 3x3 conv-BN-ReLU (widths w, 2w, 2w, 4w), then the head (see _head)."""

    second_middle_conv = True  # the second 3x3 convolution between the poolings

    def __init__(self, cfg: ModelConfig):
        w = cfg.width
        # made in this order: the random initial weights follow it
        layers = [Normalize(), *_conv_bn(1, w, 5), nn.MaxPool2d(2), *_conv_bn(w, 2 * w)]
        if self.second_middle_conv:
            layers += _conv_bn(2 * w, 2 * w)
        layers += [nn.MaxPool2d(2), *_conv_bn(2 * w, 4 * w), *_head(4 * w * 7 * 7, cfg)]
        super().__init__(*layers)


class QuickNet(CompactNet):
    """The compact net with one convolution per scale (widths w, 2w, 4w): half its
    arithmetic, for training in seconds."""

    second_middle_conv = False


class DeepNet(nn.Sequential):
    """Seven convolutions, after the best single Kaggle MNIST CNNs: two blocks of two 3x3
    conv-BN-ReLU (unpadded) and a strided 5x5 one in place of pooling, then a 4x4 one down
    to 1x1, with dropout after each block; widths w, 2w, 4w (w=32: 0.33 M parameters)."""

    def __init__(self, cfg: ModelConfig):
        w = cfg.width
        super().__init__(
            Normalize(),
            *_conv_bn(1, w, padding=0),
            *_conv_bn(w, w, padding=0),
            *_conv_bn(w, w, 5, stride=2),
            nn.Dropout(cfg.dropout),
            *_conv_bn(w, 2 * w, padding=0),
            *_conv_bn(2 * w, 2 * w, padding=0),
            *_conv_bn(2 * w, 2 * w, 5, stride=2),
            nn.Dropout(cfg.dropout),
            *_conv_bn(2 * w, 4 * w, 4, padding=0),
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(4 * w, NUM_CLASSES),
        )


class PairNet(nn.Module):
    """The pair reader: two digits written so close that they touch, as one picture of
    (N, 1, 28, 48) pixels, to logits (N, 2, 10), the left digit's and the right one's.
    A BN-CNN like the digit reader's, with a strided convolution before the dense layer."""

    input_size = (IMAGE_SIZE, 48)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.width
        self.layers = nn.Sequential(
            Normalize(),
            *_conv_bn(1, w),
            *_conv_bn(w, w),
            nn.MaxPool2d(2),
            *_conv_bn(w, 2 * w),
            *_conv_bn(2 * w, 2 * w),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * w * 4 * 6, cfg.hidden, bias=False),
            nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, 2 * NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).view(-1, 2, NUM_CLASSES)


class Ensemble(nn.Module):
    """Several nets reading the same pictures. Returns the log of their
    mean probabilities: logits whose softmax is the members' average, so an ensemble is
    served, calibrated and exported exactly like a single model."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(m(x), dim=-1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


ARCHITECTURES = {
    "seed": SeedNet,
    "quick": QuickNet,
    "compact": CompactNet,
    "bncnn": BNCNN,
    "deep": DeepNet,
    "pairs": PairNet,
}


ENSEMBLE = "ensemble"  # the arch of an ensemble of different nets (ModelConfig.parts)


def input_size(cfg: ModelConfig) -> tuple[int, int]:
    """(height, width) of the pictures an architecture reads: 28x28, or 28x48 for pairs."""
    if cfg.parts:
        return input_size(cfg.parts[0])
    return getattr(ARCHITECTURES.get(cfg.arch), "input_size", (IMAGE_SIZE, IMAGE_SIZE))


def build_model(cfg: ModelConfig) -> nn.Module:
    cfg.check()
    if cfg.arch == ENSEMBLE or cfg.parts:
        if cfg.arch != ENSEMBLE or len(cfg.parts) < 2:
            raise ConfigError(f"an ensemble of different nets has arch {ENSEMBLE!r} and 2+ parts")
        return Ensemble([build_model(part) for part in cfg.parts])
    if cfg.arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {cfg.arch!r}: known are {', '.join(ARCHITECTURES)}"
        )
    if cfg.members == 1:
        return ARCHITECTURES[cfg.arch](cfg)
    return Ensemble([ARCHITECTURES[cfg.arch](cfg) for _ in range(cfg.members)])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def planned_tensors(cfg: ModelConfig) -> tuple[dict[str, tuple[int, ...]], int]:
    """The name and shape of every tensor a model of `cfg` saves, and its parameter count,
    from a model built on the meta device: nothing is allocated, however large it is."""
    with torch.device("meta"):
        model = build_model(cfg)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    return shapes, count_parameters(model)
