"""TrainConfig: everything a training run depends on, saved as its run directory's config.json.

:func:`config_for` builds one from a Table 2 row and a preset (:mod:`pydiff.registry`) with
explicit overrides on top.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..nn.build import NETWORKS
from ..nn.losses import LOSSES
from ..nn.prior import PRIORS
from ..nn.surrogate2021 import INITS, POOLINGS
from ..registry import paper_model
from ..registry import preset as preset_values
from .rollback import RULES

SCHEDULES = ("constant", "cosine", "halving")
SHUFFLES = ("samples", "batches")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
SELECT_ON = ("val", "test")
TRAINING_DATA = ("file", "online")
STREAM = ("auto", "always", "never")


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as config.json)."""

    data: str = ""
    model: int | None = None  # Table 2 id, for the record
    preset: str = ""  # the preset the defaults came from, for the record
    network: str = "surrogate"  # "surrogate" (2021, any Table 2 row), "encdec" or "unet" (2024), "fno"
    fno_modes: int = 16  # Fourier modes per axis of the FNO
    in_channels: int = 1  # 1: the source image; 2: + the scaled log diffusivity; 3: + the walls (two planes); 4: all
    prior: str = "none"  # "constant-d": the network corrects the constant-D answer (pydiff.nn.prior)
    p1: float = 1.0
    p2: float = 1.0
    dropout: tuple = (0.0, 0.0, 0.0, 0.0)  # D1-D4; None where Table 2 builds no network (models 4-7, 12-14)
    w: float = 1.0
    loss: str = "MSE"  # see pydiff.nn.losses.LOSSES
    loss_w2: float = 2000.0  # the tanh losses' step height
    loss_delta: float = 0.1  # the Huber losses' threshold, in field units
    width: float = 1.0
    output_scale: float | None = None
    output_shift: float | None = None
    field_scale: float = 1.0  # the network's output times this is the field (Darcy flow's u ~ 0.01: 0.01)
    init: str = "default"  # "default" (PyTorch), "kaiming" or "flux" (see models.Surrogate)
    pooling: str = "table1"  # NN2's encoder: Table 1's shapes or the original code's padded pool
    n_samples: int | None = None  # use the first n samples of the file (None: all)
    split: tuple = (0.7, 0.2, 0.1)  # train, test, validation fractions (the original code's)
    split_seed: int | None = None  # seed of the split (None: ``seed``); fixed across a study's seeds
    train_fraction: float = 1.0  # train on this fraction of the training split, equal per source count
    select_on: str = "val"  # the held-out split that picks the best epoch: "val", or "test" (the 2024 code)
    training_data: str = "file"  # "file": the training split; "online": fresh exact samples every step
    inverse: bool = False  # learn the source image from the field (the 2024 conclusions' inverse network)
    physics_weight: float = 0.0  # weight of the physics loss (pydiff.nn.physics) per sample, beside the data loss
    labels: float = 1.0  # fraction of training samples whose fields the data loss sees (0: none; physics alone)
    stream: str = "auto"  # read the data file batch by batch: "auto" (when it does not fit), "always", "never"
    epochs: int = 800
    batch_size: int = 25  # the global batch: K data-parallel ranks take B/K each
    shuffle: str = "samples"  # "samples": new batches each epoch; "batches": fixed batches, order shuffled (DiffSolve.jl)
    lr: float = 5e-6
    lr_schedule: str = "constant"  # or "cosine" (to lr * 1e-2 at the last epoch), or "halving" (every lr_halve_every epochs)
    lr_halve_every: int = 100  # epochs between halvings of the "halving" schedule (the FNO paper's StepLR)
    weight_decay: float = 0.0  # Adam's L2 penalty on the weights (the FNO paper: 1e-4)
    rollback: str = "paper"  # "paper" (Eq. 3), "code" (the original code's rule) or "off"
    rollback_C: float | None = None  # default: 5 (paper), 10 (code)
    rollback_m: int = 20
    rollback_s: int = 5
    early_stop: int = 0  # stop after this many epochs without a better held-out loss (0: never)
    recalibrate_bn: bool = False  # at the end, BatchNorm statistics of the best weights recomputed with dropout off
    checkpoint_every: int = 10  # epochs between checkpoints (last.pt, model.safetensors); also on SIGINT/SIGTERM
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: str = "off"  # torch.compile mode; "reduce-overhead" adds CUDA graphs
    eval_batch_size: int = 100

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible value."""
        checks = [
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
            (self.eval_batch_size >= 1, f"eval batch size must be >= 1, got {self.eval_batch_size}"),
            (self.loss in LOSSES, f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}"),
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
    as values (a tuple equals the list JSON gives back, 0.1 == 0.1, None == None)."""
    a, b = stored.to_json(), asked.to_json()
    return {k: (a[k], b[k]) for k in a if k not in ignore and _plain(a[k]) != _plain(b[k])}


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


def config_for(model_id: int | None = None, preset: str = "quick", dropout_all: float | None = None,
               **overrides) -> TrainConfig:
    """A TrainConfig for Table 2's ``model_id`` under ``preset``, with explicit ``overrides``.

    ``None`` values in ``overrides`` mean "not given" and leave the preset's value.
    ``dropout_all`` sets D1-D4 to one value (the networks that are not built keep None).
    """
    values = preset_values(preset)
    values["preset"] = preset
    if model_id is not None:
        row = paper_model(model_id)
        values.update(model=row.model, p1=row.p1, p2=row.p2, dropout=row.dropout, w=row.w, loss=row.loss)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("in_channels") is None:  # the data decides: a second channel where its D varies
        values["in_channels"] = data_channels(values.get("data") or "")
    if dropout_all is not None:
        values["dropout"] = tuple(None if d is None else float(dropout_all) for d in values.get("dropout", (0.0,) * 4))
    try:
        config = TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"unknown training option ({exc})") from None
    config.validate()
    return config
