"""``pydiff pinn``: the per-instance physics-informed solver on a file of source images."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .. import atomic
from ..errors import ConfigError
from ..evaluation.inference import read_images
from ..problem import Problem
from ..training.pinn import fit_pinn
from ..version import __version__


def pinn_file(inputs_path, out_path, D: float = 1.0, gamma: float = 1 / 400, boundary: str = "dirichlet",
              progress: bool = True, **options) -> dict:
    """Fit the field of every (L, L) image in ``inputs_path`` (``.npy`` or an HDF5 ``inputs``
    data set) with :func:`pydiff.training.pinn.fit_pinn` and write ``out_path``: data set
    ``field`` (n, L, L) float32, peak 1 each, and the time and final residual of each fit.

    ``options``: those of :func:`~pydiff.training.pinn.fit_pinn` (iterations, width, ...).
    """
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise ConfigError(f"directory {out_path.parent} does not exist")
    if out_path.exists():
        raise ConfigError(f"{out_path} exists; choose another --out")
    images = read_images(inputs_path)
    problem = Problem(lattice=images.shape[-1], D=D, gamma=gamma, boundary=boundary,
                      target="t_max" if boundary == "dirichlet" else "stationary")
    problem.validate()
    fields, seconds, residuals = [], [], []
    for k, image in enumerate(images):
        field, info = fit_pinn(image, problem, progress=progress, **options)
        fields.append(field)
        seconds.append(info["seconds"])
        residuals.append(info["residual"])
    with atomic.replacing(out_path) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset("field", data=np.stack(fields))
        out.create_dataset("seconds", data=np.asarray(seconds))
        out.create_dataset("residual", data=np.asarray(residuals))
        out.attrs.update(inputs=str(inputs_path), D=D, gamma=gamma, boundary=boundary, pydiff_version=__version__,
                         method="Deep Galerkin (pydiff.training.pinn)",
                         **{k: v for k, v in options.items() if isinstance(v, (int, float, str))})
    return {"samples": len(images), "lattice": images.shape[-1], "seconds": float(np.sum(seconds))}
