"""Serve-or-solve on fresh labelled samples: what fraction each answer takes, whether the bound
holds, and what an answer costs against solving every sample with the fastest exact backend.

    python benchmarks/serving.py RUN FRESH.h5 [--max-errors 0.1,0.2] [--refine 0,4] [--csv out.csv]

RUN must be calibrated (``pydiff calibrate RUN``) on its own family; FRESH.h5 is a pydiff data
file of that family that played no part in training or calibration (another --seed).  For each
max error and number of refine steps the script serves every sample as ``pydiff predict
--max-error EPS --refine K`` does (:func:`pydiff.evaluation.bound.serve`) and prints, per row:

- served / refined / solved: the fraction of answers of each kind;
- violations: served or refined answers whose true max error exceeds EPS, and their rate
  among all samples (the guarantee: at most alpha for served ones; refined ones have a
  deterministic bound, so none);
- ms_per_answer: network + estimate + refine + exact solves, divided by the samples;
- ms_solve_all: the fastest exact backend (``auto``) on every sample, batched as generate does.

Times are wall seconds of this process; run it with OMP_NUM_THREADS=1 for one core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from pydiff.benchmarking.machine import machine
from pydiff.datasets.hdf5 import load
from pydiff.evaluation.bound import read_calibration, serve
from pydiff.evaluation.predict import predict
from pydiff.solvers import make_solver, normalise, resolve_backend
from pydiff.training import checkpoint
from pydiff.training.data import network_inputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("fresh")
    parser.add_argument("--max-errors", default="0.1,0.2")
    parser.add_argument("--refine", default="0,4")
    parser.add_argument("--csv")
    args = parser.parse_args(argv)
    model, config = checkpoint.load_model(args.run, "best", "cpu")
    calibration = read_calibration(args.run)
    data = load(args.fresh)
    x = network_inputs(data, config.in_channels)
    images, maps, walls, truth = data.inputs, data.diffusivity, data.walls, data.fields

    backend = resolve_backend("auto", data.problem)
    with make_solver(backend, data.problem) as solver:
        solver(images[:1], None if maps is None else maps[:1])  # warm-up
        start = time.perf_counter()
        exact, _ = normalise(solver(images, maps) if walls is None else solver(images, maps, walls))
        solve_all = (time.perf_counter() - start) / len(images)
    assert np.abs(exact - truth).max() < 1e-5, "the fresh file's fields are not the exact ones"

    start = time.perf_counter()
    prediction = predict(model, x, config.eval_batch_size, "cpu", config.amp)[:, 0]
    network = (time.perf_counter() - start) / len(x)
    network_error = np.abs(prediction - truth).reshape(len(x), -1).max(axis=1)
    rows = []
    for eps in (float(v) for v in args.max_errors.split(",")):
        for k in (int(v) for v in args.refine.split(",")):
            start = time.perf_counter()
            answers = serve(prediction, images, data.problem, maps, eps, calibration, "cpu", walls, k)
            seconds = (time.perf_counter() - start) / len(x)
            error = np.abs(answers["prediction"] - truth).reshape(len(x), -1).max(axis=1)
            served, refined = answers["served"], answers["refined"]
            rows.append({"max_error": eps, "refine": k, "served": served.mean(), "refined": refined.mean(),
                         "solved": 1 - served.mean() - refined.mean(),
                         "violations_served": int((served & (error > eps)).sum()),
                         "violations_refined": int((refined & (error > eps)).sum()),
                         "violation_rate": float(((served | refined) & (error > eps)).mean()),
                         "ms_per_answer": 1e3 * (network + seconds), "ms_solve_all": 1e3 * solve_all})
    table = pd.DataFrame(rows)
    print(f"# {machine()}; {args.run} on {len(x)} samples of {args.fresh}; alpha {calibration['alpha']:g}, "
          f"estimate {calibration['iterations']} steps ({calibration.get('preconditioner', 'spectral')}); network "
          f"median max error {np.median(network_error):.3g}; exact backend {backend}; network {1e3 * network:.3g} ms")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
