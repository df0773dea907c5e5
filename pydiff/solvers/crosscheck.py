"""``pydiff crosscheck``: the backends against each other on the same random inputs."""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import ConfigError
from ..problem import Problem
from ..seeds import check_seed
from . import make_solver, normalise, solver_class
from .timing import timed_solve


def crosscheck(backends, problem: Problem, n: int = 16, seed: int = 0):
    """Solve the same ``n`` random inputs with each backend and compare the normalised fields.

    Each backend is timed with :func:`timed_solve`.

    Returns:
        ``(pairs, timings)``: a DataFrame of pairwise ``max_abs`` and ``mean_abs`` differences,
        and one of seconds per sample for each backend.
    """
    import pandas as pd

    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps

    seed = check_seed(seed)
    backends = list(dict.fromkeys(backends))
    if len(backends) < 2:
        raise ConfigError("crosscheck needs at least two backends, e.g. --backends spectral,direct")
    for name in backends:
        solver_class(name)  # unknown names fail before any work
    images = source_images(problem, sample_sources(problem, n, seed))
    maps = diffusivity_maps(problem, range(n), seed)
    fields, timings = {}, []
    for name in backends:
        with make_solver(name, problem) as solver:
            u, seconds = timed_solve(solver, images, maps)
        fields[name] = normalise(u)[0].astype(np.float64)
        timings.append({"backend": name, "seconds_per_sample": seconds, "samples_per_second": 1.0 / seconds})
    pairs = []
    for a, b in itertools.combinations(backends, 2):
        diff = np.abs(fields[a] - fields[b])
        pairs.append({"backend_a": a, "backend_b": b, "max_abs": diff.max(), "mean_abs": diff.mean()})
    return pd.DataFrame(pairs), pd.DataFrame(timings)
