"""pydiff: deep-learning surrogates of the stationary diffusion equation, reproduced and extended.

The public API (the heavy modules are imported on first use):

- :class:`Problem`, :func:`sample_sources`, :func:`source_images`: the problem and its sources.
- :func:`solve`: ground-truth fields of source images, by any backend.
- :func:`generate`, :func:`load`: HDF5 data sets.
- :class:`TrainConfig`, :func:`config_for`, :func:`train`: a training run from Table 2 and a preset.
- :func:`load_model`, :func:`predict`: a trained network and its predictions.
- :func:`load_pretrained`: a model shipped with pydiff, by name (:func:`pretrained_names`).

The parts, bottom to top: ``problem``, ``solvers``, ``datasets``, ``nn``, ``training``,
``evaluation``, ``benchmarking``, ``pipelines``, ``cli``; imports point down only.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import BackendUnavailable, ConfigError, DataFileError, PydiffError
from .problem import Problem, sample_sources, source_images
from .version import __version__

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors (not run)
    from .datasets.hdf5 import load
    from .datasets.writer import generate
    from .evaluation.predict import predict
    from .training.checkpoint import load_model
    from .training.config import TrainConfig, config_for
    from .training.pretrained import load_pretrained, pretrained_names
    from .training.run import train

__all__ = [
    "BackendUnavailable", "ConfigError", "DataFileError", "Problem", "PydiffError", "TrainConfig", "__version__",
    "config_for", "generate", "load", "load_model", "load_pretrained", "predict", "pretrained_names",
    "sample_sources", "solve", "source_images", "train",
]


def solve(images, problem=None, backend: str = "auto", diffusivity=None, **options):
    """Normalised fields of (b, L, L) source images (default: the 2021 problem), and where D
    varies their (b, L, L) diffusivity maps; see :func:`pydiff.solvers.solve`."""
    from .solvers import solve as _solve

    return _solve(images, problem or Problem(), backend, diffusivity, **options)


_LAZY = {  # name -> module that defines it, imported when the name is first used (keep the block above in step)
    "generate": "pydiff.datasets.writer",
    "load": "pydiff.datasets.hdf5",
    "TrainConfig": "pydiff.training.config",
    "config_for": "pydiff.training.config",
    "train": "pydiff.training.run",
    "load_model": "pydiff.training.checkpoint",
    "predict": "pydiff.evaluation.predict",
    "load_pretrained": "pydiff.training.pretrained",
    "pretrained_names": "pydiff.training.pretrained",
}

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name

    def __getattr__(name):
        if name in _LAZY:
            return getattr(import_module(_LAZY[name]), name)
        raise AttributeError(f"module 'pydiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (:data:`__all__`), the lazy ones included, for ``dir(pydiff)`` and completion."""
    return sorted(__all__)
