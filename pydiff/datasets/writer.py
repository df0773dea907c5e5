"""Writing a data set: sources drawn, fields solved, rows streamed into the HDF5 file.

Streamed (memory holds one batch), atomic (the file appears under its name only when complete)
and resumable at any moment: the rows reach the disk before the count that declares them, so a
process killed anywhere leaves a ``NAME.partial`` file whose declared rows are final, which
``resume=True`` finishes; the same seed gives the same file whatever the batch size or the
interruptions.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, cast

import h5py
import numpy as np

from ..atomic import check_writable, fsync_path
from ..errors import ConfigError, Interrupted
from ..problem import Problem, sample_sources, source_images
from ..problem.darcy import subsample
from ..problem.diffusivity import diffusivity_maps
from ..problem.walls import sample_walls
from ..seeds import check_seed
from ..signals import stop_on_signals
from ..version import __version__
from .hdf5 import FORMAT, FORMAT_VERSION, INPUT_FILTER, _attrs, _plain, inspect, optional_arrays, partial_path

THREADED_COMPRESSION_FROM = 256  # lattices from this size compress their inputs in a thread


def _planned_attrs(problem: Problem, n: int, backend: str, seed: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **problem.to_attrs(),
        "backend": backend,
        "seed": int(seed),
        "n": int(n),
        "pydiff_version": __version__,
    }


def _create(path: Path, attrs: dict, problem: Problem, n: int) -> h5py.File:
    L, k = problem.lattice, problem.n_sources
    f = h5py.File(path, "w")
    f.create_dataset("inputs", (n, L, L), np.float32, chunks=(1, L, L), **INPUT_FILTER)
    f.create_dataset("fields", (n, L, L), np.float32, chunks=(1, L, L))
    f.create_dataset("centers", (n, k, 2), np.int16, chunks=(min(n, 4096), k, 2))
    f.create_dataset("values", (n, k), np.float32, chunks=(min(n, 4096), k))
    f.create_dataset("field_max", (n,), np.float32, chunks=(min(n, 4096),))
    f.create_dataset("source_count", (n,), np.int16, chunks=(min(n, 4096),))
    if "diffusivity" in optional_arrays(problem):  # piecewise constant (inclusions) compresses well
        f.create_dataset("diffusivity", (n, L, L), np.float32, chunks=(1, L, L), **INPUT_FILTER)
    if "source_shapes" in optional_arrays(problem):
        f.create_dataset("source_shapes", (n, k, 2), np.float32, chunks=(min(n, 4096), k, 2))
    if "walls" in optional_arrays(problem):
        f.create_dataset("walls", (n,), np.uint8, chunks=(min(n, 4096),))
    f.attrs.update(attrs)
    f.attrs["n_complete"] = 0
    _sync(f)  # from here on the file is a readable, empty data set, whenever the process dies
    return f


def _sync(f: h5py.File) -> None:
    """Write HDF5's cached data and metadata to the file, and the file to the disk."""
    f.flush()
    os.fsync(f.id.get_vfd_handle())


def _check_resumable(f: h5py.File, attrs: dict, path: Path, complete: bool = False) -> None:
    """The file must have been started with exactly the requested parameters.

    A complete file of format version 1 is accepted when its problem matches (it lacks only
    attributes whose defaults it was made with); a partial one cannot be continued in version 2.
    """
    version = _plain(f.attrs.get("format_version"))
    if version == 1 and not complete:
        raise ConfigError(f"cannot resume {path}: it was started by an older pydiff (format version 1); "
                          "use --overwrite to start over")
    defaults = Problem.from_attrs(_attrs(f)).to_attrs()  # what an older file lacks, it was made with
    for key, want in attrs.items():
        if key == "pydiff_version" or (key == "format_version" and complete):
            continue
        have = _plain(f.attrs.get(key, defaults.get(key)))
        if have != want:
            raise ConfigError(
                f"cannot resume {path}: it was started with {key}={have!r}, not {want!r}; "
                "use the original parameters, or --overwrite to start over"
            )


