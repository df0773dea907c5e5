"""The calibrated bound (pydiff.evaluation.bound) called directly, where mutation testing found it
unchecked: the calibration's numbers against their definitions, every refusal's message, and
served answers.  No network is trained: the shipped quick2024-encdec answers fresh samples of its
own family (benchmarks/mutation.py, docs/mutation.md)."""

import json
import math
import re
import shutil
import time

import numpy as np
import pytest

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError, DataFileError
from pydiff.evaluation.aposteriori import guaranteed_max_errors
from pydiff.evaluation.bound import (EPSILONS, _served_report, calibrate, check_max_error, conformal_quantile,
                                     estimated_max_errors, read_calibration, serve, warm_start)
from pydiff.evaluation.predict import predict
from pydiff.problem import Problem
from pydiff.solvers import BACKENDS, make_solver, normalise
from pydiff.training import checkpoint
from pydiff.training.data import network_inputs
from pydiff.training.pretrained import pretrained_dir

NAME = "quick2024-encdec"
FAMILY = Problem(lattice=64, n_sources=20, min_sources=1, setup="paper2024")  # the family it was trained on
ALPHA = 0.2


def whole(message):
    """A pytest.raises match for exactly this message."""
    return f"^{re.escape(str(message))}$"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("bound")
    data = generate(root / "cal.h5", 24, FAMILY, seed=11, progress=False)
    start = time.perf_counter()
    calibration = calibrate(pretrained_dir(NAME), alpha=ALPHA, device="cpu", data=data, out=root / "c.json")
    return root, data, calibration, 1e3 * (time.perf_counter() - start)


def answers_of(samples):
    """The shipped model's predictions of a loaded data file's samples, and the (n, L, L) truth."""
    model, config = checkpoint.load_model(pretrained_dir(NAME), "best", "cpu")
    x = network_inputs(samples, config.in_channels)
    return predict(model, x, config.eval_batch_size, "cpu", config.amp)[:, 0], np.asarray(samples.fields)


def test_the_calibration_fits_its_quantile_on_one_half_and_measures_it_on_the_other(shipped):
    root, data, calibration, elapsed_ms = shipped
    assert json.loads((root / "c.json").read_text()) == calibration
    fit, check = calibration["calibration_indices"], calibration["check_indices"]
    assert calibration["n_calibration"] == len(fit) == 12 and len(check) == 12  # (24 + 1) // 2
    assert sorted(fit + check) == list(range(24)) and fit == sorted(fit) and check == sorted(check)
    assert (calibration["method"], calibration["alpha"], calibration["split"]) == ("a-posteriori", ALPHA, str(data))
    assert calibration["problem"] == FAMILY.to_attrs()
    assert calibration["model_sha256"] == checkpoint.model_digest(pretrained_dir(NAME))
    assert "<= 0.2" in calibration["guarantee"]
    # the quantile, from the definition: the ceil(13 * 0.8) = 11th smallest of the 12 ratios e / s
    with load(data) as samples:
        prediction, truth = answers_of(samples)
        images = np.asarray(samples.inputs)
    scores = estimated_max_errors(prediction, images, FAMILY, None, calibration["iterations"], "cpu", None,
                                  calibration["preconditioner"])
    true = np.abs(prediction - truth).reshape(24, -1).max(axis=1)
    assert scores.shape == (24,) and scores.dtype == np.float64
    ratios = np.sort(true[fit] / np.maximum(scores[fit], 1e-12))
    q = calibration["quantile"]
    assert q == pytest.approx(ratios[10], rel=1e-5)
    # the check half: the bound q s against the true errors
    bound, true = q * scores[check], true[check]
    report = calibration["test"]
    assert report["n"] == 12 and report["coverage"] == pytest.approx(np.mean(true <= bound))
    assert report["coverage_tolerance"] == pytest.approx(3 * math.sqrt(ALPHA * (1 - ALPHA) / 12))
    assert report["median_bound_over_error"] == pytest.approx(np.median(bound / true), rel=1e-4)
    assert [row["max_error"] for row in report["by_max_error"]] == list(EPSILONS)
    for row in report["by_max_error"]:
        assert row["served"] == pytest.approx(np.mean(bound <= row["max_error"]), abs=1e-9)
    answered = report["ms_network"] + report["ms_estimator"]
    # times per sample: each of the 12 check samples ran the network and the estimate within the call
    assert 0 < report["ms_network"] * 12 < elapsed_ms and 0 < report["ms_estimator"] * 12 < elapsed_ms
    assert report["exact_solver"] in BACKENDS and 0 < report["ms_exact"]
    assert report["by_max_error"][0]["ms_per_answer"] == pytest.approx(
        answered + (1 - report["by_max_error"][0]["served"]) * report["ms_exact"])
    # the same samples halve the same way again; the estimate's steps asked for are recorded
    again = calibrate(pretrained_dir(NAME), alpha=0.5, iterations=3, device="cpu", data=data, out=root / "again.json")
    assert again["calibration_indices"] == fit and again["alpha"] == 0.5 and again["iterations"] == 3
    # without --out, the calibration goes beside the model: RUN/calibration.json
    run = root / "copy"
    shutil.copytree(pretrained_dir(NAME), run)
    (run / "calibration.json").unlink()
    beside = calibrate(run, alpha=ALPHA, data=data)  # and on the device "auto" picks
    assert json.loads((run / "calibration.json").read_text()) == beside
    assert beside["calibration_indices"] == fit and 0 < beside["quantile"] < math.inf
    # a network of any lattice but the 2021 surrogate answers other lattices of its family
    other = generate(root / "l32.h5", 8, Problem(**{**FAMILY.to_attrs(), "lattice": 32}), seed=3, progress=False)
    assert calibrate(pretrained_dir(NAME), alpha=0.25, device="cpu", data=other, out=root / "l32.json")["n_calibration"] == 4


