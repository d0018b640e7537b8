"""What a model scores on prepared tensors: its logits, loss and accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import NUM_CLASSES


@torch.inference_mode()
def predict_logits(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def loss_and_right(logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0):
    """Cross-entropy over every digit read, and which pictures were read wholly right: a
    digit (logits (N, 10), y (N,)) or a pair (logits (N, 2, 10), y (N, 2))."""
    loss = F.cross_entropy(
        logits.reshape(-1, NUM_CLASSES), y.reshape(-1), label_smoothing=smoothing
    )
    return loss, (logits.argmax(-1) == y).reshape(len(y), -1).all(1)


def distill_loss(logits: torch.Tensor, taught: torch.Tensor, temp: float) -> torch.Tensor:
    """How far a net's answers are from its teacher's, both softened by the temperature:
    KL divergence, scaled by temp² so its gradients weigh as the labels' do (Hinton et al.,
    "Distilling the Knowledge in a Neural Network", 2015)."""
    return (temp * temp) * F.kl_div(
        F.log_softmax(logits / temp, -1),
        F.log_softmax(taught / temp, -1),
        reduction="batchmean",
        log_target=True,
    )


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss, right = loss_and_right(logits, y)
    return loss.item(), right.float().mean().item()


def loss_and_accuracy_of(model, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a model on prepared tensors."""
    return loss_and_accuracy(predict_logits(model, x), y)
