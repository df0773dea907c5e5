"""Commands that read trained runs: evaluate, table, predict, calibrate."""

from __future__ import annotations

import math
from pathlib import Path

import click

from .app import CONTEXT, main, reports_errors
from .options import estimate_options


def print_comparison(results, fmt: str = "text", models=None) -> None:
    """Our residuals beside the paper's; in text and markdown, with the rank agreement when three
    or more models have a run."""
    from ..evaluation.report import comparison_table, format_table, rank_agreement

    table = comparison_table(results, models=models or range(1, 15))
    click.echo(format_table(table, fmt))
    agreement = rank_agreement(table)
    if fmt in ("text", "markdown") and not math.isnan(agreement["mean res"]):
        models_run = table.dropna(subset=["mean res (ours)"]).model.nunique()
        click.echo(f"\nSpearman rank correlation with the paper over {models_run} models: "
                   + ", ".join(f"{label} {value:.2f}" for label, value in agreement.items()))


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--splits", default="test", show_default=True, help="Comma-separated: test, train, val.")
@click.option("--data", type=click.Path(dir_okay=False), help="Another data file to measure the run on (all of it).")
@click.option("--refine", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --data: measure the predictions after K correction steps (torch-mg V-cycles on the error "
              "equation), the answers predict --refine K gives, and their seconds per sample.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def evaluate(run_dir, splits, data, refine, device):
    """Metrics of a trained run on its own test split, written to metrics.json with figures; or
    with --data, on every sample of another data file (how the network generalises), written to
    RUN/on-NAME.json.

    \b
      pydiff evaluate runs/varied64 --data data/varied64-contrast30.h5
    """
    from ..errors import ConfigError
    from ..pipelines.steps import evaluate_run

    if data is not None:
        from pathlib import Path

        from ..evaluation.report import write_transfer_report

        result, path = write_transfer_report(run_dir, data, device, refine)
        refined = f", refined in {refine} steps ({1e3 * result['refine_seconds']:.3g} ms per sample)" if refine else ""
        click.echo(f"{run_dir} on {data}: {result['n_samples']} samples{refined}")
        click.echo(f"  mean residual {result['mean_res']:.4g}, 99th percentile {result['p99_res']:.4g}, "
                   f"max {result['max_res']:.4g}, median per-sample max {result['median_max_res']:.4g}, "
                   f"relative L2 {result['rel_l2']:.4g}")
        click.echo(f"wrote {Path(path)}")
        return

    if refine:
        raise ConfigError("--refine measures refined answers on a data file: give --data FILE")
    chosen = tuple(s.strip() for s in splits.split(","))
    if not set(chosen) <= {"test", "train", "val"} or "test" not in chosen:
        raise ConfigError("--splits takes test, train and val, and must include test")
    metrics = evaluate_run(run_dir, chosen, device)
    test = metrics["test"]
    click.echo(f"{run_dir}: {test['n_samples']} test samples")
    click.echo(f"  mean residual {test['mean_res']:.4g}, 99th percentile {test['p99_res']:.4g}, "
               f"max {test['max_res']:.4g}, relative L2 {test['rel_l2']:.4g}, mean relative residual {test['mean_rel_res']:.4g}, "
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
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap resamples of the rank correlation's interval.")
@click.option("--bootstrap-seed", type=int, default=0, show_default=True, help="Seed of those resamples.")
@reports_errors()
def table(runs, fmt, preset, resamples, bootstrap_seed):
    """Table 2 from every evaluated run under RUNS, ours beside the published values.

    The runs of one model that differ in their seed alone (RUNS/PRESET/modelNN-seedS..., as
    reproduce names them) make one row: the mean over the seeds, and with several, their number
    and sample standard deviation (text, markdown, latex: mean ± std; csv: a LABEL (std) column).
    Text and markdown add, per set of runs with the same options, the Spearman rank correlation
    of our means with the paper's (mean, 99th percentile, maximum residual) with a 95 % bootstrap
    interval (resampling the models and each model's seeds), and Table 2's findings (MAE vs MSE,
    dropout, w, NN1 alone) with the number of seeds that agree.
    """
    from pathlib import Path

    from ..errors import ConfigError, DataFileError
    from ..evaluation.report import collect_runs, seed_report
    from ..seeds import check_seed

    check_seed(bootstrap_seed, "--bootstrap-seed")  # before any of the table is printed
    if not Path(runs).is_dir():
        raise DataFileError(f"{runs}: no such directory")
    found = collect_runs(runs)
    if preset and preset not in found:
        others = f" (it holds runs of {', '.join(sorted(found))})" if found else ""
        raise ConfigError(f"no evaluated run of preset {preset} under {runs}{others}")
    if not found:
        raise ConfigError(f"no evaluated run of a Table 2 model under {runs}: pydiff reproduce makes them")
    if preset:
        found = {preset: found[preset]}
    for name, runs_found in found.items():
        if fmt == "text":
            click.echo(f"Table 2, preset {name}: {len({m for m, _, _ in runs_found})} of 14 models evaluated "
                       f"({len(runs_found)} runs)")
        click.echo(seed_report([(m, run, r["test"]) for m, run, r in runs_found], fmt, resamples=resamples,
                               seed=bootstrap_seed))


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--pretrained", help="A model shipped with pydiff instead of RUN_DIR: quick-model9 (the 2021 surrogate, "
              "100x100), quick2024-encdec (the 2024 encoder-decoder, any lattice).")
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False), required=True,
              help="(n, L, L) source images: an HDF5 file with an 'inputs' data set (a pydiff data file) or a .npy file.")
@click.option("--diffusivity", "diffusivity_path", type=click.Path(dir_okay=False),
              help="(n, L, L) diffusivity maps (.npy, or HDF5 with 'diffusivity'), for a network of the varied family; "
              "default: the inputs file's own 'diffusivity' data set.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write (must not exist).")
@click.option("--uncertainty", is_flag=True, help="Also write mc_dropout_std and physics_residual maps (with --max-error: "
              "network_mc_dropout_std and network_physics_residual, the network's prediction's, whatever answered).")
@click.option("--samples", type=int, default=32, show_default=True, help="MC-dropout passes (with --uncertainty).")
@click.option("--max-error", type=float, help="Answer from the network only where the calibrated bound on a sample's max "
              "error is at most this (field units, peak 1); solve the others exactly. Needs pydiff calibrate RUN first; "
              "writes bound and served beside prediction.")
@click.option("--calibration", "calibration_path", type=click.Path(dir_okay=False),
              help="The calibration of the bound --max-error uses (pydiff calibrate ... --out FILE); default: "
              "RUN/calibration.json.")
@click.option("--refine", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --max-error: a sample the network cannot serve is first given K correction steps from its "
              "prediction (CG on the error equation, torch-mg V-cycles) and served where their guaranteed bound (from "
              "the residual alone, no calibration) is at most the max error; only the rest are solved exactly.")
@click.option("--skip-network/--no-skip-network", default=None, show_default="on with --max-error",
              help="With --max-error: where the calibration's check half says the network would serve too few samples "
              "at this max error to repay its own cost and its estimate's, solve every sample exactly without running "
              "it (the answers and the cost of pydiff generate); --no-skip-network runs it anyway.")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def predict(run_dir, pretrained, inputs_path, diffusivity_path, out, uncertainty, samples, max_error, calibration_path,
            refine, skip_network, device):
    """Predict the fields of your own source images with a trained run (its model.safetensors)
    or a model shipped with pydiff.

    \b
      pydiff predict --pretrained quick-model9 --inputs images.npy --out fields.h5
      pydiff predict runs/quick/model09-seed0 --inputs data/two_sources.h5 --out fields.h5 --uncertainty
    """
    from ..errors import ConfigError
    from ..evaluation.inference import predict_file
    from ..training.pretrained import pretrained_dir

    if (run_dir is None) == (pretrained is None):
        raise ConfigError("give either a run directory or --pretrained NAME")
    if calibration_path is not None and max_error is None:
        raise ConfigError("--calibration is the bound of --max-error: give both, or neither")
    if refine and max_error is None:
        raise ConfigError("--refine serves refined answers under --max-error: give both, or neither")
    if skip_network is not None and max_error is None:
        raise ConfigError("--skip-network / --no-skip-network decide under --max-error: give both, or neither")
    summary = predict_file(run_dir or pretrained_dir(pretrained), inputs_path, out, uncertainty, samples, device,
                           diffusivity_path=diffusivity_path, max_error=max_error, calibration_path=calibration_path,
                           named=run_dir or f"--pretrained {pretrained}", refine=refine, skip_network=skip_network is not False)
    extra = "".join(f", {k} {v:.3g}" for k, v in summary.items() if k.startswith("mean"))
    if max_error is not None:
        refined = f", {summary['refined']:.1%} refined in {refine} steps" if refine else ""
        extra += (f"; {summary['served']:.1%} served by the network (bound <= {max_error:g}){refined}, the rest solved "
                  f"exactly; {1e3 * summary['seconds_per_answer']:.3g} ms per answer")
    if "network_skipped" in summary:
        extra += f"\nthe network was not run: {summary['network_skipped']} (--no-skip-network runs it anyway)"
    click.echo(f"wrote {out}: {summary['samples']} predictions of {summary['lattice']}x{summary['lattice']}{extra}")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--pretrained", help="A model shipped with pydiff instead of RUN_DIR (needs --data and --out).")
@click.option("--data", type=click.Path(dir_okay=False),
              help="Calibrate on this data file (fresh samples of the family the model will answer, same equation) "
              "instead of the run's held-out split.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Where to write the calibration (default: RUN/calibration.json; predict reads it with --calibration).")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="Miscoverage: a new sample's max error exceeds its bound with probability at most alpha.")
