"""Served answers are right, or refused: each case a new user found giving wrong answers
(issue 21, section 1), and the calibration's own split, its data, and its model."""

import json
import shutil

import h5py
import numpy as np
import pytest

from pydiff.datasets.hdf5 import load
from pydiff.datasets.split import split_indices
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.evaluation.bound import read_calibration
from pydiff.problem import Problem
from pydiff.solvers import make_solver, normalise
from pydiff.training.config import config_for
from pydiff.training.pretrained import pretrained_dir, pretrained_names
from pydiff.training.run import train

from .cli import assert_clean_failure, pydiff

FAMILY = dict(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny varied network (Dirichlet walls, gamma 1/400, contrast 10), trained and calibrated."""
    root = tmp_path_factory.mktemp("serving")
    data = generate(root / "d.h5", 80, Problem(**FAMILY), seed=0, progress=False)
    train(config_for(None, "quick-varied", data=str(data), n_samples=80, width=1 / 32, epochs=2, batch_size=8,
                     split=(0.5, 0.25, 0.25)), root / "run", progress=False)
    result = pydiff("calibrate", root / "run", "--alpha", 0.2, "--iterations", 10)
    assert result.returncode == 0, result.stderr
    return root / "run"


def fresh(tmp_path, name, n=6, seed=7, **changes):
    return generate(tmp_path / name, n, Problem(**{**FAMILY, **changes}), seed=seed, progress=False)


@pytest.mark.parametrize("changes, named", [({"boundary": "neumann"}, "boundary 'neumann'"),
                                            ({"gamma": 1 / 100}, "gamma 0.01")])
def test_a_file_of_another_equation_is_refused_with_or_without_a_bound(run, tmp_path, changes, named):
    # Before: served 60 % of a Neumann file with errors above the bound, and "solved" the rest with
    # the run's walls and gamma instead of the file's (off by up to 0.96).
    other = fresh(tmp_path, "other.h5", **changes)
    for bound in ([], ["--max-error", 0.5]):
        out = tmp_path / "out.h5"
        assert_clean_failure(pydiff("predict", run, "--inputs", other, "--out", out, *bound), 2, named)
        assert not out.exists()


def test_another_family_of_the_same_equation_is_predicted_but_not_served_with_the_bound(run, tmp_path):
    other = fresh(tmp_path, "contrast30.h5", contrast=30.0)
    assert pydiff("predict", run, "--inputs", other, "--out", tmp_path / "plain.h5").returncode == 0
    result = pydiff("predict", run, "--inputs", other, "--out", tmp_path / "bound.h5", "--max-error", 0.5)
    assert_clean_failure(result, 2, "contrast 30.0 (expected 10.0)")
    assert "pydiff calibrate" in result.stderr and "--data" in result.stderr
    assert not (tmp_path / "bound.h5").exists()


@pytest.mark.parametrize("image, named", [(-1.0, "negative"), (0.0, "all zero")])
def test_negative_or_empty_source_images_are_refused(run, tmp_path, image, named):
    # Before: NaN or 17,381-high "exact" fields, exit status 0.
    data = load(fresh(tmp_path, "ok.h5", n=3))
    images = data.inputs.copy()
    images[1] = image * (images[1] > 0) if image else 0.0
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "maps.npy", data.diffusivity)
    for bound in ([], ["--max-error", 1e-9]):
        out = tmp_path / "out.h5"
        result = pydiff("predict", run, "--inputs", tmp_path / "images.npy", "--diffusivity", tmp_path / "maps.npy",
                        "--out", out, *bound)
        assert_clean_failure(result, 2, named)
        assert "image 1" in result.stderr and not out.exists()


def test_diffusivity_maps_for_a_network_that_does_not_read_them_are_refused(tmp_path):
    # Before: --diffusivity was silently ignored, the answer that of D = 1.
    images = np.zeros((2, 64, 64), dtype=np.float32)
    images[:, 20:25, 30:35] = 1.0
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "maps.npy", np.full_like(images, 3.0))
    result = pydiff("predict", "--pretrained", "quick2024-encdec", "--inputs", tmp_path / "images.npy",
                    "--diffusivity", tmp_path / "maps.npy", "--out", tmp_path / "out.h5")
    assert_clean_failure(result, 2, "does not read diffusivity maps")
    varied = fresh(tmp_path, "varied.h5", n=2, lattice=64)  # a file whose D varies: another equation
    assert_clean_failure(pydiff("predict", "--pretrained", "quick2024-encdec", "--inputs", varied, "--out",
                                tmp_path / "out.h5"), 2, "diffusivity 'inclusions' (expected 'constant')")


def test_a_contrast_where_cg_stalls_is_calibrated_and_solved_exactly(run, tmp_path):
    # Before: torch-cg stalled near 1e-4 at contrast 10^4 and calibrate and predict aborted.
    calibration_data = fresh(tmp_path, "cal.h5", n=24, seed=3, contrast=1e4)
    out = tmp_path / "cal.json"
    result = pydiff("calibrate", run, "--data", calibration_data, "--out", out, "--alpha", 0.2, "--iterations", 5)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["problem"]["contrast"] == 1e4
    new = fresh(tmp_path, "new.h5", n=4, seed=5, contrast=1e4)
    answers = tmp_path / "answers.h5"
    result = pydiff("predict", run, "--inputs", new, "--out", answers, "--calibration", out, "--max-error", 1e-9)
    assert result.returncode == 0, result.stderr
    data = load(new)
    with make_solver("direct", data.problem) as direct:
        exact, _ = normalise(direct(data.inputs, data.diffusivity))
    with h5py.File(answers) as f:
        assert not f["served"][()].any()
        np.testing.assert_allclose(f["prediction"][()], exact, atol=1e-6)


def test_the_calibration_uses_samples_that_neither_trained_nor_chose_the_model(run):
    # Before: the validation split, which also picked the best epoch.
    calibration = json.loads((run / "calibration.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert config["select_on"] == "val" and calibration["split"] == "test"
    data = load(config["data"])
    split = split_indices(80, tuple(config["split"]), config["seed"], data.source_count)
    chosen, checked = set(calibration["calibration_indices"]), set(calibration["check_indices"])
    assert chosen and checked and not chosen & checked
    assert chosen | checked == set(split["test"].tolist())
    assert calibration["n_calibration"] == len(chosen) and calibration["test"]["n"] == len(checked)


def test_calibrating_on_the_runs_own_training_file_is_refused(run, tmp_path):
    config = json.loads((run / "config.json").read_text())
    result = pydiff("calibrate", run, "--data", config["data"], "--out", tmp_path / "c.json")
    assert_clean_failure(result, 2, "trained")
    assert not (tmp_path / "c.json").exists()


def test_a_shipped_model_is_calibrated_on_a_data_file_and_served_with_its_bound(tmp_path):
    problem = Problem(lattice=64, n_sources=20, min_sources=1, setup="paper2024")
    data = generate(tmp_path / "cal.h5", 40, problem, seed=11, progress=False)
    new = generate(tmp_path / "new.h5", 6, problem, seed=12, progress=False)
    out = tmp_path / "encdec-calibration.json"
    result = pydiff("calibrate", "--pretrained", "quick2024-encdec", "--data", data, "--out", out, "--alpha", 0.2)
    assert result.returncode == 0, result.stderr
    calibration = json.loads(out.read_text())
    assert calibration["n_calibration"] + calibration["test"]["n"] == 40
    answers = tmp_path / "answers.h5"
    result = pydiff("predict", "--pretrained", "quick2024-encdec", "--inputs", new, "--out", answers,
                    "--calibration", out, "--max-error", 0.2)
    assert result.returncode == 0, result.stderr
    with h5py.File(answers) as f:
        assert f["bound"].shape == (6,) and (f["bound"][()][f["served"][()]] <= 0.2).all()
    # without --calibration, the shipped model's own calibration serves
    result = pydiff("predict", "--pretrained", "quick2024-encdec", "--inputs", new, "--out", tmp_path / "x.h5",
                    "--max-error", 0.2)
    assert result.returncode == 0, result.stderr
    # a calibration of another model is refused
    calibration["model_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(calibration))
    assert_clean_failure(pydiff("predict", "--pretrained", "quick2024-encdec", "--inputs", new, "--out",
                                tmp_path / "y.h5", "--calibration", tmp_path / "other.json", "--max-error", 0.2),
                         2, "another model")


@pytest.mark.parametrize("name", pretrained_names())
def test_each_shipped_model_ships_a_calibration_of_its_own_weights(name, tmp_path):
    calibration = read_calibration(pretrained_dir(name), named=f"--pretrained {name}")
    assert 0 < calibration["quantile"] < 10 and calibration["n_calibration"] >= 1000
    # a shipped model without one says how to make one
    for file in ("config.json", "model.safetensors"):
        shutil.copy(pretrained_dir(name) / file, tmp_path / file)
    with pytest.raises(ConfigError, match="--calibration FILE, made by pydiff calibrate --pretrained"):
        read_calibration(tmp_path, named=f"--pretrained {name}")


# --- Found by a new user trying the serving path (2026-12-01) -----------------------------------


def test_the_bound_is_served_only_for_inputs_whose_family_is_known(run, tmp_path):
    # Before: maps of contrast 10^4 given with --diffusivity beside contrast-10 images, or .npy
    # inputs, skipped the family check; 8 of 20 served answers exceeded their bound (alpha 0.2).
    strong = load(fresh(tmp_path, "strong.h5", contrast=1e4))
    ok = fresh(tmp_path, "ok.h5")
    np.save(tmp_path / "images.npy", strong.inputs)
    np.save(tmp_path / "maps.npy", strong.diffusivity)
    for inputs in (["--inputs", ok, "--diffusivity", tmp_path / "maps.npy"],
                   ["--inputs", tmp_path / "images.npy", "--diffusivity", tmp_path / "maps.npy"]):
        out = tmp_path / "out.h5"
        assert_clean_failure(pydiff("predict", run, *inputs, "--out", out, "--max-error", 0.5), 2, "pydiff data file")
        assert not out.exists()
    # without a bound, maps from elsewhere are the user's own business
    assert pydiff("predict", run, "--inputs", tmp_path / "images.npy", "--diffusivity", tmp_path / "maps.npy",
                  "--out", tmp_path / "plain.h5").returncode == 0


def test_calibration_data_drawn_from_the_training_stream_is_refused(run, tmp_path):
    # Before: a file of the training file's problem and seed (more samples, another batch size)
    # shares its samples and was accepted.
    config = json.loads((run / "config.json").read_text())
    same_stream = generate(tmp_path / "more.h5", 100, load(config["data"]).problem, seed=0, batch_size=7,
                           progress=False)
    assert_clean_failure(pydiff("calibrate", run, "--data", same_stream, "--out", tmp_path / "c.json"), 2,
                         "seed 0")


@pytest.mark.parametrize("edit, named", [
    ({"quantile": 0.0}, "quantile"), ({"quantile": -1.0}, "quantile"), ({"quantile": "1.0"}, "quantile"),
    ({"alpha": 2}, "alpha"), ({"iterations": "20"}, "iterations"), ({"problem": "x"}, "problem"),
    ({"problem": {"lattice": 32}}, "problem"), (None, "not a calibration"),
])
def test_a_malformed_calibration_is_refused_in_one_line_before_any_work(run, tmp_path, edit, named):
    calibration = json.loads((run / "calibration.json").read_text())
    if edit is None:
        calibration = [calibration]
    else:
        calibration.update(edit)
    (tmp_path / "c.json").write_text(json.dumps(calibration))
    result = pydiff("predict", run, "--inputs", fresh(tmp_path, "new.h5"), "--out", tmp_path / "o.h5",
                    "--calibration", tmp_path / "c.json", "--max-error", 0.1)
    assert_clean_failure(result, 2, named)
    for key in ("alpha", "iterations"):  # a missing key likewise
        broken = json.loads((run / "calibration.json").read_text())
        del broken[key]
        (tmp_path / "d.json").write_text(json.dumps(broken))
        assert_clean_failure(pydiff("predict", run, "--inputs", tmp_path / "new.h5", "--out", tmp_path / "o.h5",
                                    "--calibration", tmp_path / "d.json", "--max-error", 0.1), 2, key)


def test_odd_inputs_and_options_give_one_line_that_says_what_to_do(run, tmp_path):
    with h5py.File(tmp_path / "group.h5", "w") as f:
        f.create_group("inputs")
    assert_clean_failure(pydiff("predict", run, "--inputs", tmp_path / "group.h5", "--out", tmp_path / "o.h5"), 2,
                         "not an (n, L, L) data set")
    np.save(tmp_path / "text.npy", np.array(["a", "b"], dtype=object), allow_pickle=True)
    result = pydiff("predict", run, "--inputs", tmp_path / "text.npy", "--out", tmp_path / "o.h5")
    assert_clean_failure(result, 2, "numbers")
    assert "allow_pickle" not in result.stderr
    new = fresh(tmp_path, "new.h5")
    missing = pydiff("predict", run, "--inputs", new, "--out", tmp_path / "o.h5", "--max-error", 0.1,
                     "--calibration", tmp_path / "nothere.json")
    assert_clean_failure(missing, 2, f"--out {tmp_path / 'nothere.json'}")
    assert_clean_failure(pydiff("predict", run, "--inputs", new, "--out", tmp_path / "o.h5", "--max-error", "inf"), 2,
                         "finite")
    np.save(tmp_path / "images.npy", load(new).inputs)
    assert_clean_failure(pydiff("calibrate", run, "--data", tmp_path / "images.npy", "--out", tmp_path / "c.json"), 2,
                         "labelled pydiff data file")


def test_a_run_with_no_split_that_chose_nothing_is_told_to_calibrate_on_data(tmp_path):
    data = generate(tmp_path / "d.h5", 40, Problem(**FAMILY), seed=0, progress=False)
    train(config_for(None, "quick-varied", data=str(data), n_samples=40, width=1 / 32, epochs=1, batch_size=8,
                     split=(0.8, 0.2, 0.0), select_on="test"), tmp_path / "run", progress=False)
    assert_clean_failure(pydiff("calibrate", tmp_path / "run"), 2, "--data")


def test_the_answers_file_records_the_calibration_it_used(run, tmp_path):
    out = tmp_path / "a.h5"
    assert pydiff("predict", run, "--inputs", fresh(tmp_path, "new.h5"), "--out", out, "--max-error", 0.3).returncode == 0
    with h5py.File(out) as f:
        assert f.attrs["calibration"] == str(run / "calibration.json")
        import hashlib

        assert f.attrs["calibration_sha256"] == hashlib.sha256((run / "calibration.json").read_bytes()).hexdigest()


def test_refined_answers_are_served_within_their_guaranteed_bound_and_the_rest_solved(run, tmp_path):
    new = fresh(tmp_path, "new.h5", n=8)
    out = tmp_path / "refined.h5"
    result = pydiff("predict", run, "--inputs", new, "--out", out, "--max-error", 0.05, "--refine", 6)
    assert result.returncode == 0, result.stderr
    assert "refined in 6 steps" in result.stdout
    data = load(new)
    with make_solver("direct", data.problem) as direct:
        exact, _ = normalise(direct(data.inputs, data.diffusivity))
    with h5py.File(out) as f:
        answers, served, refined, bound = f["prediction"][()], f["served"][()], f["refined"][()], f["refined_bound"][()]
    error = np.abs(answers - exact).reshape(8, -1).max(axis=1)
    assert refined.sum() >= 4 and not (served & refined).any()  # a tiny network: most answers come refined
    assert (error[refined] <= bound[refined]).all() and (bound[refined] <= 0.05).all()
    rest = ~served & ~refined
    assert (error[rest] <= 1e-6).all()
    assert_clean_failure(pydiff("predict", run, "--inputs", new, "--out", tmp_path / "x.h5", "--refine", 2), 2,
                         "give both")


def test_evaluate_measures_refined_answers_on_a_data_file(run, tmp_path):
    new = fresh(tmp_path, "new.h5", n=10)
    plain = pydiff("evaluate", run, "--data", new)
    refined = pydiff("evaluate", run, "--data", new, "--refine", 3)
    assert plain.returncode == 0 and refined.returncode == 0, refined.stderr
    raw = json.loads((run / "on-new.json").read_text())
    better = json.loads((run / "on-new-refine3.json").read_text())
    assert better["refine_seconds"] > 0 and "refined in 3 steps" in refined.stdout
    assert better["median_max_res"] < raw["median_max_res"] / 20  # three V-cycle steps: far closer
    assert_clean_failure(pydiff("evaluate", run, "--refine", 2), 2, "give --data FILE")


def test_network_pays_only_where_its_served_fraction_saves_more_than_it_costs():
    from pydiff.evaluation.bound import network_pays

    test = {"ms_network": 2.0, "ms_estimator": 1.0, "ms_exact": 10.0,
            "by_max_error": [{"max_error": 0.05, "served": 0.1}, {"max_error": 0.2, "served": 0.5}]}
    # at 0.01 and 0.05 at most 10 % are served: 1 ms saved per sample against 3 ms spent
    assert not network_pays({"test": test}, 0.01)[0] and not network_pays({"test": test}, 0.05)[0]
    # between 0.05 and 0.2, the fraction at 0.2 bounds it: 5 ms saved against 3
    assert network_pays({"test": test}, 0.1)[0]
    slow = {**test, "ms_network": 6.0}
    assert not network_pays({"test": slow}, 0.2)[0]  # 5 ms saved against 7
    assert network_pays({"test": slow}, 0.3)[0]  # above the report: not known, tried
    assert network_pays({}, 0.01)[0]  # a calibration without its report: tried


def test_where_the_network_does_not_pay_predict_solves_every_sample_as_generate_does(run, tmp_path):
    calibration = json.loads((run / "calibration.json").read_text())
    calibration["test"].update(ms_network=5.0, ms_estimator=5.0, ms_exact=1.0)  # the network never pays
    (tmp_path / "slow.json").write_text(json.dumps(calibration))
    data = fresh(tmp_path, "new.h5")
    result = pydiff("predict", run, "--inputs", data, "--out", tmp_path / "a.h5", "--max-error", 0.5,
                    "--calibration", tmp_path / "slow.json")
    assert result.returncode == 0, result.stderr
    assert "the network was not run" in result.stdout
    with h5py.File(tmp_path / "a.h5") as answers, h5py.File(data) as exact:
        np.testing.assert_allclose(answers["prediction"][:], exact["fields"][:].reshape(answers["prediction"].shape),
                                   atol=1e-6)
        assert not answers["served"][:].any() and "network_skipped" in answers.attrs
    forced = pydiff("predict", run, "--inputs", data, "--out", tmp_path / "b.h5", "--max-error", 0.5,
                    "--calibration", tmp_path / "slow.json", "--no-skip-network")
    assert forced.returncode == 0 and "not run" not in forced.stdout, forced.stderr
    with h5py.File(tmp_path / "b.h5") as answers:
        assert "network_skipped" not in answers.attrs


def test_calibrate_out_replaces_a_calibration_and_nothing_else(run, tmp_path):
    # Before: --out run/config.json replaced the run's configuration (the run was lost), and
    # --out DATA.h5 its data file.
    config = (run / "config.json").read_bytes()
    data = fresh(tmp_path, "cal.h5", n=40)
    before = data.read_bytes()
    for target in (run / "config.json", data):
        result = pydiff("calibrate", run, "--alpha", 0.3, "--data", data, "--out", target)
        assert_clean_failure(result, 2, "is not a calibration")
    assert (run / "config.json").read_bytes() == config and data.read_bytes() == before
    again = tmp_path / "again.json"
    shutil.copy(run / "calibration.json", again)
    assert pydiff("calibrate", run, "--alpha", 0.3, "--data", data, "--out", again).returncode == 0
    assert json.loads(again.read_text())["alpha"] == 0.3


def test_skip_network_options_need_max_error(run, tmp_path):
    data = fresh(tmp_path, "new.h5")
    result = pydiff("predict", run, "--inputs", data, "--out", tmp_path / "a.h5", "--no-skip-network")
    assert_clean_failure(result, 2, "--max-error")
    assert not (tmp_path / "a.h5").exists()
