"""Data sets that mix wall conditions: one backend per wall, each sample solved by its own."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..problem import Problem
from ..problem.parameters import BOUNDARIES
from ..problem.walls import for_each_wall, wall_problem
from .base import Solver


class MixedWalls(Solver):
    """``solver(images, diffusivity, walls)``: the fields of samples whose walls differ, each
    group solved by the backend made for its walls (``make``: wall problem -> backend), through
    :func:`~pydiff.problem.walls.for_each_wall` as every per-sample computation of such data."""

    def __init__(self, problem: Problem, make) -> None:
        super().__init__(problem)
        self.solvers = {wall: make(wall_problem(problem, wall)) for wall in range(len(BOUNDARIES))}
        self.name = self.solvers[0].name

    def __call__(self, images: np.ndarray, diffusivity: np.ndarray | None = None,
                 walls: np.ndarray | None = None) -> np.ndarray:
        images = np.asarray(images)
        if walls is None or len(walls) != len(images):
            raise ConfigError("a data set mixing wall conditions needs each sample's walls")
        return for_each_wall(self.problem, walls, lambda one, part, maps: self.solvers[BOUNDARIES.index(one.boundary)](
            part, maps), images, diffusivity)

    def close(self) -> None:
        for solver in self.solvers.values():
            solver.close()
