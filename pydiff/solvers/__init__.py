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
    above."""
    if name != "auto":
        return name
    if problem.boundary == "mixed":  # the same choice for every wall
        problem = wall_problem(problem, 0)
    if solver_class("spectral").unsupported(problem) is None:
        return "spectral"
    return "direct" if problem.lattice <= DIRECT_UP_TO else "torch-mg"


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




def timed_solve(solver: Solver, images: np.ndarray, diffusivity=None, walls=None) -> tuple[np.ndarray, float]:
    """The fields of ``images`` and the seconds per sample, after a one-image warm-up call
    (Julia compiles on its first call; start-up is not part of a solver's speed); ``walls``:
    each sample's, for a problem that mixes them."""
    import time

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


def crosscheck(backends, problem: Problem, n: int = 16, seed: int = 0):
    """Solve the same ``n`` random inputs with each backend and compare the normalised fields.

    Each backend is timed with :func:`timed_solve`.

    Returns:
        ``(pairs, timings)``: a DataFrame of pairwise ``max_abs`` and ``mean_abs`` differences,
        and one of seconds per sample for each backend.
    """
    import itertools

    import pandas as pd

    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps

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


__all__ = ["BACKENDS", "Solver", "crosscheck", "exact_timing", "make_solver", "normalise", "resolve_backend", "solve", "solver_class"]
