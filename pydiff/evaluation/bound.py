"""A bound on each prediction's max error, with a stated guarantee, and answers that keep to it.

**Calibration** (:func:`calibrate`).  On labelled samples that played no part in training or
in choosing the best epoch — the run's held-out split that did not select it (``test`` when the
best epoch was chosen on ``val``), or a data file of the model's equation (``--data``: how a
shipped model, or a run meant for another family, is calibrated) — halved at random into a
calibration half and a check half, every prediction of the calibration half gets the a-posteriori estimate of its max error ``s``
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
contrast, other walls): calibrate on the data the run will answer.  calibration.json records
the family (the problem) and the model (its SHA-256): predict refuses to apply it to anything else.

**Answers** (:func:`serve`).  A sample whose bound exceeds EPS is solved exactly instead:
by the fastest exact backend for the problem (:func:`pydiff.solvers.fastest.exact_fields`),
warm-started from the network's prediction where that backend iterates, and by sparse LU
where an iterative one does not converge.

Arrays: (n, L, L); errors in the normalised units of the fields (peak 1).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .. import atomic
from ..device import memory_budget, pick_device
from ..datasets.hdf5 import inspect, load
from ..errors import ConfigError, DataFileError, NotConverged
from ..problem import Problem
from ..problem.parameters import equation_differences
from ..problem.residual import require_normalised, stationary_residual
from ..problem.walls import for_each_wall
from ..solvers import normalise
from ..solvers.fastest import exact_fields
from ..solvers.timing import exact_timing
from ..solvers.torch_cg import TorchCGSolver
from ..training import checkpoint
from ..training.config import channel_layout
from ..training.data import load_arrays, network_inputs, sample_maps, sample_walls
from .aposteriori import (PRECONDITIONERS, estimator, check_preconditioner, correction_preconditioner, error_estimate,
                          guaranteed_max_errors, implied_fields, inverse_row_sums)
from .predict import predict

CALIBRATION = checkpoint.CALIBRATION
EPSILONS = (0.05, 0.1, 0.2, 0.3, 0.5)  # the max errors the calibration report tries
METHOD = "a-posteriori"
HALVES = 0x63616C  # "cal": the random stream that halves the held-out samples into calibration and check
ERROR_FLOOR = 1e-12  # a max error (estimated or true) below this divides as this: a ratio to an exact zero stays finite


def conformal_quantile(ratios: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` ratios (inf when that rank exceeds
    n: too few samples for this alpha)."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    ratios = np.sort(np.asarray(ratios, dtype=np.float64))
    rank = math.ceil((len(ratios) + 1) * (1 - alpha))
    return float(ratios[rank - 1]) if rank <= len(ratios) else math.inf


def estimated_max_errors(prediction, images, problem: Problem, maps=None, iterations: int | None = None,
                         device: str = "cpu", walls=None, preconditioner: str = "auto") -> np.ndarray:
    """(n,) the a-posteriori estimate of each prediction's max absolute error (the score ``s``);
    ``walls``: each sample's, where the problem mixes them; ``preconditioner``: of the estimate's
    CG steps (:data:`~pydiff.evaluation.aposteriori.PRECONDITIONERS`)."""
    estimate = error_estimate(prediction, images, problem, maps, iterations, device, walls, preconditioner)
    return estimate.reshape(len(estimate), -1).max(axis=1).astype(np.float64)


def _errors(model, config, x, y, maps, walls, problem: Problem, iterations, device, preconditioner):
    """Predictions of (k, C, L, L) inputs ``x``, their scores, true max errors against the fields
    ``y`` and the seconds per sample of the network and of the estimate (each warmed up on one
    sample first: a first call's allocations and kernel choices are not what serving pays)."""
    first = predict(model, x[:1], config.eval_batch_size, device, config.amp)
    estimated_max_errors(first, x[:1, :1], problem, None if maps is None else maps[:1], iterations, str(device),
                         None if walls is None else walls[:1], preconditioner)
    start = time.perf_counter()
    prediction = predict(model, x, config.eval_batch_size, device, config.amp)
    network = time.perf_counter() - start
    start = time.perf_counter()
    scores = estimated_max_errors(prediction, x[:, :1], problem, maps, iterations, str(device), walls, preconditioner)
    estimator = time.perf_counter() - start
    true = np.abs(prediction - y).reshape(len(x), -1).max(axis=1).astype(np.float64)
    return prediction, scores, true, network / len(x), estimator / len(x)


class HeldOut(NamedTuple):
    """Labelled samples that played no part in training or model selection: (k, C, L, L)
    network inputs, (k, 1, L, L) fields, (k, L, L) maps or None, (k,) walls where the problem
    mixes them (else None), their problem, where they come from and their indices there."""

    x: np.ndarray
    y: np.ndarray
    maps: np.ndarray | None
    walls: np.ndarray | None
    problem: Problem
    source: str
    indices: np.ndarray


def held_out(config, trained: Problem, data=None) -> HeldOut:
    """The samples a calibration may use: the run's held-out split that did not choose its best
    epoch, or every sample of the data file ``data`` (refused where it is the run's own data or
    poses another equation than the model was trained on)."""
    if data is None:
        if not config.data:
            raise ConfigError("a shipped model keeps no data: calibrate it on a data file of its family with --data FILE")
        if config.select_on == "test" and config.split[2] == 0:
            raise ConfigError("this run has no held-out split that chose nothing (no validation split, and the test "
                              "split picked its best epoch): calibrate it on fresh samples with --data FILE")
        arrays = load_arrays(config, memory_budget(torch.device("cpu")))
        split = "test" if config.select_on == "val" else "val"  # the split that chose nothing
        index = arrays.split[split]
        return HeldOut(np.asarray(arrays.inputs[index]), np.asarray(arrays.fields[index]), sample_maps(config, index),
                       sample_walls(config, index), arrays.problem, split, index)
    data = Path(data)
    if data.suffix == ".npy":
        raise ConfigError(f"{data}: calibration needs labels: give a labelled pydiff data file (pydiff generate)")
    f, attrs, problem = inspect(data)
    f.close()
    if config.data and Path(config.data).is_file():
        f, own, own_problem = inspect(config.data)
        f.close()
        # sample j of a file is drawn from (its seed, j): a file of the training file's problem and
        # seed holds the training samples, whatever its size, batches or shards
        if Path(config.data).resolve() == data.resolve() or (own.get("seed") == attrs.get("seed")
                                                              and own_problem == problem):
            raise ConfigError(f"{data} holds samples the model was trained and selected on (the problem and seed "
                              f"{attrs.get('seed')} of its training data); generate fresh ones with another --seed")
    reads_map, reads_walls = channel_layout(config.in_channels)
    changed = equation_differences(trained, problem, reads_map, reads_walls)
    if changed:
        raise ConfigError(f"{data} poses another equation than the model was trained on: {', '.join(changed)}")
    if config.network == "surrogate" and problem.lattice != trained.lattice:
        raise ConfigError(f"{data}: lattice {problem.lattice}, but this network needs {trained.lattice}")
    with load(data) as samples:
        x = network_inputs(samples, config.in_channels)
        return HeldOut(x, samples.fields[:, None], samples.diffusivity, samples.walls, problem, str(data),
                       np.arange(len(x)))


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
                     "violation_rate_served": float(wrong.sum() / served.sum()) if served.any() else None,  # n/a
                     "ms_per_answer": ms_answered + (1 - float(served.mean())) * ms_exact, "ms_exact_all": ms_exact})
    return rows


