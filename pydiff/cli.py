"""The ``pydiff`` command line: parses options and calls the library, nothing more.

Heavy libraries (torch, juliacall, matplotlib) are imported inside the commands that need them,
so ``pydiff --help`` and ``pydiff generate`` start fast.
"""

from __future__ import annotations

import functools
import sys

import click

from .version import __version__
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
                _fail("interrupted; run the same command again to continue (generate and train: add --resume)", 130)

        return run

    return wrap


class OneLineErrors(click.Group):
    """Click's own usage errors (a malformed number, a missing option) as one line, status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except no_args_help as exc:
            click.echo(exc.ctx.get_help())
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)


@click.group(cls=OneLineErrors, context_settings=CONTEXT)
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
    """The options that define the diffusion problem (docs/problem.md), shared by commands."""
    options = [
        click.option("--lattice", default=100, show_default=True, help="Cells per side L of the square lattice."),
        click.option("--radius", default=5, show_default=True, help="Source disk radius, in cells."),
        click.option("--n-sources", default="2", show_default=True,
                     help="Disks per image, or a range such as 1-20 (--setup paper2024: every count equally often)."),
        click.option("--setup", type=click.Choice(["paper2021", "paper2024"]), default="paper2021", show_default=True,
                     help="Source recipe: paper2021 (genData.jl: img = img*U + disk in turn) or paper2024 "
                     "(runSim.jl: each disk added with an amplitude uniform in [0.01, 1])."),
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


def make_problem(lattice, radius, n_sources, setup, D, gamma, t_max, source_model):
    from .errors import ConfigError
    from .problem import Problem

    low, _, high = str(n_sources).partition("-")
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise ConfigError(f"--n-sources takes a count or a range like 1-20, got {n_sources!r}") from None
    return Problem(lattice, radius, high, D, gamma, t_max, source_model, setup, low)


BACKEND_HELP = "Solver: spectral (exact, fast), timestep (RKC time integration), direct (sparse LU), julia (DifferentialEquations.jl)."


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=20000, show_default=True, help="Number of samples.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the source positions and values.")
@click.option("--backend", default="spectral", show_default=True, help=BACKEND_HELP)
@problem_options
@click.option("--batch-size", type=int, default=500, show_default=True, help="Samples solved and written at a time.")
@click.option("--shard", help="i/k: write only part i (0-based) of k, for one job of a batch system; "
              "join the parts with `pydiff merge`.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (same parameters).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file (kept until the new one is complete).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors()
def generate(n, out, seed, backend, lattice, radius, n_sources, setup, D, gamma, t_max, source_model,
             batch_size, shard, resume, overwrite, quiet):
    """Sample source images, solve for their fields, and write an HDF5 data set.

    The file appears under its name only when complete; an interrupted run leaves OUT.partial,
    which --resume finishes.  The same seed gives the same data whatever the batch size.
    """
    import time

    from .dataset import generate as run

    from .errors import ConfigError

    problem = make_problem(lattice, radius, n_sources, setup, D, gamma, t_max, source_model)
    part = None
    if shard is not None:
        try:
            part = tuple(int(v) for v in shard.split("/"))
        except ValueError:
            part = ()
        if len(part) != 2:
            raise ConfigError(f"--shard takes i/k, for example 3/16, got {shard!r}")
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
    from .shards import merge as run

    path = run(parts, out, overwrite=overwrite)
    click.echo(f"wrote {path} (virtual, {len(parts)} parts)")


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
    keys = ["n", "lattice", "setup", "n_sources", "min_sources", "radius", "D", "gamma", "t_max", "source_model",
            "backend", "seed", "pydiff_version"]
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
def crosscheck(n, backends, seed, tol, lattice, radius, n_sources, setup, D, gamma, t_max, source_model):
    """Solve the same random inputs with several backends and compare their fields.

    Prints pairwise max-abs and mean-abs differences of the normalised fields and the time per
    sample of each backend; exits with status 1 when a difference exceeds --tol.
    """
    from .errors import ConfigError
    from .solvers import crosscheck as run

    if n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n}")
    problem = make_problem(lattice, radius, n_sources, setup, D, gamma, t_max, source_model)
    pairs, timings = run([b.strip() for b in backends.split(",") if b.strip()], problem, n=n, seed=seed)
    pairs["ok"] = pairs["max_abs"] <= tol
    click.echo(f"crosscheck of {n} random inputs (seed {seed}), tolerance {tol:g} on normalised fields\n")
    click.echo(pairs.to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    click.echo()
    click.echo(timings.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if not pairs["ok"].all():
        worst = pairs.loc[pairs["max_abs"].idxmax()]
        _fail(f"{worst.backend_a} and {worst.backend_b} differ by {worst.max_abs:.3e} > --tol {tol:g}", 1)


@main.group(context_settings=CONTEXT, invoke_without_command=True)
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="A finished run: its data size and training time give M and E.")
@click.option("--width", type=float, default=1.0, show_default=True, help="Width of the surrogate timed for epsilon.")
@click.option("--backends", default="spectral,direct", show_default=True, help="Solvers timed for delta.")
@click.pass_context
@reports_errors()
def bench(ctx, run_dir, width, backends):
    """Speed of the paper's Eq. 4: delta, epsilon, M, E and N_min, beside the published values.

    delta is the ground-truth solver's seconds per sample, epsilon the surrogate's (batch 1 and
    256, CPU and GPU where present), M the samples generated and E the training seconds of a
    run; N_min = (M + E/delta) / (1 - epsilon/delta) is the number of uses after which the
    surrogate pays for itself.  `pydiff bench generate` measures data-set generation.
    """
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from .bench import bench_eq4, machine

    rows = bench_eq4(run_dir, width, tuple(b.strip() for b in backends.split(",")))
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@bench.command("generate", context_settings=CONTEXT)
@click.option("--n", "n", type=int, default=20000, show_default=True, help="Samples per backend.")
@click.option("--backends", default="spectral", show_default=True, help="Comma-separated backends.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@problem_options
@reports_errors()
def bench_generate(n, backends, batch_size, **problem):
    """Samples/s of `pydiff generate` end to end (file written), and its peak memory.

    \b
      pydiff bench generate --setup paper2024 --lattice 512 --n-sources 1-20 --n 1000
    """
    import pandas as pd

    from .bench import bench_generate as run, machine
    from .errors import ConfigError

    if n < 1 or batch_size < 1:
        raise ConfigError("--n and --batch-size must be positive")
    rows = run([b.strip() for b in backends.split(",")], n=n, batch_size=batch_size, problem=make_problem(**problem))
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@bench.command("read", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--batch-size", type=int, default=50, show_default=True, help="Samples per random batch.")
@click.option("--batches", type=int, default=20, show_default=True, help="Batches read.")
@reports_errors(data_error_code=2)
def bench_read(file, batch_size, batches):
    """Samples/s of reading random training batches from a data file, as streamed training
    (--stream) reads them."""
    import pandas as pd

    from .bench import bench_read as run, machine
    from .errors import ConfigError

    if batch_size < 1 or batches < 1:
        raise ConfigError("--batch-size and --batches must be positive")
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame([run(file, batch_size, batches)]).T.to_string(header=False, float_format=lambda v: f"{v:.4g}"))


PRESET_NAMES = ["quick", "paper", "smoke", "quick2024", "paper2024"]


def training_options(command):
    """Options shared by `train`, `reproduce` and `bench train`: each overrides the preset's value."""
    options = [
        click.option("--preset", type=click.Choice(PRESET_NAMES), default="quick", show_default=True,
                     help="Defaults for everything below: quick (CPU minutes), paper (the original set-up; GPU), smoke "
                     "(seconds); quick2024, paper2024 (the 2024 encoder-decoder on 1-20 sources; CPU / GPU)."),
        click.option("--network", type=click.Choice(["surrogate", "encdec", "unet", "fno"]),
                     help="surrogate: the 2021 NN1 + NN2 of a Table 2 row (default); encdec, unet: the 2024 "
                     "encoder-decoder and U-Net (any lattice); fno: neuraloperator's Fourier Neural Operator "
                     '(any lattice; pip install "pydiff[fno]").'),
        click.option("--loss", help="Loss by name: MAE, MSE, fourth-power, Huber (Eq. 1-2, weight on the target), "
                     "exp-MAE, exp-MSE, exp-Huber, tanh-MAE, tanh-MSE, tanh-Huber (the 2024 code's weights); "
                     "default: the Table 2 row's or the preset's."),
        click.option("--loss-delta", type=float, help="Threshold of the Huber losses, in field units (default 0.1)."),
        click.option("--w", "w", type=float, help="Loss weight w (Eq. 1; the 2024 losses' w); default: the Table 2 row's."),
        click.option("--width", type=float, help="Channel multiplier of the networks (1 = the papers')."),
        click.option("--epochs", type=int, help="Epochs (paper: 800)."),
        click.option("--batch-size", type=int, help="Global training batch size (paper: 25); K torchrun ranks take B/K each."),
        click.option("--lr", type=float, help="Adam learning rate (paper: 5e-6)."),
        click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), help="Learning-rate schedule."),
        click.option("--n-samples", type=int, help="Use the first N samples of the data (paper: 20000)."),
        click.option("--split", help="train,test,validation fractions (default 0.7,0.2,0.1 as the original code; the paper: 0.8,0.2,0); "
                     "each source count is split alike."),
        click.option("--split-seed", type=int, help="Seed of the split (default: --seed)."),
        click.option("--train-fraction", type=float, help="Train on this fraction of the training split, equal per source count (default 1)."),
        click.option("--select-on", type=click.Choice(["val", "test"]),
                     help="Held-out split that picks the best epoch (val; paper2024: test, as the 2024 code)."),
        click.option("--training-data", type=click.Choice(["file", "online"]),
                     help="file: the training split; online: as many fresh exact samples of the file's problem every "
                     "epoch, solved on the training device (seeded, never repeated)."),
        click.option("--shuffle", type=click.Choice(["samples", "batches"]),
                     help="samples: new batches every epoch; batches: fixed batches in a new order each epoch (the original code; paper preset)."),
        click.option("--dropout", "dropout_all", type=float, help="One dropout rate for D1-D4, replacing Table 2's (0 makes runs deterministic)."),
        click.option("--rollback", type=click.Choice(["paper", "code", "off"]), help="Roll-back rule: Eq. 3, the original code's, or none."),
        click.option("--rollback-C", "rollback_C", type=float, help="Roll-back threshold factor C (paper 5, code 10)."),
        click.option("--rollback-m", type=int, help="Epochs averaged in the threshold (m = 20)."),
        click.option("--rollback-s", type=int, help="Epochs rolled back (s = 5; code rule: backup period)."),
        click.option("--early-stop", type=int, help="Stop after N epochs without a better held-out loss (0: never)."),
        click.option("--init", type=click.Choice(["default", "kaiming", "flux"]),
                     help="Weight initialisation: flux (Glorot-uniform, zero biases: the original networks; paper), kaiming (quick), default (PyTorch's)."),
        click.option("--pooling", type=click.Choice(["table1", "code"]),
                     help="NN2's encoder: Table 1's shapes (100-50-25-12-6-3-1, default) or the original code's padded second pool (100-50-26-13-6-3-1)."),
        click.option("--output-scale", type=float, help="Initial scale of the final BatchNorms (default 1; quick: 0.14)."),
        click.option("--output-shift", type=float, help="Initial bias of the final BatchNorms, split between the networks (quick: 0.095)."),
        click.option("--recalibrate-bn/--no-recalibrate-bn", "recalibrate_bn", default=None,
                     help="At the end, recompute the BatchNorm statistics of the best weights with dropout off "
                     "(corrects the variance shift of dropout before BatchNorm; quick: on, paper: off)."),
        click.option("--stream", type=click.Choice(["auto", "always", "never"]),
                     help="Read the data file batch by batch instead of holding it on the device: auto (when it "
                     "exceeds half the GPU's or the machine's memory; the full 2024 set does), always, never."),
        click.option("--checkpoint-every", type=int, help="Epochs between checkpoints (default 10); SIGINT/SIGTERM also write one."),
        click.option("--compile", type=click.Choice(["off", "default", "reduce-overhead", "max-autotune"]),
                     help="torch.compile the model (reduce-overhead adds CUDA graphs); off by default."),
        click.option("--amp/--no-amp", default=None, help="bf16 autocast on CUDA (on by default; no effect on CPU)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, initialisation and batches."),
        click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, cuda:1, ..."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parse_split(text):
    from .errors import ConfigError

    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--split must be three comma-separated fractions, got {text!r}") from None
    return parts


