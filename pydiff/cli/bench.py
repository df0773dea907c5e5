"""``pydiff bench``: Eq. 4's speeds, generation, reading and training throughput."""

from __future__ import annotations

import click

from ..benchmarking.varied import ASSUMED_E, ASSUMED_M
from ..nn.names import NETWORKS
from .app import CONTEXT, main, reports_errors
from .options import make_config, make_problem, problem_options, training_options


@main.group(context_settings=CONTEXT, invoke_without_command=True,
            short_help="Speed: Eq. 4 (delta, epsilon, N_min), training, inference, generation, reading.")
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

    from ..benchmarking.eq4 import bench_eq4
    from ..benchmarking.machine import machine

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

    from ..benchmarking.data import bench_generate as run
    from ..benchmarking.machine import machine
    from ..errors import ConfigError

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

    from ..benchmarking.data import bench_read as run
    from ..benchmarking.machine import machine
    from ..errors import ConfigError

    if batch_size < 1 or batches < 1:
        raise ConfigError("--batch-size and --batches must be positive")
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame([run(file, batch_size, batches)]).T.to_string(header=False, float_format=lambda v: f"{v:.4g}"))


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

    from ..benchmarking.machine import machine
    from ..benchmarking.training import bench_train as run
    from ..errors import ConfigError
    from ..registry import preset as preset_values

    if steps < 1:
        raise ConfigError("--steps must be positive")
    if model_id is None and (options.get("network") or preset_values(preset).get("network", "surrogate")) == "surrogate":
        model_id = 9
    config = make_config(model_id, None, preset, **options)
    row = run(config, steps=steps)
    click.echo(f"# {machine()}")
    with pd.option_context("display.max_columns", None, "display.width", 200):
        click.echo(pd.DataFrame([row]).T.to_string(header=False, float_format=lambda v: f"{v:.4g}"))



@bench.command("infer", context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id for the 2021 surrogate (default 9).")
@click.option("--network", type=click.Choice(NETWORKS), default="surrogate",
              show_default=True, help="Network to time.")
@click.option("--width", type=float, default=1.0, show_default=True, help="Channel multiplier (1 = the papers').")
@click.option("--lattice", type=int, help="Cells per side of the inputs (the surrogate: 100 only; default 100).")
@click.option("--batch-sizes", default="1,256", show_default=True, help="Comma-separated batch sizes.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
@reports_errors()
def bench_infer(model_id, network, width, lattice, batch_sizes, device):
    """Milliseconds per sample of a network's prediction (epsilon of Eq. 4), at several batch sizes.

    \b
      pydiff bench infer --network encdec --lattice 512 --width 1
    """
    import pandas as pd

    from ..benchmarking.machine import machine
    from ..benchmarking.speed import bench_infer as run
    from ..errors import ConfigError
    from ..registry import LATTICE
    from .options import parse_list

    lattice = lattice or LATTICE
    if network == "surrogate" and lattice != LATTICE:
        raise ConfigError(f"the 2021 surrogate takes {LATTICE}x{LATTICE} images only, not {lattice}")
    sizes = parse_list(batch_sizes, int, "--batch-sizes")
    if lattice < 3 or not sizes or min(sizes) < 1:
        raise ConfigError("--lattice must be at least 3 and every batch size positive")
    table2_row = (model_id or 9) if network == "surrogate" else None
    config = make_config(table2_row, None, "paper", network=network, width=width, device=device)
    click.echo(f"# {machine()}")
    click.echo(pd.DataFrame(run(config, lattice, sizes)).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@bench.command("varied", context_settings=CONTEXT)
@problem_options
@click.option("--lattices", default="64,128,256,512", show_default=True, help="Lattices to measure at.")
@click.option("--backends", default="torch-mg,multigrid,direct", show_default=True,
              help="Exact solvers timed for delta (to a relative residual of 1e-10).")
@click.option("--networks", default="encdec", show_default=True,
              help="Networks timed for epsilon (encdec, unet, fno), untrained; --run times that run's network instead.")
@click.option("--width", type=float, default=0.125, show_default=True, help="Channel multiplier of the networks.")
@click.option("--samples", type=int, default=4, show_default=True, help="Samples each solver is timed on.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help=f"A finished run: its data size and training seconds are M and E (without one: {ASSUMED_M:,} and "
              f"{ASSUMED_E / 3600:g} h), its "
              "network is the one timed, and its test samples' median max error is where the equal-accuracy "
              "baseline stops.")
@click.option("--network-error", type=float,
              help="Stop the equal-accuracy baseline (torch-mg) at this median per-sample max error instead of the "
              "run's (field units, peak 1).")
@reports_errors()
def bench_varied(lattices, backends, networks, width, samples, run_dir, network_error, **problem_values):
    """Eq. 4 where an exact solve is expensive (D varies), against the strongest baseline at
    equal accuracy: delta per exact solver, torch-mg stopped at the network's own error, epsilon
    per network, and delta/epsilon and N_min against both, at each lattice.

    \b
      pydiff bench varied --diffusivity inclusions --contrast 10 --run runs/quick-varied
    """
    import pandas as pd

    from ..benchmarking.eq4 import samples_made
    from ..benchmarking.machine import machine
    from ..benchmarking.varied import bench_varied as run
    from ..benchmarking.varied import median_max_error
    from ..errors import ConfigError, DataFileError
    from ..training.checkpoint import read_config, read_result
    from .options import parse_list

    problem = make_problem(**problem_values)
    if problem.setup == "darcy":
        raise ConfigError("bench varied measures the lattice problems; Darcy flow's networks are compared with "
                          "pydiff compare --preset darcy85")
    if problem.diffusivity == "constant":
        raise ConfigError("give a varied problem (--diffusivity inclusions or lognormal): with constant D the "
                          "spectral solver is exact and faster than any network (pydiff bench)")
    sizes = parse_list(lattices, int, "--lattices")
    if not sizes or min(sizes) < 3:
        raise ConfigError(f"--lattices takes lattices of at least 3 cells, comma-separated, got {lattices!r}")
    if network_error is not None and not network_error > 0:
        raise ConfigError(f"--network-error must be positive, got {network_error}")
    M, E, config = ASSUMED_M, ASSUMED_E, None
    if run_dir is not None:
        result = read_result(run_dir)
        if result is None:
            raise DataFileError(f"{run_dir}: the run is not finished (no result.json)")
        config = read_config(run_dir)
        M, E = samples_made(config, result), result["seconds"]
        if network_error is None:
            network_error = median_max_error(run_dir)
    rows = run(problem, sizes, tuple(b.strip() for b in backends.split(",")),
               tuple(n.strip() for n in networks.split(",")), width, samples, M=M, E=E, network_error=network_error,
               config=config)
    error = "" if network_error is None else f"; the network's median max error {network_error:.3g}"
    click.echo(f"# {machine()}; M = {M} samples, E = {E:.0f} s{error}")
    with pd.option_context("display.width", 250):
        click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
