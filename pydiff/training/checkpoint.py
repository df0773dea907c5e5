"""The run directory: its file names, atomic writes, checkpoints, and the model it holds.

A run directory holds

    config.json        the TrainConfig
    model.safetensors  the weights of the epoch with the lowest held-out loss, with the problem
                       they were trained on (with config.json: a model anyone can load, which
                       runs no code when loaded)
    last.pt            the checkpoint --resume continues from (see :func:`save_checkpoint`):
                       tensors and plain values only, read with ``torch.load(weights_only=True)``
    log.csv        one row per epoch: losses, learning rate, time, roll-back events, bytes written
    result.json    written when the run ends: best epoch, roll-backs, training seconds
    metrics.json, table.csv, fig*.png   written by evaluation (pydiff evaluate / reproduce)
    calibration.json   the calibrated bound of the model's errors (pydiff calibrate), made for
                       this model.safetensors only (it records its SHA-256)

Every file is written under a temporary name and renamed, so a reader (or a resumed run) never
sees half a file.  Models load from a run without the trainer: :func:`load_model`.  Nothing read
here can run code: a tampered file is refused with a :class:`~pydiff.errors.DataFileError`.
What of a pydiff 0.1 run is still read (its best.pt) is in :mod:`pydiff.training.legacy_checkpoint`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .. import atomic
from ..errors import ConfigError, DataFileError
from ..nn.build import build_model
from ..problem import Problem
from ..version import __version__
from . import legacy_checkpoint as legacy
from .config import TrainConfig

CONFIG = "config.json"
LAST = "last.pt"
MODEL = "model.safetensors"
MODEL_FORMAT = "pydiff.model"
LOG = "log.csv"
RESULT = "result.json"
METRICS = "metrics.json"
CALIBRATION = "calibration.json"  # the bound on each prediction's error (pydiff.evaluation.bound)
TABLE = "table.csv"
FIGURES = ("fig4_loss.png", "fig5_samples.png", "fig8_truth_vs_prediction.png", "fig9_slices.png",
           "fig10_pdfs.png")
REGIONS_FIGURE = "fig_regions.png"  # the 2024 papers' error per source count and region
CHECKPOINT_FORMAT = "pydiff.checkpoint"
CHECKPOINT_VERSION = 2
LOG_FIELDS = ["epoch", "train_loss", "val_loss", "val_mean_residual", "lr", "seconds", "rolled_back", "restored_to",
              "best", "bytes_written"]


# --- Atomic writes: each returns the bytes it wrote ---------------------------------------------


def atomic_save(obj, path: Path) -> int:
    """torch.save to a temporary name, then rename."""
    return atomic.write_bytes(lambda f: torch.save(obj, f), path)


# --- config.json, result.json, log.csv ---------------------------------------------------------


def write_config(config: TrainConfig, run_dir) -> int:
    return atomic.write_text(json.dumps(config.to_json(), indent=2), Path(run_dir) / CONFIG)


def read_config(run_dir) -> TrainConfig:
    """A run's TrainConfig, its data file located (:func:`locate_data`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no {CONFIG}; not a pydiff run directory")
    try:
        config = TrainConfig.from_json(json.loads(path.read_text()))
        config.validate()  # a hand-edited or foreign file: refused here, not deep inside what reads it
    except ConfigError as exc:
        raise DataFileError(f"{path}: bad run configuration: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"{path}: unreadable run configuration ({exc})") from None
    return dataclasses.replace(config, data=locate_data(config.data, run_dir))


def locate_data(data: str, run_dir) -> str:
    """Where the data file ``data`` of the run in ``run_dir`` is.

    A run records its data file absolute (:func:`~pydiff.training.config.data_location`); so did
    no run before that, whose path is relative to the directory training ran in.  Such a path
    is taken from the working directory, as it always was, where it names a file; where it does
    not (the run read from another directory), from the nearest directory above the run
    directory where it does: a run is made from a project directory that holds both it and the
    data (``runs/quick/model09-seed0`` beside ``data/...h5``), so its ancestors are where training
    ran.  Found nowhere, the path is kept as stored, and the reader says the file is missing.
    """
    if not data or os.path.isabs(data) or os.path.exists(data):
        return data
    for parent in Path(run_dir).resolve().parents:
        if (parent / data).exists():
            return str(parent / data)
    return data


def write_result(summary: dict, run_dir) -> int:
    """result.json: its presence marks the run finished."""
    return atomic.write_text(json.dumps(summary, indent=2), Path(run_dir) / RESULT)


def read_result(run_dir) -> dict | None:
    """The summary a finished run wrote (None while it is unfinished)."""
    path = Path(run_dir) / RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def write_log(rows: list[dict], run_dir) -> int:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return atomic.write_text(buffer.getvalue(), Path(run_dir) / LOG)


def read_log(run_dir) -> list[dict]:
    with open(Path(run_dir) / LOG, newline="") as f:
        return list(csv.DictReader(f))


# --- Checkpoints -------------------------------------------------------------------------------


def tensors_only(state_dict: dict) -> dict:
    """A state_dict without its non-tensor entries (neuraloperator keeps a ``_metadata`` dict of
    constructor arguments, classes and functions there: constants of the architecture, which
    building the network from config.json gives back, and which would need pickle to store)."""
    return {k: v for k, v in state_dict.items() if torch.is_tensor(v)}


def save_checkpoint(checkpoint: dict, run_dir) -> int:
    """Write last.pt.  ``checkpoint`` is the trainer's (see :meth:`pydiff.training.trainer.Trainer.checkpoint_state`):
    one training state (weights, BatchNorm statistics, optimiser moments) at an epoch boundary,
    the loop's bookkeeping at that epoch, and the best weights, log and clock as of now.  Only
    tensors and plain Python values are stored, so that it loads with ``weights_only=True``."""
    checkpoint = dict(checkpoint)
    if "state" in checkpoint:
        checkpoint["state"] = {**checkpoint["state"], "model": tensors_only(checkpoint["state"]["model"])}
    if checkpoint.get("best", {}).get("model") is not None:
        checkpoint["best"] = {**checkpoint["best"], "model": tensors_only(checkpoint["best"]["model"])}
    return atomic_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **checkpoint},
                       Path(run_dir) / LAST)


