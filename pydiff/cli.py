"""The ``pydiff`` command line: parses options and calls the library, nothing more.

Heavy libraries (torch, juliacall, matplotlib) are imported inside the commands that need them,
so ``pydiff --help`` and ``pydiff generate`` start fast.
"""

from __future__ import annotations

import functools
import sys

import click

from . import __version__
from .errors import PydiffError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int) -> None:
    click.echo(f"pydiff: error: {message}", err=True)
    sys.exit(code)


def reports_errors(data_error_code: int | None = None):
    """Turn :class:`PydiffError` into one line on stderr and its exit status.

    ``data_error_code`` overrides the status of data-file errors for commands that take a data
    file as an argument (there a bad file is a usage error, status 2).
    """

    def wrap(command):
        @functools.wraps(command)
        def run(*args, **kwargs):
            from .errors import DataFileError

            try:
                return command(*args, **kwargs)
            except PydiffError as exc:
                code = exc.exit_code
                if data_error_code is not None and isinstance(exc, DataFileError):
                    code = data_error_code
                _fail(str(exc), code)
            except KeyboardInterrupt:
                _fail("interrupted; run the same command with --resume to continue", 130)

        return run

    return wrap


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="pydiff")
def main() -> None:
    """Deep learning surrogate of the stationary diffusion equation (Toledo-Marin et al., 2021).

    \b
    Typical session:
      pydiff generate --n 20000 --out data/two_sources.h5 --seed 0
      pydiff info data/two_sources.h5
      pydiff reproduce --model 9
    """


def problem_options(command):
    """The options that define the diffusion problem (DESIGN.md's table), shared by commands."""
    options = [
        click.option("--lattice", default=100, show_default=True, help="Cells per side L of the square lattice."),
        click.option("--radius", default=5, show_default=True, help="Source disk radius, in cells."),
        click.option("--n-sources", default=2, show_default=True, help="Disks per image."),
        click.option("--D", "D", default=1.0, show_default=True, help="Diffusion constant (cells^2 per time unit)."),
        click.option("--gamma", default=1 / 400, show_default="1/400", help="Decay rate (per time unit)."),
        click.option("--t-max", default=3000.0, show_default=True, help="Integration time of the ODE."),
        click.option(
            "--source-model",
            type=click.Choice(["production", "clamped"]),
            default="production",
            show_default=True,
            help="production: the image is a source term (the original code); "
            "clamped: disk cells held at their values (the paper's wording; --backend direct).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_problem(lattice, radius, n_sources, D, gamma, t_max, source_model):
    from .problem import Problem

    return Problem(lattice, radius, n_sources, D, gamma, t_max, source_model)


BACKEND_HELP = "Solver: spectral (exact, fast), timestep (RKC time integration), direct (sparse LU), julia (DifferentialEquations.jl)."


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=20000, show_default=True, help="Number of samples.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the source positions and values.")
@click.option("--backend", default="spectral", show_default=True, help=BACKEND_HELP)
@problem_options
@click.option("--batch-size", type=int, default=500, show_default=True, help="Samples solved and written at a time.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (same parameters).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file (kept until the new one is complete).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors()
def generate(n, out, seed, backend, lattice, radius, n_sources, D, gamma, t_max, source_model,
             batch_size, resume, overwrite, quiet):
    """Sample two-source images, solve for their fields, and write an HDF5 data set.

    The file appears under its name only when complete; an interrupted run leaves OUT.partial,
    which --resume finishes.  The same seed gives the same data whatever the batch size.
    """
    import time

    from .dataset import generate as run

    problem = make_problem(lattice, radius, n_sources, D, gamma, t_max, source_model)
    start = time.perf_counter()
    path = run(out, n, problem, seed=seed, backend=backend, batch_size=batch_size,
               resume=resume, overwrite=overwrite, progress=not quiet)
    click.echo(f"wrote {path} ({n} samples, backend {backend}, {time.perf_counter() - start:.1f} s)")


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@reports_errors()
def info(file):
    """Attributes, array shapes and value ranges of a data set, and whether it is complete."""
    import pandas as pd

    from .dataset import summary

    attrs, rows = summary(file)
    state = "complete" if attrs["n_complete"] == attrs["n"] else f"INCOMPLETE ({attrs['n_complete']} of {attrs['n']} rows)"
    click.echo(f"{file}: pydiff data set, format version {attrs['format_version']}, {state}")
    keys = ["n", "lattice", "n_sources", "radius", "D", "gamma", "t_max", "source_model", "backend", "seed", "pydiff_version"]
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
def crosscheck(n, backends, seed, tol, lattice, radius, n_sources, D, gamma, t_max, source_model):
    """Solve the same random inputs with several backends and compare their fields.

    Prints pairwise max-abs and mean-abs differences of the normalised fields and the time per
    sample of each backend; exits with status 1 when a difference exceeds --tol.
    """
    from .errors import ConfigError
    from .solvers import crosscheck as run

    if n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n}")
    problem = make_problem(lattice, radius, n_sources, D, gamma, t_max, source_model)
    pairs, timings = run([b.strip() for b in backends.split(",") if b.strip()], problem, n=n, seed=seed)
    pairs["ok"] = pairs["max_abs"] <= tol
    click.echo(f"crosscheck of {n} random inputs (seed {seed}), tolerance {tol:g} on normalised fields\n")
    click.echo(pairs.to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    click.echo()
    click.echo(timings.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if not pairs["ok"].all():
        worst = pairs.loc[pairs["max_abs"].idxmax()]
        _fail(f"{worst.backend_a} and {worst.backend_b} differ by {worst.max_abs:.3e} > --tol {tol:g}", 1)


@main.group(context_settings=CONTEXT)
def bench():
    """Measure speed: ground-truth generation, and (see subcommands) the paper's Eq. 4."""


@bench.command("generate", context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=20000, show_default=True, help="Samples per backend.")
@click.option("--backends", default="spectral", show_default=True, help="Comma-separated backends.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@reports_errors()
def bench_generate(n, backends, batch_size):
    """Samples/s of `pydiff generate` end to end (file written), and its peak memory."""
    import pandas as pd

    from .bench import bench_generate as run, machine
    from .errors import ConfigError

    if n < 1 or batch_size < 1:
        raise ConfigError("--n and --batch-size must be positive")
    rows = run([b.strip() for b in backends.split(",")], n=n, batch_size=batch_size)
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
