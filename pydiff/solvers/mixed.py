"""Data sets that mix wall conditions: one backend per wall, each sample solved by its own."""

from __future__ import annotations

from typing import cast

import numpy as np

from ..errors import ConfigError
from ..problem import Problem
from ..problem.walls import by_wall, wall_problem
from .base import Solver


class MixedWalls(Solver):
    """``solver(images, diffusivity, walls)``: the fields of samples whose walls differ, each
    group solved by the backend made for its walls (``make``: wall problem -> backend)."""

    def __init__(self, problem: Problem, make) -> None:
        super().__init__(problem)
        self.solvers = {wall: make(wall_problem(problem, wall)) for wall in range(3)}
        self.name = self.solvers[0].name

    def __call__(self, images: np.ndarray, diffusivity: np.ndarray | None = None,
                 walls: np.ndarray | None = None) -> np.ndarray:
        if walls is None or len(walls) != len(images):
            raise ConfigError("a data set mixing wall conditions needs each sample's walls")
        if len(images) == 0:  # no group to solve: an empty answer of the right shape
            return np.empty(np.shape(images), dtype=np.float64)
        out: np.ndarray | None = None
        for wall, index in by_wall(walls):
            u = self.solvers[wall](np.asarray(images)[index], None if diffusivity is None else diffusivity[index])
            if out is None:
                out = np.empty((len(images), *u.shape[1:]), dtype=u.dtype)
            out[index] = u
        return cast(np.ndarray, out)  # None only where there are no samples (no group to solve)

    def close(self) -> None:
        for solver in self.solvers.values():
            solver.close()
