"""Wall conditions per sample, for data sets that mix them (``Problem(boundary="mixed")``).

Sample ``j`` of a data set made with ``seed`` draws its walls — ``dirichlet``, ``neumann`` or
``periodic``, each with probability 1/3 — from ``(seed, STREAM, j)``: the same whatever the
batch, the shard or the resumption that makes it.  A wall is stored as its index in
:data:`~pydiff.problem.parameters.BOUNDARIES` (uint8).  A network reads it as two constant
planes, one-hot: ``neumann`` and ``periodic`` (``dirichlet``, the papers' walls, is both zero).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .parameters import BOUNDARIES, Problem

STREAM = 0x77616C  # "wal": keeps the walls apart from the sources and maps drawn with the same seed
PLANES = 2  # network channels that carry the walls


def sample_walls(problem: Problem, sample_ids, seed) -> np.ndarray | None:
    """(b,) uint8 walls of samples ``sample_ids`` (indices into BOUNDARIES); None unless mixed."""
    if problem.boundary != "mixed":
        return None
    seed = list(seed) if isinstance(seed, (list, tuple)) else [int(seed)]
    return np.array([np.random.default_rng([*seed, STREAM, int(j)]).integers(len(BOUNDARIES)) for j in sample_ids],
                    dtype=np.uint8)


def constant_walls(problem: Problem, n: int) -> np.ndarray:
    """(n,) uint8: every sample with ``problem``'s own walls (not mixed)."""
    return np.full(n, BOUNDARIES.index(problem.boundary), dtype=np.uint8)


def wall_problem(problem: Problem, wall: int) -> Problem:
    """``problem`` with the walls of index ``wall``."""
    return dataclasses.replace(problem, boundary=BOUNDARIES[int(wall)])


def by_wall(walls: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The samples of each wall condition present: [(wall, indices), ...]."""
    walls = np.asarray(walls)
    return [(int(w), np.flatnonzero(walls == w)) for w in np.unique(walls)]


def wall_planes(walls: np.ndarray, lattice: int) -> np.ndarray:
    """(b, 2, L, L) float32: constant planes, 1 where a sample's walls are neumann (plane 0) or
    periodic (plane 1)."""
    walls = np.asarray(walls)
    planes = np.zeros((len(walls), PLANES, lattice, lattice), dtype=np.float32)
    planes[walls == BOUNDARIES.index("neumann"), 0] = 1.0
    planes[walls == BOUNDARIES.index("periodic"), 1] = 1.0
    return planes
