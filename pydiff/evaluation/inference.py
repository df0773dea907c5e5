"""Predictions for source images users bring, with label-free error maps.

``predict_file`` reads (n, L, L) source images — the ``inputs`` data set of an HDF5 file (a
pydiff data file qualifies) or a ``.npy`` array — runs a trained run's best network on them and
writes an HDF5 file with ``prediction`` and, when asked, ``mc_dropout_std`` (per-pixel spread
of dropout-on predictions) and ``physics_residual`` (the stationary equation's residual maps,
:mod:`pydiff.problem.residual`).  With a ``max_error`` and a calibrated run, each sample is
answered by the network only where its calibrated bound is at most that, and solved exactly
otherwise (:mod:`pydiff.evaluation.bound`): ``bound`` and ``served`` are written beside, and the
two scores, which are of the network's prediction whatever answered, as ``network_mc_dropout_std``
and ``network_physics_residual``.  The output is written under a temporary name and renamed when
complete.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from .. import atomic
from ..datasets.hdf5 import FORMAT, inspect
from ..device import pick_device
from ..errors import ConfigError, DataFileError
from ..problem import Problem
from ..problem.diffusivity import diffusivity_channel
from ..problem.parameters import BOUNDARIES, differences, equation_differences
from ..problem.residual import require_normalised, stationary_residual
from ..problem.walls import constant_walls, wall_planes
from ..training import checkpoint
from ..training.config import channel_layout
from ..version import __version__
from .bound import check_max_error, network_pays, read_calibration, serve, solve_exactly
from .predict import predict, predict_mc_dropout

if TYPE_CHECKING:
    import torch


def read_images(path, name: str = "inputs", what: str = "source images") -> np.ndarray:
    """(n, L, L) float32 arrays from an HDF5 file's data set ``name`` or a ``.npy`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            images = np.load(path, allow_pickle=False)
        else:
            with h5py.File(path, "r") as f:
                if name not in f:
                    raise DataFileError(f"{path}: no '{name}' data set (give (n, L, L) {what})")
                if not isinstance(f[name], h5py.Dataset):
                    raise DataFileError(f"{path}: '{name}' is not an (n, L, L) data set (give (n, L, L) {what})")
                done, n = f.attrs.get("n_complete"), f.attrs.get("n")
                if f.attrs.get("format") == FORMAT and done is not None and n is not None and done < n:
                    # its unwritten rows are zeros: say the file is unfinished, not that they are
                    raise DataFileError(f"{path}: incomplete ({done} of {n} samples); finish it with --resume")
                images = f[name][()]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an array of objects: nothing numpy can read without running code
            raise DataFileError(f"{path}: {what} must be an array of numbers (this .npy holds objects)") from None
        raise DataFileError(f"{path}: cannot be read ({exc})") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc})") from None
    if not np.issubdtype(np.asarray(images).dtype, np.number):
        raise DataFileError(f"{path}: {what} must be an array of numbers, got {np.asarray(images).dtype}")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] != images.shape[2] or not len(images):
        raise DataFileError(f"{path}: {what} must be (n, L, L) with n >= 1, got shape {images.shape}")
    if not np.isfinite(images).all():
        raise DataFileError(f"{path}: {what} hold NaN or infinite values")
    return images


def read_sources(path) -> np.ndarray:
    """(n, L, L) float32 source images (:func:`read_images`), each non-negative with a positive
    peak: the fields are normalised by their maximum, which a negative or empty image lacks."""
    images = read_images(path)
    lowest = images.reshape(len(images), -1).min(axis=1)
    if (lowest < 0).any():
        k = int(np.flatnonzero(lowest < 0)[0])
        raise DataFileError(f"{path}: source images must be non-negative; image {k} has a negative value "
                            f"({lowest[k]:.3g})")
    empty = images.reshape(len(images), -1).max(axis=1) <= 0
    if empty.any():
        raise DataFileError(f"{path}: image {int(np.flatnonzero(empty)[0])} is all zero: no source, no field to "
                            "normalise; remove it")
    return images


def file_problem(path) -> Problem | None:
    """The problem a pydiff data file poses; None for a ``.npy`` file or another HDF5 file."""
    path = Path(path)
    if path.suffix == ".npy":
        return None
    with h5py.File(path, "r") as f:  # read_images has opened it already: it is HDF5
        if f.attrs.get("format") != FORMAT:
            return None
    f, _, problem = inspect(path)
    f.close()
    return problem


def holds_maps(inputs_path, diffusivity_path) -> bool:
    """Whether diffusivity maps come with the images: given, or a ``diffusivity`` data set in
    the HDF5 inputs file."""
    if diffusivity_path is not None:
        return True
    if Path(inputs_path).suffix == ".npy":
        return False
    with h5py.File(inputs_path, "r") as f:
        return "diffusivity" in f


