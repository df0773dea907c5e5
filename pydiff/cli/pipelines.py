"""Pipelines: reproduce (Table 2), study train-size, compare, trust."""

from __future__ import annotations

import os

import click

from ..problem.parameters import BOUNDARIES
from ..registry import PINN_DEFAULTS, STUDY_NETWORKS, STUDY_PRESETS
from .app import AGAIN, CONTEXT, main, reports_errors
from .options import (BACKEND_HELP, PRESET_NAMES, estimate_options, field_option, given, parse_list, parse_training,
                      training_options)


def parse_seeds(text: str) -> tuple[int, ...]:
    """--seeds 0,1,2 -> (0, 1, 2): seeds (:func:`pydiff.seeds.check_seeds`), at least one, each once
    (a repeat is dropped); all checked before any is used."""
    from ..errors import ConfigError
    from ..seeds import check_seeds

    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ConfigError(f"--seeds takes comma-separated non-negative integers such as 0,1,2, got {text!r}")
    return check_seeds(dict.fromkeys(int(part) for part in parts))


@main.command(context_settings=CONTEXT)
@click.option("--model", "model_id", type=int, help="Table 2 model id (1-14).")
@click.option("--all", "all_models", is_flag=True, help="All 14 models, one after the other (resumable).")
@training_options
@click.option("--seeds", help="Several seeds, comma-separated (0,1,2), instead of --seed: each seed its own split, "
              "initialisation and batches, all on the one data set (of seed 0). Runs seed by seed: every model of "
              "the first seed, then every model of the next, so an interrupted job has whole tables of the seeds "
              "it finished; finished runs are reused. The table gives each row's mean ± sample standard deviation "
              "over the seeds, the rank agreement with its bootstrap interval and the findings seed by seed.")
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True, help="Where runs go.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Where the generated data sets are cached.")
@click.option("--backend", default="auto", show_default=True, help=BACKEND_HELP)
@reports_errors(data_error_code=2, continued=AGAIN)
def reproduce(model_id, all_models, runs, data_dir, backend, preset, seed, seeds, **options):
    """Reproduce Table 2 rows end to end: data, training, test metrics, figures, table.

    Generates the data set when missing (cached in --data-dir by size; every seed trains on the
    same one, the seed drawing its split, initialisation and batches), trains the model (quick
    preset: minutes on a CPU; paper: the published set-up, for a GPU), evaluates it on the test
    split, and prints our residuals beside the published ones.  Run it again with the same
    arguments and it continues where it stopped; finished steps are reused.

    \b
      pydiff reproduce --all --seeds 0,1,2    # runs/quick/modelNN-seedS, seed 0's 14 models first
      pydiff table runs                       # the same table, mean ± std over the seeds
    """
    from click.core import ParameterSource

    from ..errors import ConfigError
    from ..evaluation.report import seed_report
    from ..pipelines.reproduce import reproduce as run
    from ..pipelines.reproduce import run_order
    from ..registry import paper_model
    from ..seeds import check_seed
    from ..training.distributed import launched_rank, teardown

    if all_models == (model_id is not None):
        raise ConfigError("give either --model N or --all")
    if seeds is not None and click.get_current_context().get_parameter_source("seed") is not ParameterSource.DEFAULT:
        raise ConfigError("give either --seed S or --seeds LIST, not both")
    seed_list = parse_seeds(seeds) if seeds is not None else (check_seed(seed),)
    models = list(range(1, 15)) if all_models else [model_id]
    for m in models:
        paper_model(m)  # an unknown id fails before any work
    options = parse_training(options)
    results = []
    try:
        for s, m in run_order(models, seed_list):
            if launched_rank() == 0:
                click.echo(f"== model {m}{f', seed {s}' if len(seed_list) > 1 else ''} (preset {preset}) ==")
            metrics = run(m, preset, runs, data_dir, s, backend, **options)
            if metrics is None:  # a torchrun rank other than 0: rank 0 reports
                continue
            results.append((m, os.path.relpath(metrics["run_dir"], runs), metrics["test"]))
            click.echo(f"run directory: {metrics['run_dir']} (metrics.json, table.csv, fig*.png)")
    finally:
        teardown()
    if not results:
        return
    over = f", the mean over seeds {','.join(map(str, seed_list))}" if len(seed_list) > 1 else ""
    click.echo(f"\nTable 2, preset {preset}: test-set residuals{over}, ours beside the paper's")
    click.echo(seed_report(results, models=models, runs_column=False))


