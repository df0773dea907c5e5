"""Training: Adam on the weighted loss, roll-back (Eq. 3), best-epoch selection, checkpoints.

Read top to bottom: :class:`TrainConfig` says everything a run depends on; :class:`RollBack`
is Eq. 3 (and the original code's variant); :func:`train` is the loop.  A run directory holds

    config.json   the TrainConfig
    last.pt       model, optimiser, scheduler, RNG states, history, roll-back state (resume)
    best.pt       the model of the epoch with the lowest held-out loss
    log.csv       one row per epoch: losses, learning rate, time, roll-back events
    result.json   written when the run ends: best epoch, roll-backs, training seconds

All files are written atomically (temporary name, then rename).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import ConfigError, DataFileError
from .losses import alpha_of, weighted_loss
from .models import Surrogate

LATTICE = 100  # NN2's shapes (Table 1) fix the image size


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as config.json)."""

    data: str = ""
    model: int | None = None  # Table 2 id, for the record
    preset: str = ""  # the preset the defaults came from, for the record
    p1: float = 1.0
    p2: float = 1.0
    dropout: tuple = (0.0, 0.0, 0.0, 0.0)
    w: float = 1.0
    loss: str = "MSE"
    width: float = 1.0
    output_scale: float | None = None
    output_shift: float | None = None
    init: str = "default"  # or "kaiming" (see models.Surrogate)
    n_samples: int | None = None  # use the first n samples of the file (None: all)
    split: tuple = (0.7, 0.2, 0.1)  # train, test, validation fractions (the original code's)
    epochs: int = 800
    batch_size: int = 25
    lr: float = 5e-6
    lr_schedule: str = "constant"  # or "cosine" (to lr * 1e-2 at the last epoch)
    rollback: str = "paper"  # "paper" (Eq. 3), "code" (the original code's rule) or "off"
    rollback_C: float | None = None  # default: 5 (paper), 10 (code)
    rollback_m: int = 20
    rollback_s: int = 5
    early_stop: int = 0  # stop after this many epochs without a better held-out loss (0: never)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
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
            (self.lr_schedule in ("constant", "cosine"), f"unknown lr schedule {self.lr_schedule!r}"),
            (self.init in ("default", "kaiming"), f"unknown init {self.init!r}"),
            (self.rollback in ("paper", "code", "off"), f"unknown roll-back rule {self.rollback!r}"),
            (len(self.split) == 3 and all(f >= 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6
             and self.split[0] > 0, f"split must be three non-negative fractions summing to 1, got {self.split}"),
            (self.n_samples is None or self.n_samples >= 3, f"n_samples must be >= 3, got {self.n_samples}"),
            (self.rollback_m >= 1 and self.rollback_s >= 0, "rollback m must be >= 1 and s >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        try:
            alpha_of(self.loss)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**values)


def config_for(model_id: int | None = None, preset: str = "quick", **overrides) -> TrainConfig:
    """A TrainConfig for Table 2's ``model_id`` under ``preset``, with explicit ``overrides``.

    ``None`` values in ``overrides`` mean "not given" and leave the preset's value.
    """
    from .experiments import paper_model
    from .experiments import preset as preset_values

    values = preset_values(preset)
    values["preset"] = preset
    if model_id is not None:
        row = paper_model(model_id)
        values.update(model=row.model, p1=row.p1, p2=row.p2, dropout=row.dropout, w=row.w, loss=row.loss)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig(**values)
    config.validate()
    return config


# --- Roll-back (Eq. 3) -------------------------------------------------------------------------


class RollBack:
    """Decide after each epoch whether to keep it or restore an earlier state.

    ``paper`` (Eq. 3): if the epoch's training loss exceeds ``C`` times the mean of the last
    ``m`` kept losses, restore the state of ``s`` epochs before the last kept one (C = 5, m = 20,
    s = 5).  ``code`` (the original code): if the loss changed by more than ``C`` times the mean
    absolute change over the last ``m`` epochs, restore the latest backup, taken every ``s``
    epochs (C = 10).  Restored epochs are dropped from the loss history.

    :meth:`update` takes the epoch's loss and a function that snapshots the current state, and
    returns None (epoch kept) or the snapshot to restore.
    """

    def __init__(self, rule: str = "paper", C: float | None = None, m: int = 20, s: int = 5) -> None:
        self.rule, self.m, self.s = rule, m, s
        self.C = C if C is not None else (10.0 if rule == "code" else 5.0)
        self.losses: list[float] = []  # kept epochs' training losses
        self.snapshots: deque = deque(maxlen=s + 1)  # paper: (position, state) of the last s+1 kept
        self.backup = None  # code: (position, state)
        self.count = 0

    def _jump(self, loss: float) -> bool:
        if self.rule == "off" or not self.losses:
            return False
        recent = self.losses[-self.m :]
        if self.rule == "paper":
            return loss > self.C * float(np.mean(recent))
        changes = np.abs(np.diff(recent))
        return len(changes) > 0 and abs(loss - recent[-1]) > self.C * float(np.mean(changes))

    def update(self, loss: float, snapshot: Callable[[], dict]):
        if not math.isfinite(loss) or self._jump(loss):
            target = self.snapshots[0] if self.rule == "paper" else self.backup
            if target is not None and self.rule != "off":
                position, state = target
                del self.losses[position + 1 :]
                while self.snapshots and self.snapshots[-1][0] > position:
                    self.snapshots.pop()
                self.count += 1
                return state
        self.losses.append(loss)
        position = len(self.losses) - 1
        if self.rule == "paper":
            self.snapshots.append((position, snapshot()))
        elif self.rule == "code" and position % max(self.s, 1) == 0:
            self.backup = (position, snapshot())
        return None

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "snapshots": list(self.snapshots), "backup": self.backup, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.losses = list(state["losses"])
        self.snapshots = deque(state["snapshots"], maxlen=self.s + 1)
        self.backup = state["backup"]
        self.count = state["count"]


# --- Helpers -----------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA device here")
    return torch.device(name)


def split_indices(n: int, fractions, seed: int) -> dict[str, np.ndarray]:
    """A seeded random split of ``range(n)`` into train, test and validation index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_test = int(round(fractions[1] * n))
    return {"train": np.sort(order[:n_train]), "test": np.sort(order[n_train : n_train + n_test]),
            "val": np.sort(order[n_train + n_test :])}


def load_arrays(config: TrainConfig):
    """Inputs, fields (numpy, (n, 1, L, L) float32) and the split of the run's data file."""
    from .dataset import load

    data = load(config.data)
    if data.problem.lattice != LATTICE:
        raise DataFileError(
            f"{config.data}: lattice {data.problem.lattice}, but the networks of Table 1 need {LATTICE}x{LATTICE} images"
        )
    n = len(data) if config.n_samples is None else min(config.n_samples, len(data))
    if n < 3:
        raise DataFileError(f"{config.data}: {n} samples are too few to split")
    split = split_indices(n, config.split, config.seed)
    return data.inputs[:n, None], data.fields[:n, None], split


def build_model(config: TrainConfig) -> Surrogate:
    return Surrogate(config.p1, config.p2, config.dropout, config.width, config.output_scale, config.output_shift,
                     config.init)


def autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def predict(model: Surrogate, inputs, batch_size: int = 100, device: torch.device | str = "cpu",
            amp: bool = True) -> np.ndarray:
    """Model outputs for (n, 1, L, L) inputs (numpy or tensor), in eval mode, as float32 numpy."""
    device = torch.device(device)
    model.eval()
    out = []
    for lo in range(0, len(inputs), batch_size):
        x = torch.as_tensor(np.asarray(inputs[lo : lo + batch_size])).to(device)
        with autocast(device, amp):
            out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, LATTICE, LATTICE), np.float32)


