"""``pydiff pinn``: the per-instance physics-informed solver on a file of source images."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .. import atomic
from ..errors import ConfigError
from ..evaluation.inference import file_problem, holds_maps, read_sources, read_walls
from ..problem import Problem
from ..problem.parameters import BOUNDARIES, differences
from ..seeds import check_seed
from ..solvers.pinn import check_lr, fit_pinn
from ..version import __version__


def pinn_file(inputs_path, out_path, D: float = 1.0, gamma: float = 1 / 400, boundary: str = "dirichlet",
              progress: bool = True, **options) -> dict:
    """Fit the field of every (L, L) image in ``inputs_path`` (``.npy`` or an HDF5 ``inputs``
    data set) with :func:`pydiff.solvers.pinn.fit_pinn` and write ``out_path``: data set
    ``field`` (n, L, L) float32, peak 1 each, and the time and final residual of each fit.

    ``options``: those of :func:`~pydiff.solvers.pinn.fit_pinn` (iterations, width, ...).
    """
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise ConfigError(f"directory {out_path.parent} does not exist")
    if out_path.exists():
        raise ConfigError(f"{out_path} exists; choose another --out")
    atomic.check_writable(out_path)
    check_lr(options.get("lr", 3e-3))
    check_seed(options.get("seed", 0))
    images = read_sources(inputs_path)  # predict's images: non-negative, none all zero
    # radius 0 and one source: pinn takes the images as they are (no --radius to be refused for);
    # the stationary field, the one equation the Deep Galerkin fit solves
    problem = Problem(lattice=images.shape[-1], radius=0, n_sources=1, D=D, gamma=gamma, boundary=boundary,
                      target="stationary")
    check_equation(inputs_path, problem, len(images))
    fields, seconds, residuals = [], [], []
    for k, image in enumerate(images):
        try:
            field, info = fit_pinn(image, problem, progress=progress, **options)
        except ConfigError as exc:  # which image, of many
            raise ConfigError(f"image {k}: {exc}") from None
        fields.append(field)
        seconds.append(info["seconds"])
        residuals.append(info["residual"])
    with atomic.replacing(out_path) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset("field", data=np.stack(fields))
        out.create_dataset("seconds", data=np.asarray(seconds))
        out.create_dataset("residual", data=np.asarray(residuals))
        out.attrs.update(inputs=str(inputs_path), D=D, gamma=gamma, boundary=boundary, pydiff_version=__version__,
                         method="Deep Galerkin (pydiff.solvers.pinn)",
                         **{k: v for k, v in options.items() if isinstance(v, (int, float, str))})
    return {"samples": len(images), "lattice": images.shape[-1], "seconds": float(np.sum(seconds))}


def check_equation(inputs_path, problem: Problem, n: int) -> None:
    """Refuse inputs whose file states another equation than ``problem``, the one pinn was asked
    to solve (constant D, one wall condition, ``--D`` and ``--gamma``): diffusivity maps, walls per
    sample, or a pydiff data file of other D, decay, walls or source model would be ignored; and a
    file's fields at t_max are not the stationary ones pinn fits."""
    if holds_maps(inputs_path, None):
        raise ConfigError(f"{inputs_path} holds diffusivity maps; pinn solves a constant D (--D): solve them "
                          "exactly (pydiff generate) or with a network of the varied family")
    if Path(inputs_path).suffix == ".npy":
        return
    with h5py.File(inputs_path, "r") as f:  # read_images has opened it already: it is HDF5
        has_walls = "walls" in f
    if has_walls and (read_walls(inputs_path, n) != BOUNDARIES.index(problem.boundary)).any():
        raise ConfigError(f"{inputs_path} states the walls of each sample, not {problem.boundary} for all; pinn "
                          "solves one wall condition (--boundary) for every image")
    given = file_problem(inputs_path)
    if given is not None and given.target != problem.target:
        raise ConfigError(f"{inputs_path} holds the fields at t_max (target t_max); pinn solves the stationary "
                          "equation: give a file of --target stationary, or its images alone (.npy)")
    changed = [] if given is None else differences(problem, given, ["D", "gamma", "boundary", "source_model"])
    if changed:
        raise ConfigError(f"{inputs_path} poses another equation than pinn was asked to solve: {', '.join(changed)}; "
                          "give its --D, --gamma and --boundary")
