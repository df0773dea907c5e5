"""One optimiser step and what it needs: the learning rate of an epoch, Adam, the loss.

``pydiff train`` (:class:`~pydiff.training.trainer.Trainer`) and ``pydiff bench train``
(:func:`~pydiff.evaluation.timing.bench_train`) run the same :func:`train_step`, so the benchmark
times what training runs.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..device import autocast, fast_paths
from ..nn.losses import make_loss
from .config import TrainConfig


def lr_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): constant, or cosine from lr to lr/100.

    A closed form of the epoch, so that roll-backs and resumes never disturb the schedule."""
    if config.lr_schedule == "cosine":
        low = config.lr * 1e-2
        return low + (config.lr - low) * (1 + math.cos(math.pi * epoch / config.epochs)) / 2
    return config.lr


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam (eps 1e-8, as Flux's ADAM); the fused kernel on a GPU."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8, fused=fast_paths(device))


def loss_function(config: TrainConfig) -> Callable:
    """The run's loss with its weights, summed over the batch (callers divide)."""
    return make_loss(config.loss, config.w, config.loss_w2, reduction="sum", delta=config.loss_delta)


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, loss_sum: Callable, scale: float,
               device: torch.device, amp: bool = True) -> torch.Tensor:
    """One optimiser step on a batch; returns the batch's summed loss, detached, on the device.

    The loss that is differentiated is ``scale`` times the sum: ``1 / (B * pixels)`` gives Eq. 2's
    mean over a global batch of B (times K under DistributedDataParallel, which averages K ranks).
    """
    with autocast(device, amp):
        prediction = model(x)
    total = loss_sum(prediction.float(), y)
    optimizer.zero_grad(set_to_none=True)
    (total * scale).backward()
    optimizer.step()
    return total.detach()
