import numpy as np
import pytest

from pydiff.problem import Problem


@pytest.fixture
def small_problem() -> Problem:
    """A 24 x 24 lattice with radius-3 sources: every solver runs in well under a second."""
    return Problem(lattice=24, radius=3, n_sources=2, D=1.0, gamma=1 / 400, t_max=3000.0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