def parse_list(text, kind, option):
    from .errors import ConfigError

    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} must be a comma-separated list of numbers, got {text!r}") from None


def make_config(model, data, preset, **options):
    from .config import config_for

    options["split"] = parse_split(options.get("split"))
    return config_for(model, preset, data=str(data) if data else "", **options)


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id (1-14); needed for --network surrogate.")
@click.option("--data", type=click.Path(dir_okay=False), required=True,
              help="HDF5 data set from `pydiff generate` (100x100 for the 2021 surrogate, any lattice for the 2024 networks).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory to create.")
@training_options
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@reports_errors(data_error_code=2)
def train(model_id, data, out, resume, **options):
    """Train a Table 2 model on a data set; checkpoints and a per-epoch log go to --out.

    Every epoch appends to log.csv; every --checkpoint-every epochs, on SIGINT/SIGTERM and at
    the end, last.pt (for --resume) and model.safetensors (lowest held-out loss) are written.  Under
    `torchrun --nproc-per-node=K -m pydiff train ...` the K ranks share each batch.
    """
    from .distributed import launched_rank, teardown
    from .errors import ConfigError
    from .train import train as run

    if model_id is None and options.get("network") in (None, "surrogate"):
        raise ConfigError("give --model N (a Table 2 row) for the 2021 surrogate, or --network encdec/unet")
    config = make_config(model_id, data, **options)
    try:
        result = run(config, out, resume=resume)
    finally:
        teardown()
    if launched_rank() == 0:
        what = f"model {model_id}" if model_id is not None else config.network
        click.echo(f"trained {what} into {result.run_dir}: best epoch {result.best_epoch} "
                   f"(held-out loss {result.best_val_loss:.4g}), {result.rollbacks} roll-backs, {result.seconds:.0f} s")


