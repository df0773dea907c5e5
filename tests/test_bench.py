"""The timing harness runs and its Eq. 4 arithmetic is right (no speed is asserted)."""

import dataclasses
import io
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

from pydiff.benchmarking.data import bench_generate
from pydiff.benchmarking.eq4 import PAPER, bench_eq4
from pydiff.evaluation.metrics import n_min
from pydiff.problem import Problem

from .cli import pydiff


def test_eq4_of_the_papers_own_values_gives_its_n_min():
    # Eq. 4 by hand with the paper's delta = 1.16 s, epsilon = delta / 1000, M = 20,000 and E = 12 h:
    # (20000 + 43200 / 1.16) / (1 - 1 / 1000) = 57,298.7, the 57,300 the paper quotes.
    assert (20000 + 43200 / 1.16) / (1 - 1 / 1000) == pytest.approx(57300, rel=1e-4)
    assert n_min(PAPER["M"], PAPER["E"], PAPER["delta"], PAPER["delta"] / PAPER["speedup"]) == pytest.approx(57300, rel=1e-4)
    assert math.isinf(n_min(100, 10.0, 1.0, 1.0)) and math.isinf(n_min(100, 10.0, 1.0, 2.0))  # never pays off


def test_eq4_rows_follow_from_their_own_measurements():
    rows = {r["quantity"]: r["measured"] for r in bench_eq4(width=0.0625, backends=("spectral",), n_delta=8,
                                                            batch_sizes=(1, 4))}
    delta = rows["delta: spectral solver, s/sample"]
    epsilons = [v for k, v in rows.items() if k.startswith("epsilon")]
    M = rows["M: samples generated (paper's M and E)"]
    E = rows["E: training seconds (paper's M and E)"]
    assert len(epsilons) >= 2 and delta > 0 and min(epsilons) > 0 and (M, E) == (20000, 43200.0)
    eps = min(epsilons)  # "best epsilon": the fastest batch size
    assert rows["delta/epsilon (spectral, best epsilon)"] == pytest.approx(delta / eps)

    def eq4(delta):  # N_min = (M + E / delta) / (1 - epsilon / delta), never when epsilon >= delta
        return (M + E / delta) / (1 - eps / delta) if eps < delta else math.inf

    for name, solver in (("N_min (spectral, best epsilon)", delta),
                         ("N_min (paper's delta = 1.16 s, best epsilon here)", 1.16)):
        expected, got = eq4(solver), rows[name]
        assert (math.isinf(expected) and math.isinf(got)) or got == pytest.approx(expected, rel=1e-12), name


def test_generate_benchmark_reports_throughput():
    start = time.perf_counter()
    (row,) = bench_generate(("spectral",), n=40, batch_size=20, problem=Problem(lattice=20, radius=3))
    wall = time.perf_counter() - start
    assert (row["backend"], row["samples"], row["batch_size"]) == ("spectral", 40, 20)
    # throughput is samples over the timed seconds, and those lie inside the call's own wall time
    assert row["samples_per_second"] == pytest.approx(40 / row["seconds"], rel=1e-12)
    assert 0 < row["seconds"] < wall
    # the file holds at least the 40 fields of 20 x 20 float32 (stored uncompressed: 64 kB), and at
    # most those and the inputs (compressed) with a few kB of HDF5 metadata per array
    fields_MB = 40 * 20 * 20 * 4 / 1e6
    assert fields_MB < row["file_MB"] < 2 * fields_MB + 0.1
    # memory stays at a few batches: 3 batches of 20 inputs and fields of 20 x 20 float64 are 0.4 MB
    assert 0 < row["peak_traced_MB"] < 20


def test_cli_bench_generate():
    result = pydiff("bench", "generate", "--n", 30, "--batch-size", 10)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# ")  # the machine
    table = pd.read_csv(io.StringIO("\n".join(lines[1:])), sep=r"\s+")
    assert list(table.columns) == ["backend", "samples", "batch_size", "seconds", "samples_per_second",
                                   "peak_traced_MB", "file_MB"]
    (row,) = table.itertuples()
    assert (row.backend, row.samples, row.batch_size) == ("spectral", 30, 10)
    # printed to 4 significant figures: samples / seconds to within their rounding
    assert row.samples_per_second == pytest.approx(30 / row.seconds, rel=2e-3)
    assert 30 * 100 * 100 * 4 / 1e6 < row.file_MB  # the 30 fields of the default 100 x 100 lattice


def test_train_benchmark_runs_real_steps_and_sizes_the_checkpoints():
    from pydiff.benchmarking.training import bench_train
    from pydiff.training.config import config_for

    config = config_for(9, "smoke", batch_size=2, device="cpu")
    row = bench_train(config, steps=1, warmup=1)
    n_train, n_val = round(0.7 * 40), 40 - round(0.7 * 40) - round(0.2 * 40)  # the smoke preset's 40 samples
    assert row["epoch_seconds"] == pytest.approx(n_train / row["samples_per_second"] + n_val / row["eval_samples_per_second"])
    # The training state by hand: every float32 weight three times (itself and Adam's two moments),
    # Adam's float32 step count per parameter tensor, and each BatchNorm's running mean and
    # variance (float32) and batch count (int64).
    from pydiff.nn.surrogate2021 import Surrogate

    model = Surrogate(config.p1, config.p2, width=config.width)
    params = list(model.parameters())
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    state = 12 * sum(p.numel() for p in params) + 4 * len(params) + sum(8 * n.num_features + 8 for n in norms)
    assert row["state_MB"] == pytest.approx(state / 1e6, rel=1e-12)
    # A checkpoint holds one training state plus the best weights: more than the state, less than twice.
    assert row["state_MB"] < row["checkpoint_MB"] < 2 * row["state_MB"]
    assert row["bytes_per_epoch_MB"] == pytest.approx(row["checkpoint_MB"] / 10)


