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
SETUPS = ("paper2021", "paper2024", "darcy")
DIFFUSIVITIES = ("constant", "inclusions", "lognormal", "darcy")
DARCY_SOLVE_LATTICE = 421  # the FNO paper's fine grid (its coarser ones every r-th point: 85, 141, 211)

# What each setup changes in the defaults of a Problem (the one place they are written): the
# operator-learning field's Darcy flow (Li et al. 2020) is -div(a grad u) = 1 on the unit square,
# u = 0 outside, no decay, a = 12 where a Gaussian random field is >= 0 and 3 elsewhere
# (pydiff.problem.darcy), the field stored as it is, in the unit square's units.
SETUP_DEFAULTS: dict[str, dict] = {
    "darcy": {"lattice": 85, "n_sources": 1, "radius": 0, "D": 3.0, "gamma": 0.0, "diffusivity": "darcy",
              "contrast": 4.0, "target": "stationary"},
}
SOURCE_SHAPES = ("disks", "ellipses", "mixed")
BOUNDARIES = ("dirichlet", "neumann", "periodic")  # the walls one sample can have
BOUNDARY_CHOICES = BOUNDARIES + ("mixed",)  # "mixed": each sample draws one of BOUNDARIES (pydiff.problem.walls)
TARGETS = ("t_max", "stationary")


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
            common; None (not given) means ``n_sources`` (every sample has ``n_sources`` disks).
        diffusivity: ``"constant"`` (``D`` everywhere, the papers'), ``"inclusions"`` (background
            ``D`` with ``inclusions`` random disks of radius L/20...L/8 whose D is ``D * contrast``
            or ``D / contrast``) or ``"lognormal"`` (``D`` times the exponential of a Gaussian
            random field of correlation length ``correlation_length``, scaled so that its
            largest over its smallest value is ``contrast``).  Each sample draws its own map.
        contrast: see ``diffusivity`` (>= 1).
        inclusions: number of inclusion disks per sample.
        correlation_length: of the lognormal field, in cells (None, not given: L / 10); at most
            ``lattice``: a longer one gives no field on this periodic lattice (see validate).
        sources: the source shapes: ``"disks"`` (the papers'), ``"ellipses"`` (the disk's area,
            random aspect ratio 1...3 and orientation) or ``"mixed"`` (each either).
        solve_lattice: the lattice the field is solved on, every r-th cell of it kept
            (``r = (solve_lattice - 1) / (lattice - 1)``): Darcy flow is solved at 421 and
            stored at 85, 141, 211 or 421, as the FNO paper's data; 0: ``lattice`` (Darcy: 421),
            whatever the lattice (:attr:`fine_lattice`).
        boundary: ``"dirichlet"`` (zero values outside the lattice, the papers'), ``"neumann"``
            (no flux through the walls), ``"periodic"``, or ``"mixed"`` (each sample draws one of
            the three from its own seed, :mod:`pydiff.problem.walls`).
        target: ``"t_max"`` (the field at ``t_max``, as the papers' code integrated it) or
            ``"stationary"`` (the steady state); default: ``t_max`` for the papers' problem
            (constant D, Dirichlet walls, disks), ``stationary`` for every other.
    """

    lattice: int = 100
    radius: int = 5
    n_sources: int = 2
    D: float = 1.0
    gamma: float = 1.0 / 400.0
    t_max: float = 3000.0
    source_model: str = "production"
    setup: str = "paper2021"
    min_sources: int | None = None
    diffusivity: str = "constant"
    contrast: float = 10.0
    inclusions: int = 12
    correlation_length: float | None = None
    sources: str = "disks"
    boundary: str = "dirichlet"
    target: str = "auto"
    solve_lattice: int = 0

    @classmethod
    def for_setup(cls, setup: str = "paper2021", **values) -> "Problem":
        """A Problem of ``setup`` with its defaults (:data:`SETUP_DEFAULTS`) under ``values``;
        a value of None is not given."""
        given = {k: v for k, v in values.items() if v is not None}
        return cls(**{**SETUP_DEFAULTS.get(setup, {}), "setup": setup, **given})

    def __post_init__(self) -> None:
        if self.solve_lattice == 0 and self.setup == "darcy":  # not given: the fine grid of Darcy flow
            object.__setattr__(self, "solve_lattice", DARCY_SOLVE_LATTICE)
        elif self.solve_lattice == self.lattice and self.setup != "darcy":  # one way to say "the lattice itself"
            object.__setattr__(self, "solve_lattice", 0)
        # None, not 0, stands for "not given": a user's 0 is refused by validate, not replaced
        if self.min_sources is None:
            object.__setattr__(self, "min_sources", self.n_sources)
        if self.correlation_length is None:
            object.__setattr__(self, "correlation_length", self.lattice / 10)
        if self.target == "auto":
            object.__setattr__(self, "target", "t_max" if self.papers_family else "stationary")
        self.validate()

    @property
    def papers_family(self) -> bool:
        """Constant D, Dirichlet walls, disk sources: the problem of the 2021 and 2024 papers."""
        return self.diffusivity == "constant" and self.boundary == "dirichlet" and self.sources == "disks"

    @property
    def normalised(self) -> bool:
        """Whether the stored fields are divided by their maximum (all but Darcy flow, stored as
        ``u`` itself)."""
        return self.setup != "darcy"

    @property
    def fine_lattice(self) -> int:
        """The lattice the field is solved on."""
        return self.solve_lattice or self.lattice

    @property
    def stride(self) -> int:
        """Every ``stride``-th cell of the solve lattice is kept."""
        return (self.fine_lattice - 1) // (self.lattice - 1)

    @property
    def source_scale(self) -> float:
        """The factor between a stored source image and the right-hand side the unit-spacing
        operator solves: ``h^2`` with ``h = 1 / solve_lattice`` for Darcy flow on the unit
        square (``-div(a grad u) = f`` there is ``A_unit u = h^2 f``), 1 for the lattice problems."""
        return self.fine_lattice ** -2.0 if self.setup == "darcy" else 1.0

    def solved(self) -> "Problem":
        """The problem on the lattice it is solved on (itself unless ``solve_lattice`` differs)."""
        return self if self.fine_lattice == self.lattice else dataclasses.replace(self, lattice=self.fine_lattice)

    @property
    def source_counts(self) -> range:
        """The disk counts samples cycle through."""
        assert self.min_sources is not None  # set in __post_init__
        return range(self.min_sources, self.n_sources + 1)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible parameter."""
        assert self.min_sources is not None and self.correlation_length is not None  # set in __post_init__
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
        for name, value, choices in (("diffusivity", self.diffusivity, DIFFUSIVITIES),
                                     ("sources", self.sources, SOURCE_SHAPES),
                                     ("boundary", self.boundary, BOUNDARY_CHOICES), ("target", self.target, TARGETS)):
            if value not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if not (math.isfinite(self.contrast) and self.contrast >= 1):
            raise ConfigError(f"contrast must be a number >= 1, got {self.contrast}")
        if int(self.inclusions) != self.inclusions or self.inclusions < 0:
            raise ConfigError(f"inclusions must be a non-negative integer, got {self.inclusions}")
        if not (math.isfinite(self.correlation_length) and self.correlation_length > 0):
            raise ConfigError(f"correlation length must be positive, got {self.correlation_length}")
        if self.diffusivity == "lognormal" and self.correlation_length > self.lattice:
            # the field is periodic over the lattice: past L its modes vanish below rounding, and
            # from about 2 L the map is D everywhere, though the file would still say lognormal
            raise ConfigError(f"correlation length must be at most the lattice ({self.lattice} cells) for a "
                              f"lognormal field, got {self.correlation_length:g}")
        if self.source_model == "clamped" and not self.papers_family:
            raise ConfigError("clamped sources are defined for the papers' problem only (constant D, "
                              "Dirichlet walls, disks)")
        fine = self.fine_lattice
        if int(fine) != fine or fine < self.lattice or (fine - 1) % (self.lattice - 1):
            raise ConfigError(f"the solve lattice must be 1 + r (lattice - 1) for an integer r >= 1, got {fine} "
                              f"for lattice {self.lattice}" + (" (at 421: lattices 85, 141, 211 or 421)"
                                                               if fine == DARCY_SOLVE_LATTICE else ""))
        if self.setup == "darcy":
            wrong = [f"{name} {getattr(self, name)!r}" for name, value in
                     (("diffusivity", "darcy"), ("boundary", "dirichlet"), ("target", "stationary"),
                      ("source_model", "production"), ("sources", "disks"), ("gamma", 0.0)) if getattr(self, name) != value]
            if wrong:
                raise ConfigError(f"Darcy flow is posed with darcy diffusivity, dirichlet walls, the stationary "
                                  f"target and no decay (gamma 0); got {', '.join(wrong)}")
        elif self.diffusivity == "darcy" or self.fine_lattice != self.lattice:
            raise ConfigError("the darcy diffusivity and a solve lattice of its own belong to --setup darcy")
        if self.boundary != "dirichlet" and self.gamma == 0:
            raise ConfigError(f"{self.boundary} walls need gamma > 0: without decay the field has no steady state")

    def to_attrs(self) -> dict:
        """The parameters as a flat dict (HDF5 attributes, JSON configs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs) -> "Problem":
        """Rebuild a Problem from :meth:`to_attrs` output (extra keys are ignored; keys an older
        file lacks take their defaults, with which it was made)."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for name in kinds:
            if name not in attrs and name not in REQUIRED:  # written by an older pydiff
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
        for name in ("source_model", "setup", "diffusivity", "sources", "boundary", "target"):
            if name in values:
                values[name] = str(values[name])
        for name in ("min_sources", "inclusions", "solve_lattice"):
            if name in values:
                values[name] = int(values[name])
        for name in ("contrast", "correlation_length"):
            if name in values:
                values[name] = float(values[name])
        return cls(**values)


# What makes the equation -div(D grad u) + gamma u = img (or its time-dependent form) and its
# walls: a network answers only these as it was trained on them.  The rest of a Problem (lattice,
# sources, maps, their contrast) describes which inputs are drawn: the family a calibration covers.
EQUATION = ("gamma", "target", "source_model", "boundary", "diffusivity", "D", "t_max")


def differences(expected: Problem, given: Problem, names=None) -> list[str]:
    """``"name GIVEN (expected EXPECTED)"`` for each parameter in ``names`` (default: all of
    them) where ``given`` differs from ``expected``; empty where they agree."""
    names = [f.name for f in dataclasses.fields(Problem)] if names is None else names
    return [f"{name} {getattr(given, name)!r} (expected {getattr(expected, name)!r})" for name in names
            if getattr(given, name) != getattr(expected, name)]


def equation_differences(trained: Problem, given: Problem, reads_map: bool = False, reads_walls: bool = False) -> list[str]:
    """Where ``given`` poses another equation than the one a network was ``trained`` on
    (:func:`differences`): the decay, target, source model and, unless the network reads them as
    inputs, the walls and the diffusivity; ``t_max`` where the target is the field at ``t_max``."""
    names = [n for n in EQUATION if not (reads_walls and n == "boundary")
             and not (reads_map and n in ("diffusivity", "D"))
             and not (n == "t_max" and "t_max" not in (trained.target, given.target))]
    return differences(trained, given, names)


# Every pydiff data set has these; later versions added the others (with defaults that give the
# problem earlier files were made with).
REQUIRED = ("lattice", "radius", "n_sources", "D", "gamma", "t_max", "source_model")
