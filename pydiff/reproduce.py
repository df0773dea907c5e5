"""The reproduce pipeline: one row of Table 2 end to end (data, training, metrics, figures).

Every step is cached and resumable: the data set is generated once per size and seed, a
training run continues from its checkpoint, and an evaluated run is not evaluated again.
Under ``torchrun`` every rank trains; rank 0 alone generates the data and writes the report.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from . import distributed, rundir
from .config import config_for
from .dataset import generate
from .errors import ConfigError
from .evaluate import evaluate
from .report import write_run_report
from .train import train


def data_path(data_dir, n: int, seed: int, backend: str = "spectral") -> Path:
    """Where the cached ground truth of ``n`` samples and ``seed`` lives (the 2021 problem)."""
    return Path(data_dir) / f"two_sources-L100-n{n}-seed{seed}-{backend}.h5"


def ensure_data(data_dir, n: int, seed: int, backend: str = "spectral", progress=True) -> Path:
    """The cached data set, generated (or an interrupted generation finished) when needed.

    ``generate(..., resume=True)`` does all of it: it returns a complete file after checking
    that it was made with these parameters, finishes a ``.partial`` one, or starts afresh.
    """
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return generate(data_path(data_dir, n, seed, backend), n, seed=seed, backend=backend, resume=True,
                    progress=progress)


def evaluate_run(run_dir, splits=("test", "train"), device: str = "auto") -> dict:
    """Metrics of a trained run on its splits, written with its figures; returns metrics.json."""
    by_split = evaluate(run_dir, splits=splits, device=device)
    if "test" not in by_split:
        raise ConfigError(f"{run_dir}: its split has no test samples")
    return write_run_report(run_dir, by_split, rundir.read_config(run_dir), rundir.read_result(run_dir))


def run_dir_for(runs_dir, preset_name: str, model_id: int, seed: int) -> Path:
    return Path(runs_dir) / preset_name / f"model{model_id:02d}-seed{seed}"


def reproduce(model_id: int, preset_name: str = "quick", runs_dir="runs", data_dir="data", seed: int = 0,
              backend: str = "spectral", progress=True, **overrides) -> dict | None:
    """One row of Table 2 end to end: data (cached), training (resumable), metrics, figures.

    Returns metrics.json's contents plus ``run_dir`` (None on ranks other than 0).  A second
    call with the same arguments reuses the data, the trained run and its metrics; an
    interrupted one continues.
    """
    config = config_for(model_id, preset_name, seed=seed, **overrides)
    ctx = distributed.setup(config.device)
    path = data_path(data_dir, config.n_samples, seed, backend)
    if ctx.is_main:
        ensure_data(data_dir, config.n_samples, seed, backend, progress=progress)
    distributed.barrier(ctx)
    config = dataclasses.replace(config, data=str(path))
    run_dir = run_dir_for(runs_dir, preset_name, model_id, seed)
    if ctx.is_main:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    distributed.barrier(ctx)
    if rundir.read_result(run_dir) is None:
        train(config, run_dir, resume=(run_dir / rundir.CONFIG).is_file(), progress=progress)
    if not ctx.is_main:
        return None
    metrics_file = run_dir / rundir.METRICS
    result_file = run_dir / rundir.RESULT
    if metrics_file.is_file() and metrics_file.stat().st_mtime >= result_file.stat().st_mtime:
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = evaluate_run(run_dir, device=str(ctx.device))
    metrics["run_dir"] = str(run_dir)
    return metrics
