"""What the a-posteriori estimate costs against the fastest exact solve, and how well it ranks
the true errors, per preconditioner and number of steps.

    python benchmarks/estimate.py RUN [--lattice 512] [--samples 16] [--csv out.csv]

RUN is a trained run of the varied family (its network reads the map); the samples are fresh ones
of its problem at ``--lattice`` (the radius scaled with the lattice), solved exactly by torch-mg.
For each estimator the script prints the milliseconds per sample, the ratio to torch-mg's exact
solve in wall-clock and in CPU time of this process (the fairer figure on a shared machine; the
goal: at most 1/3), the Spearman correlation of the estimated and the true
per-sample max error, and the largest relative gap between them.  Run it with OMP_NUM_THREADS=1
for one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from pydiff.benchmarking.machine import machine
from pydiff.evaluation.aposteriori import error_estimate
from pydiff.evaluation.predict import predict
from pydiff.problem import sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_channel, diffusivity_maps
from pydiff.solvers import make_solver, normalise
from pydiff.training import checkpoint

ESTIMATORS = (("spectral", 20), ("spectral", 5), ("multigrid", 0), ("multigrid", 1), ("multigrid", 2), ("multigrid", 3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--lattice", type=int, default=512)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--csv")
    args = parser.parse_args(argv)
    model, config = checkpoint.load_model(args.run, "best", "cpu")
    trained = checkpoint.model_problem(args.run)
    L = args.lattice
    problem = dataclasses.replace(trained, lattice=L, radius=max(1, round(trained.radius * L / trained.lattice)))
    images = source_images(problem, sample_sources(problem, args.samples, args.seed))
    maps = diffusivity_maps(problem, range(args.samples), args.seed)
    with make_solver("torch-mg", problem) as solver:
        solver(images[:1], maps[:1])  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        fields, _ = normalise(solver(images, maps))
        exact_s = (time.perf_counter() - start) / args.samples
        exact_cpu = (time.process_time() - cpu) / args.samples
    x = np.concatenate([images[:, None], diffusivity_channel(maps, problem)[:, None]], axis=1)
    prediction = predict(model, x, 4, "cpu", config.amp)[:, 0]
    true = np.abs(prediction - fields).reshape(args.samples, -1).max(axis=1)
    rows = []
    for preconditioner, steps in ESTIMATORS:
        error_estimate(prediction[:1], images[:1], problem, maps[:1], steps, preconditioner=preconditioner)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        estimate = error_estimate(prediction, images, problem, maps, steps, preconditioner=preconditioner)
        seconds = (time.perf_counter() - start) / args.samples
        cpu_seconds = (time.process_time() - cpu) / args.samples
        score = estimate.reshape(args.samples, -1).max(axis=1)
        rows.append({"preconditioner": preconditioner, "steps": steps, "ms_per_sample": 1e3 * seconds,
                     "over_exact_solve": seconds / exact_s,
                     "cpu_over_exact_solve": cpu_seconds / exact_cpu, "spearman_max": spearmanr(score, true).statistic,
                     "largest_relative_gap": float(np.max(np.abs(score - true) / true))})
    print(f"# {machine()}; {args.run} at {L}^2, {args.samples} samples; torch-mg exact solve {1e3 * exact_s:.4g} ms "
          f"per sample; the network's median max error {np.median(true):.3g}")
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