def test_the_estimate_is_the_max_error_where_d_is_constant(shipped):
    # with constant D the spectral preconditioner is the exact inverse: the estimate is the error
    _, data, _, _ = shipped
    with load(data) as samples:
        prediction, truth = answers_of(samples)
        images = np.asarray(samples.inputs)
    estimate = estimated_max_errors(prediction[:4], images[:4], FAMILY, iterations=20, preconditioner="spectral")
    np.testing.assert_allclose(estimate, np.abs(prediction[:4] - truth[:4]).max(axis=(1, 2)), rtol=1e-3)
    assert estimated_max_errors(truth[:4], images[:4], FAMILY, iterations=20, preconditioner="spectral").max() < 1e-5


def test_the_report_at_each_max_error_by_hand():
    bound = np.array([0.04, 0.08, 0.15, 0.6])
    true = np.array([0.01, 0.12, 0.05, 0.2])
    rows = _served_report(bound, true, ms_answered=2.0, ms_exact=10.0)
    assert [row["max_error"] for row in rows] == list(EPSILONS)
    first, second, third = rows[:3]
    assert (first["served"], first["violations"], first["violation_rate_all"]) == (0.25, 0, 0.0)
    assert first["violation_rate_served"] == 0.0 and first["ms_per_answer"] == pytest.approx(2.0 + 0.75 * 10.0)
    # at 0.1: the samples of bound 0.04 and 0.08 are served, and the second's error 0.12 is above 0.1
    assert (second["served"], second["violations"], second["violation_rate_all"]) == (0.5, 1, 0.25)
    assert second["violation_rate_served"] == 0.5 and second["ms_exact_all"] == 10.0
    assert (third["served"], third["violations"]) == (0.75, 0)
    # a bound equal to the max error is served; an error equal to it is no violation
    tie = _served_report(np.array([0.05, 0.3]), np.array([0.05, 0.3]), 0.0, 1.0)
    assert (tie[0]["served"], tie[0]["violations"]) == (0.5, 0) and (tie[3]["served"], tie[3]["violations"]) == (1.0, 0)
    nothing = _served_report(np.full(3, 9.0), np.zeros(3), 1.0, 1.0)[0]
    assert nothing["served"] == 0.0 and nothing["violation_rate_served"] is None  # n/a: nothing served
    assert nothing["ms_per_answer"] == 2.0


