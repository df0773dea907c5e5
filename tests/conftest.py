"""Shared fixtures, and one thread per process for the whole suite.

The suite's networks are tiny: a second thread buys nothing there and, on a busy 2-core
machine, costs a lot (OpenMP threads spin while they wait for a core: the same training step
took 16x the CPU time with 2 threads as with 1 while another job shared the cores).  Child
processes (the command line, torchrun ranks) inherit the setting.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from pydiff.problem import Problem  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def small_problem() -> Problem:
    """A 24 x 24 lattice with radius-3 sources: every solver runs in well under a second."""
    return Problem(lattice=24, radius=3, n_sources=2, D=1.0, gamma=1 / 400, t_max=3000.0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
