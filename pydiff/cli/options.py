"""Options shared by several commands, and their parsing into library values."""

from __future__ import annotations

import dataclasses

import click

from ..problem.parameters import (BOUNDARY_CHOICES, DARCY_SOLVE_LATTICE, DIFFUSIVITIES, SETUP_DEFAULTS, SETUPS,
                                  SOURCE_MODELS, SOURCE_SHAPES, TARGETS, Problem)
from ..registry import DEFAULT_PRESET, PRECONDITIONERS, PRESET_HELP, PRESETS
from ..training.config import TABLE2_FIELDS, TrainConfig, option_text

TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
PROBLEM_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Problem)}


def setup_default(name: str, own: str | None = None, **more) -> str:
    """What a problem option shows as its default: the Problem's (or ``own``, where a rule sets
    it), then each setup's own (:data:`~pydiff.problem.parameters.SETUP_DEFAULTS`, ``more``)."""
    values = {setup: v[name] for setup, v in SETUP_DEFAULTS.items() if name in v and v[name] != PROBLEM_DEFAULTS[name]}
    values.update(more)
    own = option_text(PROBLEM_DEFAULTS[name]) if own is None else own
    return "; ".join([own] + [f"{setup}: {option_text(value)}" for setup, value in values.items()])


def problem_options(command):
    """The options that define the diffusion problem (docs/problem.md), shared by commands; their
    defaults are the Problem's and its setups' (an option not given: None, the setup's value)."""
    options = [
        click.option("--lattice", type=int, show_default=setup_default("lattice"),
                     help="Cells per side L of the square lattice (darcy: 85, 141, 211 or 421, kept from the solve lattice)."),
        click.option("--solve-lattice", type=int,
                     show_default=setup_default("solve_lattice", "the lattice", darcy=DARCY_SOLVE_LATTICE),
                     help="Solve on this lattice and keep every r-th cell, r = (solve lattice - 1) / (lattice - 1) "
                     "(--setup darcy, as the FNO paper's data)."),
        click.option("--radius", type=int, show_default=setup_default("radius"), help="Source disk radius, in cells."),
        click.option("--n-sources", show_default=setup_default("n_sources"),
                     help="Disks per image, or a range such as 1-20 (--setup paper2024: every count equally often)."),
        click.option("--setup", type=click.Choice(SETUPS), default=PROBLEM_DEFAULTS["setup"], show_default=True,
                     help="Source recipe: paper2021 (genData.jl: img = img*U + disk in turn), paper2024 "
                     "(runSim.jl: each disk added with an amplitude uniform in [0.01, 1]), or darcy (Darcy flow "
                     "as the FNO paper poses it: -div(a grad u) = 1 on the unit square, a = 12 or 3 from a Gaussian "
                     "random field, u stored as it is; its own defaults are shown beside each option's)."),
        click.option("--D", "D", type=float, show_default=setup_default("D"),
                     help="Diffusion constant (cells^2 per time unit); darcy: the low value of a."),
        click.option("--gamma", type=float, show_default=setup_default("gamma"), help="Decay rate (per time unit)."),
        click.option("--t-max", default=PROBLEM_DEFAULTS["t_max"], show_default=True, help="Integration time of the ODE."),
        click.option(
            "--source-model",
            type=click.Choice(SOURCE_MODELS),
            default=PROBLEM_DEFAULTS["source_model"],
            show_default=True,
            help="production: the image is a source term (the original code); "
            "clamped: disk cells held at their values (the paper's wording; --backend direct).",
        ),
        click.option("--diffusivity", type=click.Choice(DIFFUSIVITIES), show_default=setup_default("diffusivity"),
                     help="D(x): constant (the papers'); inclusions (random disks of D*contrast or "
                     "D/contrast in a background D); lognormal (exp of a Gaussian random field, max/min = contrast). "
                     "Each sample draws its own map."),
        click.option("--contrast", type=float, show_default=setup_default("contrast"),
                     help="An inclusion's D over the background's (up or down), the lognormal field's max/min, or "
                     "darcy's high value of a over its low one."),
        click.option("--inclusions", default=PROBLEM_DEFAULTS["inclusions"], show_default=True,
                     help="Inclusion disks per sample (radius L/20-L/8)."),
        click.option("--correlation-length", type=float, show_default="L/10",
                     help="Correlation length of the lognormal field, in cells (at most L)."),
        click.option("--sources", type=click.Choice(SOURCE_SHAPES), default=PROBLEM_DEFAULTS["sources"], show_default=True,
                     help="Source shapes: disks (the papers'), ellipses of the disk's area (aspect 1-3, any "
                     "orientation), or mixed."),
        click.option("--boundary", type=click.Choice(BOUNDARY_CHOICES), default=PROBLEM_DEFAULTS["boundary"],
                     show_default=True,
                     help="Walls: dirichlet (zero values outside, the papers'), neumann (no flux), periodic, or mixed "
                     "(each sample draws one of the three; stored per sample, read by the networks as two planes)."),
        click.option("--target", type=click.Choice(("auto", *TARGETS)), show_default=setup_default("target"),
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


BACKEND_HELP = ("Solver: auto (spectral where D is constant, else direct up to 64^2 and torch-mg above, and "
                "timestep for the field at t_max), "
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


def shown_default(f: dataclasses.Field, presets=None) -> str:
    """What a training option shows as its default, from the field's own default, the presets
    that set another value (:data:`~pydiff.registry.PRESETS`, or those of ``presets``: a command
    that takes only some) and the Table 2 row where one sets it (a command of every preset):
    ``16; darcy85: 24``, ``paper: 800; quick: 9; ...``."""

    def text(value) -> str:
        if value is None:
            return f.metadata["unset"] or "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        return option_text(value)

    presets = {name: PRESETS[name] for name in (PRESETS if presets is None else presets)}
    everywhere = all(f.name in values for values in presets.values())  # the field's own default never shows
    groups: dict[str, list[str]] = {}
    for name, values in presets.items():
        if f.name in values and (everywhere or text(values[f.name]) != text(f.default)):
            groups.setdefault(text(values[f.name]), []).append(name)
    parts = ([] if everywhere else [text(f.default)]) + [f"{', '.join(names)}: {value}" for value, names in groups.items()]
    shown = "; ".join(parts)
    # --model sets a Table 2 row of the 2021 presets, which a command of only some presets may not take
    table2 = f.name in TABLE2_FIELDS and len(presets) == len(PRESETS)
    return f"the Table 2 row's with --model, else {shown}" if table2 else shown


def _parameter_type(f: dataclasses.Field):
    if f.metadata["choices"]:
        return click.Choice(list(f.metadata["choices"]))
    # annotations are text here (from __future__ import annotations): "int", "float | None", ...
    return {"int": int, "float": float}.get(str(f.type).split("|")[0].strip(), str)


def field_option(name: str, help: str | None = None, choices: tuple[str, ...] | None = None, presets=None):
    """The command-line option of TrainConfig's field ``name``: its help (or ``help``), type,
    choices (the library's tuple, or a subset ``choices``) and shown default come from the field
    (:func:`pydiff.training.config.setting`) and the presets (or those of ``presets``, where the
    command takes only these).  No default of its own, so that the preset's value stands, except a
    ``fixed`` field's (the seed, the device), which no preset sets."""
    f = TRAIN_FIELDS[name]
    flag = "--" + name.replace("_", "-")
    help = help or f.metadata["help"]
    if str(f.type) == "bool":
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, show_default=shown_default(f, presets),
                            help=help)
    kind = click.Choice(list(choices)) if choices else _parameter_type(f)
    if name in TEXT_OPTIONS:  # parsed after click (parse_training), with messages that name the option
        kind = str
    if f.metadata["fixed"]:
        return click.option(flag, name, type=kind, default=f.default, show_default=True, help=help)
    return click.option(flag, name, type=kind, show_default=shown_default(f, presets), help=help)


def training_options(command):
    """Options shared by `train`, `reproduce` and `bench train`: one per TrainConfig field a user
    sets (built by :func:`field_option`), each overriding the preset's value, and --preset and
    --dropout."""
    preset_help = "; ".join(f"{name}: {PRESET_HELP.get(name, '')}" for name in PRESET_NAMES)
    options = [click.option("--preset", type=click.Choice(PRESET_NAMES), default=DEFAULT_PRESET, show_default=True,
                            help=f"Defaults for everything below: {preset_help}.")]
    for f in TRAIN_FIELDS.values():
        if f.name == "dropout":  # four rates, set on the command line as one
            options.append(click.option("--dropout", "dropout_all", type=float,
                                        help="One dropout rate for D1-D4, replacing Table 2's (0 makes runs deterministic)."))
        if f.metadata["option"]:
            options.append(field_option(f.name))
    for option in reversed(options):
        command = option(command)
    return command


def estimate_options(what: str):
    """``--iterations`` and ``--preconditioner`` of the a-posteriori estimate, for the commands
    that run it (calibrate, trust); ``what``: what its steps serve there."""
    def add(command):
        command = click.option(
            "--preconditioner", type=click.Choice(PRECONDITIONERS), default="auto", show_default=True,
            help="Of the estimate's CG steps: spectral (the constant-D inverse; exact where D is constant), multigrid "
            "(one torch-mg V-cycle: its answer alone is within a few per cent where D varies, at about a third of an "
            "exact solve at 512^2), or auto (spectral where D is constant, multigrid where it varies).")(command)
        return click.option(
            "--iterations", type=click.IntRange(min=0),
            help=f"CG steps of the a-posteriori estimate {what} (more: closer to the true error, slower; default: 20 "
            "with the spectral preconditioner, none after the V-cycle with multigrid).")(command)
    return add


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


TEXT_OPTIONS = {"split": parse_split, "labels": parse_labels}  # options taken as text, parsed by these


def given(options: dict) -> dict:
    """The options a user gave: those not given are None, and are left out, so that
    :func:`~pydiff.training.config.config_for` keeps the preset's value for them."""
    return {name: value for name, value in options.items() if value is not None}


def parse_training(options: dict) -> dict:
    """The ``options`` of :func:`training_options` that were given, their texts parsed (--split,
    --labels): what every command that takes them hands on, so that none passes a text where a
    number belongs, nor None where the preset's value should stand."""
    return {name: TEXT_OPTIONS[name](value) if name in TEXT_OPTIONS else value for name, value in given(options).items()}


def make_config(model, data, preset, **options):
    from ..training.config import config_for

    return config_for(model, preset, data=str(data) if data else "", **parse_training(options))