@main.group(context_settings=CONTEXT)
def study():
    """Studies of many runs (the 2024 papers'): see `pydiff study train-size --help`."""


@study.command("train-size", context_settings=CONTEXT)
@click.option("--preset", type=click.Choice(STUDY_PRESETS), default="quick2024", show_default=True,
              help="Set-up of every run: quick2024 (64^2, CPU: the whole default study in under an hour on 2 cores), "
              "paper2024 (512^2, the 2024 code's; GPUs), or quick-varied and paper-varied (the same, the network "
              "reading D as well, on inclusions of contrast 10).")
@click.option("--runs", type=click.Path(file_okay=False), required=True, help="Study directory (created; reused to resume).")
@click.option("--fractions", default=",".join(f"{f:g}" for f in (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)),
              show_default=True, help="Training-set fractions, equal per source count.")
@click.option("--seeds", default="0,1", show_default=True, help="Run seeds per fraction (initialisation, batches, subset).")
@click.option("--data", "data_kind", type=click.Choice(["file", "online", "both"]), default="file", show_default=True,
              help="file: the fixed subsets; online: fresh exact samples, the same steps per point; both.")
@field_option("epochs", help="Epochs of every run.", presets=STUDY_PRESETS)
@field_option("width", help="Channel multiplier of every run.", presets=STUDY_PRESETS)
@field_option("network", help="2024 network of every run.", choices=STUDY_NETWORKS, presets=STUDY_PRESETS)
@field_option("loss", help="Loss by name (see pydiff train --help).", presets=STUDY_PRESETS)
@field_option("lr", presets=STUDY_PRESETS)
@field_option("batch_size", presets=STUDY_PRESETS)
@field_option("n_samples", help="Size of the data set generated and split.", presets=STUDY_PRESETS)
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Where the generated data set is cached.")
@click.option("--data-seed", type=int, default=0, show_default=True, help="Seed of the data set and of its split.")
@click.option("--backend", default="auto", show_default=True, help=BACKEND_HELP)
@field_option("device")
@reports_errors(data_error_code=2, continued=AGAIN)
def train_size(preset, runs, fractions, seeds, data_kind, data_dir, data_seed, backend, **overrides):
    """Test error against training-set size (the 2024 study), optionally beside online data.

    Trains one model per fraction and seed on the preset's data set (generated and cached
    when missing), evaluates it on the common test split, and writes RUNS/train_size.csv
    (data, fraction, n_train, seed, steps, mean_res, p99_res, max_res, ...), train_size.png and
    train_size_fit.json, then prints the fit mean_res = a + b ln(n_train) with its R^2.  Run the
    same command again to continue an interrupted study; finished runs are reused.
    """
    from ..pipelines.study import train_size_study
    from ..training.distributed import launched_rank, teardown

    kinds = ("file", "online") if data_kind == "both" else (data_kind,)

    def report(row):
        click.echo(f"{row['data']:>6} fraction {row['fraction']:<7g} n_train {row['n_train']:>6} seed {row['seed']}: "
                   f"mean {row['mean_res']:.4g}, p99 {row['p99_res']:.4g}, max {row['max_res']:.4g} "
                   f"({row['train_s']:.0f} s)")

    try:
        table, fits = train_size_study(
            preset, runs, parse_list(fractions, float, "--fractions"), parse_list(seeds, int, "--seeds"), kinds,
            data_dir, data_seed, backend, on_point=report, **given(overrides))
    finally:
        teardown()
    if launched_rank() != 0:
        return
    for kind, fit in fits.items():
        click.echo(f"{kind}: mean_res = {fit.a:.4g} {'+' if fit.b >= 0 else '-'} {abs(fit.b):.4g} ln(n_train), "
                   f"R^2 = {fit.r2:.3f} over {fit.points} runs")
    click.echo(f"wrote {runs}/train_size.csv, train_size.png, train_size_fit.json")


