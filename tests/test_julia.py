"""The Julia backend: everything that can run without Julia, and the comparison when it can."""

import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from pydiff.errors import BackendUnavailable, ConfigError
from pydiff.problem import Problem, SourceDraw, sample_sources, source_images
from pydiff.solvers import make_solver, normalise, solve
from pydiff.solvers.julia import julia_source
from pydiff.solvers.worker import WorkerSolver

from .cli import assert_clean_failure, pydiff

ROOT = Path(__file__).resolve().parents[1]


class FailsAtStartup:
    """A backend whose construction fails, as Julia's does when it cannot be installed."""

    def __init__(self, problem):
        raise BackendUnavailable("no such engine here")


class BrokenAtStartup:
    """A backend with a bug in its construction: not an unavailable backend."""

    def __init__(self, problem):
        raise TypeError("a bug, not a missing engine")


class MissingAtStartup:
    """A backend whose module is not installed here."""

    def __init__(self, problem):
        import pydiff_no_such_engine  # noqa: F401


@pytest.fixture(scope="module")
def julia_solver():
    try:
        solver = make_solver("julia", Problem())
    except BackendUnavailable as exc:
        pytest.skip(f"Julia is not available: {exc}")
    yield solver
    solver.close()


@pytest.mark.julia
def test_julia_matches_spectral_on_random_and_asymmetric_inputs(julia_solver):
    problem = Problem()
    images = source_images(problem, sample_sources(problem, 8, seed=21))
    asymmetric = source_images(problem, SourceDraw(np.array([[[12, 80], [60, 30]]], np.int16), np.array([[0.8, 0.4]])))
    images = np.concatenate([images, asymmetric])
    fields = normalise(julia_solver(images))[0]
    reference = solve(images, problem)[0]
    assert np.abs(fields - reference).max() <= 1e-4
    assert np.unravel_index(fields[-1].argmax(), fields[-1].shape) == np.unravel_index(
        reference[-1].argmax(), reference[-1].shape
    )


def test_julia_source_parses():
    tree_sitter = pytest.importorskip("tree_sitter")
    tree_sitter_julia = pytest.importorskip("tree_sitter_julia")
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_julia.language()))
    source = julia_source().read_bytes()
    tree = parser.parse(source)
    assert not tree.root_node.has_error, "syntax error in julia/PyDiffGroundTruth.jl"
    text = source.decode()
    for needle in ("module PyDiffGroundTruth", "function solve_batch", "function solve_batch_varied",
                   "export solve_batch, solve_batch_varied", "ROCK2()", "Threads.@threads", "harmonic("):
        assert needle in text
    broken = parser.parse(source.replace(b"end # module", b"", 1).replace(b"return fields, maxima\nend", b"return (", 1))
    assert broken.root_node.has_error  # the check can fail


def test_project_toml_and_juliapkg_json_name_the_same_packages():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "Project.toml").read_text())
    juliapkg = json.loads((ROOT / "pydiff" / "juliapkg.json").read_text())
    assert project["deps"] == {name: spec["uuid"] for name, spec in juliapkg["packages"].items()}
    assert "OrdinaryDiffEq" in project["deps"] and "OrdinaryDiffEq" in project["compat"]


def test_worker_protocol_end_to_end_with_a_python_backend(small_problem):
    images = source_images(small_problem, sample_sources(small_problem, 5, seed=2))
    with WorkerSolver(small_problem, "spectral") as worker:
        process = worker._process
        first = worker(images)
        second = worker(images[:2])  # the same process serves every call
        with pytest.raises(ConfigError, match="shape"):
            worker._solve(np.zeros((1, 3, 3)), None)  # an error inside the worker comes back as itself
        np.testing.assert_array_equal(worker(images[:1]), first[:1])
    assert not process.is_alive()
    with make_solver("spectral", small_problem) as local:
        np.testing.assert_allclose(first, local(images), rtol=1e-12)
        np.testing.assert_allclose(second, local(images[:2]), rtol=1e-12)


