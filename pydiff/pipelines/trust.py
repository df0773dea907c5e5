"""When to trust a prediction: label-free error estimates, scored against the true error.

Each method gives every test sample of a run a score computed without its ground truth:

- ``mc-dropout``: dropout kept on at prediction, ``samples`` passes, the mean per-pixel standard
  deviation (the 2024 conclusions' "simpler approach");
- ``physics``: the mean absolute residual of the stationary equation on the prediction, with the
  unknown normalisation fitted per sample (:mod:`pydiff.problem.residual`);
- ``inverse``: a second network, trained to map fields back to source images, reads the
  prediction; the score is how far its sources are from the true input (which is known: it is
  what the surrogate was given).

The scores are then compared with the true per-sample mean and max residual: the Spearman rank
correlation, and the precision and recall of flagging the worst 5 % of samples (by true mean
residual) with the threshold that flags 5 % of them.  Written to ``RUN/trust.csv``, with every
test sample's true errors and scores in ``RUN/trust_scores.csv`` and the picture in
``RUN/trust.png``; the inverse network is a run of its own in ``RUN/inverse``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from .. import atomic
from ..datasets.hdf5 import load
from ..device import memory_budget, pick_device
from ..errors import ConfigError
from ..evaluation.figures import plot_trust
from ..evaluation.predict import predict, predict_mc_dropout
from ..problem.residual import residual_score
from ..training import checkpoint, distributed
from ..training.config import config_for
from ..training.data import load_arrays
from .steps import train_and_evaluate

METHODS = ("mc-dropout", "physics", "inverse")
CSV, SCORES, FIGURE, INVERSE_DIR = "trust.csv", "trust_scores.csv", "trust.png", "inverse"
WORST = 0.05


def flag_quality(score: np.ndarray, error: np.ndarray, share: float = WORST) -> tuple[float, float]:
    """Precision and recall of flagging the ``share`` highest scores as the ``share`` worst errors."""
    k = max(1, int(round(share * len(error))))
    worst = set(np.argsort(error, kind="stable")[-k:])
    flagged = set(np.argsort(score, kind="stable")[-k:])
    hits = len(worst & flagged)
    return hits / len(flagged), hits / len(worst)


def inverse_config(run_config, epochs: int | None = None, width: float | None = None):
    """The inverse network of a run: the quick2024 encoder-decoder on the run's data file and
    split, mapping fields to source images."""
    split_seed = run_config.seed if run_config.split_seed is None else run_config.split_seed
    return config_for(None, "quick2024", data=run_config.data, n_samples=run_config.n_samples,
                      split=run_config.split, split_seed=split_seed, seed=run_config.seed, inverse=True,
                      epochs=epochs or 5, width=width)


def _inverse_epochs(inverse_run: Path, asked: int | None) -> int | None:
    """The epochs of the inverse network: a finished one is reused as it is (and asking for other
    epochs is an error, not a silent reuse); otherwise ``asked`` (None: the default)."""
    if checkpoint.read_result(inverse_run) is None:
        return asked
    trained = checkpoint.read_config(inverse_run).epochs
    if asked is not None and asked != trained:
        raise ConfigError(f"{inverse_run} was trained for {trained} epochs, not {asked}; "
                          f"remove that directory to train it again, or leave out --inverse-epochs")
    return trained


def trust(run_dir, methods=METHODS, samples: int = 32, device: str = "auto", inverse_epochs: int | None = None,
          progress=True) -> pd.DataFrame:
    """Score every test sample of ``run_dir`` with each method and compare with the true error.

    Returns:
        The table of trust.csv: one row per method with ``spearman_mean``, ``spearman_max``,
        ``precision_worst5``, ``recall_worst5`` and the mean score.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"unknown trust method(s) {', '.join(unknown) or '(none)'}; choose among {', '.join(METHODS)}")
    run_dir = Path(run_dir)
    device = pick_device(device)
    model, config = checkpoint.load_model(run_dir, "best", device)
    arrays = load_arrays(config, memory_budget(torch.device("cpu")))
    test = arrays.split["test"]
    if len(test) < 20:
        raise ConfigError(f"{run_dir}: {len(test)} test samples are too few to rank")
    x, y = arrays.inputs[test], arrays.fields[test]  # x: the image (and, where D varies, the map's channel)
    images = x[:, :1]
    maps = None
    if arrays.problem.diffusivity != "constant":  # the residual needs the maps themselves
        with load(config.data, lazy=True) as data:
            maps = np.stack([data.diffusivity[i] for i in test])
    prediction = predict(model, x, config.eval_batch_size, device, config.amp)
    error = np.abs(prediction - y).reshape(len(test), -1)
    mean_error, max_error = error.mean(axis=1), error.max(axis=1)

    scores = {}
    for method in methods:
        if method == "physics":
            scores[method] = residual_score(prediction, images, arrays.problem, maps)
        elif method == "mc-dropout":
            _, spread = predict_mc_dropout(model, x, samples, config.eval_batch_size, device, config.seed,
                                           config.amp, progress=progress)
            scores[method] = spread.reshape(len(test), -1).mean(axis=1)
        else:
            inverse_run = run_dir / INVERSE_DIR
            inverse = inverse_config(config, _inverse_epochs(inverse_run, inverse_epochs))
            train_and_evaluate(dataclasses.replace(inverse, device=str(device)), inverse_run,
                               distributed.Context(device=device), splits=("test",), progress=progress)
            inverse_model, inverse_config_used = checkpoint.load_model(inverse_run, "best", device)
            read = prediction if inverse_config_used.in_channels == 1 else np.concatenate([prediction, x[:, 1:]], axis=1)
            sources = predict(inverse_model, read, config.eval_batch_size, device, config.amp)
            scores[method] = np.abs(sources - images).reshape(len(test), -1).mean(axis=1)

    rows = []
    for method, score in scores.items():
        constant = np.ptp(score) == 0  # no spread (a network without dropout): no ranking at all
        precision, recall = (math.nan, math.nan) if constant else flag_quality(score, mean_error)
        rows.append({"method": method, "samples": len(test),
                     "spearman_mean": math.nan if constant else float(spearmanr(score, mean_error).statistic),
                     "spearman_max": math.nan if constant else float(spearmanr(score, max_error).statistic),
                     "precision_worst5": precision, "recall_worst5": recall, "mean_score": float(score.mean())})
    table = pd.DataFrame(rows)
    atomic.write_text(table.to_csv(index=False), run_dir / CSV)
    per_sample = pd.DataFrame({"sample": test, "mean_res": mean_error, "max_res": max_error, **scores})
    atomic.write_text(per_sample.to_csv(index=False), run_dir / SCORES)
    plot_trust(scores, mean_error, run_dir / FIGURE, f"{run_dir.name}: error estimates without ground truth",
               spearman=dict(zip(table["method"], table["spearman_mean"])))
    return table
