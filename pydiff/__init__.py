"""pydiff: the 2021 diffusion-surrogate paper, reproduced.

Public API (heavy modules are imported on first use):

- :class:`Problem`, :func:`sample_sources`, :func:`source_images` — the problem and its sources.
- :func:`solve` — ground-truth fields of source images, by any backend.
- :func:`generate`, :func:`load` — HDF5 data sets.
"""

from .version import __version__  # noqa: E402
from .errors import BackendUnavailable, ConfigError, DataFileError, PydiffError  # noqa: E402
from .problem import Problem, sample_sources, source_images  # noqa: E402


def solve(images, problem=None, backend: str = "spectral", **options):
    """Normalised fields of (b, L, L) source images; see :func:`pydiff.solvers.solve`."""
    from .solvers import solve as _solve

    return _solve(images, problem or Problem(), backend, **options)


def generate(out, n, problem=None, **kwargs):
    """Write a data set of ``n`` samples to ``out``; see :func:`pydiff.dataset.generate`."""
    from .dataset import generate as _generate

    return _generate(out, n, problem, **kwargs)


def load(path, lazy: bool = False, allow_partial: bool = False):
    """Read a data set; see :func:`pydiff.dataset.load`."""
    from .dataset import load as _load

    return _load(path, lazy=lazy, allow_partial=allow_partial)


__all__ = [
    "BackendUnavailable", "ConfigError", "DataFileError", "Problem", "PydiffError",
    "__version__", "generate", "load", "sample_sources", "solve", "source_images",
]
