"""The run directory: its file names, atomic writes, checkpoints, and the model it holds.

A run directory holds

    config.json    the TrainConfig
    last.pt        the checkpoint --resume continues from (see :func:`save_checkpoint`)
    best.pt        the weights of the epoch with the lowest held-out loss (weights only)
    log.csv        one row per epoch: losses, learning rate, time, roll-back events, bytes written
    result.json    written when the run ends: best epoch, roll-backs, training seconds
    metrics.json, table.csv, fig*.png   written by evaluation (pydiff evaluate / reproduce)

Every file is written under a temporary name and renamed, so a reader (or a resumed run) never
sees half a file.  Models load from a run without the trainer: :func:`load_model`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import torch

from .config import TrainConfig
from .errors import DataFileError
from .encoder_decoder import EncoderDecoder, UNet
from .models import Surrogate
from .operators import fno

CONFIG = "config.json"
LAST = "last.pt"
BEST = "best.pt"
LOG = "log.csv"
RESULT = "result.json"
METRICS = "metrics.json"
TABLE = "table.csv"
FIGURES = ("fig4_loss.png", "fig5_samples.png", "fig8_truth_vs_prediction.png", "fig9_slices.png",
           "fig10_pdfs.png")
REGIONS_FIGURE = "fig_regions.png"  # the 2024 papers' error per source count and region
CHECKPOINT_FORMAT = "pydiff.checkpoint"
CHECKPOINT_VERSION = 2
LOG_FIELDS = ["epoch", "train_loss", "val_loss", "lr", "seconds", "rolled_back", "restored_to", "best",
              "bytes_written"]


# --- Atomic writes: each returns the bytes it wrote ---------------------------------------------


@contextlib.contextmanager
def replacing(path):
    """A temporary path beside ``path`` for the block to write; when the block ends, the file is
    flushed to disk and renamed to ``path``.  On an error it is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _replace(write, path: Path) -> int:
    """Run ``write(file)`` on a temporary file, flush it to disk, rename it to ``path``."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            size = f.tell()
    return size


def atomic_write_text(text: str, path: Path) -> int:
    return _replace(lambda f: f.write(text.encode()), path)


def atomic_save(obj, path: Path) -> int:
    """torch.save to a temporary name, then rename."""
    return _replace(lambda f: torch.save(obj, f), path)


# --- config.json, result.json, log.csv ---------------------------------------------------------


def write_config(config: TrainConfig, run_dir) -> int:
    return atomic_write_text(json.dumps(config.to_json(), indent=2), Path(run_dir) / CONFIG)


def read_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no {CONFIG}; not a pydiff run directory")
    try:
        return TrainConfig.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DataFileError(f"{path}: unreadable run configuration ({exc})") from None


def write_result(summary: dict, run_dir) -> int:
    """result.json: its presence marks the run finished."""
    return atomic_write_text(json.dumps(summary, indent=2), Path(run_dir) / RESULT)


def read_result(run_dir) -> dict | None:
    """The summary a finished run wrote (None while it is unfinished)."""
    path = Path(run_dir) / RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def write_log(rows: list[dict], run_dir) -> int:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(buffer.getvalue(), Path(run_dir) / LOG)


def read_log(run_dir) -> list[dict]:
    with open(Path(run_dir) / LOG, newline="") as f:
        return list(csv.DictReader(f))


# --- Checkpoints -------------------------------------------------------------------------------


def save_checkpoint(checkpoint: dict, run_dir) -> int:
    """Write last.pt.  ``checkpoint`` is the trainer's (see :meth:`pydiff.train.Trainer.checkpoint`):
    one training state (weights, BatchNorm statistics, optimiser moments) at an epoch boundary,
    the loop's bookkeeping at that epoch, and the best weights, log and clock as of now."""
    return atomic_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **checkpoint},
                       Path(run_dir) / LAST)


def load_checkpoint(run_dir, device="cpu") -> dict:
    path = Path(run_dir) / LAST
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # truncated file or foreign pickle
        raise DataFileError(f"{path}: unreadable checkpoint ({type(exc).__name__}); start a new run "
                            "or remove it") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        older = isinstance(checkpoint, dict) and "optimizer" in checkpoint and "rollback" in checkpoint
        raise DataFileError(f"{path}: " + ("a checkpoint of pydiff 0.1's first format, which cannot be resumed "
                                           "here; its best.pt still evaluates; train into a new --out"
                                           if older else "not a pydiff checkpoint"))
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise DataFileError(f"{path}: checkpoint version {checkpoint.get('version')}, this pydiff reads "
                            f"version {CHECKPOINT_VERSION}; retrain, or finish it with the pydiff that wrote it")
    return checkpoint


def save_best(weights: dict, epoch: int, val_loss: float, run_dir) -> int:
    """best.pt: the model's state_dict (weights and BatchNorm statistics) only."""
    return atomic_save({"model": weights, "epoch": epoch, "val_loss": val_loss}, Path(run_dir) / BEST)


# --- Models ------------------------------------------------------------------------------------


def build_model(config: TrainConfig) -> torch.nn.Module:
    """The untrained network a config describes (seed torch first for a reproducible one)."""
    if config.network == "encdec":
        return EncoderDecoder(config.width)
    if config.network == "unet":
        return UNet(config.width)
    if config.network == "fno":
        return fno(config.width, config.fno_modes)
    return Surrogate(config.p1, config.p2, config.dropout, config.width, config.output_scale, config.output_shift,
                     config.init, config.pooling)


def load_model(run_dir, which: str = "best", device: str | torch.device = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """The trained model of a run directory and its config.

    ``which``: "best" (best.pt, the epoch with the lowest held-out loss) or "last" (the training
    state stored in last.pt: the oldest epoch a roll-back can still return to, up to s epochs
    before the last one finished).
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    path = run_dir / (BEST if which == "best" else LAST)
    if not path.is_file():
        raise DataFileError(f"{run_dir}: no checkpoint {path.name}; train it first (pydiff train --out {run_dir})")
    model = build_model(config)
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"] if which == "best" else state["state"]["model"])
    except Exception as exc:  # truncated file, foreign pickle, or weights of another architecture
        raise DataFileError(f"{path}: cannot be loaded as this run's model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return model.to(device), config
