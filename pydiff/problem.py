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
SETUPS = ("paper2021", "paper2024")
AMPLITUDE_RANGE_2024 = (0.01, 1.0)  # runSim.jl: rand(0.01:1e-7:1.0)


@dataclass(frozen=True)
class Problem:
    """Parameters of the diffusion problem (defaults: the 2021 paper's two sources).

    Attributes:
        lattice: cells per side, ``L`` (lattice spacing 1).
        radius: source disk radius, in lattice units.
        n_sources: number of disks per image.
        D: diffusion constant, in (lattice units)^2 per unit time.
        gamma: decay rate, per unit time (``sqrt(D / gamma)`` = 20 is the diffusion length).
        t_max: integration time of the ODE, in time units.
        source_model: ``"production"`` (the image is a constant source term, as the original code)
            or ``"clamped"`` (disk cells held at their values, the paper's wording; steady state).
        setup: how the disks get their values: ``"paper2021"`` (genData.jl: ``img = img*U + disk``
            in turn) or ``"paper2024"`` (runSim.jl: each disk added with its own amplitude,
            uniform in [0.01, 1]).  Both then divide the image by its maximum.
        min_sources: with ``n_sources``, the range of disk counts: sample ``s`` has
            ``min_sources + s mod (n_sources - min_sources + 1)`` disks, so every count is equally
            common; 0 means ``n_sources`` (every sample has ``n_sources`` disks).
    """

    lattice: int = 100
    radius: int = 5
    n_sources: int = 2
    D: float = 1.0
    gamma: float = 1.0 / 400.0
    t_max: float = 3000.0
    source_model: str = "production"
    setup: str = "paper2021"
    min_sources: int = 0

    def __post_init__(self) -> None:
        if self.min_sources == 0:
            object.__setattr__(self, "min_sources", self.n_sources)
        self.validate()

    @property
    def source_counts(self) -> range:
        """The disk counts samples cycle through."""
        return range(self.min_sources, self.n_sources + 1)

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
        if self.setup not in SETUPS:
            raise ConfigError(f"setup must be one of {', '.join(SETUPS)}, got {self.setup!r}")
        if int(self.min_sources) != self.min_sources or not 1 <= self.min_sources <= self.n_sources:
            raise ConfigError(f"the smallest source count must be in 1..{self.n_sources}, got {self.min_sources}")
        if self.min_sources != self.n_sources and self.setup != "paper2024":
            raise ConfigError("a range of source counts needs --setup paper2024 (the 2021 recipe has a fixed count)")
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
            if name in ("setup", "min_sources") and name not in attrs:  # format version 1
                continue
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
        if "setup" in values:
            values["setup"] = str(values["setup"])
            values["min_sources"] = int(values["min_sources"])
        return cls(**values)


@dataclass(frozen=True)
class SourceDraw:
    """Random source parameters of ``n`` samples (up to ``k`` disks each).

    Attributes:
        centers: (n, k, 2) int16, 1-based (x, y) disk centres, uniform in [radius, L - radius];
            0 for the disks a sample does not have.
        multipliers: (n, k) float64.  paper2021: the uniform [0, 1) factors the original code
            multiplies the image by before adding each disk (the first one has no effect).
            paper2024: each disk's amplitude, uniform in [0.01, 1]; 0 for absent disks.
        counts: (n,) disks per sample (None: all k).
        setup: the recipe the multipliers belong to.
    """

    centers: np.ndarray
    multipliers: np.ndarray
    counts: np.ndarray | None = None
    setup: str = "paper2021"

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, index: slice) -> "SourceDraw":
        counts = None if self.counts is None else self.counts[index]
        return SourceDraw(self.centers[index], self.multipliers[index], counts, self.setup)

    @property
    def source_count(self) -> np.ndarray:
        """(n,) int16 disks per sample."""
        if self.counts is None:
            return np.full(len(self), self.centers.shape[1], dtype=np.int16)
        return np.asarray(self.counts, dtype=np.int16)

    @property
    def values(self) -> np.ndarray:
        """(n, k) float32 source values before normalisation (0 for absent disks).

        paper2021: source j gets prod_{l>j} U_l; paper2024: its amplitude."""
        if self.setup == "paper2024":
            return self.multipliers.astype(np.float32)
        later = np.cumprod(self.multipliers[:, ::-1], axis=1)[:, ::-1]
        values = np.ones_like(self.multipliers)
        values[:, :-1] = later[:, 1:]
        return values.astype(np.float32)


