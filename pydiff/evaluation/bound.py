"""A bound on each prediction's max error, with a stated guarantee, and answers that keep to it.

**Calibration** (:func:`calibrate`).  On a run's validation split (labelled, never trained on)
every prediction gets the a-posteriori estimate of its max error ``s``
(:mod:`pydiff.evaluation.aposteriori`) and its true max error ``e``.  Split conformal prediction
normalised by the estimator takes ``q``, the ``ceil((n + 1)(1 - alpha))``-th smallest of the
ratios ``e / s``; the bound of any new prediction is ``q s``.

**The guarantee.**  For a new sample exchangeable with the calibration samples (drawn from the
same problem family), ``P(e > q s) <= alpha``.  Serving the network's answer only where
``q s <= EPS`` then gives: *the probability that a sample is answered by the network with a
max error above EPS is at most alpha* (the event lies inside ``e > q s``).  Among the answers
the network serves, the rate of errors above EPS is at most ``alpha / (fraction served)``, and
in practice far lower: the bound is loose where the network is good.  It holds on average over
calibration sets; a single calibration of n samples realises coverage within about
``sqrt(alpha (1 - alpha) / n)`` of it.  It says nothing about samples of another family (another
contrast, other walls): calibrate on the data the run will answer.

**Answers** (:func:`serve`).  A sample whose bound exceeds EPS is solved exactly instead:
warm-started from the network's prediction where the solver is iterative (torch-cg, where D
varies), by the spectral solver where D is constant.

Arrays: (n, L, L); errors in the normalised units of the fields (peak 1).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..device import memory_budget, pick_device
from ..errors import ConfigError
from ..problem import Problem
from ..problem.residual import stationary_residual
from ..solvers import exact_timing, make_solver, normalise
from ..solvers.torch_cg import TorchCGSolver
from ..training import checkpoint
from ..training.data import load_arrays, sample_maps
from .aposteriori import ITERATIONS, error_estimate
from .predict import predict

CALIBRATION = "calibration.json"
EPSILONS = (0.05, 0.1, 0.2, 0.3, 0.5)  # the max errors the calibration report tries
METHOD = "a-posteriori"


def conformal_quantile(ratios: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` ratios (inf when that rank exceeds
    n: too few samples for this alpha)."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    ratios = np.sort(np.asarray(ratios, dtype=np.float64))
    rank = math.ceil((len(ratios) + 1) * (1 - alpha))
    return float(ratios[rank - 1]) if rank <= len(ratios) else math.inf


def estimated_max_errors(prediction, images, problem: Problem, maps=None, iterations: int = ITERATIONS,
                         device: str = "cpu") -> np.ndarray:
    """(n,) the a-posteriori estimate of each prediction's max absolute error (the score ``s``)."""
    estimate = error_estimate(prediction, images, problem, maps, iterations, device)
    return estimate.reshape(len(estimate), -1).max(axis=1).astype(np.float64)


def _split_errors(model, config, arrays, indices, iterations, device):
    """Predictions of a split's samples, their scores, true max errors and the seconds each took."""
    x, y = arrays.inputs[indices], arrays.fields[indices]
    maps = sample_maps(config, indices)
    start = time.perf_counter()
    prediction = predict(model, x, config.eval_batch_size, device, config.amp)
    network = time.perf_counter() - start
    start = time.perf_counter()
    scores = estimated_max_errors(prediction, x[:, :1], arrays.problem, maps, iterations, str(device))
    estimator = time.perf_counter() - start
    true = np.abs(prediction - y).reshape(len(indices), -1).max(axis=1).astype(np.float64)
    return prediction, x[:, 0], maps, scores, true, network / len(indices), estimator / len(indices)


def _served_report(bound: np.ndarray, true: np.ndarray, ms_answered: float, ms_exact: float) -> list[dict]:
    """At each max error of :data:`EPSILONS`: the fraction served, the violations among them, and
    the milliseconds per answer (network and estimate for every sample, an exact solve for the
    rest; ``ms_exact_all``: solving every sample exactly)."""
    rows = []
    for eps in EPSILONS:
        served = bound <= eps
        wrong = served & (true > eps)
        rows.append({"max_error": eps, "served": float(served.mean()), "violations": int(wrong.sum()),
                     "violation_rate_all": float(wrong.mean()),
                     "violation_rate_served": float(wrong.sum() / served.sum()) if served.any() else 0.0,
                     "ms_per_answer": ms_answered + (1 - float(served.mean())) * ms_exact, "ms_exact_all": ms_exact})
    return rows


def warm_start(prediction, images, problem: Problem, maps=None) -> np.ndarray | None:
    """(n, L, L) unnormalised first guesses of the fields from normalised predictions: ``y_hat / c``
    with the source factor ``c`` the residual fits (None where a ``c`` is not positive)."""
    _, c = stationary_residual(prediction, images, problem, maps)
    if not (c > 0).all():
        return None
    L = problem.lattice
    return np.asarray(prediction, dtype=np.float64).reshape(-1, L, L) / c[:, None, None]


def iterations_saved(prediction, images, problem: Problem, maps, device: str = "cpu") -> dict:
    """torch-cg's iterations to 1e-10 on these samples from its own first guess (the constant-D
    answer) and from the network's prediction."""
    solver = TorchCGSolver(problem, device=device)
    images_t, maps_t = torch.as_tensor(images, dtype=torch.float64), torch.as_tensor(maps)
    solver.fields_of(images_t, maps_t)
    cold = solver.iterations
    initial = warm_start(prediction, images, problem, maps)
    solver.fields_of(images_t, maps_t, None if initial is None else torch.as_tensor(initial))
    return {"cg_iterations_cold": cold, "cg_iterations_warm": solver.iterations}


