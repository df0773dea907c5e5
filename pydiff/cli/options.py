"""Options shared by several commands, and their parsing into library values."""

from __future__ import annotations

import click

from ..problem.parameters import DIFFUSIVITIES, SETUPS
from ..registry import PRESETS


def problem_options(command):
    """The options that define the diffusion problem (docs/problem.md), shared by commands."""
    options = [
        click.option("--lattice", type=int, show_default="100; darcy: 85",
                     help="Cells per side L of the square lattice (darcy: 85, 141, 211 or 421, kept from the solve lattice)."),
        click.option("--solve-lattice", type=int, show_default="the lattice; darcy: 421",
                     help="Solve on this lattice and keep every r-th cell, r = (solve lattice - 1) / (lattice - 1) "
                     "(--setup darcy, as the FNO paper's data)."),
        click.option("--radius", type=int, show_default="5", help="Source disk radius, in cells."),
        click.option("--n-sources", show_default="2",
                     help="Disks per image, or a range such as 1-20 (--setup paper2024: every count equally often)."),
        click.option("--setup", type=click.Choice(list(SETUPS)), default="paper2021", show_default=True,
                     help="Source recipe: paper2021 (genData.jl: img = img*U + disk in turn), paper2024 "
                     "(runSim.jl: each disk added with an amplitude uniform in [0.01, 1]), or darcy (Darcy flow "
                     "as the FNO paper poses it: -div(a grad u) = 1 on the unit square, a = 12 or 3 from a Gaussian "
                     "random field, u stored as it is; its defaults: --D 3 --contrast 4 --gamma 0)."),
        click.option("--D", "D", type=float, show_default="1; darcy: 3",
                     help="Diffusion constant (cells^2 per time unit); darcy: the low value of a."),
        click.option("--gamma", type=float, show_default="1/400; darcy: 0", help="Decay rate (per time unit)."),
        click.option("--t-max", default=3000.0, show_default=True, help="Integration time of the ODE."),
        click.option(
            "--source-model",
            type=click.Choice(["production", "clamped"]),
            default="production",
            show_default=True,
            help="production: the image is a source term (the original code); "
            "clamped: disk cells held at their values (the paper's wording; --backend direct).",
        ),
        click.option("--diffusivity", type=click.Choice(list(DIFFUSIVITIES)), show_default="constant; darcy: darcy",
                     help="D(x): constant (the papers'); inclusions (random disks of D*contrast or "
                     "D/contrast in a background D); lognormal (exp of a Gaussian random field, max/min = contrast). "
                     "Each sample draws its own map."),
        click.option("--contrast", type=float, show_default="10; darcy: 4",
                     help="An inclusion's D over the background's (up or down), the lognormal field's max/min, or "
                     "darcy's high value of a over its low one."),
        click.option("--inclusions", default=12, show_default=True, help="Inclusion disks per sample (radius L/20-L/8)."),
        click.option("--correlation-length", type=float, show_default="L/10",
                     help="Correlation length of the lognormal field, in cells (at most L)."),
        click.option("--sources", type=click.Choice(["disks", "ellipses", "mixed"]), default="disks", show_default=True,
                     help="Source shapes: disks (the papers'), ellipses of the disk's area (aspect 1-3, any "
                     "orientation), or mixed."),
        click.option("--boundary", type=click.Choice(["dirichlet", "neumann", "periodic", "mixed"]),
                     default="dirichlet", show_default=True,
                     help="Walls: dirichlet (zero values outside, the papers'), neumann (no flux), periodic, or mixed "
                     "(each sample draws one of the three; stored per sample, read by the networks as two planes)."),
        click.option("--target", type=click.Choice(["auto", "t_max", "stationary"]), show_default="auto",
                     help="The field: at t_max (the papers' code) or stationary; auto: t_max for the papers' problem, "
                     "stationary for every other."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_problem(setup="paper2021", n_sources=None, **values):
    """The Problem of the problem options; an option not given (None) takes the setup's default
    (:data:`~pydiff.problem.parameters.SETUP_DEFAULTS`), else the Problem's own."""
    from ..errors import ConfigError
    from ..problem import Problem

    if n_sources is not None:
        low, _, high = str(n_sources).partition("-")
        try:
            values["min_sources"], values["n_sources"] = int(low), int(high or low)
        except ValueError:
            raise ConfigError(f"--n-sources takes a count or a range like 1-20, got {n_sources!r}") from None
    return Problem.for_setup(setup, **values)


BACKEND_HELP = ("Solver: auto (spectral where D is constant, else direct up to 64^2 and torch-mg above), "
                "spectral (exact, fast; constant D), timestep (RKC time integration to t_max), direct (sparse LU), "
                "torch-mg (CG preconditioned by a geometric multigrid V-cycle, in PyTorch; any D, stationary), "
                "multigrid (pyamg CG), torch-cg (CG in PyTorch, preconditioned by the constant-D inverse), "
                "torch (the spectral solver in PyTorch; constant D), julia (DifferentialEquations.jl).")


PRESET_NAMES = list(PRESETS)  # the registry's, in its order


def parse_labels(value):
    """--labels all|none|FRACTION -> 1.0, 0.0 or the fraction (None: the preset's)."""
    from ..errors import ConfigError

    if value is None:
        return None
    named = {"all": 1.0, "none": 0.0}
    if value in named:
        return named[value]
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--labels takes all, none or a fraction, got {value!r}") from None


def training_options(command):
    """Options shared by `train`, `reproduce` and `bench train`: each overrides the preset's value."""
    options = [
        click.option("--preset", type=click.Choice(PRESET_NAMES), default="quick", show_default=True,
                     help="Defaults for everything below: quick (CPU minutes), paper (the original set-up; GPU), smoke "
                     "(seconds); quick2024, paper2024 (the 2024 encoder-decoder on 1-20 sources; CPU / GPU); "
                     "quick-varied, paper-varied (the same reading D as well, on inclusions of contrast 10; CPU / GPU); "
                     "darcy85 (Darcy flow at 85^2 as the FNO paper poses it, its FNO configuration)."),
        click.option("--network", type=click.Choice(["surrogate", "encdec", "unet", "fno"]),
                     help="surrogate: the 2021 NN1 + NN2 of a Table 2 row (default); encdec, unet: the 2024 "
                     "encoder-decoder and U-Net (any lattice); fno: neuraloperator's Fourier Neural Operator "
                     '(any lattice; pip install "pydiff[fno]").'),
        click.option("--prior", type=click.Choice(["none", "constant-d"]),
                     help="constant-d: the network reads the field of the same sources with D replaced by its "
                     "geometric mean (one spectral solve) and predicts the correction to it; none (default)."),
        click.option("--loss", help="Loss by name: MAE, MSE, fourth-power, Huber (Eq. 1-2, weight on the target), "
                     "exp-MAE, exp-MSE, exp-Huber, tanh-MAE, tanh-MSE, tanh-Huber (the 2024 code's weights), "
                     "rel-L2 (relative L2 per sample, the FNO paper's); "
                     "default: the Table 2 row's or the preset's."),
        click.option("--loss-delta", type=float, help="Threshold of the Huber losses, in field units (default 0.1)."),
        click.option("--loss-w2", type=float, help="Step height of the tanh losses: how much more a pixel with a field "
                     "weighs than the empty background (default 2000, the 2024 code's)."),
        click.option("--fno-modes", type=click.IntRange(min=1),
                     help="Fourier modes per axis of the FNO, both signs counted as neuraloperator counts them "
                     "(default 16; darcy85: 24, the FNO paper's 12)."),
        click.option("--w", "w", type=float, help="Loss weight w (Eq. 1; the 2024 losses' w); default: the Table 2 row's."),
        click.option("--width", type=float, help="Channel multiplier of the networks (1 = the papers')."),
        click.option("--epochs", type=int, help="Epochs (paper: 800)."),
        click.option("--batch-size", type=int, help="Global training batch size (paper: 25); K torchrun ranks take B/K each."),
        click.option("--lr", type=float, help="Adam learning rate (paper: 5e-6)."),
        click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "halving"]),
                     help="Learning-rate schedule: constant, cosine (to lr/100 at the last epoch), or halving every "
                     "--lr-halve-every epochs (the FNO paper's)."),
        click.option("--lr-halve-every", type=int, help="Epochs between halvings of the halving schedule (default 100)."),
        click.option("--weight-decay", type=float, help="Adam's L2 penalty on the weights (default 0; darcy85: 1e-4)."),
        click.option("--field-scale", type=float, help="The network's output times this is the field (default 1; "
                     "darcy85: 0.01, the order of Darcy flow's u)."),
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
        click.option("--physics-weight", type=float,
                     help="Add this weight times the physics loss (the residual of the discrete stationary equation, "
                     "its unknown scale fitted, plus the peak's distance from 1) to the data loss; any network."),
        click.option("--labels", "labels",
                     help="Fraction of training samples whose fields the data loss sees: all (default), none (physics "
                     "alone: with --training-data online no solver runs at all), or a number in (0, 1) (few labels "
                     "plus physics on every sample). Needs --physics-weight > 0 unless all."),
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
    from ..errors import ConfigError

    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--split must be three comma-separated fractions, got {text!r}") from None
    return parts


def parse_list(text, kind, option):
    from ..errors import ConfigError

    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} must be a comma-separated list of numbers, got {text!r}") from None


def parse_training(options: dict) -> dict:
    """``options`` of :func:`training_options` with their texts parsed (--split, --labels): what
    every command that takes them hands on, so that none passes a text where a number belongs."""
    return {**options, "split": parse_split(options.get("split")), "labels": parse_labels(options.get("labels"))}


def make_config(model, data, preset, **options):
    from ..training.config import config_for

    return config_for(model, preset, data=str(data) if data else "", **parse_training(options))
