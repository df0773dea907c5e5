"""The constant-D prior: exact where D is constant, the same in training and when loaded back,
each sample with its own walls."""

import numpy as np
import pytest
import torch

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.nn.build import build_model
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_channel, diffusivity_maps
from pydiff.problem.walls import wall_planes, wall_problem
from pydiff.solvers import make_solver, normalise
from pydiff.training.checkpoint import load_model
from pydiff.training.config import config_for
from pydiff.training.run import train

VARIED = dict(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions")


def inputs(problem, n=3, seed=0):
    images = source_images(problem, sample_sources(problem, n, seed))
    maps = diffusivity_maps(problem, range(n), seed)
    return images, maps, torch.from_numpy(np.concatenate([images[:, None], diffusivity_channel(maps, problem)[:, None]], 1))


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_the_prior_is_the_exact_field_where_d_is_constant(boundary):
    problem = Problem(**{**VARIED, "contrast": 1.0, "boundary": boundary})  # maps of D = 1 everywhere
    images, maps, x = inputs(problem)
    model = build_model(config_for(None, "quick-varied", width=1 / 32, in_channels=2, prior="constant-d"), problem)
    with make_solver("direct", problem) as direct:
        exact, _ = normalise(direct(images, maps))
    np.testing.assert_allclose(model.prior(x)[:, 0].numpy(), exact, atol=1e-6)


def test_the_model_adds_the_networks_correction_to_the_prior():
    problem = Problem(**VARIED)
    _, _, x = inputs(problem)
    model = build_model(config_for(None, "quick-varied", width=1 / 32, in_channels=2, prior="constant-d"), problem).eval()
    y0 = model.prior(x)
    with torch.no_grad():
        torch.testing.assert_close(model(x), y0 + model.network(torch.cat([x, y0], 1)))
    assert float((y0 - 1).abs().amin(dim=(2, 3)).max()) < 1e-6  # peak 1 in each sample
    with pytest.raises(ConfigError, match="needs the problem"):
        build_model(config_for(None, "quick-varied", width=1 / 32, in_channels=2, prior="constant-d"))
    with pytest.raises(ConfigError, match="not the 2021 surrogate"):
        config_for(9, "smoke", prior="constant-d")


def test_a_prior_run_predicts_the_same_after_loading(tmp_path):
    data = generate(tmp_path / "d.h5", 24, Problem(**VARIED), seed=0, progress=False)
    train(config_for(None, "quick-varied", data=str(data), n_samples=24, width=1 / 32, epochs=1, batch_size=6,
                     prior="constant-d"), tmp_path / "run", progress=False)
    model, config = load_model(tmp_path / "run")
    assert config.prior == "constant-d"
    _, _, x = inputs(Problem(**VARIED), seed=5)
    with torch.no_grad():
        first, second = model.eval()(x), load_model(tmp_path / "run")[0].eval()(x)
    torch.testing.assert_close(first, second)


def test_the_prior_of_mixed_walls_uses_each_samples_walls():
    problem = Problem(**{**VARIED, "contrast": 1.0, "boundary": "mixed"})
    images, maps, x = inputs(problem, n=3)
    walls = np.array([0, 1, 2])
    x = torch.cat([x, torch.from_numpy(wall_planes(walls, 24))], 1)
    model = build_model(config_for(None, "quick-varied", width=1 / 32, in_channels=4, prior="constant-d"), problem)
    prior = model.prior(x)[:, 0].numpy()
    for k in range(3):
        with make_solver("direct", wall_problem(problem, walls[k])) as direct:
            np.testing.assert_allclose(prior[k], normalise(direct(images[k:k + 1], maps[k:k + 1]))[0][0], atol=1e-6)
