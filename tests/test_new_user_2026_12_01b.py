"""What a new user found trying seeds, unwritable outputs, interruptions, the study, run
directories moved between working directories, pinn, trust, table and generate (2026-12-01, the
second round): each a test that failed before its fix."""

import errno
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.problem import Problem

from .cli import assert_clean_failure, ctrl_c_in_epoch, pydiff

HUGE = "99999999999999999999"  # past what numpy's, torch's and HDF5's integers hold
SMALL = dict(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024")
TINY_TRAINING = ("--preset", "quick2024", "--width", 0.03125, "--epochs", 1, "--batch-size", 16, "--n-samples", 250)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project: data/d.h5 (250 samples, 32^2) and the run `run`, trained from the project
    directory with the data named relative to it, as a user types it."""
    root = tmp_path_factory.mktemp("project")
    (root / "data").mkdir()
    generate(root / "data" / "d.h5", 250, Problem(**SMALL), seed=0, progress=False)
    result = pydiff("train", "--data", "data/d.h5", "--out", "run", *TINY_TRAINING, cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def nothing_in(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


# --- 1. seeds out of range: one line, before any file or directory is made ------------------------


def test_one_seed_check_takes_what_numpy_torch_and_hdf5_take():
    import torch

    from pydiff.seeds import SEED_LIMIT, check_seed

    for seed in (0, 1, SEED_LIMIT - 1, np.int64(7)):
        assert check_seed(seed) == seed
        np.random.default_rng(check_seed(seed))
        torch.Generator().manual_seed(check_seed(seed))
    for bad in (-1, SEED_LIMIT, int(HUGE), 1.5, True, "3", None):
        with pytest.raises(ConfigError, match="--seed must be an integer from 0 to 2\\*\\*63 - 1"):
            check_seed(bad)
    with pytest.raises(ConfigError, match="--data-seed must"):
        check_seed(-2, "--data-seed")


@pytest.mark.parametrize("seed", ["-5", HUGE])
def test_generate_refuses_a_seed_out_of_range_and_leaves_no_file(tmp_path, seed):
    # Before: -5 died in numpy, the huge one in h5py, leaving gbig.h5.partial
    out = tmp_path / "g.h5"
    assert_clean_failure(pydiff("generate", "--n", 4, "--seed", seed, "--out", out, "--quiet"), 2,
                         f"--seed must be an integer from 0 to 2**63 - 1, got {seed}")
    assert list(tmp_path.iterdir()) == []


def test_crosscheck_and_pinn_refuse_a_negative_seed(tmp_path):
    assert_clean_failure(pydiff("crosscheck", "--n", 2, "--seed", -1, "--lattice", 16, "--radius", 2), 2, "--seed must")
    np.save(tmp_path / "img.npy", np.pad(np.ones((2, 2)), 5))
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5", "--seed", -1,
                                "--iterations", 1, "--points", 8), 2, "--seed must")
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.parametrize("seed", ["-1", HUGE])
def test_train_refuses_a_seed_out_of_range_before_making_the_run(project, tmp_path, seed):
    out = tmp_path / "r"
    assert_clean_failure(pydiff("train", "--data", project / "data" / "d.h5", "--out", out, *TINY_TRAINING,
                                "--seed", seed), 2, f"seed must be an integer from 0 to 2**63 - 1, got {seed}")
    assert not out.exists()


def test_reproduce_checks_every_seed_before_any_work(tmp_path):
    # Before: seed 0 ran to the end, then the huge one left a run directory holding only config.json
    result = pydiff("reproduce", "--preset", "smoke", "--model", 9, "--seeds", f"0,{HUGE}", "--runs", tmp_path / "runs",
                    "--data-dir", tmp_path / "data")
    assert_clean_failure(result, 2, f"--seeds must be integers from 0 to 2**63 - 1, got {HUGE}")
    assert nothing_in(tmp_path / "runs") and nothing_in(tmp_path / "data")


@pytest.mark.parametrize("option", [["--seeds", f"0,{HUGE}"], ["--seeds", "-1"], ["--data-seed", -1]])
def test_study_checks_its_seeds_before_any_work(tmp_path, option):
    result = pydiff("study", "train-size", "--runs", tmp_path / "s", "--data-dir", tmp_path / "data", *option,
                    "--n-samples", 160, "--epochs", 1, "--width", 0.03125, "--fractions", 1)
    assert_clean_failure(result, 2, "must be")
    assert not (tmp_path / "s").exists() and nothing_in(tmp_path / "data")


def test_table_refuses_a_bootstrap_seed_out_of_range_before_printing(tmp_path):
    # Before: half the table was printed, then numpy's traceback
    for model in (1, 2, 9):
        path = tmp_path / "quick" / f"model{model:02d}-seed0"
        path.mkdir(parents=True)
        (path / "metrics.json").write_text(json.dumps({"model": model, "preset": "quick", "test": {
            "mean_res": 1e-3 * model, "p99_res": 0.01, "max_res": 0.5, "n_samples": 10}}))
    for seed in ("-1", HUGE):
        result = pydiff("table", tmp_path, "--bootstrap-seed", seed)
        assert_clean_failure(result, 2, "--bootstrap-seed must")
        assert result.stdout == ""
    assert pydiff("table", tmp_path).returncode == 0


# --- 2. outputs that cannot be written: refused before the work, in one line ---------------------

UNWRITABLE = [d for d in ("/proc", "/sys") if Path(d).is_dir()]


@pytest.mark.parametrize("directory", UNWRITABLE)
def test_generate_refuses_an_unwritable_output_in_one_line(directory):
    assert_clean_failure(pydiff("generate", "--n", 4, "--out", f"{directory}/g.h5", "--quiet"), 2,
                         f"cannot write {directory}/g.h5")


@pytest.mark.parametrize("directory", UNWRITABLE)
def test_predict_and_pinn_refuse_an_unwritable_output_before_the_work(project, tmp_path, directory, monkeypatch):
    from pydiff.training import checkpoint

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(checkpoint, "load_model", no_work)
    assert_clean_failure(pydiff("predict", project / "run", "--inputs", project / "data" / "d.h5", "--out",
                                f"{directory}/x.h5"), 2, f"cannot write {directory}/x.h5")
    np.save(tmp_path / "img.npy", np.pad(np.ones((2, 2)), 5))
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "img.npy", "--out", f"{directory}/x.h5",
                                "--iterations", 1, "--points", 8), 2, f"cannot write {directory}/x.h5")


def test_an_os_error_naming_a_file_is_one_line(tmp_path, monkeypatch):
    # what no early check can foresee (a full disk, a directory made read-only meanwhile)
    from pydiff.datasets import writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "g.h5.partial"))

    monkeypatch.setattr(writer, "generate", full)
    assert_clean_failure(pydiff("generate", "--n", 4, "--out", tmp_path / "g.h5"), 1,
                         f"{tmp_path / 'g.h5.partial'}: No space left on device")


# --- 3. an interruption names what continues the command ----------------------------------------


@pytest.mark.parametrize("command", [
    ("reproduce", "--preset", "smoke", "--model", 9, "--epochs", 2, "--width", 0.03125),
    ("study", "train-size", "--runs", "s", "--fractions", 1, "--seeds", 0, "--n-samples", 160, "--epochs", 2,
     "--width", 0.03125, "--batch-size", 8),
])
def test_an_interrupted_pipeline_says_to_run_the_same_command_again(tmp_path, monkeypatch, command):
    # Before: "continue with --resume", an option neither command has
    from pydiff.evaluation import report

    ctrl_c_in_epoch(monkeypatch, 1)
    monkeypatch.setattr(report, "write_figures", lambda *args: [])
    result = pydiff(*command, cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pydiff: error: stopped by SIGINT after epoch"), last
    assert "--resume" not in last and last.endswith("run the same command again to continue"), last


# --- 4. study train-size: the presets it is for, and a help that names only its own options -----


@pytest.mark.parametrize("preset", ["quick", "smoke", "darcy85"])
def test_study_refuses_a_preset_it_is_not_for(tmp_path, preset):
    # Before: --preset quick trained the 2021 surrogate, a network --network does not offer
    small = dict(fractions=(1.0,), seeds=(0,), n_samples=40, epochs=1, width=1 / 32)  # little work, had it run
    result = pydiff("study", "train-size", "--preset", preset, "--runs", tmp_path / "s", "--data-dir", tmp_path / "data",
                    "--fractions", 1, "--seeds", 0, "--n-samples", 40, "--epochs", 1, "--width", 1 / 32)
    assert_clean_failure(result, 2, "--preset")
    assert not (tmp_path / "s").exists() and nothing_in(tmp_path / "data")
    from pydiff.pipelines.study import train_size_study

    with pytest.raises(ConfigError, match="2024 study"):
        train_size_study(preset, tmp_path / "s", data_dir=tmp_path / "data", progress=False, **small)
    assert not (tmp_path / "s").exists()


def test_study_help_names_only_what_the_study_has():
    text = pydiff("study", "train-size", "--help").stdout
    for stray in ("surrogate", "fno", "--model", "Table 2", "darcy85", "smoke", "quick:", "paper:"):
        assert stray not in text, stray
    for preset in ("quick2024", "paper2024", "quick-varied", "paper-varied"):
        assert preset in text


# --- 5. a run directory works from any working directory ----------------------------------------


def test_a_run_stores_its_data_path_absolute(project):
    stored = json.loads((project / "run" / "config.json").read_text())["data"]
    assert stored == str(project / "data" / "d.h5")


def test_a_run_is_evaluated_and_calibrated_from_another_directory(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = pydiff("evaluate", project / "run", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    result = pydiff("calibrate", project / "run", "--out", tmp_path / "calibration.json", "--alpha", 0.2,
                    cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def test_an_older_run_with_a_relative_data_path_is_found_from_another_directory(project, tmp_path):
    import shutil

    old = project / "old-runs" / "old"
    shutil.copytree(project / "run", old)
    config = json.loads((old / "config.json").read_text())
    config["data"] = "data/d.h5"  # as pydiff wrote it before: relative to where training ran (project)
    (old / "config.json").write_text(json.dumps(config))
    from pydiff.training.checkpoint import read_config

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = os.getcwd()
    os.chdir(elsewhere)
    try:
        assert Path(read_config(old).data) == project / "data" / "d.h5"
        assert Path(read_config(os.path.relpath(old)).data).resolve() == project / "data" / "d.h5"
    finally:
        os.chdir(before)
    result = pydiff("evaluate", old, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    os.chdir(project)  # from where it was made, as before: the relative path as it stands
    try:
        assert read_config(old).data == "data/d.h5"
    finally:
        os.chdir(before)


def test_a_run_continued_with_the_relative_path_it_was_made_with_is_the_same_run(project):
    # the stored absolute path and the relative one given again name the same file
    from pydiff.training.config import TrainConfig, differences

    stored = TrainConfig(data=str(project / "data" / "d.h5"))
    before = os.getcwd()
    os.chdir(project)
    try:
        assert differences(stored, TrainConfig(data="data/d.h5")) == {}
        assert "data" in differences(stored, TrainConfig(data="data/other.h5"))
    finally:
        os.chdir(before)


# --- 6. pinn: the images predict takes, and only the stationary equation -------------------------


def test_pinn_says_a_negative_image_must_be_non_negative(tmp_path):
    # Before: "the source image is zero everywhere"
    image = np.zeros((12, 12))
    image[5, 5], image[2, 2] = 1.0, -1.0
    np.save(tmp_path / "neg.npy", image)
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "neg.npy", "--out", tmp_path / "f.h5"), 2,
                         "source images must be non-negative")


def test_pinn_refuses_a_file_of_fields_at_t_max(tmp_path):
    data = generate(tmp_path / "t.h5", 1, Problem(lattice=12, radius=2, n_sources=1), progress=False)
    with h5py.File(data) as f:
        assert f.attrs["target"] == "t_max"
    assert_clean_failure(pydiff("pinn", "--inputs", data, "--out", tmp_path / "f.h5", "--iterations", 1, "--points", 8),
                         2, "t_max")
    assert not (tmp_path / "f.h5").exists()
    stationary = generate(tmp_path / "s.h5", 1, Problem(lattice=12, radius=2, n_sources=1, target="stationary"),
                          progress=False)
    result = pydiff("pinn", "--inputs", stationary, "--out", tmp_path / "f.h5", "--iterations", 1, "--points", 8)
    assert result.returncode == 0, result.stderr


# --- 7. trust's options, table's empty answers, generate's auto backend --------------------------


def test_trust_checks_samples_only_for_mc_dropout(project):
    # Before: --samples 0 was refused though mc-dropout was not asked for
    # from the project: the run's data were named from there (before the fix of a run's data path)
    result = pydiff("trust", project / "run", "--method", "physics", "--samples", 0, "--device", "cpu", cwd=project)
    assert result.returncode == 0, result.stderr
    assert_clean_failure(pydiff("trust", project / "run", "--method", "mc-dropout", "--samples", 0, cwd=project), 2,
                         "--samples must be at least 2")


def test_trust_refuses_zero_inverse_epochs(project):
    # Before: 0 trained 5 epochs
    assert_clean_failure(pydiff("trust", project / "run", "--method", "inverse", "--inverse-epochs", 0, cwd=project),
                         2, "--inverse-epochs")
    assert not (project / "run" / "inverse").exists()
    from pydiff.pipelines.trust import trust

    with pytest.raises(ConfigError, match="inverse"):
        trust(project / "run", ("inverse",), inverse_epochs=0, device="cpu", progress=False)
    assert not (project / "run" / "inverse").exists()


def test_table_says_when_no_run_is_found(tmp_path):
    # Before: an empty table with status 0
    (tmp_path / "quick" / "model09-seed0").mkdir(parents=True)
    (tmp_path / "quick" / "model09-seed0" / "metrics.json").write_text(json.dumps(
        {"model": 9, "preset": "quick", "test": {"mean_res": 1e-3, "p99_res": 0.01, "max_res": 0.5, "n_samples": 9}}))
    result = pydiff("table", tmp_path, "--preset", "foo")
    assert_clean_failure(result, 2, "no evaluated run of preset foo")
    assert result.stdout == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = pydiff("table", empty)
    assert_clean_failure(result, 2, "no evaluated run")
    assert result.stdout == ""


def test_generate_auto_picks_a_backend_that_solves_t_max_where_d_varies(tmp_path):
    # Before: auto picked direct, then refused it
    out = tmp_path / "i.h5"
    result = pydiff("generate", "--n", 2, "--lattice", 16, "--radius", 2, "--diffusivity", "inclusions", "--target",
                    "t_max", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "backend timestep" in result.stdout
    from pydiff.solvers import resolve_backend, solver_class

    for problem in (Problem(lattice=16, radius=2, diffusivity="inclusions", target="t_max"),
                    Problem(lattice=128, radius=2, diffusivity="lognormal", target="t_max"),
                    Problem(lattice=16, radius=2, diffusivity="inclusions", boundary="neumann", target="t_max")):
        assert solver_class(resolve_backend("auto", problem)).unsupported(problem) is None