@estimate_options("the bound scales")
@click.option("--device", default="auto", show_default=True)
@reports_errors(data_error_code=2)
def calibrate(run_dir, pretrained, data, out, alpha, iterations, preconditioner, device):
    """Calibrate a bound on each prediction's max error: RUN/calibration.json.

    Split conformal prediction normalised by the a-posteriori error estimate, on samples that
    played no part in training or in choosing the best epoch: the run's held-out split that did
    not select it (test, when val did), or --data FILE.  They are halved at random: one half
    fits the bound, the other checks it (coverage, and the fraction the network would serve at
    max errors 0.05 to 0.5, the violations among them and the time per answer).  For a new
    sample of the same problem family, P(max error > bound) <= alpha.

    \b
      pydiff calibrate runs/varied64 --alpha 0.05
      pydiff calibrate --pretrained quick2024-encdec --data fresh64.h5 --out encdec-calibration.json
      pydiff predict runs/varied64 --inputs new.h5 --out answers.h5 --max-error 0.1
    """
    from ..errors import ConfigError
    from ..evaluation.bound import calibrate as run
    from ..training.pretrained import pretrained_dir

    if (run_dir is None) == (pretrained is None):
        raise ConfigError("give either a run directory or --pretrained NAME")
    if pretrained is not None and (data is None or out is None):
        raise ConfigError("a shipped model keeps no data and cannot be written into: give --data FILE and --out FILE")
    result = run(run_dir or pretrained_dir(pretrained), alpha, iterations, device, data=data, out=out,
                 preconditioner=preconditioner)
    click.echo(f"bound = {result['quantile']:.3g} x the a-posteriori max-error estimate ({result['iterations']} CG steps, "
               f"{result['preconditioner']} preconditioner), "
               f"alpha {alpha:g}, from {result['n_calibration']} samples of {result['split']}")
    test = result.get("test")
    if test:
        rough = f", within +-{test['coverage_tolerance']:.2f} with so few" if test["n"] < 100 else ""
        click.echo(f"check half ({test['n']} samples): coverage {test['coverage']:.3f} (goal >= {1 - alpha:g}{rough}), "
                   f"ms per sample: network {test['ms_network']:.3g}, estimate {test['ms_estimator']:.3g}, "
                   f"exact {test['ms_exact']:.3g} ({test['exact_solver']})")
        for row in test["by_max_error"]:
            rate = "n/a" if row["violation_rate_served"] is None else f"{row['violation_rate_served']:.3f}"
            click.echo(f"  max error {row['max_error']:g}: {row['served']:.1%} served, {row['violations']} above it "
                       f"({rate} of those served); {row['ms_per_answer']:.3g} ms per answer "
                       f"against {row['ms_exact_all']:.3g} solving all")
    click.echo(f"wrote {out or Path(run_dir) / 'calibration.json'}")