@main.command(context_settings=CONTEXT)
@click.option("--id", "--model", "model_id", type=int, default=9, show_default=True, help="Table 2 model id (1-14).")
@click.option("--width", type=float, default=1.0, show_default=True, help="Channel multiplier.")
@reports_errors()
def model(model_id, width):
    """Print Table 1 from the live network of a Table 2 model: layers, activations, shapes, parameters."""
    import pandas as pd

    from .models import Surrogate, describe
    from .registry import paper_model

    row = paper_model(model_id)
    net = Surrogate(row.p1, row.p2, row.dropout, width)
    table = pd.DataFrame(describe(net))
    drops = " ".join(f"D{i + 1}={'-' if d is None else f'{d:g}'}" for i, d in enumerate(row.dropout))
    click.echo(f"model {model_id}: p1={row.p1:g} p2={row.p2:g} {drops} w={row.w:g} loss={row.loss} width={width:g}")
    with pd.option_context("display.max_rows", None, "display.width", 120):
        click.echo(table.to_string(index=False))
    click.echo(f"total parameters: {sum(p.numel() for p in net.parameters()):,}")


def print_comparison(results, fmt: str = "text", models=None) -> None:
    from .report import comparison_table, format_table

    click.echo(format_table(comparison_table(results, models=models or range(1, 15)), fmt))


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id (1-14).")
@click.option("--all", "all_models", is_flag=True, help="All 14 models, one after the other (resumable).")
@training_options
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True, help="Where runs go.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Where the generated data sets are cached.")
@click.option("--backend", default="spectral", show_default=True, help=BACKEND_HELP)
@reports_errors(data_error_code=2)
def reproduce(model_id, all_models, runs, data_dir, backend, preset, seed, **options):
    """Reproduce Table 2 rows end to end: data, training, test metrics, figures, table.

    Generates the data set when missing (cached in --data-dir by size and seed), trains the
    model (quick preset: minutes on a CPU; paper: the published set-up, for a GPU), evaluates it
    on the test split, and prints our residuals beside the published ones.  Run it again with the
    same arguments and it continues where it stopped; finished steps are reused.
    """
    from .distributed import launched_rank, teardown
    from .errors import ConfigError
    from .registry import paper_model
    from .reproduce import reproduce as run

    if all_models == (model_id is not None):
        raise ConfigError("give either --model N or --all")
    models = list(range(1, 15)) if all_models else [model_id]
    for m in models:
        paper_model(m)  # an unknown id fails before any work
    options["split"] = parse_split(options.get("split"))
    results = {}
    try:
        for m in models:
            if launched_rank() == 0:
                click.echo(f"== model {m} (preset {preset}) ==")
            metrics = run(m, preset, runs, data_dir, seed, backend, **options)
            if metrics is None:  # a torchrun rank other than 0: rank 0 reports
                continue
            results[m] = metrics["test"]
            click.echo(f"run directory: {metrics['run_dir']} (metrics.json, table.csv, fig*.png)")
    finally:
        teardown()
    if not results:
        return
    click.echo(f"\nTable 2, preset {preset}: test-set residuals, ours beside the paper's")
    print_comparison(results, models=models)


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--splits", default="test", show_default=True, help="Comma-separated: test, train, val.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def evaluate(run_dir, splits, device):
    """Metrics of a trained run on its own test split, written to metrics.json with figures."""
    from .errors import ConfigError
    from .steps import evaluate_run

    chosen = tuple(s.strip() for s in splits.split(","))
    if not set(chosen) <= {"test", "train", "val"} or "test" not in chosen:
        raise ConfigError("--splits takes test, train and val, and must include test")
    metrics = evaluate_run(run_dir, chosen, device)
    test = metrics["test"]
    click.echo(f"{run_dir}: {test['n_samples']} test samples")
    click.echo(f"  mean residual {test['mean_res']:.4g}, 99th percentile {test['p99_res']:.4g}, "
               f"max {test['max_res']:.4g}, mean relative residual {test['mean_rel_res']:.4g}, "
               f"gradient residual {test['grad_res']:.4g}")
    if len(test.get("regions", [])) > 1:  # data with several source counts (the 2024 problem)
        import pandas as pd

        click.echo("mean absolute error per number of sources and region (test):")
        click.echo(pd.DataFrame(test["regions"]).to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    if metrics["model"]:
        print_comparison({metrics["model"]: test}, models=[metrics["model"]])
    click.echo(f"wrote {run_dir}/metrics.json and figures")


@main.command(context_settings=CONTEXT)
@click.argument("runs", type=click.Path(file_okay=False), default="runs")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "markdown", "latex"]), default="text", show_default=True)
@click.option("--preset", help="Only runs of this preset.")
@reports_errors()
def table(runs, fmt, preset):
    """Table 2 from every evaluated run under RUNS, ours beside the published values."""
    from pathlib import Path

    from .errors import DataFileError
    from .report import collect_runs

    if not Path(runs).is_dir():
        raise DataFileError(f"{runs}: no such directory")
    found = collect_runs(runs)
    if preset:
        found = {preset: found.get(preset, [])}
    if not found:
        found = {"(none)": []}
    for name, runs_found in found.items():
        if fmt == "text":
            click.echo(f"Table 2, preset {name}: {len({m for m, _, _ in runs_found})} of 14 models evaluated "
                       f"({len(runs_found)} runs)")
        print_comparison([(m, run, r["test"]) for m, run, r in runs_found], fmt)


