"""BatchNorm statistics recomputed for evaluation: the variance shift of dropout before
BatchNorm, corrected after training (``--recalibrate-bn``)."""

from __future__ import annotations

from typing import Iterable

import torch

from ..device import autocast


def batchnorms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module`` (none in an FNO)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(network, module, input_batches: Iterable[torch.Tensor], device: torch.device,
                          amp: bool = True) -> None:
    """Recompute every BatchNorm's running statistics of ``module`` over ``input_batches`` (this
    rank's part of each global batch), dropout off.

    Table 1 puts element-wise dropout right before BatchNorms (D1 and D2 in NN1, D4 before NN2's
    last layers).  During training those BatchNorms record the variance of dropped-out inputs;
    at evaluation, without dropout, the variance is smaller, and normalising it by the recorded
    one shrinks the output towards its mean: the peaks come out low (the "variance shift" of
    dropout before batch normalisation).  One pass over the training inputs in evaluation mode
    for dropout and training mode for the BatchNorms records the statistics that evaluation
    actually meets: each batch's mean and (unbiased) variance averaged with its number of inputs
    as weight, so that every input counts alike whatever the batches' sizes.
    """
    norms = batchnorms(module)
    if not norms:  # nothing to recalibrate (an FNO): no pass over the training inputs
        return
    saved = [m.momentum for m in norms]
    network.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.train()
    seen = 0
    try:
        for x in input_batches:
            seen += len(x)
            for norm in norms:  # running = (1 - m) running + m batch: a running average weighted by size
                norm.momentum = len(x) / seen
            with autocast(device, amp):  # every rank takes part in every batch's statistics
                network(x)
    finally:
        for norm, momentum in zip(norms, saved):
            norm.momentum = momentum
        network.eval()
