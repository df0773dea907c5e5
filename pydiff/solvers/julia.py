"""The original solver: DifferentialEquations.jl's ROCK2, called through juliacall.

``julia/PyDiffGroundTruth.jl`` integrates ``du/dt = D (M u + u M) - gamma u + img`` with
``M = Tridiagonal(1, -2, 1)``, ``u(0) = img``, ``ROCK2()`` at default tolerances in Float32, as
genData.jl did, for a whole batch per call (Julia threads over samples); where D varies or the
walls are not Dirichlet, ``solve_batch_varied`` integrates the flux form of docs/problem.md the
same way (written and checked without Julia here: tests parse it; run it where Julia is).

Julia runs in a worker process (:mod:`pydiff.solvers.worker`): :class:`JuliaSolver` is the
parent's proxy, :class:`JuliaSession` the half that imports juliacall inside the worker.
juliacall finds Julia and OrdinaryDiffEq through juliapkg (``pydiff/juliapkg.json``), which
honours ``PYTHON_JULIAPKG_EXE`` (a Julia executable to use), ``PYTHON_JULIAPKG_PROJECT`` (a
Julia project to use) and ``PYTHON_JULIAPKG_OFFLINE=yes`` (never download).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, ConfigError
from ..problem import Problem
from ..resources import resource
from .base import Solver
from .worker import WorkerSolver


def julia_source() -> Path:
    """``julia/PyDiffGroundTruth.jl``: shipped with the package, or in the repository's checkout."""
    try:
        return resource("PyDiffGroundTruth.jl")
    except ConfigError as exc:
        raise BackendUnavailable(str(exc)) from None


HOW_TO_GET_JULIA = (
    "install Julia >= 1.10 and put `julia` on PATH, or set PYTHON_JULIAPKG_EXE=/path/to/julia "
    "(add PYTHON_JULIAPKG_OFFLINE=yes when OrdinaryDiffEq is installed already); "
    "see README, 'Julia backend'"
)


def unavailable_message(exc: BaseException) -> str:
    """One line: why Julia could not be obtained, and what to do about it."""
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return f"the julia backend is unavailable ({reason}); {HOW_TO_GET_JULIA}"


class JuliaSession(Solver):
    """In-process Julia (used inside the worker; importing juliacall here starts Julia)."""

    name = "julia"
    targets = ("t_max",)

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        source = julia_source()
        # Threads over samples need Julia threads, and juliacall wants signal handling with them.
        os.environ.setdefault("PYTHON_JULIACALL_THREADS", "auto")
        os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")
        try:  # juliapkg finds or installs Julia and OrdinaryDiffEq here, and raises anything from URLError to
            from juliacall import Main as jl  # a bare Exception: all of it means Julia cannot be had here

            from juliacall import JuliaError
        except Exception as exc:
            raise BackendUnavailable(unavailable_message(exc)) from None
        try:
            jl.include(str(source))
        except JuliaError as exc:  # Julia could not load the solver (a package missing or failing to precompile)
            raise BackendUnavailable(unavailable_message(exc)) from None
        # our Julia module's names: an error here is a bug of pydiff's, and comes out as itself
        self._solve_batch = jl.PyDiffGroundTruth.solve_batch
        self._solve_batch_varied = jl.PyDiffGroundTruth.solve_batch_varied

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        p = self.problem
        # Sample-first (n, L, L) C-order arrives in Julia as a PyArray with the same indices, so
        # [s, i, j] is cell (x = i, y = j) on both sides; the result converts back likewise.
        images = np.ascontiguousarray(images, dtype=np.float32)
        if diffusivity is None and p.boundary == "dirichlet":  # genData.jl's own equation
            fields, maxima = self._solve_batch(images, p.D, p.gamma, p.t_max)
        else:
            maps = np.full(images.shape, p.D, np.float32) if diffusivity is None else diffusivity.astype(np.float32)
            fields, maxima = self._solve_batch_varied(images, np.ascontiguousarray(maps), p.gamma, p.t_max, p.boundary)
        fields = np.array(fields, dtype=np.float64)
        return fields * np.array(maxima, dtype=np.float64)[:, None, None]


class JuliaSolver(WorkerSolver):
    """The ``julia`` backend: a Julia worker process kept for the whole run."""

    name = "julia"
    targets = ("t_max",)

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem, "pydiff.solvers.julia:JuliaSession")