def error_ratios(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` per sample, a denominator below :data:`ERROR_FLOOR` taken as it:
    the true error over the estimate (what the quantile is fitted to), the bound over the true error."""
    return np.asarray(numerator, dtype=np.float64) / np.maximum(denominator, ERROR_FLOOR)


def warm_start(prediction, images, problem: Problem, maps=None, walls=None) -> np.ndarray | None:
    """(n, L, L) unnormalised first guesses of the fields from normalised predictions: ``y_hat / c``
    with the source factor ``c`` the residual fits (None where a ``c`` is not positive)."""
    _, c = stationary_residual(prediction, images, problem, maps, walls)
    if not (c > 0).all():
        return None
    L = problem.lattice
    return np.asarray(prediction, dtype=np.float64).reshape(-1, L, L) / c[:, None, None]


def iterations_saved(prediction, images, problem: Problem, maps, device: str = "cpu") -> dict:
    """torch-cg's iterations to 1e-10 on these samples from its own first guess (the constant-D
    answer) and from the network's prediction (None where it does not converge)."""
    solver = TorchCGSolver(problem, device=device)
    images_t, maps_t = torch.as_tensor(images, dtype=torch.float64), torch.as_tensor(maps)
    initial = warm_start(prediction, images, problem, maps)
    counts: dict[str, int | None] = {}
    for name, guess in (("cg_iterations_cold", None), ("cg_iterations_warm", initial)):
        try:
            solver.fields_of(images_t, maps_t, None if guess is None else torch.as_tensor(guess))
            counts[name] = solver.iterations
        except NotConverged:
            counts[name] = None
    return counts


def calibrate(run_dir, alpha: float = 0.05, iterations: int | None = None, device: str | torch.device = "auto",
              data=None, out=None, preconditioner: str = "auto") -> dict:
    """Fit the bound of ``run_dir``'s model on samples that played no part in training or model
    selection (:func:`held_out`: its held-out split that chose nothing, or the data file
    ``data``), halved at random: the calibration half fits the bound, the check half measures it.

    Writes ``out`` (default ``RUN/calibration.json``).

    Returns:
        The calibration: ``alpha``, ``quantile`` q, the estimator and its ``iterations``, where
        the samples came from and their indices, the family (``problem``) and the model's
        SHA-256, and ``test``: the coverage of the bound on the check half, the fraction served
        and the violations at each max error of :data:`EPSILONS`, and the times per sample of the
        network, the estimator and the exact solver.
    """
    run_dir = Path(run_dir)
    conformal_quantile(np.ones(1), alpha)  # alpha and the preconditioner checked before any work
    check_preconditioner(preconditioner)
    out = run_dir / CALIBRATION if out is None else Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"directory {out.parent} does not exist")
    if out.exists() and not is_calibration(out):  # a new calibration replaces an old one, nothing else
        raise ConfigError(f"{out} exists and is not a calibration; choose another --out")
    device = pick_device(device)
    model, config = checkpoint.load_model(run_dir, "best", device)
    trained = checkpoint.model_problem(run_dir)
    if trained is None:  # a pydiff 0.1 run: its data file says
        f, _, trained = inspect(config.data)
        f.close()
    require_normalised(trained)
    samples = held_out(config, trained, data)
    order = np.random.default_rng([config.seed, HALVES]).permutation(len(samples.x))
    n_calibration = (len(order) + 1) // 2
    fit, check = np.sort(order[:n_calibration]), np.sort(order[n_calibration:])
    needed = math.ceil(1 / alpha) - 1
    if len(fit) < needed:
        raise ConfigError(f"{len(fit)} calibration samples (half of {len(order)} held out in {samples.source}) cannot "
                          f"calibrate alpha {alpha:g} (it needs at least {needed}); use a larger alpha, or --data with "
                          f"at least {2 * needed} fresh samples")
    problem = samples.problem
    preconditioner, iterations = estimator(problem, preconditioner, iterations)  # recorded as resolved: predict repeats them

    def part(index):
        return samples.x[index], samples.y[index], *(None if a is None else a[index] for a in (samples.maps, samples.walls))

    x_fit, y_fit, maps_fit, walls_fit = part(fit)
    _, scores, true, _, _ = _errors(model, config, x_fit, y_fit, maps_fit, walls_fit, problem, iterations, device,
                                    preconditioner)
    q = conformal_quantile(error_ratios(true, scores), alpha)
    result = {"method": METHOD, "iterations": iterations, "preconditioner": preconditioner, "alpha": alpha, "quantile": q, "split": samples.source,
              "n_calibration": int(len(fit)), "calibration_indices": samples.indices[fit].tolist(),
              "check_indices": samples.indices[check].tolist(), "problem": problem.to_attrs(),
              "model_sha256": checkpoint.model_digest(run_dir),
              "guarantee": f"P(max error > bound) <= {alpha:g} for samples of the calibration's problem family; "
                           f"served with bound <= EPS, P(served and max error > EPS) <= {alpha:g}"}
    if len(check):
        x, y, check_maps, check_walls = part(check)
        prediction, scores, true, network_s, estimator_s = _errors(model, config, x, y, check_maps, check_walls,
                                                                   problem, iterations, device, preconditioner)
        bound = q * scores
        images = x[:, 0]
        exact_solver, exact_s = exact_timing(problem, images, check_maps, walls=check_walls)
        report = {"n": int(len(check)), "coverage": float((true <= bound).mean()),
                  "coverage_tolerance": 3 * math.sqrt(alpha * (1 - alpha) / len(check)),
                  "median_bound_over_error": float(np.median(error_ratios(bound, true))),
                  "by_max_error": _served_report(bound, true, 1e3 * (network_s + estimator_s), 1e3 * exact_s),
                  "ms_network": 1e3 * network_s,
                  "ms_estimator": 1e3 * estimator_s, "ms_exact": 1e3 * exact_s, "exact_solver": exact_solver}
        if check_maps is not None and TorchCGSolver.unsupported(problem) is None:
            report.update(iterations_saved(prediction[:32], images[:32], problem, check_maps[:32], str(device)))
        result["test"] = report
    atomic.write_text(json.dumps(result, indent=2), out)
    return result


def is_calibration(path: Path) -> bool:
    """Whether ``path`` is a file that a calibration wrote (a JSON object with its method, alpha
    and quantile): the only file ``calibrate --out`` may replace."""
    try:
        content = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(content, dict) and content.get("method") == METHOD and {"alpha", "quantile"} <= content.keys()


def read_calibration(run_dir, path=None, named: str | None = None) -> dict:
    """The calibration at ``path`` (default ``RUN/calibration.json``), checked to be usable and
    made for ``run_dir``'s model; :class:`ConfigError` saying how to make one otherwise
    (``named``: how the user named the model, a run directory or ``--pretrained NAME``).  The
    result also holds the file's ``path`` and ``sha256``, which an answers file records."""
    import hashlib

    named = named or str(run_dir)
    how = f"pydiff calibrate {named}" + (" --data FILE" if named.startswith("--pretrained") else "")
    if path is None:
        path = Path(run_dir) / CALIBRATION
        if not path.is_file():
            if named.startswith("--pretrained"):
                raise ConfigError(f"{named} ships no {CALIBRATION}: give --calibration FILE, made by {how} --out FILE "
                                  "on a data file of the family it will answer")
            raise ConfigError(f"{run_dir} has no {CALIBRATION}: make it with {how} (see pydiff calibrate --help)")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no calibration {path}: make it with {how} --out {path}")
    content = path.read_bytes()
    try:
        calibration = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not a calibration ({exc})") from None
    if not isinstance(calibration, dict):
        raise ConfigError(f"{path}: not a calibration (a JSON object is expected)")
    problem = calibration.get("problem")
    if "problem" not in calibration or "model_sha256" not in calibration:
        raise ConfigError(f"{path} was made by an older pydiff, which recorded neither its family nor its model: "
                          f"calibrate again ({how})")

    def number(value, low, high):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and low < value < high

    checks = (("method", calibration.get("method") == METHOD),
              ("quantile", number(calibration.get("quantile"), 0, math.inf)),
              ("alpha", number(calibration.get("alpha"), 0, 1)),
              ("iterations", isinstance(calibration.get("iterations"), int) and calibration["iterations"] >= 0),
              ("preconditioner", calibration.get("preconditioner", "spectral") in PRECONDITIONERS),
              ("problem", isinstance(problem, dict)))
    wrong = [name for name, ok in checks if not ok]
    if not wrong:
        try:
            Problem.from_attrs(problem)
        except (KeyError, TypeError, ValueError):  # ConfigError is a ValueError
            wrong = ["problem"]
    if wrong:
        raise ConfigError(f"{path}: not a usable calibration (its {', '.join(wrong)} "
                          f"{'is' if len(wrong) == 1 else 'are'} missing or impossible); calibrate again ({how})")
    if calibration["model_sha256"] != checkpoint.model_digest(run_dir):
        raise ConfigError(f"{path} was made for another model than {named}: calibrate this one ({how} --out FILE)")
    return {**calibration, "path": str(path), "sha256": hashlib.sha256(content).hexdigest()}


def check_max_error(max_error: float) -> float:
    """``max_error`` if it is a positive finite number; :class:`ConfigError` otherwise."""
    if not (max_error > 0 and math.isfinite(max_error)):
        raise ConfigError(f"--max-error must be a positive finite number, got {max_error}")
    return max_error


def serve(prediction: np.ndarray, images: np.ndarray, problem: Problem, maps, max_error: float, calibration: dict,
          device: str = "cpu", walls=None, refine: int = 0) -> dict:
    """The answers to (n, L, L) ``images`` given the network's ``prediction``, three kinds:

    - **served**: the prediction, where its bound is at most ``max_error``.  The bound is the
      smaller of the calibrated one and the guaranteed one
      (:func:`~pydiff.evaluation.aposteriori.guaranteed_max_errors`): both hold, so
      ``P(error > bound) <= alpha`` still;
    - **refined** (``refine`` > 0): the prediction after ``refine`` correction steps (CG on the
      error equation, preconditioned by a torch-mg V-cycle, or exact in one spectral step where
      D is constant), where its guaranteed bound, which needs no calibration, is at most
      ``max_error``;
    - **solved**: the exact field, elsewhere, by the fastest backend, warm-started.

    ``walls``: each sample's, where the problem mixes them.

    Returns:
        ``prediction`` (n, L, L) float32 answers; ``bound`` (n,), the network's; ``served`` and
        ``refined`` (n,) bool; ``refined_bound`` (n,), the refined answers' (inf elsewhere);
        ``cg_iterations`` of the warm-started exact solves (0 when none ran or the backend does
        not iterate).
    """
    check_max_error(max_error)
    if int(refine) != refine or refine < 0:
        raise ConfigError(f"--refine must be a non-negative number of steps, got {refine}")
    L = problem.lattice
    prediction = np.asarray(prediction, dtype=np.float32).reshape(-1, L, L)
    conformal = calibration["quantile"] * estimated_max_errors(
        prediction, images, problem, maps, calibration["iterations"], device, walls,
        calibration.get("preconditioner", "spectral"))
    # |A^-1|_inf depends on the maps alone: computed once for the prediction's bound and the refined one's
    row_sums = inverse_row_sums(problem, maps, len(prediction), device, walls)
    bound = np.minimum(conformal, guaranteed_max_errors(prediction, images, problem, maps, walls, device, row_sums))
    served = bound <= max_error
    refined, refined_bound = np.zeros(len(prediction), dtype=bool), np.full(len(prediction), np.inf)
    answers, iterations = prediction.copy(), 0
    todo = np.flatnonzero(~served)

    def of(index):  # the maps and walls of samples ``index`` (None where there are none)
        return tuple(None if a is None else np.asarray(a)[index] for a in (maps, walls))

    if refine and len(todo):
        todo_maps, todo_walls = of(todo)
        steps = implied_fields(prediction[todo], images[todo], problem, todo_maps, int(refine), device, walls=todo_walls,
                               preconditioner=correction_preconditioner(problem))
        their_bound = guaranteed_max_errors(steps, images[todo], problem, todo_maps, todo_walls, device, row_sums[todo])
        good = their_bound <= max_error
        answers[todo[good]], refined_bound[todo[good]], refined[todo[good]] = steps[good], their_bound[good], True
        todo = todo[~good]
    if len(todo):
        todo_maps, todo_walls = of(todo)
        initial = warm_start(prediction[todo], images[todo], problem, todo_maps, todo_walls)
        answers[todo], iterations = solve_exactly(images[todo], problem, todo_maps, todo_walls, initial, device)
    return {"prediction": answers, "bound": bound.astype(np.float32), "served": served, "refined": refined,
            "refined_bound": refined_bound.astype(np.float32), "cg_iterations": iterations}


def solve_exactly(images: np.ndarray, problem: Problem, maps=None, walls=None, initial=None,
                  device: str = "cpu") -> tuple[np.ndarray, int]:
    """(n, L, L) float32 normalised exact fields of ``images`` by the fastest backend
    (:func:`~pydiff.solvers.fastest.exact_fields`, each wall's samples apart where the problem
    mixes them), warm-started from ``initial`` (unnormalised; None: cold), and the CG iterations
    it took (0 for a direct solve)."""
    counts = []

    def solve(one, *parts):
        u, _, n = exact_fields(one, *parts, device=device)
        counts.append(n)
        return u

    fields = normalise(for_each_wall(problem, walls, solve, images, maps, initial))[0]
    return fields.astype(np.float32), sum(counts)


def network_pays(calibration: dict, max_error: float) -> tuple[bool, str]:
    """Whether running the network (and its estimate) on samples is expected to cost less than
    it saves at ``max_error``, from the calibration's check half: ``(pays, why)``.

    The fraction served at ``max_error`` is at most the one measured at the smallest max error
    of the report at or above it (a bound only grows with its threshold); each served sample
    saves an exact solve, every sample costs the network and the estimate.  Above the report's
    largest max error, or without its timings, the network is tried."""
    test = calibration.get("test", {})
    above = [row for row in test.get("by_max_error", []) if row.get("max_error", 0) >= max_error]
    costs = [test.get(key) for key in ("ms_network", "ms_estimator", "ms_exact")]
    if not above or not all(isinstance(cost, (int, float)) and cost >= 0 for cost in costs):
        return True, "the calibration does not say"
    row = min(above, key=lambda r: r["max_error"])
    network, estimate, exact = costs
    saved = row["served"] * exact
    why = (f"on the calibration's check half the network served {100 * row['served']:.3g} % at max error "
           f"{row['max_error']:g}, saving {saved:.3g} ms per sample against {network + estimate:.3g} ms for the "
           f"network and its estimate")
    return saved > network + estimate, why
