"""One optimiser step and what it needs: the learning rate of an epoch, Adam, the loss.

``pydiff train`` (:class:`~pydiff.training.trainer.Trainer`) and ``pydiff bench train``
(:func:`~pydiff.benchmarking.training.bench_train`) run the same :func:`train_step`, so the benchmark
times what training runs.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..device import autocast, fast_paths
from ..errors import ConfigError
from ..nn.losses import make_loss
from ..nn.physics import PhysicsLoss
from ..problem import Problem
from .config import COSINE_FLOOR, TrainConfig


def lr_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): constant; cosine, from lr at epoch 0 towards
    ``lr * COSINE_FLOOR``, which it would reach one epoch after the last (the last, ``epochs - 1``,
    trains at ``low + (lr - low)(1 - cos(pi / epochs)) / 2``); or halved every ``lr_halve_every``
    epochs.

    A closed form of the epoch, so that roll-backs and resumes never disturb the schedule."""
    if config.lr_schedule == "halving":
        return config.lr * 0.5 ** (epoch // config.lr_halve_every)
    if config.lr_schedule == "cosine":
        low = config.lr * COSINE_FLOOR
        return low + (config.lr - low) * (1 + math.cos(math.pi * epoch / config.epochs)) / 2
    return config.lr


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam (eps 1e-8, as Flux's ADAM; ``weight_decay`` its L2 penalty); the fused kernel on a GPU."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8, weight_decay=config.weight_decay,
                            fused=fast_paths(device))


def loss_function(config: TrainConfig, problem: Problem | None = None) -> Callable:
    """The run's loss ``loss(prediction, y, x)``, summed over the batch (callers divide by the
    batch's pixels): the data loss on the samples that have labels, plus ``physics_weight`` times
    each sample's physics loss (:mod:`pydiff.nn.physics`) times its pixels, so that after the
    division it is the weight times the batch's mean physics loss.

    A sample without a label has a NaN field; its data term is made exactly zero (the prediction
    stands in for the target, detached: no gradient), which keeps the step free of host syncs.
    ``problem``: the equation the physics loss reads (needed when ``physics_weight`` > 0).
    """
    data = make_loss(config.loss, config.w, config.loss_w2, reduction="sum", delta=config.loss_delta)
    if config.physics_weight == 0:
        return lambda prediction, y, x: data(prediction, y)
    if problem is None:
        raise ConfigError("the physics loss needs the problem")
    physics, weight = PhysicsLoss(problem), config.physics_weight

    def total(prediction: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pixels = prediction[0].numel()
        loss = weight * pixels * physics(prediction, x).sum()
        if config.labels > 0:
            loss = loss + data(prediction, torch.where(torch.isnan(y), prediction.detach(), y))
        return loss

    return total


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, loss_sum: Callable, scale: float,
               device: torch.device, amp: bool = True) -> torch.Tensor:
    """One optimiser step on a batch; returns the batch's summed loss, detached, on the device.

    The loss that is differentiated is ``scale`` times the sum: ``1 / (B * pixels)`` gives Eq. 2's
    mean over a global batch of B (times K under DistributedDataParallel, which averages K ranks).
    """
    with autocast(device, amp):
        prediction = model(x)
    total = loss_sum(prediction.float(), y, x)
    optimizer.zero_grad(set_to_none=True)
    (total * scale).backward()
    optimizer.step()
    return total.detach()