def sample_sources(problem: Problem, n: int, seed, first: int = 0) -> SourceDraw:
    """Draw the source parameters of ``n`` samples, all at once, from ``seed``.

    All ``n`` draws come from one generator before any image is built, so sample ``s`` is the
    same whatever the batch size or the point where an interrupted run resumed.  paper2024 draws
    ``n_sources`` disks for every sample and keeps the first ``count(s)``.

    Args:
        seed: an int, or a sequence of ints (numpy's ``SeedSequence`` entropy).
        first: the index of the first sample in its stream; it only sets the source counts
            (sample ``s`` has ``min_sources + (first + s) mod k``).
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"the number of samples must be a positive integer, got {n}")
    rng = np.random.default_rng(seed)
    low, high = problem.radius, problem.lattice - problem.radius
    centers = rng.integers(low, high, size=(n, problem.n_sources, 2), endpoint=True)
    if problem.setup == "paper2021":
        multipliers = rng.random((n, problem.n_sources))
        return SourceDraw(centers.astype(np.int16), multipliers)
    amplitudes = rng.uniform(*AMPLITUDE_RANGE_2024, size=(n, problem.n_sources))
    counts = problem.min_sources + (first + np.arange(n)) % len(problem.source_counts)
    absent = np.arange(problem.n_sources)[None, :] >= counts[:, None]
    centers[absent] = 0
    amplitudes[absent] = 0.0
    return SourceDraw(centers.astype(np.int16), amplitudes, counts.astype(np.int16), "paper2024")


def source_images(problem: Problem, draw: SourceDraw) -> np.ndarray:
    """Build the normalised source images of a draw, as the original code does.

    paper2021 (genData.jl): ``img = img * U + disk`` for each source in turn, so the last source
    has value 1 before normalisation.  paper2024 (runSim.jl): ``img += amplitude * disk`` for
    each of the sample's disks.  Overlapping disks add up; then ``img /= max(img)``.

    Returns:
        (n, L, L) float32 images with maximum 1.
    """
    L, r = problem.lattice, problem.radius
    offsets = np.arange(-r, r + 1)
    stencil = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= r * r).astype(np.float64)
    n = len(draw)
    counts = draw.source_count
    additive = draw.setup == "paper2024"
    # The 2021 recipe's repeated products run in float64 (the published recipe's values to the
    # last bit); the 2024 sums of at most a few amplitudes are exact enough in float32, which
    # halves the memory traffic at 512^2.
    img = np.zeros((n, L, L), dtype=np.float32 if additive else np.float64)
    for s in range(n):
        for j in range(int(counts[s])):
            weight = draw.multipliers[s, j] if additive else 1.0
            if not additive:
                img[s] *= draw.multipliers[s, j]
            # 0-based index of the disk's corner; a disk may reach one cell past the border.
            x0 = int(draw.centers[s, j, 0]) - 1 - r
            y0 = int(draw.centers[s, j, 1]) - 1 - r
            xa, ya = max(x0, 0), max(y0, 0)
            xb, yb = min(x0 + 2 * r + 1, L), min(y0 + 2 * r + 1, L)
            img[s, xa:xb, ya:yb] += weight * stencil[xa - x0 : xb - x0, ya - y0 : yb - y0]
    img /= img.max(axis=(1, 2), keepdims=True)
    return img.astype(np.float32, copy=False)
