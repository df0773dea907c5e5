"""torch-mg against the other exact solvers of the varied family, on one CPU thread.

    nice python benchmarks/torch_mg.py                          # 64 ... 512, contrast 10 and 1000
    nice python benchmarks/torch_mg.py --csv torch_mg.csv --generate 24

For each lattice and contrast (inclusions, Dirichlet walls, 1-20 sources), every backend solves
the same samples one at a time after a warm-up solve: seconds per sample, wall clock and CPU time
of this process (the CPU time is the fairer figure on a machine that other jobs share; both are
medians over the samples), and the iterations of the iterative ones.  ``multigrid`` (pyamg)
builds its hierarchy inside each solve, as ``direct`` factorises: set-up is part of every
figure.  ``direct`` runs up to ``--direct-up-to`` cells per side.  A backend that does not reach
its tolerance is reported as such, not timed.  ``over_torch_mg_wall`` and ``over_torch_mg_cpu``:
each backend's time over torch-mg's at the same lattice and contrast.

``--generate N`` also writes N samples of the largest lattice with ``pydiff.datasets.writer.
generate`` (torch-mg, then multigrid): samples per second of the whole pipeline (drawing the
sources and maps, solving, compressing, writing HDF5).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per core: before numpy, scipy and torch start their pools

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from pydiff.errors import NotConverged  # noqa: E402
from pydiff.problem import Problem, sample_sources, source_images  # noqa: E402
from pydiff.problem.diffusivity import diffusivity_maps  # noqa: E402
from pydiff.solvers import make_solver  # noqa: E402

BACKENDS = ("torch-mg", "multigrid", "direct", "torch-cg")


def problem_at(lattice: int, contrast: float, boundary: str) -> Problem:
    return Problem(lattice=lattice, radius=max(2, lattice // 32), n_sources=20, min_sources=1, setup="paper2024",
                   diffusivity="inclusions", contrast=contrast, boundary=boundary, gamma=1 / 400, target="stationary")


def iterations_of(solver) -> int | None:
    """The iterations of the solver's last call (multigrid keeps a list of every sample's)."""
    its = getattr(solver, "iterations", None)
    return its[-1] if isinstance(its, list) else its


def time_backend(backend: str, problem: Problem, samples: int, seed: int) -> dict:
    """Median wall and CPU seconds per sample, and the iterations, of ``samples`` solves one at a time."""
    images = source_images(problem, sample_sources(problem, samples + 1, seed))
    maps = diffusivity_maps(problem, range(samples + 1), seed)
    options = {"device": "cpu"} if backend.startswith("torch") else {}
    wall, cpu, its = [], [], []
    with make_solver(backend, problem, **options) as solver:
        try:
            solver(images[-1:], maps[-1:])  # warm-up: imports, first allocations
            for k in range(samples):
                w, c = time.perf_counter(), time.process_time()
                solver(images[k:k + 1], maps[k:k + 1])
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
                its.append(iterations_of(solver))
        except NotConverged as error:
            return {"note": f"not converged: {error}"}
    row = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}
    if its[0] is not None:
        row.update(iterations_min=min(its), iterations_max=max(its))
    return row


def time_generation(backend: str, problem: Problem, n: int) -> dict:
    """Samples per second (wall and CPU) of writing ``n`` samples with ``generate``."""
    from pydiff.datasets.writer import generate

    options = {"device": "cpu"} if backend.startswith("torch") else None
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "warm.h5", 1, problem, backend=backend, progress=False, solver_options=options)
        w, c = time.perf_counter(), time.process_time()
        generate(Path(tmp) / "data.h5", n, problem, backend=backend, batch_size=8, progress=False,
                 solver_options=options)
        return {"samples_per_s_wall": n / (time.perf_counter() - w), "samples_per_s_cpu": n / (time.process_time() - c)}


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lattices", default="64,128,256,512")
    parser.add_argument("--contrasts", default="10,1000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--boundary", default="dirichlet", choices=("dirichlet", "neumann", "periodic"))
    parser.add_argument("--samples", type=int, default=4, help="samples per lattice, contrast and backend")
    parser.add_argument("--slow-samples", type=int, default=2, help="samples for torch-cg and direct above 128^2")
    parser.add_argument("--direct-up-to", type=int, default=256)
    parser.add_argument("--generate", type=int, default=0, help="also time generate() on this many samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    lattices = [int(x) for x in args.lattices.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, one thread; "
          f"torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    rows = []
    for L in lattices:
        for contrast in [float(c) for c in args.contrasts.split(",")]:
            problem = problem_at(L, contrast, args.boundary)
            for backend in backends:
                if backend == "direct" and L > args.direct_up_to:
                    continue
                slow = backend in ("torch-cg", "direct") and L > 128
                row = {"lattice": L, "contrast": contrast, "backend": backend,
                       **time_backend(backend, problem, args.slow_samples if slow else args.samples, args.seed)}
                rows.append(row)
                print(row, flush=True)
    table = pd.DataFrame(rows)
    # how many times torch-mg's time each backend takes, at the same lattice and contrast
    mg = table[table.backend == "torch-mg"].set_index(["lattice", "contrast"])
    at = pd.MultiIndex.from_frame(table[["lattice", "contrast"]])
    for column in ("wall_s", "cpu_s"):
        table[f"over_torch_mg_{column[:-2]}"] = table[column].to_numpy() / mg[column].reindex(at).to_numpy()
    if args.generate:
        problem = problem_at(max(lattices), 10.0, args.boundary)
        for backend in ("torch-mg", "multigrid"):
            row = {"lattice": problem.lattice, "contrast": 10.0, "backend": f"generate ({backend})",
                   **time_generation(backend, problem, args.generate)}
            print(row, flush=True)
            table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    shown = table.copy()
    if "note" in shown:
        shown["note"] = shown["note"].fillna("").str.split(":").str[0]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(shown.to_string(index=False, na_rep=""))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return table


if __name__ == "__main__":
    main()
