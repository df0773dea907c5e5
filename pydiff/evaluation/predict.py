"""A network's predictions for (n, 1, L, L) inputs: plain, or with Monte Carlo dropout."""

from __future__ import annotations

import numpy as np
import torch

from ..device import autocast


@torch.no_grad()
def predict(model, inputs, batch_size: int = 100, device: torch.device | str = "cpu", amp: bool = True) -> np.ndarray:
    """Model outputs for (n, 1, L, L) inputs (numpy or tensor), in eval mode, as float32 numpy."""
    device = torch.device(device)
    model.eval()
    out = []
    for lo in range(0, len(inputs), batch_size):
        x = torch.as_tensor(np.asarray(inputs[lo : lo + batch_size])).to(device)
        with autocast(device, amp):
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *np.shape(inputs)[1:]), np.float32)


@torch.no_grad()
def predict_mc_dropout(model, inputs, samples: int = 32, batch_size: int = 100, device: torch.device | str = "cpu",
                       seed: int = 0, amp: bool = True, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo dropout: ``samples`` predictions with dropout on (BatchNorm in evaluation
    mode), their per-pixel mean and standard deviation, as float32 numpy arrays shaped like
    ``inputs``.  A network without dropout (or rates 0) gives a zero spread.  ``progress``: a
    bar over the inputs (the ``samples`` passes make this the slow part of ``pydiff trust``)."""
    device = torch.device(device)
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    means, stds = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(inputs), unit="sample", desc=f"MC dropout ({samples} passes)")
    try:
        for m in dropouts:
            m.train()
        for lo in range(0, len(inputs), batch_size):
            x = torch.as_tensor(np.asarray(inputs[lo : lo + batch_size])).to(device)
            passes = []
            for _ in range(samples):
                with autocast(device, amp):
                    passes.append(model(x).float())
            runs = torch.stack(passes)
            means.append(runs.mean(0).cpu().numpy())
            stds.append(runs.std(0, unbiased=False).cpu().numpy())
            if bar is not None:
                bar.update(len(x))
    finally:
        if bar is not None:
            bar.close()
        model.eval()
        torch.set_rng_state(generator_state)
    empty = np.zeros((0, *np.shape(inputs)[1:]), np.float32)
    return (np.concatenate(means) if means else empty), (np.concatenate(stds) if stds else empty)