def test_the_conformal_rank_at_its_edges():
    assert conformal_quantile([3.0], 0.5) == 3.0  # rank ceil(2 * 0.5) = 1 of 1
    assert conformal_quantile([2.0, 1.0], 0.4) == 2.0  # rank ceil(3 * 0.6) = 2
    assert conformal_quantile([2.0, 1.0], 0.7) == 1.0  # rank ceil(0.9) = 1: the smallest
    assert conformal_quantile([1.0] * 9, 0.1) == 1.0  # rank 9 of 9
    assert conformal_quantile([1.0] * 8, 0.1) == math.inf  # rank 9 of 8
    for alpha in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match=r"alpha must be in \(0, 1\), got"):
            conformal_quantile([1.0, 2.0], alpha)


def test_calibrate_refuses_what_it_cannot_do_before_any_work(shipped, tmp_path):
    root, data, _, _ = shipped
    model = pretrained_dir(NAME)
    for alpha in (0.0, 1.0):
        with pytest.raises(ConfigError, match="alpha must be in"):
            calibrate(model, alpha=alpha, device="cpu", data=data, out=tmp_path / "c.json")
    with pytest.raises(ConfigError, match="preconditioner"):
        calibrate(model, device="cpu", data=data, out=tmp_path / "c.json", preconditioner="jacobi-x")
    with pytest.raises(ConfigError, match=f"directory {tmp_path / 'no'} does not exist"):
        calibrate(model, device="cpu", data=data, out=tmp_path / "no" / "c.json")
    with pytest.raises(ConfigError, match=whole(f"12 calibration samples (half of 24 held out in {data}) cannot calibrate "
                                                "alpha 0.05 (it needs at least 19); use a larger alpha, or --data with "
                                                "at least 38 fresh samples")):
        calibrate(model, alpha=0.05, device="cpu", data=data, out=tmp_path / "c.json")
    # exactly as many as alpha needs: 4 calibration samples for alpha 0.2 (ceil(1 / 0.2) - 1), one fewer refused
    eight = generate(tmp_path / "eight.h5", 8, FAMILY, seed=13, progress=False)
    assert calibrate(model, alpha=0.2, device="cpu", data=eight, out=tmp_path / "c.json")["n_calibration"] == 4
    with pytest.raises(ConfigError, match="it needs at least 5"):
        calibrate(model, alpha=0.19, device="cpu", data=eight, out=tmp_path / "c.json")
    assert not list(root.glob("*.tmp*"))


def test_held_out_samples_must_be_labelled_of_the_models_equation_and_unseen(shipped, tmp_path):
    _, data, _, _ = shipped
    model = pretrained_dir(NAME)
    with pytest.raises(ConfigError, match=whole("a shipped model keeps no data: calibrate it on a data file of its family "
                                                "with --data FILE")):
        calibrate(model, device="cpu", out=tmp_path / "c.json")
    np.save(tmp_path / "images.npy", np.zeros((4, 64, 64)))
    with pytest.raises(ConfigError, match=whole(f"{tmp_path / 'images.npy'}: calibration needs labels: give a labelled "
                                                "pydiff data file (pydiff generate)")):
        calibrate(model, device="cpu", data=tmp_path / "images.npy", out=tmp_path / "c.json")
    other = generate(tmp_path / "neumann.h5", 8, Problem(**{**FAMILY.to_attrs(), "boundary": "neumann", "gamma": 0.01}),
                     seed=1, progress=False)
    with pytest.raises(ConfigError, match=whole(f"{other} poses another equation than the model was trained on: gamma "
                                                "0.01 (expected 0.0025), boundary 'neumann' (expected 'dirichlet')")):
        calibrate(model, device="cpu", data=other, out=tmp_path / "c.json")
    # the 2021 surrogate reads 100 x 100 images only
    small = generate(tmp_path / "small.h5", 8, Problem(lattice=64, n_sources=2), seed=1, progress=False)
    with pytest.raises(ConfigError, match=whole(f"{small}: lattice 64, but this network needs 100")):
        calibrate(pretrained_dir("quick-model9"), device="cpu", data=small, out=tmp_path / "c.json")
    # a run trained on a file: that file, or any of its problem and seed, holds its training samples
    run = tmp_path / "run"
    shutil.copytree(model, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "data": str(data)}))
    for trained_on in (data, generate(tmp_path / "same-seed.h5", 8, FAMILY, seed=11, progress=False)):
        with pytest.raises(ConfigError, match=whole(f"{trained_on} holds samples the model was trained and selected on "
                                                    "(the problem and seed 11 of its training data); generate fresh "
                                                    "ones with another --seed")):
            calibrate(run, device="cpu", data=trained_on, out=tmp_path / "c.json")
    fresh = generate(tmp_path / "fresh.h5", 8, FAMILY, seed=12, progress=False)
    assert calibrate(run, device="cpu", alpha=0.25, data=fresh, out=tmp_path / "c.json")["split"] == str(fresh)


