"""What a solver costs: seconds per sample after its start-up (:func:`timed_solve`), and the cost
of the fastest exact backend for a problem (:func:`exact_timing`), which an estimate of an
error must undercut.  Benchmarks of the whole package: :mod:`pydiff.benchmarking`."""

from __future__ import annotations

import time

import numpy as np

from ..problem import Problem
from . import make_solver
from .base import Solver


def timed_solve(solver: Solver, images: np.ndarray, diffusivity=None, walls=None) -> tuple[np.ndarray, float]:
    """The fields of ``images`` and the seconds per sample, after a one-image warm-up call
    (Julia compiles on its first call; start-up is not part of a solver's speed); ``walls``:
    each sample's, for a problem that mixes them."""

    def call(index):
        args = (images[index], None if diffusivity is None else diffusivity[index])
        return solver(*args) if walls is None else solver(*args, walls[index])

    call(slice(0, 1))
    start = time.perf_counter()
    u = call(slice(None))
    return u, (time.perf_counter() - start) / len(images)


def exact_timing(problem: Problem, images: np.ndarray, diffusivity=None, n: int = 32, walls=None) -> tuple[str, float]:
    """The backend ``"auto"`` picks for ``problem`` (the fastest exact one) and its seconds per
    sample on up to ``n`` of the (b, L, L) ``images`` (:func:`timed_solve`; ``walls``: each
    sample's, where the problem mixes them): what an estimate of an error must cost less than."""
    with make_solver("auto", problem) as solver:
        _, seconds = timed_solve(solver, np.asarray(images[:n], dtype=np.float64),
                                 None if diffusivity is None else diffusivity[:n], None if walls is None else walls[:n])
        return solver.name, seconds