@bench.command("train", context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id (1-14; default 9 for the 2021 surrogate, none for the 2024 networks).")
@training_options
@click.option("--steps", type=int, default=10, show_default=True, help="Timed optimiser steps (after warm-up).")
@reports_errors()
def bench_train(model_id, steps, preset, **options):
    """Training samples/s of a Table 2 model under a preset, on the chosen device, with the
    projected hours of the whole run (its epochs) and the bytes its checkpoints write per epoch.

    \b
      pydiff bench train --preset paper              # the published set-up, full width
      pydiff bench train --preset paper --compile reduce-overhead
      pydiff bench train --preset paper2024 --training-data online   # + the share of fresh samples
    """
    import pandas as pd

    from .bench import bench_train as run, machine
    from .errors import ConfigError

    from .registry import preset as preset_values

    if steps < 1:
        raise ConfigError("--steps must be positive")
    if model_id is None and (options.get("network") or preset_values(preset).get("network", "surrogate")) == "surrogate":
        model_id = 9
    config = make_config(model_id, None, preset, **options)
    row = run(config, steps=steps)
    click.echo(f"# {machine()}")
    with pd.option_context("display.max_columns", None, "display.width", 200):
        click.echo(pd.DataFrame([row]).T.to_string(header=False, float_format=lambda v: f"{v:.4g}"))


@main.group(context_settings=CONTEXT)
def study():
    """Studies of many runs (the 2024 papers'): see `pydiff study train-size --help`."""


@study.command("train-size", context_settings=CONTEXT)
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="quick2024", show_default=True,
              help="Set-up of every run: quick2024 (64^2, CPU: the whole default study in under an hour on 2 cores) "
              "or paper2024 (512^2, the 2024 code's; GPUs).")