def test_a_runs_own_held_out_split_is_the_one_that_chose_nothing(tmp_path):
    from pydiff.training.data import run_split
    from pydiff.training.checkpoint import load_model

    data = generate(tmp_path / "trained-on.h5", 80, FAMILY, seed=21, progress=False)  # 4 of each source count
    run = tmp_path / "run"
    shutil.copytree(pretrained_dir(NAME), run)
    config = json.loads((run / "config.json").read_text())
    with load(data) as samples:
        counts = np.asarray(samples.source_count)
    for select_on, split, chose_nothing in (("val", [0.5, 0.25, 0.25], "test"), ("test", [0.5, 0.25, 0.25], "val")):
        (run / "config.json").write_text(json.dumps({**config, "data": str(data), "n_samples": 80, "split": split,
                                                     "select_on": select_on}))
        result = calibrate(run, alpha=0.25, device="cpu", out=tmp_path / "c.json")
        expected = run_split(load_model(run, "best", "cpu")[1], counts)[chose_nothing]
        assert result["split"] == chose_nothing
        assert sorted(result["calibration_indices"] + result["check_indices"]) == sorted(expected.tolist())
    (run / "config.json").write_text(json.dumps({**config, "data": str(data), "n_samples": 80, "split": [0.8, 0.2, 0.0],
                                                 "select_on": "test"}))
    with pytest.raises(ConfigError, match=whole("this run has no held-out split that chose nothing (no validation split, "
                                                "and the test split picked its best epoch): calibrate it on fresh "
                                                "samples with --data FILE")):
        calibrate(run, device="cpu", out=tmp_path / "c.json")


def test_a_calibration_is_read_back_checked_and_told_how_to_remake(shipped, tmp_path):
    root, _, calibration, _ = shipped
    model = pretrained_dir(NAME)
    read = read_calibration(model, root / "c.json")
    import hashlib

    assert read == {**calibration, "path": str(root / "c.json"),
                    "sha256": hashlib.sha256((root / "c.json").read_bytes()).hexdigest()}
    assert read_calibration(model)["path"] == str(model / "calibration.json")  # the shipped one, by default
    bare = tmp_path / "bare"
    bare.mkdir()
    for file in ("config.json", "model.safetensors"):
        shutil.copy(model / file, bare / file)
    with pytest.raises(ConfigError, match=f"^{bare} has no calibration.json: make it with pydiff calibrate {bare} "):
        read_calibration(bare)
    with pytest.raises(ConfigError, match=whole(f"--pretrained {NAME} ships no calibration.json: give --calibration FILE, "
                                                f"made by pydiff calibrate --pretrained {NAME} --data FILE --out FILE "
                                                "on a data file of the family it will answer")):
        read_calibration(bare, named=f"--pretrained {NAME}")
    with pytest.raises(ConfigError, match=f"no calibration {tmp_path / 'x.json'}: make it with pydiff calibrate "
                                          f"{bare} --out {tmp_path / 'x.json'}"):
        read_calibration(bare, tmp_path / "x.json")
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(DataFileError, match="not a calibration"):
        read_calibration(model, path)
    path.write_text("[1]")
    with pytest.raises(ConfigError, match="a JSON object is expected"):
        read_calibration(model, path)
    for missing in ("problem", "model_sha256"):
        path.write_text(json.dumps({k: v for k, v in calibration.items() if k != missing}))
        with pytest.raises(ConfigError, match="made by an older pydiff"):
            read_calibration(model, path)
    path.write_text(json.dumps({k: v for k, v in calibration.items() if k != "preconditioner"}))
    assert read_calibration(model, path)["quantile"] == calibration["quantile"]  # an older file: spectral
    for edit, named in (({"method": "learned"}, "method"), ({"quantile": True}, "quantile"),
                        ({"quantile": math.inf}, "quantile"), ({"quantile": 0}, "quantile"),
                        ({"alpha": 1}, "alpha"), ({"alpha": 0.0}, "alpha"), ({"iterations": -1}, "iterations"),
                        ({"iterations": 2.0}, "iterations"), ({"preconditioner": "x"}, "preconditioner"),
                        ({"problem": {"lattice": 32}}, "problem"), ({"problem": [1]}, "problem")):
        path.write_text(json.dumps({**calibration, **edit}))
        with pytest.raises(ConfigError, match=f"its {named} is missing or impossible"):
            read_calibration(model, path)
    path.write_text(json.dumps({**calibration, "alpha": 2, "quantile": -1}))
    with pytest.raises(ConfigError, match="its quantile, alpha are missing or impossible"):
        read_calibration(model, path)
    assert read_calibration(model, root / "c.json")  # the edits were to copies
    path.write_text(json.dumps({**calibration, "iterations": 0, "quantile": 1e-9, "alpha": 0.999}))
    assert read_calibration(model, path)["iterations"] == 0  # the least values that make sense
    path.write_text(json.dumps({**calibration, "model_sha256": "0" * 64}))
    with pytest.raises(ConfigError, match=f"was made for another model than {model}: calibrate this one"):
        read_calibration(model, path)