def calibrate(run_dir, alpha: float = 0.05, iterations: int = ITERATIONS, device: str = "auto") -> dict:
    """Fit the bound of ``run_dir`` on its validation split, check it on its test split, and
    write ``RUN/calibration.json``.

    Returns:
        The calibration: ``alpha``, ``quantile`` q, the estimator and its ``iterations``, the
        calibration size, and ``test``: the coverage of the bound on held-out test samples, the
        fraction served and the violations at each max error of :data:`EPSILONS`, and the times
        per sample of the network, the estimator and the exact solver.
    """
    run_dir = Path(run_dir)
    conformal_quantile(np.ones(1), alpha)  # alpha checked before any work
    device = pick_device(device)
    model, config = checkpoint.load_model(run_dir, "best", device)
    arrays = load_arrays(config, memory_budget(torch.device("cpu")))
    calibration, test = arrays.split["val"], arrays.split["test"]
    needed = math.ceil(1 / alpha) - 1
    if len(calibration) < needed:
        raise ConfigError(f"{run_dir}: {len(calibration)} validation samples cannot calibrate alpha {alpha:g} "
                          f"(it needs at least {needed}); use a larger alpha or a larger validation split")
    _, _, _, scores, true, _, _ = _split_errors(model, config, arrays, calibration, iterations, device)
    q = conformal_quantile(true / np.maximum(scores, 1e-12), alpha)
    result = {"method": METHOD, "iterations": iterations, "alpha": alpha, "quantile": q, "split": "val",
              "n_calibration": int(len(calibration)),
              "guarantee": f"P(max error > bound) <= {alpha:g} for samples of the calibration's problem family; "
                           f"served with bound <= EPS, P(served and max error > EPS) <= {alpha:g}"}
    if len(test):
        prediction, images, maps, scores, true, network_s, estimator_s = _split_errors(
            model, config, arrays, test, iterations, device)
        bound = q * scores
        exact_solver, exact_s = exact_timing(arrays.problem, images, maps)
        report = {"n": int(len(test)), "coverage": float((true <= bound).mean()),
                  "coverage_tolerance": 3 * math.sqrt(alpha * (1 - alpha) / len(test)),
                  "median_bound_over_error": float(np.median(bound / np.maximum(true, 1e-12))),
                  "by_max_error": _served_report(bound, true, 1e3 * (network_s + estimator_s), 1e3 * exact_s),
                  "ms_network": 1e3 * network_s,
                  "ms_estimator": 1e3 * estimator_s, "ms_exact": 1e3 * exact_s, "exact_solver": exact_solver}
        if maps is not None and TorchCGSolver.unsupported(arrays.problem) is None:
            report.update(iterations_saved(prediction[:32], images[:32], arrays.problem, maps[:32], str(device)))
        result["test"] = report
    atomic.write_text(json.dumps(result, indent=2), run_dir / CALIBRATION)
    return result


def read_calibration(run_dir) -> dict:
    """RUN/calibration.json; :class:`ConfigError` saying how to make it when it is missing."""
    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no {CALIBRATION}: run pydiff calibrate {run_dir} --alpha 0.05 first")
    calibration = json.loads(path.read_text())
    if calibration.get("method") != METHOD or not math.isfinite(calibration.get("quantile", math.nan)):
        raise ConfigError(f"{path}: not a usable calibration (method {calibration.get('method')!r}, "
                          f"quantile {calibration.get('quantile')}); calibrate again with a larger alpha")
    return calibration


def serve(prediction: np.ndarray, images: np.ndarray, problem: Problem, maps, max_error: float, calibration: dict,
          device: str = "cpu") -> dict:
    """The answers to (n, L, L) ``images`` given the network's ``prediction``: the prediction
    where its bound is at most ``max_error``, the exact field elsewhere.

    Returns:
        ``prediction`` (n, L, L) float32 answers, ``bound`` (n,), ``served`` (n,) bool, and
        ``cg_iterations`` of the warm-started exact solves (0 when none ran or D is constant).
    """
    if not max_error > 0:
        raise ConfigError(f"--max-error must be positive, got {max_error}")
    L = problem.lattice
    prediction = np.asarray(prediction, dtype=np.float32).reshape(-1, L, L)
    bound = calibration["quantile"] * estimated_max_errors(prediction, images, problem, maps,
                                                           calibration["iterations"], device)
    served = bound <= max_error
    answers, iterations = prediction.copy(), 0
    todo = np.flatnonzero(~served)
    if len(todo):
        todo_maps = None if maps is None else np.asarray(maps)[todo]
        if todo_maps is not None and TorchCGSolver.unsupported(problem) is None:
            solver = TorchCGSolver(problem, device=device)
            initial = warm_start(prediction[todo], images[todo], problem, todo_maps)
            u = solver.fields_of(torch.as_tensor(images[todo], dtype=torch.float64), torch.as_tensor(todo_maps),
                                 None if initial is None else torch.as_tensor(initial)).cpu().numpy()
            iterations = solver.iterations
        else:
            with make_solver("auto", problem) as solver:
                u = solver(np.asarray(images[todo], dtype=np.float64), todo_maps)
        answers[todo] = normalise(u)[0]
    return {"prediction": answers, "bound": bound.astype(np.float32), "served": served, "cg_iterations": iterations}