def read_diffusivity(inputs_path, diffusivity_path, images: np.ndarray) -> np.ndarray:
    """The (n, L, L) diffusivity maps of the images: ``diffusivity_path`` (.npy or HDF5
    ``diffusivity``), or the ``diffusivity`` data set beside the images' own ``inputs``."""
    path = diffusivity_path or inputs_path
    if diffusivity_path is None and Path(inputs_path).suffix == ".npy":
        raise ConfigError("this network reads each sample's diffusivity: give --diffusivity MAPS.npy")
    maps = read_images(path, "diffusivity", "diffusivity maps")
    if maps.shape != images.shape:
        raise DataFileError(f"{path}: diffusivity maps of shape {maps.shape} for images of shape {images.shape}")
    if not (maps > 0).all():
        raise DataFileError(f"{path}: diffusivity maps must be positive")
    return maps


def read_walls(inputs_path, n: int) -> np.ndarray:
    """The (n,) wall conditions of the images in ``inputs_path``: its ``walls`` data set (a
    pydiff data file of mixed walls, or any HDF5 file with one), or for a pydiff data file of one
    wall condition every sample that one."""
    path = Path(inputs_path)
    if path.suffix == ".npy":
        raise ConfigError("this network reads each sample's walls: give an HDF5 file with a 'walls' data set "
                          "(0 dirichlet, 1 neumann, 2 periodic), such as a pydiff data file")
    with h5py.File(path, "r") as f:  # read_images has opened it already: it is HDF5
        walls = np.asarray(f["walls"][()]) if "walls" in f else None
        pydiff_file = f.attrs.get("format") == FORMAT
    if walls is None:
        if not pydiff_file:
            raise DataFileError(f"{path}: no 'walls' data set of shape ({n},); this network reads each sample's walls")
        f, _, problem = inspect(path)
        f.close()
        return constant_walls(problem, n)
    # every value, not only the largest: a fraction, a negative or a NaN names no wall condition
    if walls.shape != (n,) or not np.isin(walls, np.arange(len(BOUNDARIES))).all():
        raise DataFileError(f"{path}: walls must be ({n},) values 0 (dirichlet), 1 (neumann) or 2 (periodic)")
    return walls.astype(np.uint8)


def trained_problem(run_dir, config) -> Problem:
    """The problem (lattice, D, gamma, ...) a run's model was trained on: recorded in its model
    file, or for a pydiff 0.1 run read from its data file."""
    problem = checkpoint.model_problem(run_dir)
    if problem is None:
        f, _, problem = inspect(config.data)
        f.close()
    return problem


