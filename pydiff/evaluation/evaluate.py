"""A trained run's metrics on its own splits, or on any other data set of a problem it can read
(how it generalises): load it, predict the samples, feed :mod:`pydiff.evaluation.metrics`."""

from __future__ import annotations

import numpy as np
import torch

from ..datasets.hdf5 import load
from ..device import memory_budget, pick_device
from ..errors import DataFileError
from ..registry import LATTICE
from ..training.checkpoint import load_model
from ..training.data import load_arrays, network_inputs
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
        batches = ((inputs[part], fields[part], counts[part])
                   for part in (index[lo : lo + batch_size] for lo in range(0, len(index), batch_size)))
        out[name] = _metrics(model, config, batches, device, batch_size, samples)
    return out


def evaluate_on(run_dir, data_path, batch_size: int = 100, device: str = "auto", samples: int = 20) -> dict:
    """Metrics of a trained run on every sample of another data file (another contrast, source
    shape or wall condition, say): the same result as :func:`evaluate` gives for a split."""
    device = pick_device(device)
    model, config = load_model(run_dir, "best", device)
    with load(data_path, lazy=True) as data:
        if config.network == "surrogate" and data.problem.lattice != LATTICE:
            raise DataFileError(f"{data_path}: lattice {data.problem.lattice}, but the networks of Table 1 need "
                                f"{LATTICE}x{LATTICE} images")
        n = len(data)
        batches = ((network_inputs(data, config.in_channels, slice(lo, min(n, lo + batch_size))),
                    np.asarray(data.fields[lo : min(n, lo + batch_size)], dtype=np.float32)[:, None],
                    np.asarray(data.source_count[lo : min(n, lo + batch_size)]))
                   for lo in range(0, n, batch_size))
        return _metrics(model, config, batches, device, batch_size, samples)


def _metrics(model, config, batches, device, batch_size: int, samples: int) -> dict:
    """Prediction metrics over ``batches`` of (inputs, fields, source counts)."""
    metrics, regions = FieldMetrics(), RegionErrors()
    examples, n = None, 0
    for x, y, counts in batches:
        p = predict(model, x, batch_size, device, config.amp)
        metrics.update(p, y)
        regions.update(p, y, x[:, :1], counts)  # the regions of the source image
        n += len(x)
        if examples is None:
            k = min(samples, len(x))
            examples = {"inputs": x[:k, 0], "truth": y[:k, 0], "prediction": p[:k, 0]}
    result = metrics.result()
    result["regions"] = regions.table()
    result["n_samples"] = n
    result["examples"] = examples
    result["joint"] = metrics.joint
    return result
