"""Batched augmentation on the training device: random affine maps and stroke width changes.
Every draw comes from the given generator, so a run is repeatable from its seed."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import IMAGE_SIZE, AugmentConfig


def _uniform(n: int, half_width: float, gen: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) * 2 - 1) * half_width


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotate, scale, shear, shift and (elastic_px > 0) bend each image of (N, 1, H, W)."""
    n, dev = x.shape[0], x.device
    angle = _uniform(n, math.radians(cfg.rotate_deg), gen, dev)
    shear = _uniform(n, math.radians(cfg.shear_deg), gen, dev)
    zoom = 1 + _uniform(n, cfg.scale, gen, dev)
    shift = _uniform(2 * n, 2 * cfg.translate_px / IMAGE_SIZE, gen, dev).view(n, 2)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # grid_sample maps output to input coordinates: dividing by the zoom enlarges the digit.
    theta = torch.stack(
        [
            torch.stack([cos / zoom, (cos * tan - sin) / zoom, shift[:, 0]], 1),
            torch.stack([sin / zoom, (sin * tan + cos) / zoom, shift[:, 1]], 1),
        ],
        1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if cfg.elastic_px > 0:
        grid = grid + elastic_offsets(n, x.shape[-1], cfg.elastic_px, gen, dev).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def elastic_offsets(n: int, side: int, strength_px: float, gen, device) -> torch.Tensor:
    """Smooth random displacement fields (N, H, W, 2) in grid units: coarse 4x4 noise
    upsampled bicubically, so strokes bend like a hand's wobble instead of jittering."""
    coarse = torch.rand(n, 2, 4, 4, generator=gen, device=device) * 2 - 1
    field = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)
    return field.permute(0, 2, 3, 1) * (2 * strength_px / side)


def random_stroke_width(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Thicken a share p/2 of the images and thin another p/2, by a random amount."""
    n, dev = x.shape[0], x.device
    pick = torch.rand(n, generator=gen, device=dev)
    amount = (0.3 + 0.7 * torch.rand(n, generator=gen, device=dev)).view(n, 1, 1, 1)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    target = torch.where((pick < p / 2).view(n, 1, 1, 1), thick, x)
    target = torch.where(((pick >= p / 2) & (pick < p)).view(n, 1, 1, 1), thin, target)
    return x + amount.to(x.dtype) * (target - x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    if not cfg.enabled:
        return x
    if cfg.stroke_p > 0:
        x = random_stroke_width(x, cfg.stroke_p, gen)
    return random_affine(x, cfg, gen)