# What reading a damaged, truncated or foreign file raises: torch.load(weights_only=True) an
# UnpicklingError for a pickle of anything but tensors and plain values (a tampered one
# included), a RuntimeError for a broken zip archive, an EOFError for an empty file; safetensors
# a SafetensorError; load_state_dict a RuntimeError for weights of another architecture.  Any
# other error (no memory, a bug) is not the file's fault and is raised as it is.
DAMAGED = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, SafetensorError)


def _torch_load(path: Path, device) -> object:
    """``torch.load`` of tensors and plain values only: a pickle that would build any other
    object (and so could run code) is refused."""
    return torch.load(path, map_location=device, weights_only=True)


def load_checkpoint(run_dir, device="cpu") -> dict:
    path = Path(run_dir) / LAST
    try:
        checkpoint = _torch_load(path, device)
    except DAMAGED as exc:  # truncated file, foreign or tampered pickle
        if isinstance(exc, torch.OutOfMemoryError):
            raise
        raise DataFileError(f"{path}: unreadable checkpoint ({type(exc).__name__}: it is damaged, or holds more "
                            "than tensors and plain values); start a new run or remove it") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise DataFileError(f"{path}: " + (legacy.FIRST_FORMAT if legacy.is_first_format(checkpoint)
                                           else "not a pydiff checkpoint"))
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise DataFileError(f"{path}: checkpoint version {checkpoint.get('version')}, this pydiff reads "
                            f"version {CHECKPOINT_VERSION}; retrain, or finish it with the pydiff that wrote it")
    return checkpoint


