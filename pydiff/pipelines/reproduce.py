"""The reproduce pipeline: one row of Table 2 end to end (data, training, metrics, figures).

Every step is cached and resumable (:mod:`pydiff.pipelines.steps`): the data set is generated once per
size (and problem), a training run continues from its checkpoint, and an evaluated run is not
evaluated again.  Under ``torchrun`` every rank trains; rank 0 alone generates the data and
writes the report.

Seeds: every seed of a row trains on the one data set of :data:`DATA_SEED`; the seed draws the
split of it (train, test, validation), the initialisation and the batches.  So seeds measure
what the paper's single run leaves open (which samples test the network, where its training
starts) at the cost of one data set, and a seed's test samples are its own.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..problem import Problem
from ..registry import preset_problem
from ..training import distributed
from ..training.config import TrainConfig, config_for, differences, option_text, with_data
from .steps import data_path, ensure_data, train_and_evaluate


# The seed of the data set every seed of a row trains on (its split, initialisation and batches
# follow the row's seed).
DATA_SEED = 0


def run_order(models, seeds) -> list[tuple[int, int]]:
    """``(seed, model)`` in the order a job of several seeds runs them: every model of the first
    seed, then every model of the next, so that an interrupted job leaves whole tables of the
    seeds it finished (and a first seed of every row early) rather than every seed of a few rows."""
    return [(seed, model_id) for seed in seeds for model_id in models]


def run_dir_for(runs_dir, preset_name: str, model_id: int, seed: int, config: TrainConfig | None = None) -> Path:
    """``RUNS/PRESET/modelNN-seedS``, followed by every option of ``config`` that differs from the
    preset's (``model09-seed0-epochs5-lr0.05``): a run of other options never reuses another's."""
    name = f"model{model_id:02d}-seed{seed}"
    if config is not None:
        preset_config = config_for(model_id, preset_name, seed=seed, data=config.data)
        name += "".join(f"-{key}{option_text(asked)}" for key, (_, asked) in differences(preset_config, config).items())
    return Path(runs_dir) / preset_name / name


def reproduce(model_id: int, preset_name: str = "quick", runs_dir="runs", data_dir="data", seed: int = 0,
              backend: str = "auto", progress=True, **overrides) -> dict | None:
    """One row of Table 2 end to end: data (cached), training (resumable), metrics, figures.

    ``seed`` seeds the split, the initialisation and the batches; the data set is the one of
    :data:`DATA_SEED` whatever the seed.  Returns metrics.json's contents plus ``run_dir``
    (None on ranks other than 0).  A second call with the same arguments reuses the data, the
    trained run and its metrics; an interrupted one continues; other options train into a run
    directory of their own (:func:`run_dir_for`).
    """
    config = config_for(model_id, preset_name, seed=seed, **overrides)
    if config.network != "surrogate":  # a row of Table 2 is the 2021 NN1 + NN2; another network is not that row
        raise ConfigError(f"reproduce trains Table 2's rows, the 2021 surrogate (NN1 + NN2), but preset {preset_name} "
                          f"with these options trains the {config.network}: train it with pydiff train --preset "
                          f"{preset_name}, or compare networks with pydiff compare")
    problem = Problem.for_setup(**preset_problem(preset_name))
    ctx = distributed.setup(config.device)
    if config.n_samples is None:  # every preset sets it; None (all of a file) cannot size the file made here
        raise ConfigError("n_samples None means all of a data file; this pipeline generates its file: give a number")
    if ctx.is_main:
        ensure_data(data_dir, config.n_samples, DATA_SEED, backend, progress=progress, problem=problem)
    distributed.barrier(ctx)
    config = with_data(config, data_path(data_dir, config.n_samples, DATA_SEED, backend, problem))
    return train_and_evaluate(config, run_dir_for(runs_dir, preset_name, model_id, seed, config), ctx, progress=progress)
