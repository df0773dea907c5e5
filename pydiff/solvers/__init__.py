"""Ground-truth solvers: one module per backend, one registry, one entry point.

>>> from pydiff.solvers import solve
>>> fields, field_max = solve(images, problem, backend="spectral")

Every backend maps a batch of source images ``(b, L, L)`` (with, where D varies, each sample's
diffusivity map) to the unnormalised field (``u(t_max)`` or the stationary one: the problem's
``target``), in float64 (the spectral FFT form: float32); :func:`solve` normalises it.  Backends that hold state (a factorisation, a
Julia worker process) are made once with :func:`make_solver` and closed after the run:

>>> with make_solver("direct", problem) as solver:
...     u = solver(images)

=========  ==========================================================================  ==================
backend    method                                                                      solves
=========  ==========================================================================  ==================
spectral   exact: an orthonormal transform diagonalises the operator (the reference)   constant D
timestep   adaptive Runge-Kutta-Chebyshev time integration to t_max (as ROCK2 does)     any D, t_max
direct     sparse LU of the stationary field (clamped sources too)                     any D, stationary
multigrid  algebraic-multigrid-preconditioned CG (pyamg), relative residual 1e-10      any D, stationary
julia      DifferentialEquations.jl ROCK2 through juliacall, in a worker process       any D, t_max
torch      the spectral closed form in PyTorch, on CPU or CUDA (fresh samples in training)  constant D
torch-cg   batched matrix-free CG in PyTorch, preconditioned by the constant-D inverse  any D, stationary
torch-mg   batched CG in PyTorch, preconditioned by a geometric multigrid V-cycle       any D, stationary
=========  ==========================================================================  ==================

Every backend solves every wall condition (Dirichlet, Neumann, periodic).

This module is the registry and the entry point only; beside it, :mod:`~pydiff.solvers.timing`
times a solver (:func:`~pydiff.solvers.timing.timed_solve`, and the fastest exact backend's cost,
:func:`~pydiff.solvers.timing.exact_timing`) and :mod:`~pydiff.solvers.crosscheck` compares the
backends with each other (``pydiff crosscheck``).
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import ConfigError
from ..problem import Problem
from ..problem.walls import wall_problem
from .base import Solver

# name -> (module, class); modules are imported only when their backend is asked for.
_REGISTRY: dict[str, tuple[str, str]] = {
    "spectral": ("pydiff.solvers.spectral", "SpectralSolver"),
    "timestep": ("pydiff.solvers.timestep", "TimestepSolver"),
    "direct": ("pydiff.solvers.direct", "DirectSolver"),
    "julia": ("pydiff.solvers.julia", "JuliaSolver"),
    "torch": ("pydiff.solvers.torch_spectral", "TorchSpectralSolver"),
    "multigrid": ("pydiff.solvers.multigrid", "MultigridSolver"),
    "torch-cg": ("pydiff.solvers.torch_cg", "TorchCGSolver"),
    "torch-mg": ("pydiff.solvers.torch_mg", "TorchMGSolver"),
}

BACKENDS: tuple[str, ...] = tuple(_REGISTRY)


# "auto" takes sparse LU up to this lattice where D varies, torch-mg above.  Measured on one
# thread of this project's 2-core Intel Xeon, shared with other jobs (CPU seconds per sample,
# inclusions of contrast 10 and 1000, Dirichlet walls, 2026-12-01; benchmarks/torch_mg.py):
# solved one at a time, sparse LU 8 ms at 64^2 against torch-mg's 12, 14 against 16 at 85^2, 21
# against 17 at 100^2, 44 against 20 at 128^2, 0.25 s against 0.04 at 256^2; pyamg's multigrid
# 0.88-1.13 s at 512^2 against torch-mg's 0.13-0.16.  In batches of 16 (generate, solve,
# exact_timing) torch-mg is ahead from 48^2 (64^2: 3.5-4.5 ms against 6.5); 64 keeps single
# samples on sparse LU where it is clearly faster.
DIRECT_UP_TO = 64


def resolve_backend(name: str, problem: Problem) -> str:
    """``name``, or for ``"auto"`` the fastest exact backend for ``problem``: ``spectral`` where
    D is constant, else ``direct`` up to ``DIRECT_UP_TO`` (64) cells per side and ``torch-mg``
    above; where D varies and the target is the field at t_max, which those solve only as the
    papers' problem's stationary limit, ``timestep`` (the one built-in backend that integrates
    to t_max)."""
    if name != "auto":
        return name
    if problem.boundary == "mixed":  # the same choice for every wall
        problem = wall_problem(problem, 0)
    if solver_class("spectral").unsupported(problem) is None:
        return "spectral"
    stationary = "direct" if problem.lattice <= DIRECT_UP_TO else "torch-mg"
    for candidate in (stationary, "timestep"):
        if solver_class(candidate).unsupported(problem) is None:
            return candidate
    return stationary  # make_solver says why it cannot, naming the backends that can


def solver_class(name: str) -> type[Solver]:
    """The class registered under ``name``; :class:`ConfigError` for an unknown name."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def make_solver(name: str, problem: Problem, **options) -> Solver:
    """Build the ``name`` backend (or ``"auto"``: :func:`resolve_backend`) for ``problem``.

    Raises:
        ConfigError: unknown backend, or a source model the backend cannot solve.
        BackendUnavailable: the backend cannot run on this machine (says how to fix it).
    """
    name = resolve_backend(name, problem)
    if problem.boundary == "mixed":  # one backend per wall: solver(images, maps, walls)
        from .mixed import MixedWalls

        return MixedWalls(problem, lambda walls: make_solver(name, walls, **options))
    cls = solver_class(name)
    reason = cls.unsupported(problem)
    if reason is not None:
        able = [n for n in BACKENDS if solver_class(n).unsupported(problem) is None]
        raise ConfigError(f"backend {name!r} cannot solve {reason}; use one of: {', '.join(able) or '(none)'}")
    return cls(problem, **options)


def normalise(u: np.ndarray, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``u / max(u)`` per sample: the target field (float32) and the maxima (float32).

    ``in_place``: a float32 ``u`` is divided where it is and returned (no new array: at 512^2
    that saves a 1 MB allocation and its page faults per sample)."""
    field_max = u.max(axis=(-2, -1))
    if in_place and u.dtype == np.float32:
        u /= field_max[..., None, None]
        return u, field_max
    fields = np.empty(u.shape, dtype=np.float32)
    np.divide(u, field_max[..., None, None], out=fields, casting="same_kind")  # no float64 copy
    return fields, field_max.astype(np.float32)


def solve(images: np.ndarray, problem: Problem, backend: str = "auto", diffusivity=None, **options):
    """Normalised fields of a batch of source images, with a throw-away solver.

    Args:
        images: (b, L, L) source images (float32 or float64).
        problem: the problem's constants.
        backend: one of :data:`BACKENDS`.
        diffusivity: (b, L, L) maps where the problem's D varies.

    Returns:
        ``(fields, field_max)``: (b, L, L) float32 fields with maximum 1, and (b,) float32 maxima
        of ``u(t_max)``.
    """
    with make_solver(backend, problem, **options) as solver:
        return normalise(solver(np.asarray(images), diffusivity))


__all__ = ["BACKENDS", "Solver", "make_solver", "normalise", "resolve_backend", "solve", "solver_class"]
