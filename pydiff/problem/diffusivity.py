"""Diffusivity maps: each sample's own D(x), drawn from its own seed.

``inclusions``: the background ``D`` with ``inclusions`` random disks (radius uniform in
L/20...L/8, centre anywhere on the lattice) whose diffusivity is ``D * contrast`` or
``D / contrast`` (either with probability 1/2); later disks cover earlier ones.

``darcy``: the two-phase medium of Darcy flow (:mod:`pydiff.problem.darcy`).

``lognormal``: ``D * exp(a g)``, ``g`` a Gaussian random field with the squared-exponential
correlation of length ``correlation_length`` (white noise filtered in Fourier space, so periodic
over the lattice), centred on its mean and scaled so that ``max D / min D = contrast`` exactly.

Sample ``j`` of a data set made with ``seed`` draws from ``(seed, STREAM, j)``: the same map
whatever the batch, the shard or the resumption that makes it.  The maps hold float32 values
(in float64 arrays): a data file stores exactly the D its fields were solved with.
"""

from __future__ import annotations

import numpy as np

from .darcy import darcy_map
from .parameters import Problem

STREAM = 0x646966  # "dif": keeps the maps apart from the sources drawn with the same seed


def diffusivity_maps(problem: Problem, sample_ids, seed) -> np.ndarray | None:
    """(b, L, L) float64 diffusivity of samples ``sample_ids``; None for constant D.  Darcy flow's
    maps are drawn on its solve lattice (:func:`pydiff.problem.darcy.darcy_map`)."""
    if problem.diffusivity == "constant":
        return None
    seed = list(seed) if isinstance(seed, (list, tuple)) else [int(seed)]
    draw = {"inclusions": inclusions_map, "lognormal": lognormal_map, "darcy": darcy_map}[problem.diffusivity]
    maps = np.stack([draw(problem, np.random.default_rng([*seed, STREAM, int(j)])) for j in sample_ids])
    return maps.astype(np.float32).astype(np.float64)


def inclusions_map(problem: Problem, rng: np.random.Generator) -> np.ndarray:
    L = problem.lattice
    D = np.full((L, L), problem.D)
    centre = np.arange(L) + 0.5
    x, y = centre[:, None], centre[None, :]
    for _ in range(problem.inclusions):
        cx, cy = rng.uniform(0, L, size=2)
        radius = rng.uniform(L / 20, L / 8)
        factor = problem.contrast if rng.random() < 0.5 else 1.0 / problem.contrast
        D[(x - cx) ** 2 + (y - cy) ** 2 <= radius**2] = problem.D * factor
    return D


def lognormal_map(problem: Problem, rng: np.random.Generator) -> np.ndarray:
    L = problem.lattice
    assert problem.correlation_length is not None  # set in Problem.__post_init__
    k = np.fft.fftfreq(L)[:, None] ** 2 + np.fft.rfftfreq(L)[None, :] ** 2
    # the spectral density of a squared-exponential correlation exp(-r^2 / (2 l^2))
    spectrum = np.exp(-2.0 * (np.pi * problem.correlation_length) ** 2 * k)
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((L, L))) * np.sqrt(spectrum), s=(L, L))
    field -= field.mean()
    spread = field.max() - field.min()
    if problem.contrast == 1 or spread == 0:
        return np.full((L, L), problem.D)
    return problem.D * np.exp(np.log(problem.contrast) * field / spread)


def diffusivity_channel(maps, problem: Problem) -> np.ndarray:
    """What a network reads of a map: ``log10(D / problem.D)`` (0 for the background, +-1 for
    the default contrast of 10), float32, shaped like ``maps``.  A fixed scale, not the problem's
    own contrast: a network must see a contrast of 30 as more than one of 10 (with the contrast
    as scale, a model trained at 10 read maps of contrast 3 and 30 as its own, and missed by 2x)."""
    return np.log10(np.asarray(maps, dtype=np.float64) / problem.D).astype(np.float32)
