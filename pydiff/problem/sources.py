"""Random sources and their images: the disks of each sample, drawn from a seed, as the papers'
code draws them (genData.jl for 2021, runSim.jl for 2024).

Array convention: ``a[s, i, j]`` is sample ``s`` at lattice cell ``x = i + 1, y = j + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .parameters import Problem

AMPLITUDE_RANGE_2024 = (0.01, 1.0)  # runSim.jl: rand(0.01:1e-7:1.0)


@dataclass(frozen=True)
class SourceDraw:
    """Random source parameters of ``n`` samples (up to ``k`` disks each).

    Attributes:
        centers: (n, k, 2) int16, 1-based (x, y) disk centres, uniform in [radius, L - radius]
            (radius 0: [1, L], a centre on the lattice); 0 for the disks a sample does not have.
        multipliers: (n, k) float64.  paper2021: the uniform [0, 1) factors the original code
            multiplies the image by before adding each disk (the first one has no effect).
            paper2024: each disk's amplitude, uniform in [0.01, 1]; 0 for absent disks.
        counts: (n,) disks per sample (None: all k).
        setup: the recipe the multipliers belong to.
        shapes: (n, k, 2) float64 aspect ratio (1: a disk) and orientation (radians) of each
            source; None: every source a disk.
    """

    centers: np.ndarray
    multipliers: np.ndarray
    counts: np.ndarray | None = None
    setup: str = "paper2021"
    shapes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, index: slice) -> "SourceDraw":
        counts = None if self.counts is None else self.counts[index]
        shapes = None if self.shapes is None else self.shapes[index]
        return SourceDraw(self.centers[index], self.multipliers[index], counts, self.setup, shapes)

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
        if self.setup in ("paper2024", "darcy"):
            return self.multipliers.astype(np.float32)
        later = np.cumprod(self.multipliers[:, ::-1], axis=1)[:, ::-1]
        values = np.ones_like(self.multipliers)
        values[:, :-1] = later[:, 1:]
        return values.astype(np.float32)


def sample_sources(problem: Problem, n: int, seed, first: int = 0) -> SourceDraw:
    """Draw the source parameters of ``n`` samples, all at once, from ``seed``.

    All ``n`` draws come from one generator before any image is built, so sample ``s`` is the
    same whatever the batch size or the point where an interrupted run resumed.  paper2024 draws
    ``n_sources`` disks for every sample and keeps the first ``count(s)``.  Ellipses (``sources``
    "ellipses" or "mixed") are drawn after everything else, so a sample's centres and values
    are those of the disks of the same seed.

    Args:
        seed: an int, or a sequence of ints (numpy's ``SeedSequence`` entropy).
        first: the index of the first sample in its stream; it only sets the source counts
            (sample ``s`` has ``min_sources + (first + s) mod k``).
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"the number of samples must be a positive integer, got {n}")
    if problem.setup == "darcy":  # f = 1 everywhere: no sources to draw
        return SourceDraw(np.zeros((n, 1, 2), dtype=np.int16), np.ones((n, 1)), setup="darcy")
    rng = np.random.default_rng(seed)
    # 1-based cells: the published recipe's [r, L - r], whose centre r = 0 would be off the lattice
    low, high = max(problem.radius, 1), problem.lattice - problem.radius
    centers = rng.integers(low, high, size=(n, problem.n_sources, 2), endpoint=True)
    if problem.setup == "paper2021":
        multipliers = rng.random((n, problem.n_sources))
        return SourceDraw(centers.astype(np.int16), multipliers, shapes=_shapes(problem, rng, n))
    amplitudes = rng.uniform(*AMPLITUDE_RANGE_2024, size=(n, problem.n_sources))
    assert problem.min_sources is not None  # set in Problem.__post_init__
    counts = problem.min_sources + (first + np.arange(n)) % len(problem.source_counts)
    absent = np.arange(problem.n_sources)[None, :] >= counts[:, None]
    centers[absent] = 0
    amplitudes[absent] = 0.0
    return SourceDraw(centers.astype(np.int16), amplitudes, counts.astype(np.int16), "paper2024",
                      _shapes(problem, rng, n))


ASPECT_RANGE = (1.0, 3.0)  # an ellipse's long over short semi-axis


def _shapes(problem: Problem, rng: np.random.Generator, n: int) -> np.ndarray | None:
    """(n, k, 2) aspect ratios and orientations: ellipses of the disk's area, or (mixed) each
    source an ellipse or a disk with probability 1/2; None for disks only."""
    if problem.sources == "disks":
        return None
    k = problem.n_sources
    aspect = rng.uniform(*ASPECT_RANGE, size=(n, k))
    angle = rng.uniform(0.0, np.pi, size=(n, k))
    if problem.sources == "mixed":
        aspect[rng.random((n, k)) < 0.5] = 1.0
    return np.stack([aspect, angle], axis=-1)


def _stencil(radius: int, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """The cells of a source centred on cell (0, 0), as a (2R+1, 2R+1) mask: a disk of ``radius``
    (integers, exactly), or an ellipse of the same area, semi-axes ``radius * sqrt(aspect)`` and
    ``radius / sqrt(aspect)``, its long axis at ``angle``.  Radius 0: the centre cell, whatever
    the shape (an ellipse of no axes would cover no cell, and its image nothing)."""
    offsets: np.ndarray
    if aspect == 1.0 or radius == 0:
        offsets = np.arange(-radius, radius + 1)
        return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.float64)
    long, short = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    reach = int(np.ceil(long))
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    dx, dy = offsets[:, None], offsets[None, :]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    return ((along / long) ** 2 + (across / short) ** 2 <= 1.0).astype(np.float64)


def source_images(problem: Problem, draw: SourceDraw) -> np.ndarray:
    """Build the normalised source images of a draw, as the original code does.

    paper2021 (genData.jl): ``img = img * U + disk`` for each source in turn, so the last source
    has value 1 before normalisation.  paper2024 (runSim.jl): ``img += amplitude * disk`` for
    each of the sample's disks.  Overlapping disks add up; then ``img /= max(img)``.

    Returns:
        (n, L, L) float32 images with maximum 1.
    """
    L, r = problem.lattice, problem.radius
    n = len(draw)
    if draw.setup == "darcy":  # Darcy flow's f = 1
        return np.ones((n, L, L), dtype=np.float32)
    disk = _stencil(r)
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
            stencil = disk if draw.shapes is None else _stencil(r, *draw.shapes[s, j])
            reach = stencil.shape[0] // 2
            # 0-based index of the source's corner; a source may reach past the border.
            x0 = int(draw.centers[s, j, 0]) - 1 - reach
            y0 = int(draw.centers[s, j, 1]) - 1 - reach
            xa, ya = max(x0, 0), max(y0, 0)
            xb, yb = min(x0 + 2 * reach + 1, L), min(y0 + 2 * reach + 1, L)
            img[s, xa:xb, ya:yb] += weight * stencil[xa - x0 : xb - x0, ya - y0 : yb - y0]
    img /= img.max(axis=(1, 2), keepdims=True)
    return img.astype(np.float32, copy=False)