def generate(
    out: str | os.PathLike,
    n: int,
    problem: Problem | None = None,
    seed: int = 0,
    backend: str = "auto",
    batch_size: int = 500,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | Callable[[int], None] = True,
    solver_options: dict | None = None,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Sample ``n`` source images, solve them, and stream them into the HDF5 file ``out``.

    Args:
        out: the file to write; its directory must exist.
        n: number of samples.
        problem: the problem's constants (default: the paper's).
        seed: the seed of the source positions and values; same seed, same data.
        backend: solver backend (see :mod:`pydiff.solvers`).
        batch_size: samples solved and written at a time (memory holds one batch of fields).
        resume: finish the interrupted run that left ``out.partial`` (or do nothing if ``out``
            is already complete with the same parameters).
        overwrite: replace an existing ``out`` (kept until the new file is complete).
        progress: show a progress bar (True), none (False), or call ``progress(k)`` after each
            batch of ``k`` samples.
        solver_options: keyword arguments of the backend (for example ``{"method": "fft"}``).
        shard: ``(i, k)``: write only part i (0-based) of k of the ``n`` samples, for one job of
            a batch system; sample j is the same whichever ``k`` made it, and
            :func:`pydiff.datasets.shards.merge` joins the parts.

    Returns:
        The path of the complete file.

    Raises:
        ConfigError: impossible parameters, missing directory, existing output.
        BackendUnavailable: the backend cannot run here.
    """
    from ..solvers import make_solver, normalise, resolve_backend

    seed = check_seed(seed)
    problem = problem or Problem()
    solved = problem.solved()  # the lattice the fields are solved on (Darcy flow: finer than the one stored)
    backend = resolve_backend(backend, solved)
    out = Path(out)
    if int(n) != n or n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {batch_size}")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if not out.parent.is_dir():
        raise ConfigError(f"output directory {out.parent} does not exist; create it first")
    lo, hi = shard_range(n, shard)
    attrs = _planned_attrs(problem, hi - lo, backend, seed)
    if shard is not None:
        attrs.update(shard_index=int(shard[0]), shard_count=int(shard[1]), first_sample=lo, total=int(n))
    tmp = partial_path(out)

    if out.exists() and not overwrite:
        if not resume:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it or --resume to finish it")
        f, _, _ = inspect(out)
        with f:
            _check_resumable(f, attrs, out, complete=True)
        return out  # already complete with these parameters
    if tmp.exists() and not (resume or overwrite):
        raise ConfigError(
            f"{tmp} is left from an interrupted run; pass --resume to finish it or --overwrite to start over"
        )
    check_writable(out)  # a directory that takes no file: one line now, not a traceback after the solver is built

    # Build the solver before touching any file, so that a backend that cannot run leaves nothing.
    with make_solver(backend, solved, **(solver_options or {})) as solver:
        draw = sample_sources(problem, n, seed)[lo:hi]  # every sample drawn: a shard's rows do not depend on k
        first_sample, n = lo, hi - lo
        f = _open_partial(tmp, attrs) if resume and tmp.exists() else None
        if f is None:
            f = _create(tmp, attrs, problem, n)
        start = int(f.attrs["n_complete"])
        bar = _Bar(progress, n, start, backend)
        # zlib releases the GIL: large inputs compress on the other core while the field is
        # solved (512^2: +50-80 % samples/s); small ones go through h5py's own filter, which is
        # faster there (100^2: 15 % slower in a thread).
        threaded = problem.lattice >= THREADED_COMPRESSION_FROM and _takes_deflated_chunks(f["inputs"])
        compressor = ThreadPoolExecutor(max_workers=1) if threaded else None
        try:
            with stop_on_signals() as stop:  # SIGINT/SIGTERM: stop between batches
                for lo in range(start, n, batch_size):
                    if stop.signum is not None:  # between batches: the file holds whole batches only
                        raise Interrupted(f"interrupted by {stop.name} after {lo} of {n} samples", stop.exit_code,
                                          f"run the same command with --resume to finish {tmp}")
                    hi = min(n, lo + batch_size)
                    part = draw[lo:hi]
                    images = source_images(problem, part)
                    # each map from its sample's own seed: the same whatever the shard or batch
                    maps = diffusivity_maps(problem, range(first_sample + lo, first_sample + hi), seed)
                    walls = sample_walls(problem, range(first_sample + lo, first_sample + hi), seed)
                    packed = compressor.submit(_deflate_rows, images) if compressor is not None else None
                    rhs = images if solved is problem and problem.source_scale == 1 else \
                        source_images(solved, part) * problem.source_scale
                    # solved a chunk at a time, so that a stop request is honoured within a batch (a batch
                    # of 500 at 421^2 takes minutes); a batch stopped half-way is not written
                    chunk = max(1, SOLVE_CHUNK_CELLS // solved.lattice ** 2)
                    parts = []
                    for c in range(0, len(rhs), chunk):
                        if c and stop.signum is not None:
                            raise Interrupted(f"interrupted by {stop.name} after {lo} of {n} samples", stop.exit_code,
                                              f"run the same command with --resume to finish {tmp}")
                        part_maps = None if maps is None else maps[c:c + chunk]
                        parts.append(solver(rhs[c:c + chunk], part_maps) if walls is None
                                     else solver(rhs[c:c + chunk], part_maps, walls[c:c + chunk]))
                    u = parts[0] if len(parts) == 1 else np.concatenate(parts)
                    if solved is not problem:  # every stride-th cell of the solve lattice
                        # Darcy flow, the only problem solved on a finer lattice, has its maps
                        u, maps = subsample(u, problem), subsample(cast(np.ndarray, maps), problem)
                    if problem.normalised:
                        fields, field_max = normalise(u, in_place=True)  # the solver's own array
                    else:  # Darcy flow: u itself
                        fields, field_max = u.astype(np.float32), u.max(axis=(-2, -1)).astype(np.float32)
                    if packed is None:
                        f["inputs"][lo:hi] = images
                    else:
                        for k, deflated in enumerate(packed.result()):
                            f["inputs"].id.write_direct_chunk((lo + k, 0, 0), deflated)
                    f["fields"][lo:hi] = fields
                    f["centers"][lo:hi] = part.centers
                    f["values"][lo:hi] = part.values
                    f["field_max"][lo:hi] = field_max
                    f["source_count"][lo:hi] = part.source_count
                    if maps is not None:
                        f["diffusivity"][lo:hi] = maps
                    if part.shapes is not None:
                        f["source_shapes"][lo:hi] = part.shapes
                    if walls is not None:
                        f["walls"][lo:hi] = walls
                    # The rows reach the disk before the count that declares them does: a process
                    # killed at any moment leaves a file whose first n_complete rows are final.
                    _sync(f)
                    f.attrs["n_complete"] = hi
                    _sync(f)
                    bar(hi - lo)
        finally:
            if compressor is not None:
                compressor.shutdown()
            f.close()
            bar.close()
    fsync_path(tmp)
    os.replace(tmp, out)
    fsync_path(out.parent)  # the rename itself survives a crash of the machine
    return out


SOLVE_CHUNK_CELLS = 1 << 22  # cells solved between two looks at a stop request (~23 samples at 421^2)


def _deflate_rows(images: np.ndarray) -> list[bytes]:
    """Each (L, L) image as the chunk HDF5's deflate filter would store (zlib format, level 1)."""
    return [zlib.compress(np.ascontiguousarray(row, dtype=np.float32).tobytes(), INPUT_FILTER["compression_opts"])
            for row in images]