def test_worker_start_up_failure_comes_back_as_a_clean_error(small_problem):
    with pytest.raises(BackendUnavailable, match="no such engine here"):
        WorkerSolver(small_problem, "tests.test_julia:FailsAtStartup")


def test_a_bug_at_worker_start_up_comes_back_as_itself(small_problem):
    # every start-up failure came back as BackendUnavailable: a bug read as "install Julia"
    with pytest.raises(TypeError, match="a bug, not a missing engine"):
        WorkerSolver(small_problem, "tests.test_julia:BrokenAtStartup")
    with pytest.raises(BackendUnavailable, match="pydiff_no_such_engine"):
        WorkerSolver(small_problem, "tests.test_julia:MissingAtStartup")


def fake_juliacall(monkeypatch, fails_with=None, include_fails=False, functions=("solve_batch", "solve_batch_varied")):
    """A stand-in juliacall: its import fails as juliapkg's do, Julia's include fails, or the
    Julia module holds ``functions``."""
    module = types.ModuleType("juliacall")

    class JuliaError(Exception):
        pass

    def include(path):
        if include_fails:
            raise JuliaError("ArgumentError: Package OrdinaryDiffEq not found in current path")

    module.JuliaError = JuliaError
    if fails_with is not None:
        def __getattr__(name):
            raise fails_with
        module.__getattr__ = __getattr__
    else:
        module.Main = types.SimpleNamespace(include=include, PyDiffGroundTruth=types.SimpleNamespace(
            **{name: object() for name in functions}))
    monkeypatch.setitem(sys.modules, "juliacall", module)
    monkeypatch.setenv("PYTHON_JULIACALL_THREADS", "1")
    monkeypatch.setenv("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")


def test_julia_session_says_unavailable_for_juliapkg_and_julia_failures_only(monkeypatch):
    from pydiff.solvers.julia import JuliaSession

    fake_juliacall(monkeypatch)
    assert JuliaSession(Problem())._solve_batch_varied is not None  # the stand-in works
    fake_juliacall(monkeypatch, fails_with=Exception("could not find Julia"))  # juliapkg raises bare Exceptions
    with pytest.raises(BackendUnavailable, match="could not find Julia.*PYTHON_JULIAPKG_EXE"):
        JuliaSession(Problem())
    fake_juliacall(monkeypatch, include_fails=True)
    with pytest.raises(BackendUnavailable, match="OrdinaryDiffEq not found"):
        JuliaSession(Problem())
    fake_juliacall(monkeypatch, functions=("solve_batch",))  # our module and our names disagree: a bug
    with pytest.raises(AttributeError, match="solve_batch_varied"):
        JuliaSession(Problem())


def test_missing_julia_never_loads_juliacall_in_the_parent():
    try:
        make_solver("julia", Problem()).close()
    except BackendUnavailable as exc:
        assert "PYTHON_JULIAPKG_EXE" in str(exc)
    assert "juliacall" not in sys.modules


def test_crosscheck_with_missing_julia_is_a_quick_clean_error():
    start = time.perf_counter()
    result = pydiff("crosscheck", "--n", 2, "--backends", "spectral,julia", "--lattice", 20, "--radius", 3)
    if result.returncode == 0:
        pytest.skip("Julia is available here")
    assert_clean_failure(result, 2, "julia backend is unavailable")
    assert time.perf_counter() - start < 60


def test_crosscheck_of_python_backends(tmp_path):
    result = pydiff("crosscheck", "--n", 3, "--lattice", 24, "--radius", 3)
    assert result.returncode == 0, result.stderr
    for name in ("spectral", "timestep", "direct", "max_abs", "seconds_per_sample"):
        assert name in result.stdout
    failing = pydiff("crosscheck", "--n", 3, "--lattice", 24, "--radius", 3, "--t-max", 5, "--backends", "spectral,direct")
    assert failing.returncode == 1 and "differ by" in failing.stderr