@main.command("compare", context_settings=CONTEXT)
@click.option("--models", default="surrogate,encdec,unet,fno", show_default=True,
              help="Comma-separated: surrogate (2021, 100x100 only), encdec, unet (2024), fno (neuraloperator).")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="quick", show_default=True,
              help="Data, split, loss and optimiser of every model: quick (the 2021 quick data, 100x100, where all "
              "four run), quick2024, quick-varied, or darcy85 (Darcy flow as the FNO paper poses it: the field's "
              "benchmark, relative L2 beside the published values); the paper presets for GPUs.")
@click.option("--runs", type=click.Path(file_okay=False), default="runs/compare", show_default=True,
              help="Directory of the runs and of compare.csv (reused to resume).")
@click.option("--budget-minutes", type=float,
              help="The same wall time per model: each model's epochs are set from its measured speed before it "
              "trains (default without --epochs: 12 for quick, quick2024 and quick-varied, the whole comparison in under an "
              "hour on 2 cores; 20 for darcy85); 0: every model gets the preset's epochs (the default of the other presets).")
@field_option("width", help="Channel multiplier of every model.")
@field_option("epochs", help="Epochs of every model, instead of a time budget.")
@field_option("n_samples", help="Size of the data set.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True)
@field_option("seed", help="Seed of the data, split and initialisations.")
@field_option("device")
@reports_errors(data_error_code=2, continued=AGAIN)
def compare_models(models, preset, runs, budget_minutes, data_dir, seed, **overrides):
    """Train the surrogate, the encoder-decoder, the U-Net and the FNO on the same data, split,
    loss and budget; write RUNS/compare.csv and compare.md (test residuals, parameters, training
    time, inference ms per sample, and the error on a lattice twice as fine)."""
    from ..pipelines.compare import compare, format_compare
    from ..training.distributed import launched_rank, teardown

    def report(row):
        click.echo(f"{row['model']:>9}: {row['params']:,} parameters, mean {row['mean_res']:.4g}, "
                   f"p99 {row['p99_res']:.4g}, relative L2 {row['rel_l2']:.4g}, {row['epochs']} epochs in "
                   f"{row['train_s']:.0f} s")

    try:
        table = compare(tuple(m.strip() for m in models.split(",") if m.strip()), preset, runs, data_dir, seed,
                        budget_minutes, on_model=report, **given(overrides))
    finally:
        teardown()
    if launched_rank() == 0 and table is not None:
        click.echo(format_compare(table, "text"))
        click.echo(f"wrote {runs}/compare.csv, compare.md, compare.json")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--method", "methods", default="mc-dropout,physics,inverse,a-posteriori", show_default=True,
              help="Comma-separated estimators, or all: mc-dropout (spread of dropout-on predictions), physics (residual "
              "of the stationary equation), inverse (a field-to-sources network reads the prediction; trained once into "
              "RUN/inverse), a-posteriori (the error from a few CG steps on the error equation; exact for constant D), "
              "learned (a small CNN fitted on the validation split to each prediction's error), ensemble (more "
              "networks of the run's configuration, other seeds; trained once into RUN/ensemble).")
@click.option("--samples", type=int, default=32, show_default=True, help="mc-dropout: passes.")
@click.option("--inverse-epochs", type=click.IntRange(min=1), help="Epochs of the inverse network (default 5). A finished RUN/inverse is reused; "
              "remove it to train it with other epochs.")
