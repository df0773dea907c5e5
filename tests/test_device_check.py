"""benchmarks/device-check.sh: stops at once without a GPU, and its every step runs (tiny) on a CPU."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_gpu_the_check_stops_at_once_with_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script measures instead of stopping")
    # the suite's own interpreter, whether or not its virtual environment is activated
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device-check.sh"), str(tmp_path / "out.json")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "device-check: PyTorch sees no CUDA device here; nothing to measure (run it on a GPU machine)"]
    assert not (tmp_path / "out.json").exists()


def test_every_step_of_the_check_runs_on_tiny_sizes(tmp_path):
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "benchmarks" / "device_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.main(["--cpu-smoke", "--epochs", "1", str(tmp_path / "figures.json")]) == 0
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["paper_train_eager"]["samples_per_second"] > 0
    assert figures["paper_train_fp32"]["samples_per_second"] > 0 and figures["paper_train_fp32"]["amp"] is False
    assert figures["torch_mg"]["iterations"] > 0 and figures["torch_mg"]["max_difference_from_cpu"] < 1e-6
    assert 0 < figures["paper2024_train_online"]["online_share_of_step"] < 1
    assert {(r["network"], r["batch_size"]) for r in figures["inference_ms_per_sample"]} == {
        ("surrogate", 1), ("surrogate", 4), ("encdec", 1), ("encdec", 4)}
    assert figures["online_sample_seconds"] > 0 and figures["paper_run"]["epochs"] == 1
    assert 0 < figures["paper_run"]["mean_res"] <= figures["paper_run"]["max_res"]
    run = figures["cpu_hour_run"]  # the cpu-hour preset on the device, its curve beside the CPU's
    assert run["epochs"] == 2 and [epoch for epoch, _, _ in run["curve"]] == [0, 1]
    assert all(value > 0 for _, value, _ in run["curve"])
