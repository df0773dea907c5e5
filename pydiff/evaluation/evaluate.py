"""A trained run's metrics on its own splits: load it, predict its samples, feed
:mod:`pydiff.evaluation.metrics`."""

from __future__ import annotations

import torch

from ..device import memory_budget, pick_device
from ..training.checkpoint import load_model
from ..training.data import load_arrays
from .metrics import FieldMetrics, RegionErrors
from .predict import predict


def evaluate(run_dir, splits=("test",), batch_size: int = 100, device: str = "auto", samples: int = 20) -> dict:
    """Metrics of a trained run (its best checkpoint) on its own data and split.

    Returns ``{split: result}``, with ``result["regions"]`` the mean absolute error per source
    count and region (:class:`~pydiff.evaluation.metrics.RegionErrors`) and, in ``result["examples"]``
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
            regions.update(p, y, x[:, :1], counts[part])  # the regions of the source image
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