@estimate_options("that scores each prediction")
@click.option("--ensemble-size", type=click.IntRange(min=2), default=4, show_default=True, help="ensemble: members.")
@click.option("--ensemble-epochs", type=click.IntRange(min=1),
              help="ensemble: epochs of each member (default: the run's). Finished members are reused.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2, continued=AGAIN)
def trust(run_dir, methods, samples, inverse_epochs, iterations, preconditioner, ensemble_size, ensemble_epochs, device):
    """How well label-free scores predict a run's test errors: RUN/trust.csv and trust.png.

    Each method scores every test sample without its ground truth; the table gives the Spearman
    correlation of the score with the true mean and max residual, the precision and recall of
    flagging the worst 5 % of samples (by mean and by max residual) with the threshold that flags
    5 %, each method's milliseconds per sample, and in the row "exact" the exact solver's: an
    estimate is worth its cost only below that.
    """
    from ..pipelines.trust import parse_methods
    from ..pipelines.trust import trust as run

    table = run(run_dir, parse_methods(methods), samples, device, inverse_epochs, iterations=iterations,
                preconditioner=preconditioner,
                ensemble_size=ensemble_size, ensemble_epochs=ensemble_epochs)
    click.echo(table.drop(columns="samples").to_string(index=False, na_rep="", float_format=lambda v: f"{v:.3g}"))
    click.echo(f"wrote {run_dir}/trust.csv and trust.png")


@main.command(context_settings=CONTEXT)
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False), required=True,
              help="Source image(s): (L, L) or (n, L, L) in a .npy file, or an HDF5 file's 'inputs' data set.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="HDF5 file to write (must not exist): 'field' (n, L, L), peak 1, with 'seconds' and 'residual' per image.")
@click.option("--D", "D", default=1.0, show_default=True, help="Diffusion constant.")
@click.option("--gamma", default=1 / 400, show_default="1/400", help="Decay rate.")
@click.option("--boundary", type=click.Choice(BOUNDARIES), default="dirichlet",
              show_default=True, help="Walls, as the lattice problem's.")
@click.option("--iterations", type=click.IntRange(min=1), default=PINN_DEFAULTS["iterations"], show_default=True,
              help="Adam steps per image.")
@click.option("--width", type=click.IntRange(min=1), default=PINN_DEFAULTS["width"], show_default=True,
              help="DGM units per layer.")
@click.option("--layers", type=click.IntRange(min=1), default=PINN_DEFAULTS["layers"], show_default=True,
              help="DGM layers.")
@click.option("--points", type=click.IntRange(min=8), default=PINN_DEFAULTS["points"], show_default=True,
              help="Collocation points per step, drawn afresh (as many again near the sources).")
@click.option("--lr", type=float, default=PINN_DEFAULTS["lr"], show_default=True,
              help="First learning rate (cosine to lr/100).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@reports_errors(data_error_code=2)
def pinn(inputs_path, out, D, gamma, boundary, iterations, width, layers, points, lr, seed, device):
    """Solve the stationary equation of each source image with a physics-informed network.

    The Deep Galerkin method, per image: a network u(x, y) is fitted to D lap(u) - gamma u + f = 0
    with the lattice's walls, from collocation points alone (no solver, no data). Slow and
    approximate beside the exact solvers (see the README's "which method when"); it is here to
    show what a per-instance PINN costs and reaches on this problem.
    """
    from ..device import pick_device
    from ..pipelines.pinn import pinn_file

    summary = pinn_file(inputs_path, out, D, gamma, boundary, iterations=iterations, width=width, layers=layers,
                        points=points, lr=lr, seed=seed, device=str(pick_device(device)))
    click.echo(f"wrote {out}: {summary['samples']} fields of {summary['lattice']}x{summary['lattice']} "
               f"in {summary['seconds']:.1f} s")