def _takes_deflated_chunks(dataset: h5py.Dataset) -> bool:
    """Whether ``dataset`` stores one deflated sample per chunk and nothing else (a file this
    version created): then compressed chunks can be written directly."""
    return (dataset.compression == "gzip" and dataset.compression_opts == INPUT_FILTER["compression_opts"]
            and not dataset.shuffle and not dataset.fletcher32 and dataset.scaleoffset is None
            and dataset.chunks == (1, *dataset.shape[1:]) and dataset.dtype == np.dtype(np.float32))


def shard_range(n: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """The samples ``[lo, hi)`` of part i of k (nearly equal consecutive parts); all for None."""
    if shard is None:
        return 0, int(n)
    i, k = shard
    if not (int(k) == k and k >= 1 and int(i) == i and 0 <= i < k):
        raise ConfigError(f"--shard must be i/k with 0 <= i < k, got {i}/{k}")
    if k > n:
        raise ConfigError(f"cannot split {n} samples into {k} shards")
    return int(i * n // k), int((i + 1) * n // k)


def _open_partial(path: Path, attrs: dict) -> h5py.File | None:
    """The interrupted file to continue, checked against the requested parameters; None when it
    holds no complete sample (a run killed before its first batch reached the disk leaves a
    file HDF5 may not even open): then it is simply started afresh."""
    try:
        f = h5py.File(path, "r+")
    except OSError:
        return None
    try:
        if int(_plain(f.attrs.get("n_complete", 0))) == 0 or f.attrs.get("format") is None:
            f.close()
            return None
        _check_resumable(f, attrs, path)
    except BaseException:
        f.close()
        raise
    return f


class _Bar:
    """A tqdm bar in samples/s, or a user callback, behind one call signature."""

    def __init__(self, progress, total: int, initial: int, backend: str) -> None:
        self._callback = progress if callable(progress) else None
        self._tqdm = None
        if progress is True:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, initial=initial, unit="sample", desc=f"generate ({backend})")

    def __call__(self, k: int) -> None:
        if self._tqdm is not None:
            self._tqdm.update(k)
        elif self._callback is not None:
            self._callback(k)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
