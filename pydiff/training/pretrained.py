"""Trained models shipped with pydiff, loadable by name, and the export that makes one from a run.

A shared model is a directory of three files, as the field shares models (The Well, Hugging
Face): ``config.json`` (the :class:`~pydiff.training.config.TrainConfig`), ``model.safetensors``
(the weights, with the problem they were trained on) and ``metrics.json`` (its test-set
metrics and how it was made), and ``calibration.json`` where the run was calibrated (the bound
``predict --max-error`` uses).  Loading one runs no code from it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

from .. import atomic
from ..errors import ConfigError, DataFileError
from ..version import __version__
from . import checkpoint

SHARED_FILES = (checkpoint.CONFIG, checkpoint.MODEL, checkpoint.METRICS)


def pretrained_names() -> list[str]:
    """The models shipped with this installation."""
    root = files("pydiff") / "pretrained"
    return sorted(p.name for p in root.iterdir() if (p / checkpoint.MODEL).is_file()) if root.is_dir() else []


def pretrained_dir(name: str) -> Path:
    """The directory of shipped model ``name``; :class:`ConfigError` naming the choices otherwise."""
    if name not in pretrained_names():
        raise ConfigError(f"no pretrained model {name!r}; choose one of {', '.join(pretrained_names()) or '(none)'}")
    return Path(str(files("pydiff") / "pretrained" / name))


def load_pretrained(name: str, device="cpu"):
    """``(model, config)`` of shipped model ``name``, the model in evaluation mode on ``device``.

    >>> model, config = load_pretrained("quick-model9")        # the 2021 surrogate, 100 x 100
    >>> fields = pydiff.predict(model, images[:, None])           # (n, 1, 100, 100)
    """
    model, config = checkpoint.load_model(pretrained_dir(name), "best", device)
    return model.eval(), config


def export_model(run_dir, out_dir, overwrite: bool = False) -> Path:
    """Write a run's best model as a shared model directory ``out_dir`` (created): its config
    (without the path of the data file it was trained on), its weights and its test metrics.

    ``overwrite`` replaces an existing shared model ``out_dir`` as a whole (a file of the old one,
    such as a calibration of other weights, does not outlive it): the new one is written beside it
    and swapped in, so a failure leaves the old one.  ``out_dir`` may be neither the run nor a
    directory holding it, nor a directory that holds anything but a shared model's files."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config = checkpoint.read_config(run_dir)
    metrics_file = run_dir / checkpoint.METRICS
    if not metrics_file.is_file():
        raise DataFileError(f"{run_dir}: not evaluated yet (no {checkpoint.METRICS}); run `pydiff evaluate {run_dir}` first")
    checkpoint.read_model_file(run_dir)  # a damaged model fails here, before anything is written
    if out_dir.resolve() == run_dir.resolve() or out_dir.resolve() in run_dir.resolve().parents:
        raise ConfigError(f"{out_dir} would replace the run {run_dir} itself; export to another directory")
    if out_dir.exists() or out_dir.is_symlink():
        if not overwrite:
            raise ConfigError(f"{out_dir} exists; pass --overwrite to replace it")
        foreign = [p.name for p in out_dir.iterdir() if p.name not in SHARED_FILES + (checkpoint.CALIBRATION,)] \
            if out_dir.is_dir() else [out_dir.name]
        if foreign:
            raise ConfigError(f"{out_dir} is not a shared model (it holds {', '.join(sorted(foreign)[:3])}); "
                              "--overwrite replaces only one: export to another directory")
    metrics = json.loads(metrics_file.read_text())
    summary = {"test": {k: metrics["test"][k] for k in ("n_samples", "mean_res", "p99_res", "max_res", "mean_rel_res")
                        if k in metrics["test"]},
               "training": metrics.get("training"), "preset": config.preset, "model": config.model,
               "network": config.network, "exported_from": run_dir.name, "pydiff_version": __version__}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        shared = checkpoint.TrainConfig.from_json({**config.to_json(), "data": ""})
        checkpoint.write_config(shared, new)
        names = [checkpoint.MODEL] + [checkpoint.CALIBRATION] * (run_dir / checkpoint.CALIBRATION).is_file()
        for name in names:  # a calibration travels with its model (it names the model's SHA-256)
            with atomic.replacing(new / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)
        atomic.write_text(json.dumps(summary, indent=2), new / checkpoint.METRICS)
        new.chmod(atomic.FILE_MODE | (atomic.FILE_MODE & 0o444) >> 2)  # a directory's mode (mkdtemp's is 0o700)
        _swap_in(new, out_dir)
    finally:
        if new.exists():
            shutil.rmtree(new)
    return out_dir


def _swap_in(new: Path, out_dir: Path) -> None:
    """Put the directory ``new`` at ``out_dir``: renamed there, an old ``out_dir`` first renamed
    aside and removed once the new one is in place."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        os.replace(new, out_dir)
        return
    old = new.with_name(new.name[: -len(".tmp")] + ".old")
    os.replace(out_dir, old)
    try:
        os.replace(new, out_dir)
    except BaseException:
        os.replace(old, out_dir)  # the old one back where it was
        raise
    if old.is_symlink() or not old.is_dir():
        old.unlink()
    else:
        shutil.rmtree(old)
