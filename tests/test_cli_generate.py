"""``pydiff generate`` and ``pydiff info`` from the outside: outputs, exit statuses, no traces."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from pydiff.dataset import load

from .cli import assert_clean_failure, pydiff

SMALL = ["--lattice", "20", "--radius", "3", "--quiet"]


def test_generate_then_info(tmp_path):
    out = tmp_path / "d.h5"
    result = pydiff("generate", "--n", 12, "--out", out, "--seed", 3, "--batch-size", 5, *SMALL)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.exists()
    data = load(out)
    assert len(data) == 12 and data.attrs["seed"] == 3 and data.problem.lattice == 20
    info = pydiff("info", out)
    assert info.returncode == 0, info.stderr
    assert "complete" in info.stdout and "fields" in info.stdout and "(12, 20, 20)" in info.stdout


def test_generate_with_every_option(tmp_path):
    out = tmp_path / "d.h5"
    result = pydiff(
        "generate", "--n", 3, "--out", out, "--backend", "direct", "--source-model", "clamped",
        "--lattice", 16, "--radius", 2, "--n-sources", 3, "--D", 0.5, "--gamma", 0.01, "--t-max", 100, "--quiet",
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as f:
        assert f.attrs["n_sources"] == 3 and f.attrs["D"] == 0.5 and f.attrs["source_model"] == "clamped"
        assert f["centers"].shape == (3, 3, 2)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--n", "0"], "--n must be a positive"),
        (["--n", "-5"], "--n must be a positive"),
        (["--radius", "10"], "radius must be smaller than lattice/2"),
        (["--n-sources", "0"], "n_sources"),
        (["--D", "-1"], "D must be a positive"),
        (["--gamma", "-0.5"], "gamma must be a non-negative"),
        (["--backend", "fourier"], "unknown backend 'fourier'"),
        (["--source-model", "clamped"], "cannot solve source model 'clamped'"),
    ],
)
def test_impossible_parameters(tmp_path, args, match):
    out = tmp_path / "d.h5"
    base = ["--n", "4", "--lattice", "20", "--radius", "3"]
    result = pydiff("generate", "--out", out, *base, *args)
    assert_clean_failure(result, 2, match)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_and_existing_output(tmp_path):
    assert_clean_failure(pydiff("generate", "--n", 2, "--out", tmp_path / "no" / "d.h5", *SMALL), 2, "does not exist")
    out = tmp_path / "d.h5"
    assert pydiff("generate", "--n", 2, "--out", out, *SMALL).returncode == 0
    before = out.read_bytes()
    assert_clean_failure(pydiff("generate", "--n", 2, "--out", out, *SMALL), 2, "--overwrite")
    assert out.read_bytes() == before


def test_julia_without_julia_is_a_clean_error(tmp_path):
    out = tmp_path / "d.h5"
    result = pydiff("generate", "--n", 2, "--out", out, "--backend", "julia", *SMALL, timeout=120)
    if result.returncode == 0:
        pytest.skip("Julia is available here")
    assert_clean_failure(result, 2, "julia backend is unavailable")
    assert "PYTHON_JULIAPKG_EXE" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_info_on_bad_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(2)
    assert_clean_failure(pydiff("info", foreign), 1, "not a pydiff data set")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert_clean_failure(pydiff("info", junk), 1, str(junk))
    assert_clean_failure(pydiff("info", tmp_path / "none.h5"), 1, "no such file")


def test_info_reports_an_incomplete_file(tmp_path):
    out = tmp_path / "d.h5"
    assert pydiff("generate", "--n", 4, "--out", out, *SMALL).returncode == 0
    with h5py.File(out, "r+") as f:
        f.attrs["n_complete"] = 2
    result = pydiff("info", out)
    assert result.returncode == 0 and "INCOMPLETE (2 of 4 rows)" in result.stdout


def test_help_and_generate_do_not_import_torch_or_juliacall(tmp_path):
    code = (
        "import sys\nfrom pydiff.cli import main\n"
        f"for argv in (['--help'], ['generate', '--n', '2', '--out', {str(tmp_path / 'd.h5')!r}, '--lattice', '20', '--radius', '3', '--quiet']):\n"
        "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "print(sorted(m for m in ('torch', 'juliacall', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_click_usage_errors_are_one_line_too(tmp_path):
    assert_clean_failure(pydiff("generate", "--n", "abc", "--out", tmp_path / "d.h5"), 2, "'abc' is not a valid integer")
    assert_clean_failure(pydiff("generate", "--n", "3"), 2, "Missing option '--out'")
    assert_clean_failure(pydiff("frobnicate"), 2, "No such command")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path):
    """A real SIGINT mid-run: exit 130, only OUT.partial left; --resume completes it identically."""
    import signal
    import time

    out = tmp_path / "d.h5"
    args = ["generate", "--n", "10000", "--out", str(out), "--seed", "5", "--batch-size", "50", "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "pydiff", *args], stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "d.h5.partial"
    deadline = time.time() + 60
    while time.time() < deadline and not partial.exists():
        time.sleep(0.01)
    time.sleep(1.0)  # some batches written (10,000 samples take ~5 s here), many still to come
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert partial.exists() and not out.exists()
    resumed = pydiff(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.exists() and not partial.exists()
    whole = tmp_path / "whole.h5"
    assert pydiff(*args[:4], whole, *args[5:]).returncode == 0
    a, b = load(out), load(whole)
    for name in ("inputs", "fields", "centers", "values", "field_max"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_generate_the_2024_problem_with_a_range_of_source_counts(tmp_path):
    out = tmp_path / "many.h5"
    result = pydiff("generate", "--setup", "paper2024", "--lattice", 32, "--radius", 3, "--n-sources", "1-4",
                    "--n", 8, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    data = load(out)
    assert data.problem.setup == "paper2024" and data.source_count.tolist() == [1, 2, 3, 4] * 2
    info = pydiff("info", out)
    assert "paper2024" in info.stdout and "source_count" in info.stdout


@pytest.mark.parametrize("args, match", [
    (["--n-sources", "1-x"], "--n-sources takes a count or a range"),
    (["--n-sources", "1-20"], "needs --setup paper2024"),
])
def test_generate_refuses_bad_source_counts(tmp_path, args, match):
    assert_clean_failure(pydiff("generate", "--n", 4, "--out", tmp_path / "x.h5", *args), 2, match)
    assert not list(tmp_path.iterdir())


def test_generate_in_shards_and_merge_from_the_command_line(tmp_path):
    common = ["--setup", "paper2024", "--lattice", 24, "--radius", 3, "--n-sources", "1-3", "--n", 7, "--quiet"]
    for i in range(2):
        result = pydiff("generate", *common, "--shard", f"{i}/2", "--out", tmp_path / f"p{i}.h5")
        assert result.returncode == 0, result.stderr
    merged = pydiff("merge", tmp_path / "all.h5", tmp_path / "p0.h5", tmp_path / "p1.h5")
    assert merged.returncode == 0, merged.stderr
    assert len(load(tmp_path / "all.h5")) == 7
    assert_clean_failure(pydiff("generate", *common, "--shard", "2/2", "--out", tmp_path / "x.h5"), 2, "--shard must be i/k")
    assert_clean_failure(pydiff("merge", tmp_path / "bad.h5", tmp_path / "p1.h5"), 2, "leaves samples 0..2 missing")
