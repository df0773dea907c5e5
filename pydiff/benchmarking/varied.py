"""Eq. 4 where the exact solve is expensive (D varies), against the strongest baseline at equal
accuracy: the fastest iterative solver stopped at the network's own error (``pydiff bench varied``)."""

from __future__ import annotations

import dataclasses
import math
import time

from ..problem import Problem
from .speed import bench_infer, time_solver

# Eq. 4's M and E when no run gives them: 10,000 training samples made and trained on in an hour
ASSUMED_M, ASSUMED_E = 10000, 3600.0


def stopped_at(problem: Problem, images, maps, target: float, backend: str = "torch-mg",
               most: int = 50) -> dict:
    """The equal-accuracy baseline of McGreivy & Hakim (2024): the fastest iterative solver
    stopped at the network's own error.  The fewest preconditioned CG steps ``k`` (from the
    preconditioner's own first answer, :meth:`approximate`) whose normalised answers have a median
    per-sample max error of at most ``target``, timed with its set-up.

    Returns ``iterations`` k, ``seconds_per_sample`` and ``median_max_error`` reached.
    """
    import numpy as np
    import torch

    from ..solvers import make_solver, normalise

    images_t = torch.as_tensor(np.asarray(images, dtype=np.float64))
    maps_t = None if maps is None else torch.as_tensor(maps)
    with make_solver(backend, problem) as solver:
        exact, _ = normalise(solver.fields_of(images_t, maps_t).cpu().numpy())
        for k in range(most + 1):
            start = time.perf_counter()
            u = solver.approximate(images_t, maps_t, k).cpu().numpy()
            seconds = time.perf_counter() - start
            error = float(np.median(np.abs(normalise(u)[0] - exact).reshape(len(u), -1).max(axis=1)))
            if error <= target:
                return {"iterations": k, "seconds_per_sample": seconds / len(u), "median_max_error": error}
    return {"iterations": math.nan, "seconds_per_sample": math.nan, "median_max_error": error}


def median_max_error(run_dir, device: str = "cpu") -> float:
    """The median over a run's test samples of the per-sample max error of its best network: the
    accuracy an equal-accuracy baseline is stopped at."""
    import numpy as np
    import torch

    from ..device import memory_budget
    from ..evaluation.predict import predict
    from ..training import checkpoint
    from ..training.data import load_arrays

    model, config = checkpoint.load_model(run_dir, "best", device)
    arrays = load_arrays(config, memory_budget(torch.device("cpu")))
    test = arrays.split["test"]
    prediction = predict(model, arrays.inputs[test], config.eval_batch_size, device, config.amp)
    return float(np.median(np.abs(prediction - arrays.fields[test]).reshape(len(test), -1).max(axis=1)))


def bench_varied(problem: Problem, lattices=(64, 128, 256, 512), backends=("torch-mg", "multigrid", "direct"),
                 networks=("encdec",), width: float = 0.125, n_delta: int = 4, batch_sizes=(1, 16),
                 M: int = ASSUMED_M, E: float = ASSUMED_E, seed: int = 0, network_error: float | None = None,
                 config=None) -> "list[dict]":
    """Eq. 4 where the exact solve is expensive, against the strongest baseline at equal accuracy.

    At each lattice: δ of each exact solver (to a relative residual of 1e-10); the fastest
    iterative one (torch-mg) stopped at ``network_error``, the network's median per-sample max
    error (:func:`stopped_at`; skipped when None); ε of each network reading the map (or of
    ``config``, a trained run's configuration); and for each network δ/ε and N_min (``M``
    training samples made in ``E`` seconds) against the fastest exact solver and against the
    equal-accuracy baseline.  N_min is infinite where the network is not faster.
    """
    from ..evaluation.metrics import n_min
    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps
    from ..training.config import config_for

    rows = []
    for L in lattices:
        at_L = dataclasses.replace(problem, lattice=L, radius=max(1, round(problem.radius * L / problem.lattice)))
        deltas = {}
        for backend in backends:
            deltas[backend] = time_solver(backend, n_delta, at_L, seed)
            rows.append({"lattice": L, "method": backend, "kind": "exact solver", "batch_size": 1,
                         "seconds_per_sample": deltas[backend]})
        fastest = min(deltas.values())
        baseline = math.nan
        if network_error is not None:
            images = source_images(at_L, sample_sources(at_L, n_delta, seed))
            stopped = stopped_at(at_L, images, diffusivity_maps(at_L, range(n_delta), seed), network_error)
            baseline = stopped["seconds_per_sample"]
            rows.append({"lattice": L, "method": f"torch-mg stopped at {network_error:.3g}", "kind": "equal accuracy",
                         "batch_size": n_delta, "seconds_per_sample": baseline, "iterations": stopped["iterations"],
                         "median_max_error": stopped["median_max_error"]})
        configs = [config] if config is not None else [
            config_for(None, "quick-varied", network=network, width=width, device="cpu", in_channels=2)
            for network in networks]
        for network_config in configs:
            for row in bench_infer(network_config, L, batch_sizes, repeats=3):
                eps = row["ms_per_sample"] / 1e3
                rows.append({"lattice": L, "method": f"{network_config.network} x{network_config.width:g}",
                             "kind": "network", "batch_size": row["batch_size"], "seconds_per_sample": eps,
                             "delta_over_epsilon": fastest / eps, "N_min": n_min(M, E, fastest, eps),
                             "equal_accuracy_over_epsilon": baseline / eps,
                             "N_min_equal_accuracy": n_min(M, E, baseline, eps) if baseline == baseline else math.nan})
    return rows
