"""The ``pydiff`` command line: parses options and calls the library, nothing more.

One module per group of commands (data, training, evaluation, pipelines, bench), the shared
options in :mod:`~pydiff.cli.options`, the group and its one-line errors in
:mod:`~pydiff.cli.app`.  Heavy libraries (torch, juliacall, matplotlib) are imported inside the
commands that need them, so ``pydiff --help`` and ``pydiff generate`` start fast.
"""

from . import bench, data, evaluation, pipelines, training  # noqa: F401  (each registers its commands)
from .app import main

__all__ = ["main"]
