"""The 2024 study of error against training-set size, and its online-data counterpart.

One model per (training-set fraction, seed): the fraction is taken from the training split
equally per source count and nested (a smaller set is part of every larger one), the test split
is the same for every point (its seed stays fixed), and the seed changes the initialisation,
the batches and the subset.  Each point is a cached, resumable run of :mod:`pydiff.pipelines.steps`, so
an interrupted study continues where it stopped and a finished one is only re-read.

``data="online"`` trains the same number of steps per point on fresh exact samples instead of
the fixed subset: the curve of a training set as large as the steps can hold.

Written into the study directory: ``train_size.csv`` (one row per run), ``train_size.png`` and
``train_size_fit.json`` (the fit ``mean_res = a + b ln(n_train)`` per kind of data).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import ConfigError
from ..evaluation.figures import plot_train_size
from ..problem import Problem
from ..registry import STUDY_NETWORKS, STUDY_PRESETS, preset_problem
from ..seeds import check_seed, check_seeds
from ..training import distributed
from ..training.config import TRAINING_DATA, config_for, with_data
from .steps import data_path, ensure_data, output_dir, train_and_evaluate

DEFAULT_FRACTIONS = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
CSV, FIGURE, FIT = "train_size.csv", "train_size.png", "train_size_fit.json"
COLUMNS = ("data", "fraction", "n_train", "seed", "epochs", "steps", "mean_res", "p99_res", "max_res", "rel_l2",
           "best_epoch", "train_s", "run_dir")


@dataclass(frozen=True)
class LogFit:
    """``mean_res = a + b * ln(n_train)`` by least squares over every run of one kind of data."""

    a: float
    b: float
    r2: float
    points: int

    def __call__(self, n_train):
        return self.a + self.b * np.log(n_train)


def fit_log(n_train, mean_res) -> LogFit:
    """Least-squares fit of ``mean_res = a + b ln(n_train)`` and its coefficient of determination."""
    x, y = np.log(np.asarray(n_train, dtype=float)), np.asarray(mean_res, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return LogFit(math.nan, math.nan, math.nan, len(x))
    b, a = np.polyfit(x, y, 1)
    residual = y - (a + b * x)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / total if total > 0 else math.nan
    return LogFit(float(a), float(b), float(r2), len(x))


def run_dir_for(study_dir, data: str, fraction: float, seed: int) -> Path:
    return Path(study_dir) / data / f"fraction{fraction:g}-seed{seed}"


def _check(preset_name, fractions, seeds, data, data_seed) -> None:
    """Every argument of the study, before any file or directory is made."""
    if preset_name not in STUDY_PRESETS:
        raise ConfigError(f"--preset {preset_name} is not one of the 2024 study's ({', '.join(STUDY_PRESETS)}): "
                          "the study trains the 2024 networks on data of 1 to 20 sources")
    check_seeds(seeds, "--seeds")
    check_seed(data_seed, "--data-seed")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions must be in (0, 1], got {list(fractions)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"give one or more distinct seeds, got {list(seeds)}")
    if not data or any(d not in TRAINING_DATA for d in data):
        raise ConfigError(f"training data must be among {', '.join(TRAINING_DATA)}, got {list(data)}")


def write_outputs(study_dir: Path, table: pd.DataFrame, title: str = "") -> dict[str, LogFit]:
    """train_size.csv, the fit per kind of data (train_size_fit.json) and train_size.png."""
    atomic.write_text(table.to_csv(index=False), study_dir / CSV)
    fits = {kind: fit_log(rows.n_train, rows.mean_res) for kind, rows in table.groupby("data", sort=False)}
    atomic.write_text(json.dumps({k: dataclasses.asdict(v) for k, v in fits.items()}, indent=2),
                             study_dir / FIT)
    plot_train_size(table, fits, study_dir / FIGURE, title)
    return fits


def train_size_study(preset_name: str, study_dir, fractions=DEFAULT_FRACTIONS, seeds=(0,), data=("file",),
                     data_dir="data", data_seed: int = 0, backend: str = "auto", progress=True,
                     on_point: Callable[[dict], None] | None = None, **overrides):
    """Train and evaluate one model per (data, fraction, seed); returns ``(table, fits)``.

    Args:
        preset_name: the set-up of every run, one of :data:`~pydiff.registry.STUDY_PRESETS`
            (``quick2024`` on a CPU, ``paper2024`` on GPUs, and their varied family's).
        study_dir: where the runs and the study's files go.
        fractions: training-set fractions, in (0, 1].
        seeds: run seeds (initialisation, batches, subset); the split stays that of ``data_seed``.
        data: "file" (the fixed subset) and/or "online" (fresh samples, the same steps).
        data_dir, data_seed, backend: the cached data set (generated when missing).
        on_point: called with each finished point's row (rank 0).
        overrides: TrainConfig values replacing the preset's.

    Returns:
        The table of train_size.csv and the :class:`LogFit` per kind of data (None and {} on
        ranks other than 0).
    """
    fractions, seeds, data = tuple(fractions), tuple(seeds), tuple(data)
    _check(preset_name, fractions, seeds, data, data_seed)
    base = config_for(None, preset_name, **overrides)
    if base.network not in STUDY_NETWORKS:
        raise ConfigError(f"the 2024 study trains the 2024 networks ({', '.join(STUDY_NETWORKS)}), not {base.network}")
    problem = Problem.for_setup(**preset_problem(preset_name))
    ctx = distributed.setup(base.device)
    study_dir = output_dir(study_dir, ctx)
    if base.n_samples is None:  # every preset sets it; None (all of a file) cannot size the file made here
        raise ConfigError("n_samples None means all of a data file; this pipeline generates its file: give a number")
    if ctx.is_main:
        ensure_data(data_dir, base.n_samples, data_seed, backend, progress=progress, problem=problem)
    distributed.barrier(ctx)
    path = str(data_path(data_dir, base.n_samples, data_seed, backend, problem))
    base = with_data(base, path)
    rows = []
    for kind in data:
        for fraction in fractions:
            for seed in seeds:
                config = dataclasses.replace(base, data=path, train_fraction=fraction, seed=seed,
                                             split_seed=data_seed, training_data=kind)
                config.validate()
                run_dir = run_dir_for(study_dir, kind, fraction, seed)
                metrics = train_and_evaluate(config, run_dir, ctx, splits=("test",), progress=progress)
                if metrics is None:
                    continue
                training, test = metrics["training"], metrics["test"]
                n_train = training["n_train"]
                row = {"data": kind, "fraction": fraction, "n_train": n_train, "seed": seed,
                       "epochs": training["epochs_run"],
                       "steps": training["epochs_run"] * math.ceil(n_train / config.batch_size),
                       "mean_res": test["mean_res"], "p99_res": test["p99_res"], "max_res": test["max_res"],
                       "rel_l2": test["rel_l2"],
                       "best_epoch": training["best_epoch"], "train_s": training["seconds"], "run_dir": str(run_dir)}
                rows.append(row)
                # Written after every point: an interrupted study's table is there up to it.
                write_outputs(study_dir, pd.DataFrame(rows, columns=COLUMNS), f"preset {preset_name}")
                if on_point is not None:
                    on_point(row)
    if not ctx.is_main:
        return None, {}
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table, write_outputs(study_dir, table, f"preset {preset_name}")
