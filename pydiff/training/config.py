"""TrainConfig: everything a training run depends on, saved as its run directory's config.json.

:func:`config_for` builds one from a Table 2 row and a preset (:mod:`pydiff.registry`) with
explicit overrides on top.  Each field carries what the command line shows of it (its help, the
library's tuple of the names it accepts): :func:`pydiff.cli.options.training_options` builds the
options of ``train``, ``reproduce`` and ``bench train`` from the fields, their defaults from the
fields' and the presets' values.  Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..nn.names import INITS, LOSS_NAMES, NETWORKS, POOLINGS, PRIORS
from ..registry import DEFAULT_PRESET, paper_model
from ..registry import preset as preset_values
from ..seeds import seed_problem
from .rollback import RULE_C, RULES

SCHEDULES = ("constant", "cosine", "halving")
SHUFFLES = ("samples", "batches")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
SELECT_ON = ("val", "test")
TRAINING_DATA = ("file", "online")
STREAM = ("auto", "always", "never")
COSINE_FLOOR = 1e-2  # the cosine schedule runs from lr towards lr * COSINE_FLOOR (pydiff.training.step.lr_at)
TABLE2_FIELDS = ("p1", "p2", "dropout", "w", "loss")  # what a Table 2 row sets (config_for's model_id)


def setting(default, help: str, *, choices: tuple[str, ...] | None = None, unset: str | None = None,
            option: bool = True, fixed: bool = False):
    """A :class:`TrainConfig` field and what the command line shows of it: ``help``; ``choices``,
    the library's tuple of the names it accepts; ``unset``, what None means; ``option=False``: no
    option of its own (set by the data, a Table 2 row or another option); ``fixed``: no preset
    sets it, and its option's default is this field's (the seed, the device)."""
    return field(default=default, metadata={"help": help, "choices": choices, "unset": unset, "option": option,
                                            "fixed": fixed})


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as config.json).

    One flat record, in groups: what it was made from, the network, its loss, the data and how
    they are split, the optimiser and its schedule, and how the run is carried out.  Flat because
    config.json, run directory names and every reader spell the fields so; ``metadata["help"]``
    says what each one is (the command line shows it)."""

    # --- What the run was made from (for the record) ---
    data: str = setting("", "The HDF5 data set (pydiff generate).", option=False)
    model: int | None = setting(None, "Table 2 id, for the record.", option=False)
    preset: str = setting("", "The preset the defaults came from, for the record.", option=False)

    # --- The network ---
    network: str = setting(
        "surrogate", "surrogate: the 2021 NN1 + NN2 of a Table 2 row; encdec, unet: the 2024 encoder-decoder and "
        "U-Net (any lattice); fno: neuraloperator's Fourier Neural Operator (any lattice; pip install "
        '"pydiff[fno]").', choices=NETWORKS)
    fno_modes: int = setting(16, "Fourier modes per axis of the FNO, both signs counted as neuraloperator counts them "
                             "(the FNO paper's 12 modes are 24).")
    in_channels: int = setting(1, "Input channels: 1, the source image; 2, + the scaled log diffusivity; 3, + the "
                               "walls (two planes); 4, all (the data decide).", option=False)
    prior: str = setting("none", "constant-d: the network reads the field of the same sources with D replaced by its "
                         "geometric mean (one spectral solve) and predicts the correction to it; none: no prior.",
                         choices=PRIORS)
    p1: float = setting(1.0, "NN1's share of the 2021 surrogate's output (Table 2).", option=False)
    p2: float = setting(1.0, "NN2's share of the 2021 surrogate's output (Table 2).", option=False)
    dropout: tuple = setting((0.0, 0.0, 0.0, 0.0), "Dropout rates D1-D4; None where Table 2 builds no network "
                             "(models 4-7, 12-14).", option=False)  # the command line's --dropout sets all four
    w: float = setting(1.0, "Loss weight w (Eq. 1; the 2024 losses' w).")
    loss: str = setting(
        "MSE", "Loss by name: MAE, MSE, fourth-power, Huber (Eq. 1-2, weight on the target), exp-MAE, exp-MSE, "
        "exp-Huber, tanh-MAE, tanh-MSE, tanh-Huber (the 2024 code's weights), rel-L2 (relative L2 per sample, the "
        "FNO paper's).", choices=LOSS_NAMES)
    loss_w2: float = setting(2000.0, "Step height of the tanh losses: how much more a pixel with a field weighs than "
                             "the empty background (the 2024 code's).")
    loss_delta: float = setting(0.1, "Threshold of the Huber losses, in field units.")
    width: float = setting(1.0, "Channel multiplier of the networks (1 = the papers').")
    output_scale: float | None = setting(None, "Initial scale of the 2021 surrogate's final BatchNorms.",
                                         unset="PyTorch's")
    output_shift: float | None = setting(None, "Initial bias of the 2021 surrogate's final BatchNorms, split between "
                                         "the networks.", unset="PyTorch's")
    field_scale: float = setting(1.0, "The network's output times this is the field (Darcy flow's u is of order "
                                 "0.01).")
    init: str = setting("default", "Weight initialisation: flux (Glorot-uniform, zero biases: the original "
                        "networks), kaiming, default (PyTorch's).", choices=INITS)
    pooling: str = setting("table1", "NN2's encoder: table1, Table 1's shapes (100-50-25-12-6-3-1), or code, the "
                           "original code's padded second pool (100-50-26-13-6-3-1).", choices=POOLINGS)

    # --- The data: which samples, how they are split and what the loss sees of them ---
    n_samples: int | None = setting(None, "Use the first N samples of the data.", unset="all of the file")
    split: tuple = setting((0.7, 0.2, 0.1), "train,test,validation fractions, each source count split alike (the "
                           "original code's by default; the paper's text: 0.8,0.2,0).")
    split_seed: int | None = setting(None, "Seed of the split; fixed across a study's seeds.", unset="--seed")
    train_fraction: float = setting(1.0, "Train on this fraction of the training split, equal per source count.")
    select_on: str = setting("val", "Held-out split that picks the best epoch (test: the 2024 code's choice).",
                             choices=SELECT_ON)
    training_data: str = setting(
        "file", "file: the training split; online: as many fresh exact samples of the file's problem every epoch, "
        "solved on the training device (seeded, never repeated).", choices=TRAINING_DATA)
    inverse: bool = setting(False, "Learn the source image from the field (the 2024 conclusions' inverse network).",
                            option=False)
    physics_weight: float = setting(
        0.0, "Add this weight times the physics loss (the residual of the discrete stationary equation, its unknown "
        "scale fitted, plus the peak's distance from 1) to the data loss; any network.")
    labels: float = setting(
        1.0, "Fraction of training samples whose fields the data loss sees: all (1), none (0; physics alone: with "
        "--training-data online no solver runs at all), or a number in (0, 1) (few labels plus physics on every "
        "sample). Needs --physics-weight > 0 unless all.")
    stream: str = setting("auto", "Read the data file batch by batch instead of holding it on the device: auto (when "
                          "it exceeds half the GPU's or the machine's memory; the full 2024 set does), always, never.",
                          choices=STREAM)

    # --- The optimiser and its schedule ---
    epochs: int = setting(800, "Training epochs.")
    batch_size: int = setting(25, "Global training batch size; K torchrun ranks take B/K each.")
    shuffle: str = setting("samples", "samples: new batches every epoch; batches: fixed batches in a new order each "
                           "epoch (the original code's).", choices=SHUFFLES)
    lr: float = setting(5e-6, "Adam learning rate.")
    lr_schedule: str = setting(
        "constant", f"Learning-rate schedule: constant; cosine, from lr towards lr * {COSINE_FLOOR:g}, which it would "
        "reach one epoch after the last; or halving every --lr-halve-every epochs (the FNO paper's).",
        choices=SCHEDULES)
    lr_halve_every: int = setting(100, "Epochs between halvings of the halving schedule (the FNO paper's StepLR).")
    weight_decay: float = setting(0.0, "Adam's L2 penalty on the weights (the FNO paper's 1e-4).")
    rollback: str = setting("paper", "Roll-back rule: paper (Eq. 3), code (the original code's), or off.",
                            choices=RULES)
    rollback_C: float | None = setting(None, "Roll-back threshold factor C.", unset="the rule's: " + ", ".join(
        f"{c:g} ({rule})" for rule, c in RULE_C.items()))
    rollback_m: int = setting(20, "Epochs averaged in the roll-back threshold (m).")
    rollback_s: int = setting(5, "Epochs rolled back (s; the code rule: its backup period).")
    early_stop: int = setting(0, "Stop after N epochs without a better held-out loss (0: never).")
    recalibrate_bn: bool = setting(False, "At the end, recompute the BatchNorm statistics of the best weights with "
                                   "dropout off (corrects the variance shift of dropout before BatchNorm).")
    recalibrate_each_epoch: int = setting(
        0, "Recompute the BatchNorm statistics over the first N training inputs, dropout off, before every held-out "
        "evaluation, so that the best epoch is picked on the statistics it is served with (it keeps them: no "
        "--recalibrate-bn pass at the end; 0: never; training itself is unchanged).")

    # --- How the run is carried out (none of these changes what it computes but the seed) ---
    checkpoint_every: int = setting(10, "Epochs between checkpoints (last.pt, model.safetensors); SIGINT/SIGTERM "
                                    "also write one.")
    seed: int = setting(0, "Seed of the split, initialisation and batches.", fixed=True)
    device: str = setting("auto", "auto (CUDA when present), cpu, cuda, cuda:1, ...", fixed=True)
    amp: bool = setting(True, "bf16 autocast on CUDA (no effect on a CPU).")
    compile: str = setting("off", "torch.compile the model (reduce-overhead adds CUDA graphs).", choices=COMPILE_MODES)
    eval_batch_size: int = setting(100, "Samples per batch when evaluating.", option=False)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible value."""
        for f in dataclasses.fields(self):  # None only where a field takes it (its type says "| None")
            if getattr(self, f.name) is None and "None" not in str(f.type):
                raise ConfigError(f"{f.name} cannot be None (leave it out to keep the preset's value)")
        checks = [
            (seed_problem(self.seed) is None, f"seed {seed_problem(self.seed)}"),
            (self.split_seed is None or seed_problem(self.split_seed) is None,
             f"split seed {seed_problem(self.split_seed)}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be positive, got {self.lr}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.w > 0, f"loss weight w must be positive, got {self.w}"),
            (self.width > 0, f"width must be positive, got {self.width}"),
            (self.p1 != 0 or self.p2 != 0, "p1 and p2 cannot both be 0"),
            (len(self.dropout) == 4 and all(d is None or 0 <= d < 1 for d in self.dropout), f"dropout rates must be in [0, 1), got {self.dropout}"),
            (self.lr_schedule in SCHEDULES, f"unknown lr schedule {self.lr_schedule!r}"),
            (self.lr_halve_every >= 1, f"epochs between halvings must be >= 1, got {self.lr_halve_every}"),
            (self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.field_scale > 0 and math.isfinite(self.field_scale), f"field scale must be positive, got {self.field_scale}"),
            (self.prior in PRIORS, f"unknown prior {self.prior!r}; choose one of {', '.join(PRIORS)}"),
            (self.prior == "none" or (self.network != "surrogate" and not self.inverse and self.field_scale == 1.0),
             "the constant-D prior corrects a field of peak 1 predicted from its sources: not the 2021 surrogate "
             "(Table 1's shapes), an inverse network, or a field of another scale"),
            (self.init in INITS, f"unknown init {self.init!r}; choose one of {', '.join(INITS)}"),
            (self.pooling in POOLINGS, f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}"),
            (self.shuffle in SHUFFLES, f"unknown shuffle {self.shuffle!r}; choose one of {', '.join(SHUFFLES)}"),
            (self.compile in COMPILE_MODES, f"unknown compile mode {self.compile!r}; choose one of {', '.join(COMPILE_MODES)}"),
            (self.rollback in RULES, f"unknown roll-back rule {self.rollback!r}"),
            (len(self.split) == 3 and all(f >= 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6
             and self.split[0] > 0, f"split must be three non-negative fractions summing to 1, got {self.split}"),
            (self.n_samples is None or self.n_samples >= 3, f"n_samples must be >= 3, got {self.n_samples}"),
            (self.rollback_m >= 1 and self.rollback_s >= 0, "rollback m must be >= 1 and s >= 0"),
            (self.checkpoint_every >= 1, f"checkpoint interval must be >= 1 epoch, got {self.checkpoint_every}"),
            (self.recalibrate_each_epoch >= 0,
             f"recalibrate each epoch must be >= 0 training inputs, got {self.recalibrate_each_epoch}"),
            (self.eval_batch_size >= 1, f"eval batch size must be >= 1, got {self.eval_batch_size}"),
            (self.loss in LOSS_NAMES, f"unknown loss {self.loss!r}; choose one of {', '.join(LOSS_NAMES)}"),
            (0 < self.train_fraction <= 1, f"train fraction must be in (0, 1], got {self.train_fraction}"),
            (self.select_on in SELECT_ON, f"unknown selection split {self.select_on!r}; choose one of {', '.join(SELECT_ON)}"),
            (self.training_data in TRAINING_DATA,
             f"unknown training data {self.training_data!r}; choose one of {', '.join(TRAINING_DATA)}"),
            (not (self.inverse and self.training_data == "online"), "an inverse network trains on a data file, not online"),
            (self.stream in STREAM, f"unknown stream mode {self.stream!r}; choose one of {', '.join(STREAM)}"),
            (self.physics_weight >= 0 and math.isfinite(self.physics_weight),
             f"physics weight must be >= 0, got {self.physics_weight}"),
            (0 <= self.labels <= 1, f"labels must be a fraction in [0, 1] (0: none), got {self.labels}"),
            (self.labels == 1 or self.physics_weight > 0,
             "samples without labels teach only through the physics loss: give --physics-weight > 0"),
            (self.labels in (0, 1) or self.training_data == "file",
             "online samples are all labelled or none (--labels none); a fraction of labels needs a data file"),
            (not (self.inverse and self.physics_weight > 0), "the physics loss is the forward equation's, not the inverse's"),
            (self.loss_delta > 0, f"Huber threshold must be positive, got {self.loss_delta}"),
            (self.network in NETWORKS, f"unknown network {self.network!r}; choose one of {', '.join(NETWORKS)}"),
            (self.in_channels in (1, 2, 3, 4), f"in_channels must be 1 to 4, got {self.in_channels}"),
            (self.fno_modes >= 1, f"FNO modes must be >= 1, got {self.fno_modes}"),
            (self.in_channels == 1 or self.network != "surrogate",
             "the 2021 surrogate reads source images only; on a problem whose D varies train --network encdec, "
             "unet or fno"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        """The config of ``values`` (config.json's contents).  A key no TrainConfig has ever had is
        refused by name: dropped, a misspelt setting would silently train or load with its default."""
        if not isinstance(values, dict):
            raise ConfigError(f"a run configuration is a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise ConfigError(f"unknown setting{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if "dropout" in values:  # pydiff 0.1 wrote NaN for a network that is not built
            values["dropout"] = tuple(None if d is None or d != d else d for d in values["dropout"])
        return cls(**values)


# Fields that do not change what a run computes: where it runs and how often it saves.  A run
# continues, and a cached run is reused, whatever these are.
HOW_IT_RUNS = ("device", "checkpoint_every", "compile", "eval_batch_size", "stream")


def differences(stored: TrainConfig, asked: TrainConfig, ignore=HOW_IT_RUNS) -> dict[str, tuple]:
    """``{field: (stored value, asked value)}`` for every field whose values differ, compared
    as values (a tuple equals the list JSON gives back, 0.1 == 0.1, None == None; the data file
    by where it is, :func:`data_location`: a run stores it absolute, a user may give it relative)."""
    a, b = stored.to_json(), asked.to_json()

    def compared(key, value):
        return data_location(value) if key == "data" else _plain(value)

    return {k: (a[k], b[k]) for k in a if k not in ignore and compared(k, a[k]) != compared(k, b[k])}


def data_location(data: str) -> str:
    """A data file's path as a run stores it in config.json: absolute (``os.path.abspath`` from
    the working directory, symbolic links kept as the user named them), so that the run directory
    works from any working directory.  ``""`` (no file) stays ``""``."""
    return os.path.abspath(data) if data else data


def with_absolute_data(config: TrainConfig) -> TrainConfig:
    """``config`` with its data file's path absolute (:func:`data_location`): what a new run
    directory records."""
    return dataclasses.replace(config, data=data_location(config.data))


def _plain(value):
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, float) and value != value:
        return "nan"  # NaN equals NaN here: it stands for the same setting
    return value


def resumable(stored: TrainConfig, asked: TrainConfig) -> dict[str, tuple]:
    """The differences that forbid continuing ``stored``'s run with ``asked`` (empty: it may).

    Other epochs (or another early stop) may be asked only under a constant learning rate, where
    the run of the new length is the one that would have been asked for from the start (the
    trainer still refuses to end before the epochs already trained); the cosine schedule's rate
    at every epoch depends on the total, so a run resumed with other epochs would equal neither.
    """
    constant = stored.lr_schedule == asked.lr_schedule == "constant"
    return differences(stored, asked, HOW_IT_RUNS + (("epochs", "early_stop") if constant else ()))


def describe_differences(diff: dict[str, tuple]) -> str:
    """``lr 0.001 -> 0.05, epochs 9 -> 5``: what a refusal names."""
    return ", ".join(f"{k} {option_text(a)} -> {option_text(b)}" for k, (a, b) in diff.items())


def option_text(value) -> str:
    """An option's value in a message or a directory name: ``0.05``, ``0.1,0.1,-,-``."""
    if isinstance(value, (list, tuple)):
        return ",".join(option_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


def channel_layout(in_channels: int) -> tuple[bool, bool]:
    """What a network of ``in_channels`` inputs reads besides the source image (channel 0):
    ``(map, walls)`` — the diffusivity channel (channel 1) and the walls, two planes after it
    (:func:`pydiff.problem.walls.wall_planes`).  1: image; 2: + map; 3: + walls; 4: + both."""
    return in_channels in (2, 4), in_channels >= 3


def problem_channels(problem) -> int:
    """The input channels a network of ``problem``'s data reads (see :func:`channel_layout`)."""
    return 1 + (problem.diffusivity != "constant") + 2 * (problem.boundary == "mixed")


def data_channels(data: str) -> int:
    """Input channels a network of ``data`` reads (:func:`problem_channels` of its problem).  No
    file yet counts 1 (``pydiff bench train`` has none; a pipeline configures before it generates
    its data, then :func:`with_data` asks again; training reports a file still missing).  A file
    that exists but is not a readable data set raises :class:`~pydiff.errors.DataFileError`: it
    must not pass as a problem of one channel."""
    from pathlib import Path

    from ..datasets.hdf5 import inspect

    if not data or not Path(data).exists():
        return 1
    f, _, problem = inspect(data)
    f.close()
    return problem_channels(problem)


def with_data(config: TrainConfig, data) -> TrainConfig:
    """``config`` training on the data file ``data``, reading as many input channels as it has
    (:func:`data_channels`); checked."""
    config = dataclasses.replace(config, data=str(data), in_channels=data_channels(str(data)))
    config.validate()
    return config


def config_for(model_id: int | None = None, preset: str = DEFAULT_PRESET, dropout_all: float | None = None,
               **overrides) -> TrainConfig:
    """A TrainConfig for Table 2's ``model_id`` under ``preset``, with explicit ``overrides``.

    Every override is set as given, None included (``n_samples=None``: all of the file;
    ``output_scale=None``: PyTorch's); leave a field out to keep the preset's value (the command
    line leaves out the options not given: :func:`pydiff.cli.options.parse_training`).
    ``in_channels`` left out: the data decide.  ``dropout_all`` sets D1-D4 to one value (the
    networks that are not built keep None).
    """
    values = preset_values(preset)
    values["preset"] = preset
    if model_id is not None:
        row = paper_model(model_id)
        values.update(model=row.model, **{name: getattr(row, name) for name in TABLE2_FIELDS})
    values.update(overrides)
    if "in_channels" not in overrides:  # the data decides: a second channel where its D varies
        values["in_channels"] = data_channels(values.get("data") or "")
    if dropout_all is not None:
        values["dropout"] = tuple(None if d is None else float(dropout_all) for d in values.get("dropout", (0.0,) * 4))
    try:
        config = TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"unknown training option ({exc})") from None
    config.validate()
    return config
