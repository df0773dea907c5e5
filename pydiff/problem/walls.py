"""Wall conditions per sample, for data sets that mix them (``Problem(boundary="mixed")``).

Sample ``j`` of a data set made with ``seed`` draws its walls — ``dirichlet``, ``neumann`` or
``periodic``, each with probability 1/3 — from ``(seed, STREAM, j)``: the same whatever the
batch, the shard or the resumption that makes it.  A wall is stored as its index in
:data:`~pydiff.problem.parameters.BOUNDARIES` (uint8).  A network reads it as two constant
planes, one-hot: ``neumann`` and ``periodic`` (``dirichlet``, the papers' walls, is both zero).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np

from ..errors import ConfigError
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


def walls_from_planes(planes) -> np.ndarray:
    """(b,) uint8 walls of (b, 2, L, L) wall planes (:func:`wall_planes`, numpy or torch): the
    inverse of that function, read from each plane's first cell."""
    corner = np.asarray(planes[:, :, 0, 0].detach().cpu() if hasattr(planes, "detach") else planes[:, :, 0, 0])
    walls = np.full(len(corner), BOUNDARIES.index("dirichlet"), dtype=np.uint8)
    walls[corner[:, 0] > 0.5] = BOUNDARIES.index("neumann")
    walls[corner[:, 1] > 0.5] = BOUNDARIES.index("periodic")
    return walls


def for_each_wall(problem: Problem, walls, function, *arrays):
    """``function(one_wall_problem, *parts)`` on each group of samples that share their walls,
    the results put back in sample order: every per-sample computation of a data set mixing wall
    conditions (residuals, error estimates, exact solves, the physics loss).

    Args:
        problem: the problem; where its walls are not ``"mixed"``, ``function(problem, *arrays)``
            is called once, as it is.
        walls: (b,) wall indices (:data:`~pydiff.problem.parameters.BOUNDARIES`) of a mixed problem.
        function: maps a problem of one wall condition and the group's arrays to an array or a
            tuple of arrays with the group's samples along their first axis.
        arrays: numpy arrays or torch tensors with the b samples along their first axis (None is
            passed through).  Torch results keep their autograd graph.
    """
    if problem.boundary != "mixed":
        return function(problem, *arrays)
    if walls is not None and len(walls) == 0:  # no samples: the function on the empty arrays, any wall
        return function(wall_problem(problem, 0), *arrays)
    if walls is None or len(walls) != len(next(a for a in arrays if a is not None)):
        raise ConfigError("a data set mixing wall conditions needs each sample's walls")
    results: list[Any] | None = None
    single = False
    for wall, index in by_wall(np.asarray(walls)):
        parts = [None if a is None else a[index if isinstance(a, np.ndarray) else _torch_index(a, index)]
                 for a in arrays]
        out = function(wall_problem(problem, wall), *parts)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if results is None:
            n = len(walls)
            results = [np.empty((n, *o.shape[1:]), dtype=o.dtype) if isinstance(o, np.ndarray)
                       else o.new_empty((n, *o.shape[1:])) for o in outs]
        for result, o in zip(results, outs):
            result[index if isinstance(result, np.ndarray) else _torch_index(result, index)] = o
    results = cast(list[Any], results)  # set by the first group (None only for no samples, which fail below)
    return results[0] if single else tuple(results)


def _torch_index(tensor, index: np.ndarray):
    import torch

    return torch.as_tensor(index, device=tensor.device)