def save_model(weights: dict, run_dir, epoch: int = -1, val_loss: float = float("nan"),
               problem: Problem | None = None) -> int:
    """model.safetensors: the model's tensors (weights and BatchNorm statistics), and as text the
    epoch, its held-out loss and the problem the model was trained on."""
    metadata = {"format": MODEL_FORMAT, "format_version": "1", "epoch": str(int(epoch)), "val_loss": repr(float(val_loss)),
                "pydiff_version": __version__}
    if problem is not None:
        metadata["problem"] = json.dumps(problem.to_attrs())
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors_only(weights).items()}
    path = Path(run_dir) / MODEL
    with atomic.replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata)
    return path.stat().st_size


def read_model_file(run_dir, device="cpu") -> tuple[dict, dict]:
    """``(state_dict, metadata)`` of a run's best model: model.safetensors (metadata: epoch,
    val_loss, problem), or a pydiff 0.1 run's best.pt read as tensors only
    (:func:`pydiff.training.legacy_checkpoint.best_weights`)."""
    run_dir = Path(run_dir)
    path = run_dir / MODEL
    try:
        if path.is_file():
            with safe_open(str(path), "pt") as f:
                metadata = dict(f.metadata() or {})
            if metadata.get("format") != MODEL_FORMAT:
                raise DataFileError(f"{path}: not a pydiff model (format {metadata.get('format')!r})")
            return load_file(str(path), device=str(device)), metadata
        path = run_dir / legacy.BEST
        if path.is_file():
            return legacy.best_weights(_torch_load(path, device), path)
    except DataFileError:
        raise
    except DAMAGED as exc:  # truncated, foreign or tampered file
        if isinstance(exc, torch.OutOfMemoryError):
            raise
        raise DataFileError(f"{path}: cannot be loaded ({type(exc).__name__}: it is damaged, or holds more than "
                            "tensors); retrain it or fetch it again") from None
    raise DataFileError(f"{run_dir}: no {MODEL}; train it first (pydiff train --out {run_dir})")


def model_digest(run_dir) -> str:
    """SHA-256 of a run's best-model file (model.safetensors, or a pydiff 0.1 run's best.pt):
    what a calibration records, so that it is never applied to another model."""
    import hashlib

    run_dir = Path(run_dir)
    path = run_dir / MODEL if (run_dir / MODEL).is_file() else run_dir / legacy.BEST
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no {MODEL}; train it first (pydiff train --out {run_dir})")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_problem(run_dir) -> Problem | None:
    """The problem a run's model was trained on, as its model file records it (None for a run of
    pydiff 0.1, whose config.json names its data file instead)."""
    _, metadata = read_model_file(run_dir)
    return Problem.from_attrs(json.loads(metadata["problem"])) if "problem" in metadata else None


# --- Models ------------------------------------------------------------------------------------


def load_model(run_dir, which: str = "best", device: str | torch.device = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """The trained model of a run directory and its config.

    ``which``: "best" (model.safetensors, the epoch with the lowest held-out loss) or "last" (the
    training state stored in last.pt: the oldest epoch a roll-back can still return to, up to s
    epochs before the last one finished).  ``run_dir`` may also be a shared model: a directory
    with only config.json and model.safetensors.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if which == "best":
        state, path = read_model_file(run_dir, device)[0], run_dir / MODEL
    else:
        path = run_dir / LAST
        if not path.is_file():
            raise DataFileError(f"{run_dir}: no checkpoint {LAST}; train it first (pydiff train --out {run_dir})")
        state = load_checkpoint(run_dir, device)["state"]["model"]
    model = build_model(config, model_problem(run_dir) if config.prior != "none" else None)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # weights of another architecture (missing, unexpected or misshapen tensors)
        if isinstance(exc, torch.OutOfMemoryError):
            raise
        raise DataFileError(f"{path}: cannot be loaded as this run's model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return model.to(device), config
