"""Commands on data sets: generate, merge, info, crosscheck."""

from __future__ import annotations

import click

from .app import CONTEXT, RESUME, _fail, main, reports_errors
from .options import BACKEND_HELP, make_problem, problem_options


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=20000, show_default=True, help="Number of samples.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the source positions and values.")
@click.option("--backend", default="auto", show_default=True, help=BACKEND_HELP)
@problem_options
@click.option("--batch-size", type=int, default=500, show_default=True, help="Samples solved and written at a time.")
@click.option("--shard", help="i/k: write only part i (0-based) of k, for one job of a batch system; "
              "join the parts with `pydiff merge`.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (same parameters).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file (kept until the new one is complete).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors(continued=RESUME)
def generate(n, out, seed, backend, batch_size, shard, resume, overwrite, quiet, **problem_values):
    """Sample source images, solve for their fields, and write an HDF5 data set.

    The file appears under its name only when complete; an interrupted run leaves OUT.partial,
    which --resume finishes.  The same seed gives the same data whatever the batch size.
    """
    import time

    from ..datasets.writer import generate as run
    from ..errors import ConfigError
    from ..solvers import resolve_backend

    problem = make_problem(**problem_values)
    part = None
    if shard is not None:
        try:
            part = tuple(int(v) for v in shard.split("/"))
        except ValueError:
            part = ()
        if len(part) != 2:
            raise ConfigError(f"--shard takes i/k, for example 3/16, got {shard!r}")
    backend = resolve_backend(backend, problem)
    start = time.perf_counter()
    path = run(out, n, problem, seed=seed, backend=backend, batch_size=batch_size,
               resume=resume, overwrite=overwrite, progress=not quiet, shard=part)
    what = f"part {part[0]} of {part[1]} of {n}" if part else f"{n}"
    click.echo(f"wrote {path} ({what} samples, backend {backend}, {time.perf_counter() - start:.1f} s)")


@main.command(context_settings=CONTEXT)
@click.argument("out", type=click.Path(dir_okay=False))
@click.argument("parts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@reports_errors(data_error_code=2)
def merge(out, parts, overwrite):
    """Join the shards written by `generate --shard i/k` into OUT, one data set.

    OUT holds HDF5 virtual data sets that point into the parts (no sample is copied): keep the
    parts beside it.  The parts must be complete and together cover every sample once.

    \b
      pydiff merge data/many.h5 data/many-part*.h5
    """
    from ..datasets.shards import merge as run

    path = run(parts, out, overwrite=overwrite)
    click.echo(f"wrote {path} (virtual, {len(parts)} parts)")


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@reports_errors()
def info(file):
    """Attributes, array shapes and value ranges of a data set, and whether it is complete."""
    import pandas as pd

    from ..datasets.hdf5 import summary

    attrs, rows = summary(file)
    state = "complete" if attrs["n_complete"] == attrs["n"] else f"INCOMPLETE ({attrs['n_complete']} of {attrs['n']} rows)"
    click.echo(f"{file}: pydiff data set, format version {attrs['format_version']}, {state}")
    keys = ["n", "lattice", "setup", "n_sources", "min_sources", "radius", "D", "gamma", "t_max", "source_model",
            "diffusivity", "contrast", "sources", "boundary", "target", "backend", "seed", "pydiff_version"]
    click.echo(pd.Series({k: attrs.get(k) for k in keys}, dtype=object).to_string())
    click.echo()
    click.echo(pd.DataFrame(rows).to_string(index=False))


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=16, show_default=True, help="Random inputs to compare on.")
@click.option("--backends", default="spectral,timestep,direct", show_default=True,
              help="Comma-separated backends (add julia when Julia is installed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the inputs.")
@click.option("--tol", type=float, default=1e-4, show_default=True,
              help="Largest allowed max-abs difference of normalised fields; exit status 1 above it.")
@problem_options
@reports_errors()
def crosscheck(n, backends, seed, tol, **problem_values):
    """Solve the same random inputs with several backends and compare their fields.

    Prints pairwise max-abs and mean-abs differences of the normalised fields and the time per
    sample of each backend; exits with status 1 when a difference exceeds --tol.
    """
    from ..errors import ConfigError
    from ..solvers.crosscheck import crosscheck as run

    if n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n}")
    problem = make_problem(**problem_values)
    pairs, timings = run([b.strip() for b in backends.split(",") if b.strip()], problem, n=n, seed=seed)
    pairs["ok"] = pairs["max_abs"] <= tol
    click.echo(f"crosscheck of {n} random inputs (seed {seed}), tolerance {tol:g} on normalised fields\n")
    click.echo(pairs.to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    click.echo()
    click.echo(timings.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if not pairs["ok"].all():
        worst = pairs.loc[pairs["max_abs"].idxmax()]
        _fail(f"{worst.backend_a} and {worst.backend_b} differ by {worst.max_abs:.3e} > --tol {tol:g}", 1)
