"""The cached, resumable steps every pipeline shares: a data set, a trained run, its evaluation.

Each step does nothing when its result is already there: the data set is generated once per
problem, size and seed (an interrupted generation is finished); a run with a checkpoint
continues from it; an evaluated run is not evaluated again.  Under ``torchrun`` every rank
trains; rank 0 alone generates data and evaluates.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..datasets.writer import generate
from ..errors import ConfigError
from ..evaluation.evaluate import evaluate
from ..evaluation.report import write_run_report
from ..problem import Problem
from ..training import checkpoint, distributed
from ..training.config import TrainConfig, describe_differences, differences, resumable
from ..training.run import train


def output_dir(path, ctx: distributed.Context) -> Path:
    """A pipeline's output directory, created with its parents (rank 0), as ``reproduce`` creates
    ``runs/PRESET``: the documented defaults (``runs/compare``) must work in a fresh checkout."""
    path = Path(path)
    if ctx.is_main:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_path(data_dir, n: int, seed: int, backend: str = "auto", problem: Problem | None = None) -> Path:
    """Where the cached ground truth of ``n`` samples of ``problem`` (default: the 2021 one) lives:
    a name that spells the problem out, so that two problems never share a file."""
    from ..solvers import resolve_backend

    problem = problem or Problem()
    backend = resolve_backend(backend, problem.solved())
    if problem == Problem():
        return Path(data_dir) / f"two_sources-L100-n{n}-seed{seed}-{backend}.h5"
    if problem.setup == "darcy":
        darcy = Problem.for_setup("darcy")
        name = f"darcy-L{problem.lattice}-solve{problem.solve_lattice}" + "".join(
            f"-{key}{getattr(problem, key):g}" for key in ("D", "contrast", "gamma") if getattr(problem, key) != getattr(darcy, key))
        return Path(data_dir) / f"{name}-n{n}-seed{seed}-{backend}.h5"
    counts = f"{problem.min_sources}-{problem.n_sources}"
    name = f"{problem.setup}-L{problem.lattice}-sources{counts}"
    if not problem.papers_family or problem.target != "t_max":  # the varied family: what differs
        varied = Problem(lattice=problem.lattice, diffusivity=problem.diffusivity, target="stationary")
        name += "".join(f"-{key}{value:g}" if isinstance(value, float) else f"-{key}{value}"
                        for key, value in problem.to_attrs().items()
                        if key in VARIED_KEYS and value != varied.to_attrs()[key])
        name += f"-{problem.diffusivity}"
    return Path(data_dir) / f"{name}-n{n}-seed{seed}-{backend}.h5"


# The parameters of the varied family (issue "Varied diffusion equations") that name a data file.
VARIED_KEYS = ("contrast", "inclusions", "correlation_length", "sources", "boundary", "target", "D", "gamma",
               "radius")


def ensure_data(data_dir, n: int, seed: int, backend: str = "auto", progress=True,
                problem: Problem | None = None) -> Path:
    """The cached data set, generated (or an interrupted generation finished) when needed.

    ``generate(..., resume=True)`` does all of it: it returns a complete file after checking
    that it was made with these parameters, finishes a ``.partial`` one, or starts afresh.
    """
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return generate(data_path(data_dir, n, seed, backend, problem), n, problem=problem, seed=seed, backend=backend,
                    resume=True, progress=progress)


def evaluate_run(run_dir, splits=("test", "train"), device: str = "auto") -> dict:
    """Metrics of a trained run on its splits, written with its figures; returns metrics.json."""
    by_split = evaluate(run_dir, splits=splits, device=device)
    if "test" not in by_split:
        raise ConfigError(f"{run_dir}: its split has no test samples")
    return write_run_report(run_dir, by_split, checkpoint.read_config(run_dir), checkpoint.read_result(run_dir))


def cached_run(config: TrainConfig, run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``config`` (then it is reused).

    A run of ``config`` that is not finished is continued by the caller; a run of other options is
    refused, naming them, unless they only extend it (more epochs of a constant learning rate:
    then it is continued, :func:`~pydiff.training.config.resumable`)."""
    if not (run_dir / checkpoint.CONFIG).is_file():
        return False
    stored = checkpoint.read_config(run_dir)
    diff = differences(stored, config)
    if diff and resumable(stored, config):
        raise ConfigError(f"{run_dir} holds a run made with other options ({describe_differences(diff)}); "
                          "remove it, or give another --runs directory")
    return not diff and checkpoint.read_result(run_dir) is not None


def train_and_evaluate(config: TrainConfig, run_dir, ctx: distributed.Context, splits=("test", "train"),
                       progress=True) -> dict | None:
    """Train ``config`` into ``run_dir`` unless it is finished (continuing from its checkpoint),
    then evaluate it unless its metrics are newer than its training.

    Returns metrics.json's contents plus ``run_dir`` (None on ranks other than 0).

    Raises:
        ConfigError: ``run_dir`` holds a run of other options (:func:`cached_run`).
    """
    run_dir = Path(run_dir)
    if ctx.is_main:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    distributed.barrier(ctx)
    if not cached_run(config, run_dir):
        train(config, run_dir, resume=(run_dir / checkpoint.CONFIG).is_file(), progress=progress)
    if not ctx.is_main:
        return None
    metrics_file, result_file = run_dir / checkpoint.METRICS, run_dir / checkpoint.RESULT
    if metrics_file.is_file() and metrics_file.stat().st_mtime >= result_file.stat().st_mtime:
        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = evaluate_run(run_dir, splits, device=str(ctx.device))
    metrics["run_dir"] = str(run_dir)
    return metrics