def predict_file(run_dir, inputs_path, out_path, uncertainty: bool = False, samples: int = 32,
                 device: str | torch.device = "auto", batch_size: int = 100, diffusivity_path=None,
                 max_error: float | None = None, calibration_path=None, named: str | None = None,
                 refine: int = 0, skip_network: bool = True) -> dict:
    """Predict the fields of the images in ``inputs_path`` with ``run_dir``'s best network (and,
    for a network of the varied family, each image's diffusivity map: ``diffusivity_path``, or
    the ``diffusivity`` data set of an HDF5 ``inputs_path``).

    A network answers only the equation it was trained on: a pydiff data file of other walls,
    decay, target or (for a network that does not read maps) diffusivity is refused.  With
    ``max_error``, the bound of ``calibration_path`` (default ``RUN/calibration.json``) serves
    only samples of the family it was calibrated on; the others are solved exactly, as the
    file poses them.  ``named``: how the user named the model (messages).  ``skip_network``:
    where the calibration says the network would not repay its cost at ``max_error``
    (:func:`~pydiff.evaluation.bound.network_pays`; not with ``refine`` or ``uncertainty``),
    every sample is solved exactly without running it: the answers ``generate`` would give, at
    its cost.

    Returns a summary: samples, lattice, with ``uncertainty`` the mean of each score, and with
    ``max_error`` the fraction served by the network and the seconds per answer.
    """
    out_path = Path(out_path)
    named = named or str(run_dir)
    if not out_path.parent.is_dir():
        raise ConfigError(f"directory {out_path.parent} does not exist")
    if out_path.exists():
        raise ConfigError(f"{out_path} exists; choose another --out")
    atomic.check_writable(out_path)
    if samples < 2:
        raise ConfigError(f"--samples must be at least 2, got {samples}")
    if max_error is not None:
        check_max_error(max_error)
    device = pick_device(device)
    model, config = checkpoint.load_model(run_dir, "best", device)
    images = read_sources(inputs_path)
    problem = trained_problem(run_dir, config)
    reads_map, reads_walls = channel_layout(config.in_channels)
    given = file_problem(inputs_path)
    if given is not None:
        changed = equation_differences(problem, given, reads_map, reads_walls)
        if changed:
            raise ConfigError(f"{inputs_path} poses another equation than {named} was trained on: {', '.join(changed)}; "
                              "a network answers only its own (solve it exactly: pydiff generate)")
    if not reads_map and holds_maps(inputs_path, diffusivity_path):
        raise ConfigError(f"{named} was trained on a constant D and does not read diffusivity maps; its answers would "
                          "be those of D = " + f"{problem.D:g}: drop --diffusivity, or use a network of the varied family")
    if images.shape[-1] != problem.lattice and config.network == "surrogate":
        raise DataFileError(f"{inputs_path}: lattice {images.shape[-1]}, but this run's network needs {problem.lattice}")
    if max_error is not None:
        require_normalised(problem, "predict without --max-error")
    calibration = None if max_error is None else read_calibration(run_dir, calibration_path, named)
    if calibration is not None:
        if given is None or diffusivity_path is not None:  # a family that cannot be checked: no guarantee
            raise ConfigError("the bound holds for samples of the family it was calibrated on, which only a pydiff data "
                              f"file states: give --inputs as one (pydiff generate), its maps inside it, not "
                              f"{'--diffusivity' if given is not None else inputs_path}; or predict without --max-error")
        family = Problem.from_attrs(calibration["problem"])
        changed = differences(family, given)
        if changed:
            raise ConfigError(f"{inputs_path} is not of the family the bound was calibrated on: {', '.join(changed)}; "
                              f"calibrate on a file of its family first (pydiff calibrate {named} --data FILE --out "
                              "CALIBRATION.json), then predict with --calibration CALIBRATION.json")
    maps = read_diffusivity(inputs_path, diffusivity_path, images) if reads_map else None
    x = images[:, None]
    if maps is not None:
        x = np.concatenate([x, diffusivity_channel(maps, problem)[:, None]], axis=1)
    walls = read_walls(inputs_path, len(images)) if reads_walls else None
    if walls is not None:  # a network of mixed walls: each sample's, from the inputs file
        x = np.concatenate([x, wall_planes(walls, images.shape[-1])], axis=1)
    start = time.perf_counter()
    summary = {"samples": len(images), "lattice": images.shape[-1]}
    if calibration is not None and skip_network and not refine and not uncertainty:
        assert given is not None and max_error is not None
        pays, why = network_pays(calibration, max_error)
        if not pays:  # the answers generate would give, at its cost
            solved, iterations = solve_exactly(images, given, maps, walls, device=str(device))
            arrays = {"prediction": solved, "bound": np.full(len(images), np.inf, dtype=np.float32),
                      "served": np.zeros(len(images), dtype=bool)}
            summary.update(served=0.0, refined=0.0, cg_iterations=iterations, network_skipped=why,
                           seconds_per_answer=(time.perf_counter() - start) / len(images))
            _write_answers(out_path, arrays, run_dir, inputs_path, 0, max_error, calibration, skipped=why)
            return summary
    prediction = predict(model, x, batch_size, device, config.amp)[:, 0]
    arrays = {"prediction": prediction}
    if calibration is not None:  # the file's own problem (its family is the calibration's)
        assert given is not None and max_error is not None  # a calibration is read for max_error, checked on given
        answers = serve(prediction, images, given, maps, max_error, calibration, str(device), walls, refine)
        arrays.update({name: answers[name] for name in ("prediction", "bound", "served")})
        if refine:
            arrays.update(refined=answers["refined"], refined_bound=answers["refined_bound"])
        summary.update(served=float(answers["served"].mean()), refined=float(answers["refined"].mean()),
                       cg_iterations=answers["cg_iterations"],
                       seconds_per_answer=(time.perf_counter() - start) / len(images))
    if uncertainty:
        _, spread = predict_mc_dropout(model, x, samples, batch_size, device, config.seed, config.amp)
        the_problem = dataclasses.replace(problem, lattice=images.shape[-1])  # D and gamma as trained
        residual, _ = stationary_residual(prediction, images, the_problem, maps, walls)
        # both score the network's own prediction; beside answers some of which are exact solves,
        # they are named so, not taken for the answers' own
        of = "network_" if calibration is not None else ""
        arrays.update({f"{of}mc_dropout_std": spread[:, 0], f"{of}physics_residual": residual.astype(np.float32)})
        summary.update({f"mean_{of}mc_dropout_std": float(spread.mean()),
                        f"mean_abs_{of}physics_residual": float(np.abs(residual).mean())})
    _write_answers(out_path, arrays, run_dir, inputs_path, samples if uncertainty else 0, max_error, calibration)
    return summary


def _write_answers(out_path: Path, arrays: dict, run_dir, inputs_path, mc_dropout_samples: int,
                   max_error: float | None, calibration: dict | None, skipped: str | None = None) -> None:
    """predict's HDF5 file, written atomically: ``arrays`` and what made them."""
    with atomic.replacing(out_path) as tmp, h5py.File(tmp, "w") as out:
        for name, array in arrays.items():
            out.create_dataset(name, data=array, chunks=(1, *array.shape[1:]) if array.ndim > 1 else True)
        out.attrs.update(run=str(run_dir), inputs=str(inputs_path), pydiff_version=__version__,
                         mc_dropout_samples=mc_dropout_samples)
        if calibration is not None:
            out.attrs.update(max_error=max_error, alpha=calibration["alpha"], guarantee=calibration["guarantee"],
                             calibration=calibration["path"], calibration_sha256=calibration["sha256"])
        if skipped is not None:
            out.attrs["network_skipped"] = skipped