@pytest.mark.parametrize("wrong", [0.0, -0.1, math.inf, math.nan])
def test_a_max_error_is_a_positive_finite_number(wrong):
    assert check_max_error(0.1) == 0.1
    with pytest.raises(ConfigError, match=f"--max-error must be a positive finite number, got {wrong}"):
        check_max_error(wrong)


def test_served_answers_keep_to_the_bound_and_the_rest_are_exact(shipped, tmp_path):
    root, _, calibration, _ = shipped
    new = generate(tmp_path / "new.h5", 6, FAMILY, seed=12, progress=False)
    with load(new) as samples:
        prediction, truth = answers_of(samples)
        images = np.asarray(samples.inputs)
    with make_solver("spectral", FAMILY) as solver:
        exact, _ = normalise(solver(images))
    conformal = calibration["quantile"] * estimated_max_errors(prediction, images, FAMILY, None,
                                                               calibration["iterations"], "cpu", None,
                                                               calibration["preconditioner"])
    bound = np.minimum(conformal, guaranteed_max_errors(prediction, images, FAMILY))
    eps = float(np.sort(bound)[2])  # a bound equal to the max error is served: three of six
    answer = serve(prediction.astype(np.float64), images, FAMILY, None, eps, calibration)
    served = answer["served"]
    assert served.dtype == bool and served.sum() == 3
    np.testing.assert_array_equal(served, bound <= eps)
    np.testing.assert_allclose(answer["bound"], bound, rtol=1e-5)
    # float32 answers and bounds, as the answers file stores them; the exact solves here do not iterate
    assert answer["prediction"].dtype == np.float32 and answer["prediction"].shape == (6, 64, 64)
    assert answer["bound"].dtype == answer["refined_bound"].dtype == np.float32 and answer["cg_iterations"] == 0
    np.testing.assert_array_equal(answer["prediction"][served], prediction[served])
    np.testing.assert_allclose(answer["prediction"][~served], exact[~served], atol=1e-6)
    assert not answer["refined"].any() and np.isinf(answer["refined_bound"]).all()
    # refined in a step or two where the bound is too loose for the network's own answer
    refined = serve(prediction, images, FAMILY, None, 1e-3, calibration, refine=2)
    assert refined["refined"].any() and not (refined["refined"] & refined["served"]).any()
    kept = refined["refined"]
    assert (refined["refined_bound"][kept] <= 1e-3).all() and np.isinf(refined["refined_bound"][~kept]).all()
    errors = np.abs(refined["prediction"] - exact).reshape(6, -1).max(axis=1)
    assert (errors[kept] <= refined["refined_bound"][kept] * (1 + 1e-4)).all()
    # everything served: the answers are the predictions; an older calibration (no preconditioner) is spectral
    older = {k: v for k, v in calibration.items() if k != "preconditioner"}
    everything = serve(prediction, images, FAMILY, None, 10.0, older)
    assert everything["served"].all() and everything["cg_iterations"] == 0
    np.testing.assert_array_equal(everything["prediction"], prediction)
    np.testing.assert_allclose(everything["bound"], bound, rtol=1e-5)
    for refine in (-1, 1.5):
        with pytest.raises(ConfigError, match=f"--refine must be a non-negative number of steps, got {refine}"):
            serve(prediction, images, FAMILY, None, eps, calibration, refine=refine)
    with pytest.raises(ConfigError, match="--max-error"):
        serve(prediction, images, FAMILY, None, 0.0, calibration)
    # the first guess of an exact solve is the prediction unnormalised by the source factor it fits
    with make_solver("spectral", FAMILY) as solver:
        fields = solver(images)
    guess = warm_start(exact, images, FAMILY)
    assert guess.dtype == np.float64 and guess.shape == (6, 64, 64)
    np.testing.assert_allclose(guess, fields, rtol=1e-4, atol=1e-4 * fields.max())
    assert warm_start(-exact, images, FAMILY) is None  # a negative source factor: no guess
    assert warm_start(np.zeros_like(exact), images, FAMILY) is None  # nor a zero one


