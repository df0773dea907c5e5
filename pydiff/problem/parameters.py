"""The diffusion problem's parameters, exactly as the original Julia code poses it.

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

from ..errors import ConfigError

SOURCE_MODELS = ("production", "clamped")
SETUPS = ("paper2021", "paper2024")


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