def test_the_projection_counts_the_batchnorm_recalibration_pass_only_where_there_is_one():
    from pydiff.benchmarking.training import bench_train
    from pydiff.training.config import config_for

    config = config_for(9, "smoke", batch_size=2, eval_batch_size=2, device="cpu", n_samples=100)
    row = bench_train(dataclasses.replace(config, recalibrate_bn=True), steps=1, warmup=1)
    n_train = round(config.split[0] * 100)
    assert row["recalibration_seconds"] == pytest.approx(n_train / row["eval_samples_per_second"])
    assert row["projected_hours"] * 3600 == pytest.approx(config.epochs * row["epoch_seconds"] + row["recalibration_seconds"])
    assert bench_train(dataclasses.replace(config, recalibrate_bn=False), steps=1, warmup=1)["recalibration_seconds"] == 0
    # per-epoch recalibration: its pass is in every epoch, and the end-of-run one is not made
    each = bench_train(dataclasses.replace(config, recalibrate_bn=True, recalibrate_each_epoch=10), steps=1, warmup=1)
    assert each["recalibration_seconds"] == 0
    n_held_out = 100 - n_train - round(config.split[1] * 100)
    assert each["epoch_seconds"] == pytest.approx(n_train / each["samples_per_second"]
                                                  + (n_held_out + 10) / each["eval_samples_per_second"])
    pytest.importorskip("neuralop")
    fno = dataclasses.replace(config, network="fno", model=None, width=1 / 32, recalibrate_bn=True)
    assert bench_train(fno, steps=1, warmup=1)["recalibration_seconds"] == 0  # no BatchNorm in an FNO


def test_cli_bench_train_prints_the_projection():
    result = pydiff("bench", "train", "--preset", "smoke", "--steps", 1, "--batch-size", 2, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "projected_hours" in result.stdout and "bytes_per_epoch_MB" in result.stdout


def test_the_varied_benchmark_relates_each_network_to_the_fastest_solver():
    from pydiff.benchmarking.varied import bench_varied

    problem = Problem(lattice=24, radius=2, diffusivity="inclusions")
    rows = bench_varied(problem, lattices=(24,), backends=("direct", "torch-cg"), n_delta=2, batch_sizes=(1, 2),
                        M=100, E=10.0)
    solvers = [r for r in rows if r["kind"] == "exact solver"]
    networks = [r for r in rows if r["kind"] == "network"]
    assert [r["method"] for r in solvers] == ["direct", "torch-cg"] and len(networks) == 2
    fastest = min(r["seconds_per_sample"] for r in solvers)
    for row in networks:
        assert row["delta_over_epsilon"] == pytest.approx(fastest / row["seconds_per_sample"])
        assert row["N_min"] == pytest.approx(n_min(100, 10.0, fastest, row["seconds_per_sample"]))


def test_the_equal_accuracy_baseline_stops_at_the_fewest_steps_that_reach_the_error():
    from pydiff.benchmarking.varied import stopped_at
    from pydiff.problem import sample_sources, source_images
    from pydiff.problem.diffusivity import diffusivity_maps
    from pydiff.solvers import make_solver, normalise

    problem = Problem(lattice=32, radius=3, diffusivity="inclusions", contrast=100.0)
    images, maps = source_images(problem, sample_sources(problem, 3, 0)), diffusivity_maps(problem, range(3), 0)
    with make_solver("direct", problem) as direct:
        exact, _ = normalise(direct(images, maps))
    loose, tight = stopped_at(problem, images, maps, 0.3), stopped_at(problem, images, maps, 1e-6)
    assert loose["iterations"] < tight["iterations"] and tight["median_max_error"] <= 1e-6
    # one step fewer than the tight answer misses the target: k is the fewest
    with make_solver("torch-mg", problem) as mg:
        u = mg.approximate(torch.as_tensor(images, dtype=torch.float64), torch.as_tensor(maps),
                           tight["iterations"] - 1).numpy()
    assert np.median(np.abs(normalise(u)[0] - exact).reshape(3, -1).max(axis=1)) > 1e-6
    from pydiff.benchmarking.varied import bench_varied

    rows = bench_varied(
        problem, lattices=(32,), backends=("direct", "torch-mg"), n_delta=2, batch_sizes=(1,), M=100, E=10.0,
        network_error=0.3)
    baseline = next(r for r in rows if r["kind"] == "equal accuracy")
    network = next(r for r in rows if r["kind"] == "network")
    assert network["equal_accuracy_over_epsilon"] == pytest.approx(baseline["seconds_per_sample"] /
                                                                  network["seconds_per_sample"])
