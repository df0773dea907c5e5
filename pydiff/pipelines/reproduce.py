"""The reproduce pipeline: one row of Table 2 end to end (data, training, metrics, figures).

Every step is cached and resumable (:mod:`pydiff.pipelines.steps`): the data set is generated once per
size and seed, a training run continues from its checkpoint, and an evaluated run is not
evaluated again.  Under ``torchrun`` every rank trains; rank 0 alone generates the data and
writes the report.
"""

from __future__ import annotations

from pathlib import Path

from ..problem import Problem
from ..registry import preset_problem
from ..training import distributed
from ..training.config import TrainConfig, config_for, differences, option_text, with_data
from .steps import data_path, ensure_data, train_and_evaluate


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

    Returns metrics.json's contents plus ``run_dir`` (None on ranks other than 0).  A second
    call with the same arguments reuses the data, the trained run and its metrics; an
    interrupted one continues; other options train into a run directory of their own
    (:func:`run_dir_for`).
    """
    config = config_for(model_id, preset_name, seed=seed, **overrides)
    problem = Problem.for_setup(**preset_problem(preset_name))
    ctx = distributed.setup(config.device)
    assert config.n_samples is not None  # every preset sets it, and config_for ignores a None override
    if ctx.is_main:
        ensure_data(data_dir, config.n_samples, seed, backend, progress=progress, problem=problem)
    distributed.barrier(ctx)
    config = with_data(config, data_path(data_dir, config.n_samples, seed, backend, problem))
    return train_and_evaluate(config, run_dir_for(runs_dir, preset_name, model_id, seed, config), ctx, progress=progress)
