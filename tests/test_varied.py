"""The varied family: diffusivity maps, source shapes and wall conditions, the discrete operator
checked by hand and by a manufactured solution, and its exact solvers against each other."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from pydiff.errors import ConfigError
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_maps
from pydiff.problem.operator import stationary_operator
from pydiff.solvers import make_solver, normalise
from pydiff.solvers.sparse import stationary_matrix

BOUNDARIES = ("dirichlet", "neumann", "periodic")

# --- The operator on a 3 x 3 lattice, by hand ---------------------------------------------------
# Cells k = 3 i + j; D = 2 in the centre (cell 4), 1 elsewhere; gamma = 0.5.  The conductance
# between the centre and a neighbour is 2 * 2 * 1 / (2 + 1) = 4/3, between two other cells 1.
NEIGHBOURS = {
    "dirichlet": {0: [1, 3], 1: [0, 2, 4], 2: [1, 5], 3: [0, 4, 6], 4: [1, 3, 5, 7], 5: [2, 4, 8], 6: [3, 7],
                  7: [4, 6, 8], 8: [5, 7]},
    "periodic": {0: [1, 2, 3, 6], 1: [0, 2, 4, 7], 2: [0, 1, 5, 8], 3: [4, 5, 0, 6], 4: [3, 5, 1, 7],
                 5: [3, 4, 2, 8], 6: [7, 8, 0, 3], 7: [6, 8, 1, 4], 8: [6, 7, 2, 5]},
}
NEIGHBOURS["neumann"] = NEIGHBOURS["dirichlet"]
WALL_FACES = {0: 2, 1: 1, 2: 2, 3: 1, 4: 0, 5: 1, 6: 2, 7: 1, 8: 2}  # Dirichlet: each adds D_i = 1


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_operator_on_three_by_three_cells_by_hand(boundary):
    D = np.ones((3, 3))
    D[1, 1] = 2.0
    expected = 0.5 * np.eye(9)
    for cell, others in NEIGHBOURS[boundary].items():
        for other in others:
            h = 4 / 3 if 4 in (cell, other) else 1.0
            expected[cell, cell] += h
            expected[cell, other] -= h
        if boundary == "dirichlet":
            expected[cell, cell] += WALL_FACES[cell]
    np.testing.assert_allclose(stationary_matrix(D, 3, 0.5, boundary).toarray(), expected, atol=1e-15)
    # the matrix-free operator is the same linear map
    for k in range(9):
        unit = np.zeros(9)
        unit[k] = 1.0
        np.testing.assert_allclose(stationary_operator(unit.reshape(3, 3), D, 0.5, boundary).ravel(), expected[:, k],
                                   atol=1e-15)


# --- A manufactured solution: second-order convergence ------------------------------------------
# On the unit square, a(x, y) = 1 + sin(2 pi x) sin(2 pi y) / 2 and c = 1; f = -div(a grad u) + c u
# for a u that meets the walls' condition.  The lattice's cells are the square's points spaced
# h apart (Dirichlet: the walls' zeros are the ghost cells, one h outside), and the unit-spacing
# equation is the continuous one times h^2: D = a, gamma = c h^2, img = h^2 f.

def manufactured(boundary, L):
    if boundary == "dirichlet":
        h = 1.0 / (L + 1)
        x = (np.arange(L) + 1) * h
    elif boundary == "neumann":
        h = 1.0 / L
        x = (np.arange(L) + 0.5) * h
    else:
        h = 1.0 / L
        x = np.arange(L) * h
    X, Y = np.meshgrid(x, x, indexing="ij")
    pi = np.pi
    a = 1 + 0.5 * np.sin(2 * pi * X) * np.sin(2 * pi * Y)
    ax, ay = pi * np.cos(2 * pi * X) * np.sin(2 * pi * Y), pi * np.sin(2 * pi * X) * np.cos(2 * pi * Y)
    if boundary == "dirichlet":
        u = np.sin(pi * X) * np.sin(pi * Y)
        ux, uy, lap = pi * np.cos(pi * X) * np.sin(pi * Y), pi * np.sin(pi * X) * np.cos(pi * Y), -2 * pi**2 * u
    elif boundary == "neumann":
        u = np.cos(pi * X) * np.cos(pi * Y)
        ux, uy, lap = -pi * np.sin(pi * X) * np.cos(pi * Y), -pi * np.cos(pi * X) * np.sin(pi * Y), -2 * pi**2 * u
    else:
        u = np.sin(2 * pi * X) * np.cos(2 * pi * Y) + 0.5
        ux, uy = 2 * pi * np.cos(2 * pi * X) * np.cos(2 * pi * Y), -2 * pi * np.sin(2 * pi * X) * np.sin(2 * pi * Y)
        lap = -8 * pi**2 * (u - 0.5)
    f = -(ax * ux + ay * uy + a * lap) + u
    return a, h * h, h * h * f, u


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_manufactured_solution_converges_at_second_order(boundary):
    errors = []
    for L in (32, 64, 128):
        a, gamma, img, exact = manufactured(boundary, L)
        u = spla.spsolve(stationary_matrix(a, L, gamma, boundary).tocsc(), img.ravel()).reshape(L, L)
        errors.append(np.abs(u - exact).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.3)), (errors, orders)


# --- The solvers against each other -------------------------------------------------------------


def varied(boundary="dirichlet", diffusivity="inclusions", **options):
    return Problem(lattice=40, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity=diffusivity,
                   boundary=boundary, **options)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("diffusivity", ["inclusions", "lognormal"])
def test_direct_multigrid_and_torch_cg_agree_on_varied_problems(boundary, diffusivity):
    problem = varied(boundary, diffusivity)
    images = source_images(problem, sample_sources(problem, 3, 7))
    maps = diffusivity_maps(problem, range(3), 7)
    with make_solver("direct", problem) as direct:
        exact, _ = normalise(direct(images, maps))
    for backend in ("multigrid", "torch-cg"):
        with make_solver(backend, problem) as solver:
            assert np.abs(normalise(solver(images, maps))[0] - exact).max() < 1e-6, backend
    # and the direct field solves the discrete equation (the residual of the matrix-free operator)
    u = direct(images, maps)
    residual = stationary_operator(u, maps, problem.gamma, boundary) - images
    assert np.abs(residual).max() < 1e-10 * np.abs(images).max()


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_variable_coefficient_path_with_constant_d_is_the_spectral_solution(boundary):
    problem = varied(boundary, "constant", target="stationary")
    images = source_images(problem, sample_sources(problem, 3, 1))
    with make_solver("spectral", problem, method="matrix") as spectral, make_solver("direct", problem) as direct:
        reference = spectral(images)
        np.testing.assert_allclose(direct(images, np.full(images.shape, problem.D)), reference, rtol=1e-9,
                                   atol=1e-12 * np.abs(reference).max())
    with make_solver("spectral", problem, method="fft") as fft:
        np.testing.assert_allclose(normalise(fft(images))[0], normalise(reference)[0], atol=2e-6)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_spectral_and_time_stepping_agree_at_t_max_for_every_wall(boundary):
    problem = varied(boundary, "constant", target="t_max", t_max=200.0)
    images = source_images(problem, sample_sources(problem, 2, 3))
    with make_solver("spectral", problem, method="matrix") as spectral, make_solver("timestep", problem) as steps:
        assert np.abs(normalise(spectral(images))[0] - normalise(steps(images))[0]).max() < 1e-5


def test_which_backend_solves_what_is_said_in_one_line():
    with pytest.raises(ConfigError, match="backend 'spectral' cannot solve diffusivity 'inclusions'; use one of: direct"):
        make_solver("spectral", varied())
    with pytest.raises(ConfigError, match="backend 'timestep' cannot solve target 'stationary'"):
        make_solver("timestep", varied())
    with make_solver("direct", varied()) as direct:
        with pytest.raises(ConfigError, match="needs each sample's map"):
            direct(np.zeros((1, 40, 40)))


# --- Diffusivity maps and source shapes ---------------------------------------------------------


def test_each_sample_draws_its_own_map_from_its_own_seed():
    problem = varied(diffusivity="inclusions", contrast=5.0)
    maps = diffusivity_maps(problem, range(6), 11)
    np.testing.assert_array_equal(diffusivity_maps(problem, [4], 11)[0], maps[4])  # whatever the batch or shard
    assert not np.array_equal(maps[0], maps[1])
    assert set(np.unique(maps)) <= {np.float32(0.2), 1.0, 5.0} and (maps != 1.0).mean() > 0.05
    lognormal = diffusivity_maps(varied(diffusivity="lognormal", contrast=30.0), range(3), 0)
    np.testing.assert_allclose(lognormal.max(axis=(1, 2)) / lognormal.min(axis=(1, 2)), 30.0, rtol=1e-6)
    assert diffusivity_maps(varied(diffusivity="constant"), range(3), 0) is None


def test_ellipses_keep_the_disks_area_centres_and_values():
    disks = varied(diffusivity="constant")
    ellipses = varied(diffusivity="constant", sources="ellipses")
    a, b = sample_sources(disks, 50, 5), sample_sources(ellipses, 50, 5)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.shapes is None and b.shapes.shape == (50, 4, 2) and (b.shapes[..., 0] >= 1).all()
    # one source per image, far from the walls: the same area (pi r^2 = 28.3 cells) within the lattice's rounding
    one = Problem(lattice=40, radius=3, n_sources=1, sources="ellipses")
    images = source_images(one, sample_sources(one, 40, 2))
    assert 20 <= (images > 0).sum(axis=(1, 2)).mean() <= 36
    mixed = sample_sources(Problem(lattice=40, radius=3, n_sources=4, sources="mixed"), 200, 0)
    assert 0.4 < (mixed.shapes[..., 0] == 1).mean() < 0.6


@pytest.mark.parametrize("options, match", [
    ({"diffusivity": "random"}, "diffusivity must be one of"),
    ({"contrast": 0.5, "diffusivity": "inclusions"}, "contrast must be a number >= 1"),
    ({"boundary": "neumann", "gamma": 0.0}, "neumann walls need gamma > 0"),
    ({"source_model": "clamped", "boundary": "periodic"}, "clamped sources are defined for the papers' problem"),
])
def test_impossible_varied_problems_are_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        Problem(lattice=20, radius=3, **options)


# --- Data sets of the varied family -------------------------------------------------------------


def test_a_varied_data_set_stores_its_maps_and_shapes_and_shards_into_the_same_file(tmp_path):
    from pydiff.datasets.hdf5 import load
    from pydiff.datasets.shards import merge
    from pydiff.datasets.writer import generate

    problem = varied("neumann", "lognormal", sources="mixed", contrast=20.0)
    whole = load(generate(tmp_path / "whole.h5", 10, problem, seed=4, batch_size=3, progress=False))
    assert whole.attrs["format_version"] == 3 and whole.attrs["backend"] == "direct"  # "auto" at 40^2
    np.testing.assert_array_equal(whole.diffusivity, diffusivity_maps(problem, range(10), 4))
    assert whole.source_shapes.shape == (10, 4, 2)
    # the stored maps and images give back the stored fields
    fields, _ = normalise(make_solver("multigrid", problem)(whole.inputs, whole.diffusivity))
    assert np.abs(fields - whole.fields).max() < 1e-6
    parts = [generate(tmp_path / f"part{i}.h5", 10, problem, seed=4, shard=(i, 3), progress=False) for i in range(3)]
    merged = load(merge(parts, tmp_path / "merged.h5"))
    for name in ("inputs", "fields", "diffusivity", "source_shapes", "centers"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)


# --- Networks that read the diffusivity ---------------------------------------------------------


@pytest.fixture(scope="module")
def varied_data(tmp_path_factory):
    from pydiff.datasets.writer import generate

    return generate(tmp_path_factory.mktemp("varied") / "v.h5", 40, varied(), seed=0, progress=False)


def test_the_2024_networks_read_the_map_as_a_second_channel_and_learn(varied_data, tmp_path):
    import torch

    from pydiff.training.checkpoint import load_model
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    config = config_for(None, "quick-varied", data=str(varied_data), n_samples=40, width=1 / 16, epochs=5,
                        batch_size=8, lr=3e-3)
    assert config.in_channels == 2
    result = train(config, tmp_path / "run", progress=False)
    assert min(r["val_loss"] for r in result.history[1:]) < result.history[0]["val_loss"]
    model, _ = load_model(tmp_path / "run")
    assert model.encoder[0].in_channels == 2
    # the map matters: the same images with another map give other predictions
    from pydiff.datasets.hdf5 import load
    from pydiff.training.data import network_inputs

    data = load(varied_data)
    x = torch.as_tensor(network_inputs(data, 2, slice(0, 4)))
    other = x.clone()
    other[:, 1] = 0.0  # a constant background D
    with torch.no_grad():
        assert not torch.allclose(model.eval()(x), model(other))


def test_online_varied_samples_are_exact_and_training_on_them_resumes_exactly(varied_data, tmp_path):
    import torch

    from pydiff.datasets.batches import OnlineSamples
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    from .test_train import Interrupt, assert_same_run, interrupt_at

    problem = varied()
    online = OnlineSamples(problem, 4, seed=3, device=torch.device("cpu"), in_channels=2)
    x, y = online.samples(np.arange(4))
    assert x.shape == (4, 2, 40, 40) and y.shape == (4, 1, 40, 40)
    maps = 10.0 ** x[:, 1].numpy().astype(np.float64) * problem.D
    exact, _ = normalise(make_solver("direct", problem)(x[:, 0].numpy(), maps))
    assert np.abs(y[:, 0].numpy() - exact).max() < 1e-5

    def config():
        return config_for(None, "quick-varied", data=str(varied_data), n_samples=40, width=1 / 32, epochs=3,
                          batch_size=8, training_data="online", checkpoint_every=1)

    train(config(), tmp_path / "whole", progress=False)
    with pytest.raises(Interrupt):
        train(config(), tmp_path / "parts", progress=interrupt_at(0))
    train(config(), tmp_path / "parts", resume=True, progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "parts")


def test_the_2021_surrogate_refuses_a_varied_problem_in_one_line(varied_data, tmp_path):
    from .cli import assert_clean_failure, pydiff

    result = pydiff("train", "--model", 9, "--preset", "smoke", "--data", varied_data, "--out", tmp_path / "run")
    assert_clean_failure(result, 2, "the 2021 surrogate reads source images only")


def test_predict_reads_the_maps_of_a_varied_data_file_or_asks_for_them(varied_data, tmp_path):
    import h5py

    from pydiff.datasets.hdf5 import load
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    from .cli import assert_clean_failure, pydiff

    train(config_for(None, "quick-varied", data=str(varied_data), n_samples=40, width=1 / 32, epochs=1, batch_size=8),
          tmp_path / "run", progress=False)
    result = pydiff("predict", tmp_path / "run", "--inputs", varied_data, "--out", tmp_path / "p.h5", "--uncertainty",
                    "--samples", 2)
    assert result.returncode == 0, result.stderr
    data = load(varied_data)
    np.save(tmp_path / "images.npy", data.inputs[:3])
    np.save(tmp_path / "maps.npy", data.diffusivity[:3])
    assert_clean_failure(pydiff("predict", tmp_path / "run", "--inputs", tmp_path / "images.npy", "--out",
                                tmp_path / "q.h5"), 2, "give --diffusivity MAPS.npy")
    result = pydiff("predict", tmp_path / "run", "--inputs", tmp_path / "images.npy", "--diffusivity",
                    tmp_path / "maps.npy", "--out", tmp_path / "q.h5")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "p.h5") as whole, h5py.File(tmp_path / "q.h5") as part:
        np.testing.assert_allclose(part["prediction"][()], whole["prediction"][:3], atol=1e-6)
        assert whole["physics_residual"].shape == (40, 40, 40)


def test_compare_and_the_study_run_on_the_varied_preset(tmp_path, monkeypatch):
    pytest.importorskip("neuralop")
    from pydiff.evaluation import report
    from pydiff.pipelines.compare import compare
    from pydiff.pipelines.study import train_size_study

    monkeypatch.setattr(report, "write_figures", lambda *args: [])
    table = compare(("encdec", "fno"), "quick-varied", tmp_path / "cmp", tmp_path / "data", epochs=1, n_samples=200,
                    width=1 / 32, transfer_samples=4, timing_batch=2, progress=False)
    assert table.model.tolist() == ["encdec", "fno"] and table.mean_res_2x.notna().all()
    study, fits = train_size_study("quick-varied", tmp_path / "size", fractions=(0.5, 1.0), seeds=(0,),
                                   data_dir=tmp_path / "data", epochs=1, n_samples=200, width=1 / 32, progress=False)
    assert sorted(study.n_train) == [80, 160] and np.isfinite(fits["file"].b)


def test_trust_scores_a_run_of_the_varied_family_with_its_maps(varied_data, tmp_path):
    import pandas as pd

    from pydiff.pipelines.trust import trust
    from pydiff.problem.residual import residual_score
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    run = tmp_path / "run"
    train(config_for(None, "quick-varied", data=str(varied_data), n_samples=40, width=1 / 32, epochs=1,
                     batch_size=8, split=(0.2, 0.6, 0.2)), run, progress=False)
    table = trust(run, ("physics", "inverse", "a-posteriori"), inverse_epochs=1, progress=False, iterations=80)
    assert table.method.tolist() == ["physics", "inverse", "a-posteriori", "exact"]
    assert table.samples.tolist() == [24] * 4 and table.solver.iloc[-1] == "direct"
    # the physics score is the residual with each sample's own map
    from pydiff.datasets.hdf5 import load
    from pydiff.evaluation.predict import predict
    from pydiff.training.checkpoint import load_model
    from pydiff.training.data import network_inputs

    scores = pd.read_csv(run / "trust_scores.csv")
    data = load(varied_data)
    index = scores["sample"].to_numpy()
    model, _ = load_model(run)
    prediction = predict(model, network_inputs(data, 2, index))
    expected = residual_score(prediction, data.inputs[index], data.problem, data.diffusivity[index])
    np.testing.assert_allclose(scores.physics, expected, rtol=1e-5)
    # and the a-posteriori estimate, the error equation solved to convergence, is the true error
    np.testing.assert_allclose(scores["a-posteriori"], scores.mean_res, atol=1e-5)
    np.testing.assert_allclose(scores["a-posteriori_max"], scores.max_res, atol=1e-5)


def test_a_run_is_measured_on_another_problem_of_the_family(varied_data, tmp_path):
    import json

    from pydiff.datasets.writer import generate
    from pydiff.evaluation.evaluate import evaluate, evaluate_on
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    from .cli import pydiff

    run = tmp_path / "run"
    train(config_for(None, "quick-varied", data=str(varied_data), n_samples=40, width=1 / 32, epochs=1, batch_size=8),
          run, progress=False)
    # on its own data file, every sample: the mean of the split's errors weighted by their sizes
    whole = evaluate_on(run, varied_data, batch_size=7)
    splits = evaluate(run, ("train", "test", "val"))
    assert whole["n_samples"] == 40
    assert whole["mean_res"] == pytest.approx(sum(r["mean_res"] * r["n_samples"] for r in splits.values()) / 40)
    higher = generate(tmp_path / "contrast30.h5", 12, varied(contrast=30.0), seed=9, progress=False)
    result = pydiff("evaluate", run, "--data", higher)
    assert result.returncode == 0, result.stderr
    report = json.loads((run / "on-contrast30.json").read_text())
    assert report["n_samples"] == 12 and report["problem"]["contrast"] == 30.0 and report["mean_res"] > 0


# --- Data sets mixing wall conditions -----------------------------------------------------------


def test_a_mixed_wall_data_set_solves_each_sample_with_its_own_walls_and_shards_alike(tmp_path):
    from pydiff.datasets.hdf5 import load
    from pydiff.datasets.shards import merge
    from pydiff.datasets.writer import generate
    from pydiff.problem.parameters import BOUNDARIES
    from pydiff.problem.walls import sample_walls, wall_problem

    problem = varied("mixed", "inclusions")
    whole = load(generate(tmp_path / "w.h5", 12, problem, seed=5, progress=False))
    assert whole.walls.dtype == np.uint8 and set(whole.walls) == {0, 1, 2}  # all three conditions drawn
    np.testing.assert_array_equal(whole.walls, sample_walls(problem, range(12), 5))
    for k in range(12):  # each field is its own walls' exact field, by an independent solver
        single = wall_problem(problem, whole.walls[k])
        assert single.boundary == BOUNDARIES[whole.walls[k]]
        with make_solver("multigrid", single) as solver:
            expected, _ = normalise(solver(whole.inputs[k:k + 1], whole.diffusivity[k:k + 1]))
        assert np.abs(whole.fields[k] - expected[0]).max() < 1e-6
    parts = [generate(tmp_path / f"p{i}.h5", 12, problem, seed=5, progress=False, shard=(i, 2)) for i in range(2)]
    merged = load(merge(parts, tmp_path / "m.h5"))
    np.testing.assert_array_equal(merged.walls, whole.walls)
    np.testing.assert_array_equal(merged.fields, whole.fields)


def test_a_network_of_mixed_walls_reads_them_as_two_planes_through_the_whole_path(tmp_path):
    from pydiff.datasets.hdf5 import load
    from pydiff.datasets.writer import generate
    from pydiff.evaluation.evaluate import evaluate_on
    from pydiff.training.config import config_for
    from pydiff.training.data import network_inputs
    from pydiff.problem.walls import wall_problem
    from pydiff.training.run import train

    from .cli import assert_clean_failure, pydiff

    mixed = generate(tmp_path / "m.h5", 60, varied("mixed", "inclusions"), seed=1, progress=False)
    config = config_for(None, "quick-varied", data=str(mixed), n_samples=60, width=1 / 32, epochs=1, batch_size=6,
                        split=(0.5, 0.35, 0.15))  # 20 test samples: what trust needs to rank
    assert config.in_channels == 4  # the image, the map, the neumann and the periodic plane
    train(config, tmp_path / "run", progress=False)
    data = load(mixed)
    x = network_inputs(data, 4, np.arange(60))
    assert x.shape == (60, 4, 40, 40)
    np.testing.assert_array_equal(x[:, 2, 0, 0], data.walls == 1)
    np.testing.assert_array_equal(x[:, 3, 0, 0], data.walls == 2)
    assert (x[:, 2:] == x[:, 2:, :1, :1]).all()  # constant planes
    # a file of one wall condition gives every sample its planes
    neumann = generate(tmp_path / "n.h5", 6, varied("neumann", "inclusions"), seed=2, progress=False)
    assert (network_inputs(load(neumann), 4)[:, 2] == 1).all()
    assert evaluate_on(tmp_path / "run", neumann)["n_samples"] == 6
    # predict reads each sample's walls from the inputs file, as evaluation does
    result = pydiff("predict", tmp_path / "run", "--inputs", mixed, "--out", tmp_path / "p.h5")
    assert result.returncode == 0, result.stderr
    import h5py
    import torch

    from pydiff.evaluation.predict import predict
    from pydiff.training.checkpoint import load_model

    with h5py.File(tmp_path / "p.h5") as f:
        np.testing.assert_allclose(f["prediction"][()], predict(load_model(tmp_path / "run")[0], torch.as_tensor(x))[:, 0],
                                   atol=1e-6)
    np.save(tmp_path / "images.npy", data.inputs[:2])
    np.save(tmp_path / "maps.npy", data.diffusivity[:2])
    assert_clean_failure(pydiff("predict", tmp_path / "run", "--inputs", tmp_path / "images.npy", "--diffusivity",
                                tmp_path / "maps.npy", "--out", tmp_path / "q.h5"), 2, "reads each sample's walls")
    # the whole path takes each sample's walls: trust, calibrate, predict with a bound, the physics loss
    # and online samples (they refused in one line before: issue 22)
    result = pydiff("trust", tmp_path / "run", "--method", "physics,a-posteriori")
    assert result.returncode == 0, result.stderr
    result = pydiff("calibrate", tmp_path / "run", "--alpha", 0.5, "--iterations", 5)
    assert result.returncode == 0, result.stderr
    held_out = generate(tmp_path / "new.h5", 6, varied("mixed", "inclusions"), seed=9, progress=False)
    result = pydiff("predict", tmp_path / "run", "--inputs", held_out, "--out", tmp_path / "b.h5", "--max-error", 1e-9)
    assert result.returncode == 0, result.stderr
    new = load(held_out)
    with h5py.File(tmp_path / "b.h5") as f:
        answers = f["prediction"][()]
        assert not f["served"][()].any()
    for k in range(6):  # every answer solved with its own walls
        with make_solver("direct", wall_problem(new.problem, new.walls[k])) as direct:
            np.testing.assert_allclose(answers[k], normalise(direct(new.inputs[k:k + 1], new.diffusivity[k:k + 1]))[0][0],
                                       atol=1e-6)
    for option in (["--physics-weight", "1"], ["--training-data", "online"]):
        result = pydiff("train", "--preset", "quick-varied", "--data", mixed, "--out", tmp_path / option[0][2:],
                        "--epochs", "1", "--width", 1 / 32, "--batch-size", 6, "--n-samples", 30, *option)
        assert result.returncode == 0, result.stderr


def test_predict_on_an_incomplete_data_file_says_so(tmp_path):
    # An interrupted file's unwritten rows are zeros: predict said "diffusivity maps must be
    # positive" (or "image 4 is all zero"), not that the file is unfinished.
    import h5py

    from pydiff.datasets.writer import generate
    from pydiff.nn.build import build_model
    from pydiff.training.checkpoint import save_model, write_config
    from pydiff.training.config import config_for

    from .cli import assert_clean_failure, pydiff

    problem = varied()
    full = generate(tmp_path / "full.h5", 8, problem, progress=False)
    incomplete = generate(tmp_path / "incomplete.h5", 8, problem, progress=False)
    with h5py.File(incomplete, "a") as f:  # as generate leaves it when stopped after 4 samples
        f.attrs["n_complete"] = 4
        for name in ("inputs", "fields", "diffusivity"):
            f[name][4:] = 0
    run = tmp_path / "run"
    run.mkdir()
    config = config_for(None, "quick-varied", width=1 / 32, in_channels=2)
    write_config(config, run)
    save_model(build_model(config).state_dict(), run, problem=problem)
    for args in (["--inputs", incomplete], ["--inputs", full, "--diffusivity", incomplete]):
        assert_clean_failure(pydiff("predict", run, *args, "--out", tmp_path / "p.h5"), 2,
                             "incomplete (4 of 8 samples); finish it with --resume")
    assert pydiff("predict", run, "--inputs", full, "--out", tmp_path / "p.h5").returncode == 0
