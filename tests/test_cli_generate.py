"""``pydiff generate`` and ``pydiff info`` from the outside: outputs, exit statuses, no traces."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.problem import Problem

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
        (["--source-model", "clamped", "--backend", "spectral"], "cannot solve source model 'clamped'"),
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
    result = pydiff("generate", "--n", 2, "--out", out, "--backend", "julia", *SMALL)
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


def test_a_stop_request_is_honoured_within_a_batch(tmp_path, monkeypatch):
    """Before: a SIGINT waited for the whole batch (500 samples: minutes at 421^2).  Now the batch
    is solved a chunk at a time and a stop request ends it between two chunks, unwritten."""
    import signal

    import pytest

    from pydiff.datasets import writer
    from pydiff.errors import Interrupted
    from pydiff.solvers.spectral import SpectralSolver

    monkeypatch.setattr(writer, "SOLVE_CHUNK_CELLS", 2 * 24 * 24)  # two samples per chunk: five per batch of 10
    calls = []
    original = SpectralSolver._solve

    def chunk_then_ctrl_c(self, images, diffusivity):
        calls.append(len(images))
        if len(calls) == 6:  # the first chunk of the second batch
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, images, diffusivity)

    monkeypatch.setattr(SpectralSolver, "_solve", chunk_then_ctrl_c)
    with pytest.raises(Interrupted, match="after 10 of 40 samples"):
        generate(tmp_path / "d.h5", 40, Problem(lattice=24, radius=3), seed=5, batch_size=10, progress=False)
    assert calls == [2] * 6  # nothing of the second batch solved after the request
    assert load(tmp_path / "d.h5.partial", allow_partial=True).fields.shape[0] == 10


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """A real SIGINT, delivered while the second batch is being made: exit 130 with one line,
    only OUT.partial left; --resume completes it identically."""
    import signal

    from click.testing import CliRunner

    from pydiff.cli import main
    from pydiff.datasets import writer

    out = tmp_path / "d.h5"
    args = ["generate", "--n", "40", "--out", str(out), "--seed", "5", "--batch-size", "10", "--lattice", "24",
            "--radius", "3", "--quiet"]
    batches = []
    make_images = writer.source_images

    def images_then_ctrl_c(problem, draw):
        batches.append(len(draw))
        if len(batches) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # recorded by pydiff's handler; the batch finishes
        return make_images(problem, draw)

    monkeypatch.setattr(writer, "source_images", images_then_ctrl_c)
    stopped = CliRunner().invoke(main, args)
    assert stopped.exit_code == 130 and len(batches) == 2
    assert stopped.stderr.strip().splitlines() == [
        f"pydiff: error: interrupted by SIGINT after 20 of 40 samples; run the same command with --resume to "
        f"finish {out}.partial"]
    assert (tmp_path / "d.h5.partial").exists() and not out.exists()
    monkeypatch.setattr(writer, "source_images", make_images)
    resumed = CliRunner().invoke(main, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert out.exists() and not (tmp_path / "d.h5.partial").exists()
    whole = CliRunner().invoke(main, [*args[:4], str(tmp_path / "whole.h5"), *args[5:]])
    assert whole.exit_code == 0
    assert_same_data(load(out), load(tmp_path / "whole.h5"))


def assert_same_data(a, b):
    for name in ("inputs", "fields", "centers", "values", "field_max", "source_count"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# A child that runs generate and SIGKILLs itself just before its N-th write to the file (a data
# set's rows, an attribute, a flush): every point of a batch's write sequence, deterministically.
KILLED_CHILD = """
import os, signal, sys
import h5py
from pydiff.datasets.writer import generate
from pydiff.problem import Problem

kill_before, events = int(sys.argv[2]), [0]

def counted(write):
    def run(*args, **kwargs):
        events[0] += 1
        if events[0] == kill_before:
            os.kill(os.getpid(), signal.SIGKILL)
        return write(*args, **kwargs)
    return run

h5py.Dataset.__setitem__ = counted(h5py.Dataset.__setitem__)
h5py.AttributeManager.__setitem__ = counted(h5py.AttributeManager.__setitem__)
h5py.File.flush = counted(h5py.File.flush)
generate(sys.argv[1], 40, Problem(lattice=24, radius=3), seed=3, batch_size=10, progress=False)
"""


def test_generate_killed_at_any_write_resumes_to_the_uninterrupted_file(tmp_path):
    whole = load(generate(tmp_path / "whole.h5", 40, Problem(lattice=24, radius=3), seed=3, batch_size=10,
                          progress=False))
    resumed_from = {}
    # 1-25: file creation (its attributes), 26-34 the first batch, 35-61 the three later ones.
    for kill_before in (1, 5, 15, 17, 18, 19, 20, 21, 25, 31, 38, 45, 53):
        out = tmp_path / f"k{kill_before}.h5"
        child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(out), str(kill_before)],
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -9, (kill_before, child.stderr)
        assert not out.exists()
        written = []
        generate(out, 40, Problem(lattice=24, radius=3), seed=3, batch_size=10, resume=True, progress=written.append)
        resumed_from[kill_before] = 40 - sum(written)
        assert_same_data(load(out), whole)
    # a run killed before its first batch was declared starts afresh; later ones keep their batches
    assert resumed_from[1] == 0 and resumed_from[53] >= 30
    assert sorted(resumed_from.values()) == list(resumed_from.values())


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


@pytest.mark.parametrize("sources", ["disks", "ellipses"])
def test_generate_sources_of_radius_0(tmp_path, sources):
    out = tmp_path / "x.h5"
    result = pydiff("generate", "--setup", "paper2024", "--lattice", 8, "--radius", 0, "--n", 100, "--sources", sources,
                    "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    data = load(out)
    assert np.isfinite(data.inputs[()]).all() and np.isfinite(data.fields[()]).all()
    assert (data.fields[()].max(axis=(1, 2)) == 1).all()


@pytest.mark.parametrize("args, match", [
    (["--setup", "paper2024", "--n-sources", "0-3"], "the smallest source count must be in 1..3, got 0"),
    (["--diffusivity", "lognormal", "--correlation-length", "0"], "correlation length must be positive"),
    (["--diffusivity", "lognormal", "--lattice", "20", "--radius", "3", "--correlation-length", "1000"],
     "correlation length must be at most the lattice"),
])
def test_generate_refuses_0_and_out_of_range_values_it_used_to_replace(tmp_path, args, match):
    assert_clean_failure(pydiff("generate", "--n", 4, "--out", tmp_path / "x.h5", *args), 2, match)
    assert not list(tmp_path.iterdir())
