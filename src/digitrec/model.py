"""The architectures. Each takes (N, 1, 28, 28) pixels in [0, 1], white ink on black, and
returns logits; the MNIST normalisation is the first layer, so no caller repeats it. No I/O."""

from __future__ import annotations

import torch
from torch import nn

from .config import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES, ModelConfig
from .errors import ConfigError


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


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


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
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, cfg.hidden, bias=False),
            nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, NUM_CLASSES),
        )


ARCHITECTURES = {"seed": SeedNet, "bncnn": BNCNN}


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {cfg.arch!r}: known are {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[cfg.arch](cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
