"""Exact answers by the fastest backend that gets there: what serving, calibration and the
bench call when they need the true field of a few samples.

``resolve_backend("auto", problem)`` names the fastest exact backend for a problem and lattice
(measured; see :mod:`pydiff.solvers`).  An iterative backend can still fail to reach its
tolerance (torch-cg at contrast 10^4 stalls near 1e-4): then the samples are solved by sparse LU
(``direct``), which always gets there, slower.  An iterative backend that takes a first guess
starts from ``initial`` (a network's prediction times its scale: a warm start).
"""

from __future__ import annotations

import numpy as np

from ..errors import NotConverged
from ..problem import Problem
from . import make_solver, resolve_backend
from .torch_cg import fields_in_chunks

WARM_STARTING = ("torch-cg", "torch-mg")  # backends whose fields_of takes a first guess
FALLBACK = "direct"  # sparse LU: no tolerance to miss


def exact_fields(problem: Problem, images: np.ndarray, diffusivity: np.ndarray | None = None,
                 initial: np.ndarray | None = None, device: str = "cpu") -> tuple[np.ndarray, str, int]:
    """The unnormalised exact fields of (b, L, L) ``images`` (and maps where D varies).

    Args:
        problem: the equation, walls and lattice (not mixed walls: one condition for the batch).
        images: (b, L, L) source images.
        diffusivity: (b, L, L) positive maps, or None where D is constant.
        initial: (b, L, L) first guesses of the unnormalised fields, used by the backends of
            :data:`WARM_STARTING`; None: each backend's own.
        device: where a PyTorch backend runs.

    Returns:
        ``(u, backend, iterations)``: (b, L, L) float64 fields, the backend that gave them and its
        iterations on the batch (0 for a non-iterative one).
    """
    name = resolve_backend("auto", problem)
    images = np.asarray(images, dtype=np.float64)
    try:
        options = {"device": device} if name.startswith("torch") else {}
        with make_solver(name, problem, **options) as solver:
            if name in WARM_STARTING:  # a chunk at a time, as the solver's own numpy entry point goes
                u = fields_in_chunks(solver, images, diffusivity, initial, getattr(solver, "chunk", None))
                return u, name, int(solver.iterations)
            u = solver(images, diffusivity)
            iterations = getattr(solver, "iterations", 0)
            return u, name, int(sum(iterations) if isinstance(iterations, list) else iterations)
    except NotConverged:
        if name == FALLBACK:
            raise
    with make_solver(FALLBACK, problem) as solver:
        return solver(images, diffusivity), FALLBACK, 0
