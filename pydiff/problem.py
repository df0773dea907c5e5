"""The diffusion problem, exactly as the original Julia code poses it, and its random sources.

A sample is an image of ``n_sources`` disks of radius ``radius`` on an ``L x L`` lattice with unit
spacing.  The field ``u`` solves ``du/dt = D * lap(u) - gamma * u + img`` with the five-point
Laplacian and zero values outside the lattice, from ``u(0) = img`` to ``t_max``; the target is
``u(t_max) / max(u(t_max))``.  See docs/problem.md.

Array convention: ``a[s, i, j]`` is sample ``s`` at lattice cell ``x = i + 1, y = j + 1``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

SOURCE_MODELS = ("production", "clamped")


@dataclass(frozen=True)
class Problem:
    """Parameters of the two-source diffusion problem (defaults: the paper's).

    Attributes:
        lattice: cells per side, ``L`` (lattice spacing 1).
        radius: source disk radius, in lattice units.
        n_sources: number of disks per image.
        D: diffusion constant, in (lattice units)^2 per unit time.
        gamma: decay rate, per unit time (``sqrt(D / gamma)`` = 20 is the diffusion length).
        t_max: integration time of the ODE, in time units.
        source_model: ``"production"`` (the image is a constant source term, as the original code)
            or ``"clamped"`` (disk cells held at their values, the paper's wording; steady state).
    """

    lattice: int = 100
    radius: int = 5
    n_sources: int = 2
    D: float = 1.0
    gamma: float = 1.0 / 400.0
    t_max: float = 3000.0
    source_model: str = "production"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible parameter."""
        if int(self.lattice) != self.lattice or self.lattice < 3:
            raise ConfigError(f"lattice must be an integer >= 3, got {self.lattice}")
        if int(self.radius) != self.radius or self.radius < 0:
            raise ConfigError(f"radius must be a non-negative integer, got {self.radius}")
        if 2 * self.radius >= self.lattice:
            raise ConfigError(
                f"radius must be smaller than lattice/2 = {self.lattice / 2:g}, got {self.radius}"
            )
        if int(self.n_sources) != self.n_sources or self.n_sources < 1:
            raise ConfigError(f"n_sources must be an integer >= 1, got {self.n_sources}")
        if not (math.isfinite(self.D) and self.D > 0):
            raise ConfigError(f"D must be a positive number, got {self.D}")
        if not (math.isfinite(self.gamma) and self.gamma >= 0):
            raise ConfigError(f"gamma must be a non-negative number, got {self.gamma}")
        if not (math.isfinite(self.t_max) and self.t_max > 0):
            raise ConfigError(f"t_max must be a positive number, got {self.t_max}")
        if self.source_model not in SOURCE_MODELS:
            raise ConfigError(
                f"source_model must be one of {', '.join(SOURCE_MODELS)}, got {self.source_model!r}"
            )

    def to_attrs(self) -> dict:
        """The parameters as a flat dict (HDF5 attributes, JSON configs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs) -> "Problem":
        """Rebuild a Problem from :meth:`to_attrs` output (extra keys are ignored)."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for name in kinds:
            value = attrs[name]
            if isinstance(value, bytes):
                value = value.decode()
            if isinstance(value, np.generic):
                value = value.item()
            values[name] = value
        values["lattice"] = int(values["lattice"])
        values["radius"] = int(values["radius"])
        values["n_sources"] = int(values["n_sources"])
        for name in ("D", "gamma", "t_max"):
            values[name] = float(values[name])
        values["source_model"] = str(values["source_model"])
        return cls(**values)


@dataclass(frozen=True)
class SourceDraw:
    """Random source parameters of ``n`` samples.

    Attributes:
        centers: (n, k, 2) int16, 1-based (x, y) disk centres, uniform in [radius, L - radius].
        multipliers: (n, k) float64, the uniform [0, 1) factors the original code multiplies the
            image by before adding each disk (the first one has no effect).
    """

    centers: np.ndarray
    multipliers: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, index: slice) -> "SourceDraw":
        return SourceDraw(self.centers[index], self.multipliers[index])

    @property
    def values(self) -> np.ndarray:
        """(n, k) float32 source values before normalisation: source j gets prod_{l>j} U_l."""
        later = np.cumprod(self.multipliers[:, ::-1], axis=1)[:, ::-1]
        values = np.ones_like(self.multipliers)
        values[:, :-1] = later[:, 1:]
        return values.astype(np.float32)


def sample_sources(problem: Problem, n: int, seed: int) -> SourceDraw:
    """Draw the source parameters of ``n`` samples, all at once, from ``seed``.

    All ``n`` draws come from one generator before any image is built, so sample ``s`` is the
    same whatever the batch size or the point where an interrupted run resumed.
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"the number of samples must be a positive integer, got {n}")
    rng = np.random.default_rng(seed)
    low, high = problem.radius, problem.lattice - problem.radius
    centers = rng.integers(low, high, size=(n, problem.n_sources, 2), endpoint=True)
    multipliers = rng.random((n, problem.n_sources))
    return SourceDraw(centers.astype(np.int16), multipliers)


def source_images(problem: Problem, draw: SourceDraw) -> np.ndarray:
    """Build the normalised source images of a draw, as genData.jl does.

    ``img = img * U + disk`` for each source in turn, then ``img /= max(img)``: the last source
    has value 1 before normalisation, overlapping disks add up.

    Returns:
        (n, L, L) float32 images with maximum 1.
    """
    L, r = problem.lattice, problem.radius
    offsets = np.arange(-r, r + 1)
    stencil = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= r * r).astype(np.float64)
    n = len(draw)
    img = np.zeros((n, L, L), dtype=np.float64)
    for s in range(n):
        for j in range(problem.n_sources):
            img[s] *= draw.multipliers[s, j]
            # 0-based index of the disk's corner; a disk may reach one cell past the border.
            x0 = int(draw.centers[s, j, 0]) - 1 - r
            y0 = int(draw.centers[s, j, 1]) - 1 - r
            xa, ya = max(x0, 0), max(y0, 0)
            xb, yb = min(x0 + 2 * r + 1, L), min(y0 + 2 * r + 1, L)
            img[s, xa:xb, ya:yb] += stencil[xa - x0 : xb - x0, ya - y0 : yb - y0]
    img /= img.max(axis=(1, 2), keepdims=True)
    return img.astype(np.float32)