@torch.no_grad()
def mean_loss(model, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, device) -> float:
    """Held-out loss (eval mode), averaged over samples."""
    if len(x) == 0:
        return math.nan
    model.eval()
    total = 0.0
    for lo in range(0, len(x), config.eval_batch_size):
        xb, yb = x[lo : lo + config.eval_batch_size], y[lo : lo + config.eval_batch_size]
        with autocast(device, config.amp):
            total += float(weighted_loss(model(xb).float(), yb, alpha_of(config.loss), config.w)) * len(xb)
    return total / len(x)


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


LOG_FIELDS = ["epoch", "train_loss", "val_loss", "lr", "seconds", "rolled_back", "restored_to", "best"]


def write_log(rows: list[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buffer.getvalue(), path)


def read_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no config.json; not a pydiff run directory")
    try:
        return TrainConfig.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"{path}: unreadable run configuration ({exc})") from None


def load_model(run_dir, which: str = "best", device: str | torch.device = "cpu") -> tuple[Surrogate, TrainConfig]:
    """The trained model of a run directory (``which`` = "best" or "last") and its config."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    path = run_dir / f"{which}.pt"
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no checkpoint {path.name}; train it first (pydiff train --out {run_dir})")
    model = build_model(config)
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
    except Exception as exc:  # truncated file, foreign pickle, or weights of another architecture
        raise DataFileError(f"{path}: cannot be loaded as this run's model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return model.to(device), config


# --- The loop ----------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    rollbacks: int
    seconds: float
    history: list = field(default_factory=list)


def train(config: TrainConfig, run_dir, resume: bool = False, progress: bool | Callable = True) -> TrainResult:
    """Train ``config`` into ``run_dir`` (created); ``resume`` continues from its last.pt.

    Raises:
        ConfigError: bad values, an existing run without ``resume``, or a run of another config.
        DataFileError: a missing or unusable data file.
    """
    config.validate()
    run_dir = Path(run_dir)
    last_path = run_dir / "last.pt"
    if resume and last_path.is_file():
        saved = read_config(run_dir)
        mismatched = [k for k, v in saved.to_json().items()
                      if k not in ("epochs", "device", "early_stop") and v != config.to_json()[k]]
        if mismatched:
            raise ConfigError(
                f"{run_dir} was trained with another configuration ({', '.join(mismatched)} differ); "
                "use the same options or a new --out"
            )
    elif last_path.is_file() or (run_dir / "config.json").is_file():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if not run_dir.parent.is_dir():
        raise ConfigError(f"directory {run_dir.parent} does not exist")

    device = pick_device(config.device)
    inputs, fields, split = load_arrays(config)
    run_dir.mkdir(exist_ok=True)
    atomic_write_text(json.dumps(config.to_json(), indent=2), run_dir / "config.json")

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    x_train, y_train = (torch.as_tensor(a[split["train"]]).to(device) for a in (inputs, fields))
    x_val, y_val = (torch.as_tensor(a[split["val"]]).to(device) for a in (inputs, fields))
    if len(x_val) == 0:  # no validation split (the paper's 80/20): select on the training loss
        x_val, y_val = x_train, y_train

    model = build_model(config).to(device)
    if device.type == "cuda":  # channels-last convolutions are faster on tensor cores
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.lr * 1e-2)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    shuffle = torch.Generator().manual_seed(config.seed)
    rollback = RollBack(config.rollback, config.rollback_C, config.rollback_m, config.rollback_s)
    alpha = alpha_of(config.loss)
    log: list[dict] = []
    start_epoch, best_val, best_epoch, seconds_before = 0, math.inf, -1, 0.0

    if resume and last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        rollback.load_state_dict(state["rollback"])
        log, start_epoch = state["log"], state["epoch"] + 1
        best_val, best_epoch, seconds_before = state["best_val"], state["best_epoch"], state["seconds"]

    def snapshot() -> dict:
        return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}

    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, initial=start_epoch, unit="epoch", desc=f"train {run_dir.name}")
    clock = time.perf_counter()
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs):
        model.train()
        tic = time.perf_counter()
        order = torch.randperm(len(x_train), generator=shuffle)
        total = 0.0
        for lo in range(0, len(order), config.batch_size):
            index = order[lo : lo + config.batch_size].to(device)
            xb, yb = x_train[index], y_train[index]
            if device.type == "cuda":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, config.amp):
                loss = weighted_loss(model(xb).float(), yb, alpha, config.w)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        train_loss = total / len(order)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()

        restore = rollback.update(train_loss, snapshot)
        if restore is not None:
            model.load_state_dict(restore["model"])
            # Optimizer.load_state_dict may alias the given tensors: keep the snapshot pristine.
            optimizer.load_state_dict(copy.deepcopy(restore["optimizer"]))
        val_loss = mean_loss(model, x_val, y_val, config, device)
        improved = restore is None and val_loss < best_val
        if improved:
            best_val, best_epoch = val_loss, epoch
            atomic_save({"model": model.state_dict(), "epoch": epoch, "val_loss": val_loss}, run_dir / "best.pt")
        log.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
            "seconds": time.perf_counter() - tic, "rolled_back": restore is not None,
            "restored_to": len(rollback.losses) - 1 if restore is not None else "", "best": improved,
        })
        atomic_save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "rollback": rollback.state_dict(), "log": log, "epoch": epoch,
            "best_val": best_val, "best_epoch": best_epoch,
            "seconds": seconds_before + time.perf_counter() - clock,
        }, last_path)
        write_log(log, run_dir / "log.csv")
        if bar is not None:
            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}", rollbacks=rollback.count)
            bar.update(1)
        elif callable(progress):
            progress(log[-1])
        if config.early_stop and epoch - best_epoch >= config.early_stop:
            break
    if bar is not None:
        bar.close()
    result = TrainResult(run_dir, best_epoch, best_val, epoch + 1, rollback.count,
                         seconds_before + time.perf_counter() - clock, log)
    summary = {"best_epoch": best_epoch, "best_val_loss": best_val, "epochs_run": epoch + 1,
               "rollbacks": rollback.count, "seconds": result.seconds, "n_train": len(x_train),
               "device": str(device)}
    atomic_write_text(json.dumps(summary, indent=2), run_dir / "result.json")  # marks the run finished
    return result


def read_result(run_dir) -> dict | None:
    """The summary a finished run wrote (None while it is unfinished)."""
    path = Path(run_dir) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None
