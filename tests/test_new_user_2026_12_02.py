"""What a new user found trying the cpu-hour preset, log.csv's val_mean_residual, channels-last
training, benchmarks/cpu_hour.py and benchmarks/device-check.sh (2026-12-02): each a test that
fails before its fix."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pydiff.datasets.writer import generate
from pydiff.problem import Problem

from .cli import assert_clean_failure, ctrl_c_in_epoch, pydiff

ROOT = Path(__file__).resolve().parents[1]
CPU_HOUR = ROOT / "benchmarks" / "cpu_hour.py"
TINY_CPU_HOUR = ("--preset", "cpu-hour", "--model", 9, "--n-samples", 40, "--width", 0.03125)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """40 samples of the 2021 problem (100^2, two sources): what the cpu-hour preset trains on."""
    return generate(tmp_path_factory.mktemp("data") / "d.h5", 40, Problem(), seed=0, progress=False)


def cpu_hour_module():
    """benchmarks/cpu_hour.py, imported."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_hour", CPU_HOUR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finished_lever(runs: Path, options: dict) -> Path:
    """A finished 5-epoch run of the lever of ``options`` as cpu_hour.py names it: metrics.json
    (test mean 4.5e-3 in 10 minutes) and a one-epoch log.csv."""
    run = cpu_hour_module().lever_dir(runs, dict(options, epochs=5))
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "config": {"epochs": 5}, "training": {"seconds": 600.0, "best_epoch": 4},
        "test": {"mean_res": 4.5e-3, "p99_res": 5e-2, "max_res": 0.8}}))
    (run / "log.csv").write_text("epoch,train_loss,val_loss,val_mean_residual,lr,seconds,rolled_back,restored_to,"
                                 "best,bytes_written\n0,0.1,0.1,0.01,0.001,120,False,,True,0\n")
    return run


def read_log(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def cpu_hour(*args, cwd=None):
    return subprocess.run([sys.executable, str(CPU_HOUR), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


# --- 1. an interruption in the first epoch names a checkpoint that does not exist ----------------


def test_an_interruption_in_the_first_epoch_names_no_missing_checkpoint(data, tmp_path, monkeypatch):
    # Before: "stopped by SIGINT after epoch -1; checkpoint in RUN/last.pt; continue with --resume",
    # though no epoch had ended and no last.pt was written (RUN held config.json alone).  A
    # cpu-hour epoch takes two minutes on the CPU it is for: a Ctrl-C in them is likely.
    ctrl_c_in_epoch(monkeypatch, 0)
    out = tmp_path / "run"
    result = pydiff("train", "--data", data, "--out", out, *TINY_CPU_HOUR, "--epochs", 3)
    assert result.returncode == 130, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pydiff: error: stopped by SIGINT"), last
    assert "epoch -1" not in last, last
    assert (out / "last.pt").exists() or "last.pt" not in last, (last, sorted(p.name for p in out.iterdir()))


# --- 2. val_mean_residual of a run without labels ---------------------------------------------


def test_a_label_free_run_logs_its_held_out_mean_residual(data, tmp_path):
    # Before: val_mean_residual was nan in every row of a --labels 0 run, though the held-out
    # (test) samples have their fields in the file and `pydiff evaluate` measures them: the run's
    # curve of error against minutes, the column's purpose, was empty.
    out = tmp_path / "run"
    result = pydiff("train", "--data", data, "--out", out, *TINY_CPU_HOUR, "--epochs", 2, "--physics-weight", 1,
                    "--labels", 0, "--no-recalibrate-bn")
    assert result.returncode == 0, result.stderr
    rows = read_log(out)
    values = [float(r["val_mean_residual"]) for r in rows]
    assert all(math.isfinite(v) and v > 0 for v in values), values
    assert pydiff("evaluate", out).returncode == 0
    best = json.loads((out / "result.json").read_text())["best_epoch"]
    test = json.loads((out / "metrics.json").read_text())["test"]["mean_res"]  # select_on test, no recalibration
    assert values[best] == pytest.approx(test, rel=1e-4)


# --- 3. benchmarks/cpu_hour.py: its help, and --report on nothing to report ---------------------


def test_cpu_hour_help_describes_the_script_in_whole_sentences():
    # Before: the description was the docstring's first line, cut mid-parenthesis:
    # "The levers of the ``cpu-hour`` preset, one at a time: model 9 on the paper's data (20,000"
    result = cpu_hour("--help")
    assert result.returncode == 0, result.stderr
    description = result.stdout.split("options:")[0].split("]\n", 1)[-1]
    assert description.count("(") == description.count(")"), description
    assert not description.rstrip().endswith("(20,000"), description


def test_cpu_hour_report_of_a_missing_runs_directory_says_so_and_makes_nothing(tmp_path):
    # Before: status 0, an empty table, and RUNS/cpu-hour/levers.csv (a header alone) made in a
    # directory that did not exist
    runs = tmp_path / "no-runs"
    result = cpu_hour("--report", "--runs", runs)
    assert not runs.exists(), sorted(str(p) for p in runs.rglob("*"))
    assert_clean_failure(result, 2, str(runs))


def test_cpu_hour_report_says_when_there_is_no_preset_run_for_reference(tmp_path):
    # Before: --reference FILE wrote nothing, said nothing, and exited 0 when the whole preset
    # run (pydiff reproduce --model 9 --preset cpu-hour) was not under RUNS
    runs = tmp_path / "runs"
    finished_lever(runs, cpu_hour_module().LEVERS["base"])
    reference = tmp_path / "curve.csv"
    result = cpu_hour("--report", "--runs", runs, "--levers", "base", "--reference", reference)
    assert reference.exists() or (result.returncode != 0 and "reference" in result.stderr), (
        result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize("bad", [("--epochs", 0), ("--epochs", -3)])
def test_cpu_hour_refuses_bad_epochs_in_one_line(tmp_path, bad):
    # Before: a traceback ending in pydiff.errors.ConfigError: epochs must be >= 1, got 0
    (tmp_path / "runs").mkdir()
    result = cpu_hour("--report", "--runs", tmp_path / "runs", *bad)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "epochs" in lines[-1] and len(lines) <= 3, result.stderr  # argparse's usage and error, at most


def test_cpu_hour_refuses_a_runs_path_that_is_a_file_in_one_line(tmp_path):
    # Before: a traceback ending in NotADirectoryError: [Errno 20] Not a directory: 'FILE/cpu-hour'
    afile = tmp_path / "runs"
    afile.write_text("not a directory")
    result = cpu_hour("--report", "--runs", afile)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert afile.read_text() == "not a directory"


# --- 4. benchmarks/device-check.sh where `python` has no torch ---------------------------------


def test_device_check_without_torch_on_path_stops_in_one_line(tmp_path):
    # Before: `benchmarks/device-check.sh` run as its header shows, with a `python` on PATH that has
    # no torch (the virtual environment not activated, PYTHON unset), ended in a traceback
    # (ModuleNotFoundError: No module named 'torch') rather than one line saying what to do.
    base = os.path.realpath(sys.executable)  # the interpreter outside the virtual environment
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(base)
    if subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("the interpreter outside the virtual environment has torch")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device-check.sh"), str(tmp_path / "out.json")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out.json").exists()
