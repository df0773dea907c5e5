"""When to trust a prediction: label-free error estimates, scored against the true error.

Each method gives every test sample of a run a score computed without its ground truth (one
score ranked against the true mean residual, one against the true max residual):

- ``mc-dropout``: dropout kept on at prediction, ``samples`` passes, the per-pixel standard
  deviation (the 2024 conclusions' "simpler approach");
- ``physics``: the absolute residual of the stationary equation on the prediction, with the
  unknown normalisation fitted per sample (:mod:`pydiff.problem.residual`);
- ``inverse``: a second network, trained to map fields back to source images, reads the
  prediction; the score is how far its sources are from the true input (which is known: it is
  what the surrogate was given);
- ``a-posteriori``: the error itself, from the equation: a few preconditioned CG steps on the
  error equation ``A e = r`` (:mod:`pydiff.evaluation.aposteriori`; exact where D is constant);
- ``learned``: a small CNN fitted on the run's validation samples (labelled: the exact solver
  made them) to each prediction's mean and max error (:mod:`pydiff.evaluation.learned_error`);
- ``ensemble``: ``ensemble_size`` more networks of the run's configuration with other seeds
  (deep ensembles); the score is the root-mean-square distance of the run's prediction to theirs.

The scores are then compared with the true per-sample mean and max residual: the Spearman rank
correlation, and the precision and recall of flagging the worst 5 % of samples (by true mean,
and by true max residual) with the threshold that flags 5 % of them.  ``ms_per_sample`` is each
method's time per sample on this machine (``fit_seconds``: what it cost to train, once), and the
row ``exact`` the exact solver's: an estimator is worth its name where it is cheaper.  Written to
``RUN/trust.csv``, with every test sample's true errors and scores in ``RUN/trust_scores.csv``
and the picture in ``RUN/trust.png``; the inverse network and the ensemble members are runs of
their own in ``RUN/inverse`` and ``RUN/ensemble/member-K``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from .. import atomic
from ..device import memory_budget, pick_device
from ..errors import ConfigError
from ..evaluation.aposteriori import error_estimate
from ..evaluation.figures import plot_trust
from ..evaluation.learned_error import (
    error_targets,
    features,
    fit_error_model,
    predicted_errors,
)
from ..evaluation.predict import predict, predict_mc_dropout
from ..problem.residual import require_normalised, stationary_residual
from ..solvers.timing import exact_timing
from ..training import checkpoint, distributed
from ..training.config import TrainConfig, config_for
from ..training.data import RunArrays, load_arrays, sample_maps, sample_walls
from ..training.run import train
from .steps import cached_run, train_and_evaluate

METHODS = ("mc-dropout", "physics", "inverse", "a-posteriori", "learned", "ensemble")
DEFAULT_METHODS = ("mc-dropout", "physics", "inverse", "a-posteriori")
CSV, SCORES, FIGURE, INVERSE_DIR, ENSEMBLE_DIR = "trust.csv", "trust_scores.csv", "trust.png", "inverse", "ensemble"
WORST = 0.05
EXACT_TIMING_SAMPLES = 32  # the exact solver's time per sample is measured on this many test samples
MIN_TEST = 20  # test samples below which a ranking (Spearman, the worst 5 %) means nothing
INVERSE_EPOCHS = 5  # epochs of the inverse network when none are asked for
LEARNED_MIN_VAL = 10  # validation samples the learned error model needs to fit on
def flag_quality(score: np.ndarray, error: np.ndarray, share: float = WORST) -> tuple[float, float]:
    """Precision and recall of flagging the ``share`` highest scores as the ``share`` worst errors."""
    k = max(1, int(round(share * len(error))))
    worst = set(np.argsort(error, kind="stable")[-k:])
    flagged = set(np.argsort(score, kind="stable")[-k:])
    hits = len(worst & flagged)
    return hits / len(flagged), hits / len(worst)


def inverse_config(run_config, epochs: int | None = None, width: float | None = None):
    """The inverse network of a run: the quick2024 encoder-decoder on the run's data file and
    split (its samples, all of the file included), mapping fields to source images, for
    ``epochs`` (None: :data:`INVERSE_EPOCHS`) at ``width`` (None: the preset's)."""
    split_seed = run_config.seed if run_config.split_seed is None else run_config.split_seed
    return config_for(None, "quick2024", data=run_config.data, n_samples=run_config.n_samples,
                      split=run_config.split, split_seed=split_seed, seed=run_config.seed, inverse=True,
                      epochs=INVERSE_EPOCHS if epochs is None else epochs, **({} if width is None else {"width": width}))


def _reused_epochs(run: Path, asked: int | None, option: str) -> int | None:
    """The epochs of a helper network (the inverse, an ensemble member): a finished one is reused
    as it is (and asking for other epochs is an error, not a silent reuse); otherwise ``asked``
    (None: the default)."""
    if checkpoint.read_result(run) is None:
        return asked
    trained = checkpoint.read_config(run).epochs
    if asked is not None and asked != trained:
        raise ConfigError(f"{run} was trained for {trained} epochs, not {asked}; "
                          f"remove that directory to train it again, or leave out {option}")
    return trained


def member_config(run_config, member: int, epochs: int | None = None):
    """Ensemble member ``member`` (0, 1, ...) of a run: its configuration with another seed, on
    the same split (the run's split seed kept), for ``epochs`` (None: the run's)."""
    split_seed = run_config.seed if run_config.split_seed is None else run_config.split_seed
    return dataclasses.replace(run_config, seed=run_config.seed + 1 + member, split_seed=split_seed,
                               epochs=run_config.epochs if epochs is None else epochs)


@dataclasses.dataclass
class Scores:
    """One method's scores of the test samples: ranked against the true mean and max residual."""

    mean: np.ndarray
    max: np.ndarray
    seconds: float  # to score every test sample
    fit_seconds: float = 0.0  # to train what the method needs, once


def _map_scores(maps: np.ndarray, seconds: float, fit_seconds: float = 0.0) -> Scores:
    flat = np.abs(np.asarray(maps, dtype=np.float64)).reshape(len(maps), -1)
    return Scores(flat.mean(axis=1), flat.max(axis=1), seconds, fit_seconds)


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


@dataclasses.dataclass
class _Case:
    """What every method reads: the run, its test split's inputs and predictions."""

    run_dir: Path
    model: torch.nn.Module
    config: TrainConfig
    arrays: RunArrays
    device: torch.device
    test: np.ndarray
    x: np.ndarray  # (n, C, L, L) network inputs (the image; the diffusivity channel where D varies)
    maps: np.ndarray | None  # (n, L, L) diffusivity maps where D varies
    prediction: np.ndarray  # (n, 1, L, L)
    progress: bool
    walls: np.ndarray | None = None  # (n,) each sample's walls where the data mixes them

    def walls_of(self, indices) -> np.ndarray | None:
        return sample_walls(self.config, indices)

    @property
    def images(self) -> np.ndarray:
        return self.x[:, :1]

    @property
    def problem(self):
        return self.arrays.problem

    def maps_of(self, indices) -> np.ndarray | None:
        return sample_maps(self.config, indices)


def _mc_dropout(case: _Case, samples: int, **_options) -> Scores:
    (_, spread), seconds = _timed(predict_mc_dropout, case.model, case.x, samples, case.config.eval_batch_size,
                                  case.device, case.config.seed, case.config.amp, progress=case.progress)
    return _map_scores(spread, seconds)


def _physics(case: _Case, **_options) -> Scores:
    (residual, _), seconds = _timed(stationary_residual, case.prediction, case.images, case.problem, case.maps,
                                    case.walls)
    return _map_scores(residual, seconds)


def _a_posteriori(case: _Case, iterations: int | None = None, preconditioner: str = "auto", **_options) -> Scores:
    estimate, seconds = _timed(error_estimate, case.prediction, case.images, case.problem, case.maps, iterations,
                               str(case.device), case.walls, preconditioner)
    return _map_scores(estimate, seconds)


def _inverse(case: _Case, inverse_epochs: int | None = None, **_options) -> Scores:
    inverse_run = case.run_dir / INVERSE_DIR
    inverse = inverse_config(case.config, _reused_epochs(inverse_run, inverse_epochs, "--inverse-epochs"))
    _, fit_seconds = _timed(train_and_evaluate, dataclasses.replace(inverse, device=str(case.device)), inverse_run,
                            distributed.Context(device=case.device), splits=("test",), progress=case.progress)
    inverse_model, inverse_used = checkpoint.load_model(inverse_run, "best", case.device)
    read = case.prediction if inverse_used.in_channels == 1 else np.concatenate([case.prediction, case.x[:, 1:]], axis=1)
    sources, seconds = _timed(predict, inverse_model, read, case.config.eval_batch_size, case.device, case.config.amp)
    return _map_scores(sources - case.images, seconds, fit_seconds)


def _learned(case: _Case, **_options) -> Scores:
    calibration = case.arrays.split["val"]
    if len(calibration) < LEARNED_MIN_VAL:
        raise ConfigError(f"the learned error model needs a validation split of {LEARNED_MIN_VAL} or more samples to "
                          f"fit on; {case.run_dir} has {len(calibration)}")
    start = time.perf_counter()
    x_cal, y_cal = case.arrays.inputs[calibration], case.arrays.fields[calibration]
    predicted_cal = predict(case.model, x_cal, case.config.eval_batch_size, case.device, case.config.amp)
    residual_cal, _ = stationary_residual(predicted_cal, x_cal[:, :1], case.problem, case.maps_of(calibration),
                                          case.walls_of(calibration))
    scale = float(np.std(residual_cal)) or 1.0
    channel = (lambda x: None) if x_cal.shape[1] == 1 else (lambda x: x[:, 1])
    inputs_cal = features(x_cal[:, :1], predicted_cal, residual_cal, scale, channel(x_cal))
    model = fit_error_model(inputs_cal, error_targets(predicted_cal, y_cal), seed=case.config.seed, device=case.device)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    residual, _ = stationary_residual(case.prediction, case.images, case.problem, case.maps, case.walls)
    errors = predicted_errors(model, features(case.images, case.prediction, residual, scale, channel(case.x)),
                              device=case.device)
    return Scores(errors[:, 0], errors[:, 1], time.perf_counter() - start, fit_seconds)


def _ensemble(case: _Case, ensemble_size: int = 4, ensemble_epochs: int | None = None, **_options) -> Scores:
    if ensemble_size < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {ensemble_size}")
    fit_seconds, seconds, members = 0.0, 0.0, []
    for k in range(ensemble_size):
        member_run = case.run_dir / ENSEMBLE_DIR / f"member-{k}"
        config = member_config(case.config, k, _reused_epochs(member_run, ensemble_epochs, "--ensemble-epochs"))
        config = dataclasses.replace(config, device=str(case.device))
        start = time.perf_counter()
        if not cached_run(config, member_run):
            member_run.parent.mkdir(parents=True, exist_ok=True)
            train(config, member_run, resume=(member_run / checkpoint.CONFIG).is_file(), progress=case.progress)
        fit_seconds += time.perf_counter() - start
        member, _ = checkpoint.load_model(member_run, "best", case.device)
        prediction, took = _timed(predict, member, case.x, case.config.eval_batch_size, case.device, case.config.amp)
        members.append(prediction)
        seconds += took
    # the run's prediction's root-mean-square distance to the members': their spread plus its offset
    distance = np.sqrt(np.mean([(case.prediction - m).astype(np.float64) ** 2 for m in members], axis=0))
    return _map_scores(distance, seconds, fit_seconds)


ESTIMATORS: dict[str, Callable[..., Scores]] = {
    "mc-dropout": _mc_dropout, "physics": _physics, "inverse": _inverse, "a-posteriori": _a_posteriori,
    "learned": _learned, "ensemble": _ensemble,
}


def parse_methods(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of :data:`METHODS`; :class:`ConfigError` otherwise."""
    methods = METHODS if text.strip() == "all" else tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"unknown trust method(s) {', '.join(unknown) or '(none)'}; choose among "
                          f"{', '.join(METHODS)}, or all")
    return methods


def trust(run_dir, methods=DEFAULT_METHODS, samples: int = 32, device: str | torch.device = "auto",
          inverse_epochs: int | None = None, progress=True, iterations: int | None = None,
          preconditioner: str = "auto", ensemble_size: int = 4, ensemble_epochs: int | None = None) -> pd.DataFrame:
    """Score every test sample of ``run_dir`` with each method and compare with the true error.

    Returns:
        The table of trust.csv: one row per method with ``spearman_mean``, ``spearman_max``,
        ``precision_worst5``, ``recall_worst5`` (worst by mean residual), ``precision_worst5_max``,
        ``recall_worst5_max`` (by max residual), the mean score, ``ms_per_sample`` and
        ``fit_seconds``; then the row ``exact``: the exact solver's ``ms_per_sample``.
    """
    methods = parse_methods(",".join(methods))
    if "mc-dropout" in methods and samples < 2:  # the only method that takes them
        raise ConfigError(f"--samples must be at least 2, got {samples}")
    for option, epochs in (("--inverse-epochs", inverse_epochs), ("--ensemble-epochs", ensemble_epochs)):
        if epochs is not None and epochs < 1:  # None: the default; 0 would train nothing
            raise ConfigError(f"{option} must be at least 1, got {epochs}")
    run_dir = Path(run_dir)
    device = pick_device(device)
    model, config = checkpoint.load_model(run_dir, "best", device)
    arrays = load_arrays(config, memory_budget(torch.device("cpu")))
    require_normalised(arrays.problem)
    test = arrays.split["test"]
    if len(test) < MIN_TEST:
        raise ConfigError(f"{run_dir}: {len(test)} test samples are too few to rank (at least {MIN_TEST}); train on "
                          "more samples or a larger test share (--split)")
    x, y = arrays.inputs[test], arrays.fields[test]
    case = _Case(run_dir, model, config, arrays, device, test, x, None, np.empty(0), progress)
    case.maps = case.maps_of(test)  # the residual needs the maps themselves, not the network's channel
    case.walls = case.walls_of(test)
    case.prediction = predict(model, x, config.eval_batch_size, device, config.amp)
    error = np.abs(case.prediction - y).reshape(len(test), -1)
    mean_error, max_error = error.mean(axis=1), error.max(axis=1)

    scores = {method: ESTIMATORS[method](case, samples=samples, inverse_epochs=inverse_epochs, iterations=iterations,
                                         preconditioner=preconditioner,
                                         ensemble_size=ensemble_size, ensemble_epochs=ensemble_epochs)
              for method in methods}

    rows = []
    for method, score in scores.items():
        row = {"method": method, "samples": len(test)}
        for against, own, true in (("mean", score.mean, mean_error), ("max", score.max, max_error)):
            constant = np.ptp(own) == 0  # no spread (a network without dropout): no ranking at all
            row[f"spearman_{against}"] = math.nan if constant else float(spearmanr(own, true).statistic)
            precision, recall = (math.nan, math.nan) if constant else flag_quality(own, true)
            suffix = "" if against == "mean" else "_max"
            row[f"precision_worst5{suffix}"], row[f"recall_worst5{suffix}"] = precision, recall
        row.update(mean_score=float(score.mean.mean()), ms_per_sample=1e3 * score.seconds / len(test),
                   fit_seconds=score.fit_seconds)
        rows.append(row)
    backend, seconds = exact_timing(case.problem, case.images[:, 0], case.maps, EXACT_TIMING_SAMPLES, case.walls)
    rows.append({"method": "exact", "samples": min(len(test), EXACT_TIMING_SAMPLES), "ms_per_sample": 1e3 * seconds,
                 "fit_seconds": 0.0, "solver": backend})
    table = pd.DataFrame(rows)
    atomic.write_text(table.to_csv(index=False), run_dir / CSV)
    per_sample = pd.DataFrame({"sample": test, "mean_res": mean_error, "max_res": max_error,
                               **{m: s.mean for m, s in scores.items()},
                               **{f"{m}_max": s.max for m, s in scores.items()}})
    atomic.write_text(per_sample.to_csv(index=False), run_dir / SCORES)
    plot_trust({m: s.mean for m, s in scores.items()}, mean_error, run_dir / FIGURE,
               f"{run_dir.name}: error estimates without ground truth",
               spearman=dict(zip(table["method"], table["spearman_mean"])))
    return table