@click.option("--runs", type=click.Path(file_okay=False), required=True, help="Study directory (created; reused to resume).")
@click.option("--fractions", default=",".join(f"{f:g}" for f in (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)),
              show_default=True, help="Training-set fractions, equal per source count.")
@click.option("--seeds", default="0,1", show_default=True, help="Run seeds per fraction (initialisation, batches, subset).")
@click.option("--data", "data_kind", type=click.Choice(["file", "online", "both"]), default="file", show_default=True,
              help="file: the fixed subsets; online: fresh exact samples, the same steps per point; both.")
@click.option("--epochs", type=int, help="Epochs of every run (default: the preset's).")
@click.option("--width", type=float, help="Channel multiplier (default: the preset's).")
@click.option("--network", type=click.Choice(["encdec", "unet"]), help="2024 network (default: the preset's, encdec).")
@click.option("--loss", help="Loss by name (default: the preset's, tanh-MAE).")
@click.option("--lr", type=float, help="Adam learning rate (default: the preset's).")
@click.option("--batch-size", type=int, help="Global batch size (default: the preset's, 50).")
@click.option("--n-samples", type=int, help="Size of the data set generated and split (default: the preset's).")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Where the generated data set is cached.")
@click.option("--data-seed", type=int, default=0, show_default=True, help="Seed of the data set and of its split.")
@click.option("--backend", default="spectral", show_default=True, help=BACKEND_HELP)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
@reports_errors(data_error_code=2)
def train_size(preset, runs, fractions, seeds, data_kind, data_dir, data_seed, backend, **overrides):
    """Test error against training-set size (the 2024 study), optionally beside online data.

    Trains one model per fraction and seed on the preset's data set (generated and cached
    when missing), evaluates it on the common test split, and writes RUNS/train_size.csv
    (data, fraction, n_train, seed, steps, mean_res, p99_res, max_res, ...), train_size.png and
    train_size_fit.json, then prints the fit mean_res = a + b ln(n_train) with its R^2.  Run the
    same command again to continue an interrupted study; finished runs are reused.
    """
    from .distributed import launched_rank, teardown
    from .study import train_size_study

    kinds = ("file", "online") if data_kind == "both" else (data_kind,)

    def report(row):
        click.echo(f"{row['data']:>6} fraction {row['fraction']:<7g} n_train {row['n_train']:>6} seed {row['seed']}: "
                   f"mean {row['mean_res']:.4g}, p99 {row['p99_res']:.4g}, max {row['max_res']:.4g} "
                   f"({row['train_s']:.0f} s)")

    try:
        table, fits = train_size_study(
            preset, runs, parse_list(fractions, float, "--fractions"), parse_list(seeds, int, "--seeds"), kinds,
            data_dir, data_seed, backend, on_point=report, **overrides)
    finally:
        teardown()
    if launched_rank() != 0:
        return
    for kind, fit in fits.items():
        click.echo(f"{kind}: mean_res = {fit.a:.4g} {'+' if fit.b >= 0 else '-'} {abs(fit.b):.4g} ln(n_train), "
                   f"R^2 = {fit.r2:.3f} over {fit.points} runs")
    click.echo(f"wrote {runs}/train_size.csv, train_size.png, train_size_fit.json")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--method", "methods", default="mc-dropout,physics,inverse", show_default=True,
              help="Comma-separated estimators: mc-dropout (spread of dropout-on predictions), physics (residual of the "
              "stationary equation), inverse (a field-to-sources network reads the prediction; trained once into RUN/inverse).")