def test_the_network_pays_where_what_it_serves_saves_more_than_it_costs_by_hand():
    from pydiff.evaluation.bound import network_pays

    test = {"ms_network": 0.25, "ms_estimator": 0.5, "ms_exact": 2.0,
            "by_max_error": [{"max_error": 0.1, "served": 0.25}, {"max_error": 0.2, "served": 0.5}]}
    # at 0.1: a quarter served saves 0.5 ms per sample against 0.75 spent; at 0.2 half saves 1 ms
    assert network_pays({"test": test}, 0.1) == (False, "on the calibration's check half the network served 25 % at "
                                                        "max error 0.1, saving 0.5 ms per sample against 0.75 ms for the "
                                                        "network and its estimate")
    assert network_pays({"test": test}, 0.15)[0] and network_pays({"test": test}, 0.2)[0]
    assert not network_pays({"test": {**test, "ms_exact": 1.5}}, 0.2)[0]  # saves 0.75 against 0.75: a tie is no gain
    assert not network_pays({"test": {**test, "ms_exact": 0.0}}, 0.2)[0]  # an instant solver is never beaten
    for unknown in ({**test, "ms_exact": None}, {**test, "ms_network": -1.0}, {**test, "by_max_error": []}):
        assert network_pays({"test": unknown}, 0.1) == (True, "the calibration does not say")
    assert network_pays({"test": test}, 0.3) == (True, "the calibration does not say")  # above the report


def test_a_good_first_guess_saves_cg_iterations_where_d_varies():
    from pydiff.evaluation.bound import iterations_saved
    from pydiff.problem import sample_sources, source_images
    from pydiff.problem.diffusivity import diffusivity_maps

    problem = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      target="stationary")
    images = source_images(problem, sample_sources(problem, 3, seed=4))
    maps = diffusivity_maps(problem, np.arange(3), 4)
    with make_solver("direct", problem) as direct:
        exact, _ = normalise(direct(images, maps))
    counts = iterations_saved(exact, images, problem, maps)
    assert set(counts) == {"cg_iterations_cold", "cg_iterations_warm"}
    assert counts["cg_iterations_cold"] > 10 and counts["cg_iterations_warm"] < counts["cg_iterations_cold"] / 2
    assert counts["cg_iterations_warm"] is not None


# --- Families whose D varies and whose walls are mixed: each sample's map and walls -------------
# An untrained network of each (its weights as initialised, saved as a shipped model is): its
# bounds are loose, which is all these tests need, and it costs no training.

VARIED = dict(lattice=16, radius=2, n_sources=2, min_sources=1, setup="paper2024", diffusivity="inclusions")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    import torch

    from pydiff.nn.build import build_model
    from pydiff.training.config import problem_channels

    root = tmp_path_factory.mktemp("untrained")
    runs = {}
    for boundary in ("dirichlet", "mixed"):
        problem = Problem(**VARIED, boundary=boundary)
        run = root / boundary
        run.mkdir()
        config = json.loads((pretrained_dir(NAME) / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "in_channels": problem_channels(problem),
                                                     "width": 1 / 32, "data": ""}))
        torch.manual_seed(0)
        checkpoint.save_model(build_model(checkpoint.read_config(run)).state_dict(), run, problem=problem)
        data = generate(root / f"{boundary}.h5", 16, problem, seed=3, progress=False)
        # the mixed one with an estimator other than the default (auto: 0 steps of a V-cycle where D varies)
        estimator = {"preconditioner": "spectral", "iterations": 2} if boundary == "mixed" else {}
        runs[boundary] = problem, run, data, calibrate(run, alpha=0.25, device="cpu", data=data, out=run / "c.json",
                                                       **estimator)
    assert runs["mixed"][3]["preconditioner"] == "spectral" and runs["mixed"][3]["iterations"] == 2
    assert runs["dirichlet"][3]["preconditioner"] == "multigrid" and runs["dirichlet"][3]["iterations"] == 0
    return runs


