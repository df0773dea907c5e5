"""A trained run's metrics on its own splits, or on any other data set of a problem it can read
(how it generalises): load it, predict the samples, feed :mod:`pydiff.evaluation.metrics`."""

from __future__ import annotations

import numpy as np
import torch

from ..datasets.hdf5 import load
from ..device import memory_budget, pick_device
from ..errors import ConfigError, DataFileError
from ..problem.parameters import equation_differences
from ..problem.residual import require_normalised
from ..registry import LATTICE
from ..training.checkpoint import load_model, model_problem
from ..training.config import channel_layout
from ..training.data import load_arrays, network_inputs
from .metrics import FieldMetrics, RegionErrors
from .predict import predict


def evaluate(run_dir, splits=("test",), batch_size: int = 100, device: str | torch.device = "auto",
             samples: int = 20) -> dict:
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


def evaluate_on(run_dir, data_path, batch_size: int = 100, device: str | torch.device = "auto", samples: int = 20,
                refine: int = 0) -> dict:
    """Metrics of a trained run on every sample of another data file (another contrast, source
    shape or wall condition, say): the same result as :func:`evaluate` gives for a split.

    ``refine`` > 0: of the predictions after that many correction steps (CG on the error
    equation from the prediction, torch-mg V-cycles; :func:`~pydiff.evaluation.aposteriori.implied_fields`),
    the answer ``predict --refine`` gives, with ``refine_seconds`` per sample beside them."""
    device = pick_device(device)
    model, config = load_model(run_dir, "best", device)
    with load(data_path, lazy=True) as data:
        trained = model_problem(run_dir)
        if trained is not None:
            changed = equation_differences(trained, data.problem, *channel_layout(config.in_channels))
            if changed:
                raise ConfigError(f"{data_path} poses another equation than {run_dir} was trained on: "
                                  f"{', '.join(changed)}; a network answers only its own")
        if refine:
            require_normalised(data.problem, "evaluate it without --refine")
        if config.network == "surrogate" and data.problem.lattice != LATTICE:
            raise DataFileError(f"{data_path}: lattice {data.problem.lattice}, but the networks of Table 1 need "
                                f"{LATTICE}x{LATTICE} images")
        n = len(data)
        parts = [slice(lo, min(n, lo + batch_size)) for lo in range(0, n, batch_size)]
        batches = ((network_inputs(data, config.in_channels, part), np.asarray(data.fields[part], dtype=np.float32)[:, None],
                    np.asarray(data.source_count[part]),
                    None if data.diffusivity is None else np.asarray(data.diffusivity[part]),
                    None if data.walls is None else np.asarray(data.walls[part])) for part in parts)
        correct = None
        if refine:
            from .aposteriori import correction_preconditioner, implied_fields

            preconditioner = correction_preconditioner(data.problem)

            def correct(p, x, maps, walls):
                return implied_fields(p, x[:, 0], data.problem, maps, refine, str(device), walls=walls,
                                      preconditioner=preconditioner)[:, None]
        return _metrics(model, config, batches, device, batch_size, samples, correct)


def _metrics(model, config, batches, device, batch_size: int, samples: int, correct=None) -> dict:
    """Prediction metrics over ``batches`` of (inputs, fields, source counts[, maps, walls]);
    ``correct(prediction, inputs, maps, walls)``: what is done to each prediction before it is
    measured (timed: ``refine_seconds`` per sample)."""
    import time

    metrics, regions = FieldMetrics(), RegionErrors()
    examples, n, correcting = None, 0, 0.0
    for x, y, counts, *extra in batches:
        p = predict(model, x, batch_size, device, config.amp)
        if correct is not None:
            start = time.perf_counter()
            p = correct(p, x, *extra)
            correcting += time.perf_counter() - start
        metrics.update(p, y)
        regions.update(p, y, x[:, :1], counts)  # the regions of the source image
        n += len(x)
        if examples is None:
            k = min(samples, len(x))
            examples = {"inputs": x[:k, 0], "truth": y[:k, 0], "prediction": p[:k, 0]}
    result = metrics.result()
    result["regions"] = regions.table()
    result["n_samples"] = n
    if correct is not None:
        result["refine_seconds"] = correcting / max(n, 1)
    result["examples"] = examples
    result["joint"] = metrics.joint
    return result