@click.option("--samples", type=int, default=32, show_default=True, help="MC-dropout passes.")
@click.option("--inverse-epochs", type=int, help="Epochs of the inverse network (default 5). A finished RUN/inverse is reused; "
              "remove it to train it with other epochs.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def trust(run_dir, methods, samples, inverse_epochs, device):
    """How well label-free scores predict a run's test errors: RUN/trust.csv and trust.png.

    Each method scores every test sample without its ground truth; the table gives the Spearman
    correlation of the score with the true mean and max residual, and the precision and recall of
    flagging the worst 5 % of samples with the threshold that flags 5 %.
    """
    from .errors import ConfigError
    from .trust import trust as run

    if samples < 2:
        raise ConfigError(f"--samples must be at least 2, got {samples}")
    table = run(run_dir, tuple(m.strip() for m in methods.split(",") if m.strip()), samples, device, inverse_epochs)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"wrote {run_dir}/trust.csv and trust.png")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False), required=True,
              help="(n, L, L) source images: an HDF5 file with an 'inputs' data set (a pydiff data file) or a .npy file.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write (must not exist).")
@click.option("--uncertainty", is_flag=True, help="Also write mc_dropout_std and physics_residual maps.")
@click.option("--samples", type=int, default=32, show_default=True, help="MC-dropout passes (with --uncertainty).")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def predict(run_dir, inputs_path, out, uncertainty, samples, device):
    """Predict the fields of your own source images with a trained run (its model.safetensors)."""
    from .inference import predict_file

    summary = predict_file(run_dir, inputs_path, out, uncertainty, samples, device)
    extra = "".join(f", {k} {v:.3g}" for k, v in summary.items() if k.startswith("mean"))
    click.echo(f"wrote {out}: {summary['samples']} predictions of {summary['lattice']}x{summary['lattice']}{extra}")