def predictions(run, samples):
    model, config = checkpoint.load_model(run, "best", "cpu")
    return predict(model, network_inputs(samples, config.in_channels), 100, "cpu", config.amp)[:, 0]


@pytest.mark.parametrize("boundary", ["dirichlet", "mixed"])
def test_each_samples_map_and_walls_make_its_score_and_its_exact_time(untrained, boundary):
    from pydiff.evaluation.bound import iterations_saved
    from pydiff.solvers.timing import exact_timing

    problem, run, data, calibration = untrained[boundary]
    with load(data) as samples:
        prediction, truth = predictions(run, samples), np.asarray(samples.fields)
        images, maps, walls = np.asarray(samples.inputs), samples.diffusivity, samples.walls
        assert maps is not None and (walls is not None) == (boundary == "mixed")
    fit, check = calibration["calibration_indices"], calibration["check_indices"]
    scores = estimated_max_errors(prediction, images, problem, maps, calibration["iterations"], "cpu", walls,
                                  calibration["preconditioner"])
    true = np.abs(prediction - truth).reshape(len(truth), -1).max(axis=1)
    # the estimate of each sample is its own, with its map and its walls (constant D or one wall differ)
    alone = [estimated_max_errors(prediction[k:k + 1], images[k:k + 1], problem, maps[k:k + 1],
                                  calibration["iterations"], "cpu", None if walls is None else walls[k:k + 1],
                                  calibration["preconditioner"])[0] for k in range(3)]
    np.testing.assert_allclose(scores[:3], alone, rtol=1e-6)
    if boundary == "dirichlet":  # the default estimator where D varies: auto, one V-cycle and no CG step
        np.testing.assert_array_equal(estimated_max_errors(prediction, images, problem, maps), scores)
    ratios = np.sort(true[fit] / np.maximum(scores[fit], 1e-12))
    assert calibration["quantile"] == pytest.approx(ratios[math.ceil(9 * 0.75) - 1], rel=1e-5)
    report = calibration["test"]
    assert report["coverage"] == pytest.approx(np.mean(true[check] <= calibration["quantile"] * scores[check]))
    assert report["exact_solver"] == exact_timing(problem, images[check], maps[check],
                                                  walls=None if walls is None else walls[check])[0]
    if boundary == "dirichlet":  # torch-cg's iterations from the network's guess, where torch-cg solves the problem
        saved = iterations_saved(prediction[check], images[check], problem, maps[check])
        assert {k: report[k] for k in saved} == saved and saved["cg_iterations_cold"] > 0
    else:
        assert "cg_iterations_cold" not in report


