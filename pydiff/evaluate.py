"""Load a trained run, predict its held-out samples, and feed :mod:`pydiff.metrics`."""

from __future__ import annotations

import numpy as np
import torch

from .data import load_arrays
from .device import autocast, memory_budget, pick_device
from .metrics import FieldMetrics, RegionErrors
from .rundir import load_model


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
            runs = []
            for _ in range(samples):
                with autocast(device, amp):
                    runs.append(model(x).float())
            runs = torch.stack(runs)
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


def evaluate(run_dir, splits=("test",), batch_size: int = 100, device: str = "auto", samples: int = 20) -> dict:
    """Metrics of a trained run (its best checkpoint) on its own data and split.

    Returns ``{split: result}``, with ``result["regions"]`` the mean absolute error per source
    count and region (:class:`~pydiff.metrics.RegionErrors`) and, in ``result["examples"]``
    (not JSON), the first ``samples``
    inputs, truths and predictions, and in ``result["joint"]`` the (truth, prediction) histogram.
    """
    device = pick_device(device)
    model, config = load_model(run_dir, "best", device)
    inputs, fields, split, counts, _ = load_arrays(config, memory_budget(torch.device("cpu")))
    out = {}
    for name in splits:
        index = split[name]
        if len(index) == 0:
            continue
        metrics, regions = FieldMetrics(), RegionErrors()
        examples = None
        for lo in range(0, len(index), batch_size):
            part = index[lo : lo + batch_size]
            x, y = inputs[part], fields[part]
            p = predict(model, x, batch_size, device, config.amp)
            metrics.update(p, y)
            regions.update(p, y, x, counts[part])
            if examples is None:
                k = min(samples, len(part))
                examples = {"inputs": x[:k, 0], "truth": y[:k, 0], "prediction": p[:k, 0]}
        result = metrics.result()
        result["regions"] = regions.table()
        result["n_samples"] = int(len(index))
        result["examples"] = examples
        result["joint"] = metrics.joint
        out[name] = result
    return out