@main.command("compare", context_settings=CONTEXT)
@click.option("--models", default="surrogate,encdec,unet,fno", show_default=True,
              help="Comma-separated: surrogate (2021, 100x100 only), encdec, unet (2024), fno (neuraloperator).")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="quick", show_default=True,
              help="Data, split, loss and optimiser of every model: quick (the 2021 quick data, 100x100, where all "
              "four run) or quick2024; the paper presets for GPUs.")
@click.option("--runs", type=click.Path(file_okay=False), default="runs/compare", show_default=True,
              help="Directory of the runs and of compare.csv (reused to resume).")
@click.option("--budget-minutes", type=float,
              help="The same wall time per model: each model's epochs are set from its measured speed before it "
              "trains (default without --epochs: 12 for quick and quick2024, the whole comparison in under an hour "
              "on 2 cores); 0: every model gets the preset's epochs (the default of the other presets).")
@click.option("--width", type=float, help="Channel multiplier of every model (default: the preset's).")
@click.option("--epochs", type=int, help="Epochs of every model, instead of a time budget.")
@click.option("--n-samples", type=int, help="Size of the data set (default: the preset's).")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the data, split and initialisations.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def compare_models(models, preset, runs, budget_minutes, data_dir, seed, **overrides):
    """Train the surrogate, the encoder-decoder, the U-Net and the FNO on the same data, split,
    loss and budget; write RUNS/compare.csv and compare.md (test residuals, parameters, training
    time, inference ms per sample, and the error on a lattice twice as fine)."""
    from .compare import compare, format_compare
    from .distributed import launched_rank, teardown

    def report(row):
        click.echo(f"{row['model']:>9}: {row['params']:,} parameters, mean {row['mean_res']:.4g}, "
                   f"p99 {row['p99_res']:.4g}, {row['epochs']} epochs in {row['train_s']:.0f} s")

    try:
        table = compare(tuple(m.strip() for m in models.split(",") if m.strip()), preset, runs, data_dir, seed,
                        budget_minutes, on_model=report, **overrides)
    finally:
        teardown()
    if launched_rank() == 0 and table is not None:
        click.echo(format_compare(table, "text"))
        click.echo(f"wrote {runs}/compare.csv, compare.md, compare.json")