def test_served_refined_and_solved_answers_with_each_samples_map_and_walls(untrained, tmp_path):
    from pydiff.evaluation.aposteriori import implied_fields, inverse_row_sums

    problem, run, _, calibration = untrained["mixed"]
    with load(generate(tmp_path / "new.h5", 6, problem, seed=4, progress=False)) as samples:
        prediction, exact = predictions(run, samples), np.asarray(samples.fields)
        images, maps, walls = np.asarray(samples.inputs), samples.diffusivity, samples.walls
    assert len(set(walls.tolist())) > 1  # the six samples do not all have the same walls
    conformal = calibration["quantile"] * estimated_max_errors(prediction, images, problem, maps,
                                                               calibration["iterations"], "cpu", walls,
                                                               calibration["preconditioner"])
    bound = np.minimum(conformal, guaranteed_max_errors(prediction, images, problem, maps, walls))
    answer = serve(prediction, images, problem, maps, 1e-12, calibration, walls=walls)
    np.testing.assert_allclose(answer["bound"], bound, rtol=1e-5)
    assert not answer["served"].any()
    # a calibration that trusts the estimate little leaves the guaranteed bound, of each map and walls
    near = (exact + 1e-6 * np.random.default_rng(0).random(exact.shape)).astype(np.float32)  # a good network's
    loose = serve(near, images, problem, maps, 1e-12, {**calibration, "quantile": 1e6}, walls=walls)
    guaranteed = guaranteed_max_errors(near, images, problem, maps, walls)
    assert np.isfinite(guaranteed).all()
    np.testing.assert_allclose(loose["bound"], guaranteed, rtol=1e-5)
    np.testing.assert_allclose(answer["prediction"], exact, atol=1e-5)  # every one solved, with its own walls
    # a step or two of correction brings each within a bound that needs no calibration
    refined = serve(prediction, images, problem, maps, 0.05, calibration, walls=walls, refine=2)
    kept = refined["refined"]
    assert kept.any()
    errors = np.abs(refined["prediction"] - exact).reshape(6, -1).max(axis=1)
    assert (errors[kept] <= refined["refined_bound"][kept] * (1 + 1e-4) + 1e-6).all()
    rows = inverse_row_sums(problem, maps, 6, "cpu", walls)
    np.testing.assert_allclose(refined["refined_bound"][kept], guaranteed_max_errors(
        refined["prediction"][kept], images[kept], problem, maps[kept], walls[kept], "cpu", rows[kept]), rtol=1e-4)
    np.testing.assert_allclose(refined["prediction"][~kept], exact[~kept], atol=1e-5)
    # the refined answers are those two correction steps (V-cycle preconditioned where D varies)
    steps = implied_fields(prediction[kept], images[kept], problem, maps[kept], 2, walls=walls[kept],
                           preconditioner="multigrid")
    np.testing.assert_allclose(refined["prediction"][kept], steps, rtol=0, atol=1e-6)
    # no refinement good enough: nothing refined, everything solved
    none = serve(prediction, images, problem, maps, 1e-12, calibration, walls=walls, refine=1)
    assert not none["refined"].any()
    np.testing.assert_allclose(none["prediction"], exact, atol=1e-5)


def test_a_runs_own_split_brings_each_samples_map_and_walls(untrained, tmp_path):
    problem, run, _, _ = untrained["mixed"]
    data = generate(tmp_path / "trained-on.h5", 16, problem, seed=5, progress=False)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "data": str(data), "n_samples": 16,
                                                  "split": [0.5, 0.25, 0.25], "select_on": "val"}))
    result = calibrate(copy, alpha=0.5, device="cpu", out=tmp_path / "c.json")
    assert result["split"] == "test" and result["n_calibration"] + result["test"]["n"] == 4


def test_a_network_that_reads_the_map_and_walls_answers_other_maps_and_walls(untrained, tmp_path):
    # the map and the walls are its inputs: a file of other walls or another D is its equation still
    _, run, _, _ = untrained["mixed"]
    for changes in ({"boundary": "dirichlet"}, {"boundary": "periodic", "diffusivity": "lognormal"}):
        other = generate(tmp_path / f"{changes['boundary']}.h5", 8, Problem(**{**VARIED, **changes}), seed=6,
                         progress=False)
        assert calibrate(run, alpha=0.25, device="cpu", data=other, out=tmp_path / "c.json")["n_calibration"] == 4
    # but not another decay
    other = generate(tmp_path / "gamma.h5", 8, Problem(**{**VARIED, "boundary": "mixed", "gamma": 0.01}), seed=6,
                     progress=False)
    with pytest.raises(ConfigError, match="another equation than the model was trained on: gamma 0.01"):
        calibrate(run, alpha=0.25, device="cpu", data=other, out=tmp_path / "c.json")


def test_the_estimate_of_a_varied_family_uses_each_samples_map():
    from pydiff.problem import sample_sources, source_images
    from pydiff.problem.diffusivity import diffusivity_maps

    problem = Problem(**VARIED)
    images = source_images(problem, sample_sources(problem, 3, seed=8))
    maps = diffusivity_maps(problem, np.arange(3), 8)
    with make_solver("direct", problem) as direct:
        exact, _ = normalise(direct(images, maps))
    # an exact field of the maps has no error; with constant D it would seem far off
    assert estimated_max_errors(exact, images, problem, maps, 20, preconditioner="spectral").max() < 1e-4
    assert estimated_max_errors(exact, images, problem, np.ones_like(maps), 20, preconditioner="spectral").min() > 1e-3
