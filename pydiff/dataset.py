"""The HDF5 data set (format version 2; version 1 is read too): streamed, atomic, resumable writing; checked reading.

Layout (see docs/problem.md): datasets ``inputs`` and ``fields`` (n, L, L) float32, ``centers``
(n, k, 2) int16 (1-based x, y), ``values`` (n, k) float32, ``field_max`` (n,) float32 and
``source_count`` (n,) int16; the problem, the backend, the seed and ``n_complete`` (rows that
are final) as file attributes.

A file is written under ``NAME.partial`` and renamed to ``NAME`` only once every row is final,
so a file under its own name is always complete; an interrupted run leaves the ``.partial``
file, which ``resume=True`` finishes.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .atomic import fsync_path
from .signals import stop_on_signals
from .version import __version__
from .errors import ConfigError, DataFileError, Interrupted
from .problem import Problem, sample_sources, source_images

FORMAT = "pydiff.dataset"
FORMAT_VERSION = 2  # 2: setup, min_sources and the per-sample source_count; 1 is still read
READABLE_VERSIONS = (1, 2)
ARRAYS = ("inputs", "fields", "centers", "values", "field_max", "source_count")
ARRAYS_V1 = ARRAYS[:-1]
PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


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


# Storage, measured on 2 cores (2026-11-25): source images are mostly zeros, and gzip level 1
# stores them 100x (L = 100) to 216x (L = 512) smaller while writing at 400-600 MB/s and reading
# at 700-1000 MB/s; fields are smooth float32, where the best filter (shuffle + gzip) saves only
# 1.3-1.5x and writes at ~50 MB/s, slower than the solver: they stay uncompressed.  One chunk
# per sample, so that a training loader reading random samples decompresses nothing extra.
INPUT_FILTER = {"compression": "gzip", "compression_opts": 1}
THREADED_COMPRESSION_FROM = 256  # lattices from this size compress their inputs in a thread


def _create(path: Path, attrs: dict, problem: Problem, n: int) -> h5py.File:
    L, k = problem.lattice, problem.n_sources
    f = h5py.File(path, "w")
    f.create_dataset("inputs", (n, L, L), np.float32, chunks=(1, L, L), **INPUT_FILTER)
    f.create_dataset("fields", (n, L, L), np.float32, chunks=(1, L, L))
    f.create_dataset("centers", (n, k, 2), np.int16, chunks=(min(n, 4096), k, 2))
    f.create_dataset("values", (n, k), np.float32, chunks=(min(n, 4096), k))
    f.create_dataset("field_max", (n,), np.float32, chunks=(min(n, 4096),))
    f.create_dataset("source_count", (n,), np.int16, chunks=(min(n, 4096),))
    f.attrs.update(attrs)
    f.attrs["n_complete"] = 0
    _sync(f)  # from here on the file is a readable, empty data set, whenever the process dies
    return f


def _sync(f: h5py.File) -> None:
    """Write HDF5's cached data and metadata to the file, and the file to the disk."""
    f.flush()
    os.fsync(f.id.get_vfd_handle())


def _plain(value):
    """An HDF5 attribute as a plain Python value (str, int, float)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_resumable(f: h5py.File, attrs: dict, path: Path, complete: bool = False) -> None:
    """The file must have been started with exactly the requested parameters.

    A complete file of format version 1 is accepted when its problem matches (it lacks only
    attributes whose defaults it was made with); a partial one cannot be continued in version 2.
    """
    version = _plain(f.attrs.get("format_version"))
    if version == 1 and not complete:
        raise ConfigError(f"cannot resume {path}: it was started by an older pydiff (format version 1); "
                          "use --overwrite to start over")
    defaults = Problem.from_attrs(_attrs(f)).to_attrs() if version == 1 else {}
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
    backend: str = "spectral",
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
            :func:`pydiff.shards.merge` joins the parts.

    Returns:
        The path of the complete file.

    Raises:
        ConfigError: impossible parameters, missing directory, existing output.
        BackendUnavailable: the backend cannot run here.
    """
    from .solvers import make_solver, normalise

    problem = problem or Problem()
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

    # Build the solver before touching any file, so that a backend that cannot run leaves nothing.
    with make_solver(backend, problem, **(solver_options or {})) as solver:
        draw = sample_sources(problem, n, seed)[lo:hi]  # every sample drawn: a shard's rows do not depend on k
        n = hi - lo
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
                        raise Interrupted(f"interrupted by {stop.name} after {lo} of {n} samples; run the same command "
                                          f"with --resume to finish {tmp}", stop.exit_code)
                    hi = min(n, lo + batch_size)
                    part = draw[lo:hi]
                    images = source_images(problem, part)
                    packed = compressor.submit(_deflate_rows, images) if threaded else None
                    fields, field_max = normalise(solver(images), in_place=True)  # the solver's own array
                    if packed is None:
                        f["inputs"][lo:hi] = images
                    else:
                        for k, chunk in enumerate(packed.result()):
                            f["inputs"].id.write_direct_chunk((lo + k, 0, 0), chunk)
                    f["fields"][lo:hi] = fields
                    f["centers"][lo:hi] = part.centers
                    f["values"][lo:hi] = part.values
                    f["field_max"][lo:hi] = field_max
                    f["source_count"][lo:hi] = part.source_count
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


@dataclass
class GroundTruth:
    """A pydiff data set, read back.

    ``inputs``, ``fields`` (n, L, L), ``centers`` (n, k, 2), ``values`` (n, k), ``field_max``
    and ``source_count`` (n,) are numpy arrays, or, when loaded with ``lazy=True``, h5py datasets
    read on indexing (a version-1 file's ``source_count`` is made up: all ``n_sources``).
    ``ds[i]`` gives ``(input, field)`` as (1, L, L) float32 arrays, so a GroundTruth is a map-style
    data set for ``torch.utils.data.DataLoader``.
    """

    path: Path
    attrs: dict
    problem: Problem
    inputs: np.ndarray
    fields: np.ndarray
    centers: np.ndarray
    values: np.ndarray
    field_max: np.ndarray
    source_count: np.ndarray
    _file: h5py.File | None = None

    def __len__(self) -> int:
        return int(self.attrs["n_complete"])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.asarray(self.inputs[index], dtype=np.float32)[None],
            np.asarray(self.fields[index], dtype=np.float32)[None],
        )

    @property
    def complete(self) -> bool:
        return int(self.attrs["n_complete"]) == int(self.attrs["n"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _attrs(f: h5py.File) -> dict:
    return {key: _plain(value) for key, value in f.attrs.items()}


def _arrays(attrs: dict) -> tuple[str, ...]:
    """The data sets a file of this format version holds."""
    return ARRAYS_V1 if attrs.get("format_version") == 1 else ARRAYS


def inspect(path: str | os.PathLike) -> tuple[h5py.File, dict, Problem]:
    """Open ``path`` read-only and check that it is a pydiff data set of a known version.

    Returns the open file, its attributes and its problem; raises :class:`DataFileError` naming
    what is wrong otherwise.  A partial file is accepted here (``n_complete`` says how far it is).
    """
    path = Path(path)
    if not path.exists():
        hint = f" (an interrupted run left {partial_path(path)}; finish it with --resume)" if partial_path(path).exists() else ""
        raise DataFileError(f"{path}: no such file{hint}")
    if not h5py.is_hdf5(path):
        raise DataFileError(f"{path}: not an HDF5 file (truncated or of another kind)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be opened as HDF5 ({exc})") from None
    try:
        attrs = _attrs(f)
        if attrs.get("format") != FORMAT:
            raise DataFileError(f"{path}: not a pydiff data set (format attribute {attrs.get('format')!r})")
        if attrs.get("format_version") not in READABLE_VERSIONS:
            raise DataFileError(
                f"{path}: format version {attrs.get('format_version')!r}; this pydiff reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        missing = [name for name in _arrays(attrs) if name not in f]
        if missing or "n_complete" not in attrs or "n" not in attrs:
            raise DataFileError(f"{path}: incomplete pydiff data set (missing {', '.join(missing) or 'attributes'})")
        try:
            problem = Problem.from_attrs(attrs)
        except (KeyError, ValueError) as exc:
            raise DataFileError(f"{path}: bad problem attributes ({exc})") from None
        n, L, k = int(attrs["n"]), problem.lattice, problem.n_sources
        expected = {"inputs": (n, L, L), "fields": (n, L, L), "centers": (n, k, 2), "values": (n, k), "field_max": (n,),
                    "source_count": (n,)}
        for name in _arrays(attrs):
            shape = expected[name]
            if f[name].shape != shape:
                raise DataFileError(f"{path}: dataset {name} has shape {f[name].shape}, expected {shape}")
        if not 0 <= int(attrs["n_complete"]) <= n:
            raise DataFileError(f"{path}: n_complete={attrs['n_complete']} out of range 0..{n}")
        _check_parts(f, path, _arrays(attrs))
    except BaseException:
        f.close()
        raise
    return f, attrs, problem


def part_location(name: str, merged: Path) -> Path:
    """Where HDF5 finds the part ``name`` of a virtual data set in the file ``merged``: an
    absolute name as it is, a relative one beside the merged file or else from the working
    directory (HDF5's own search order)."""
    part = Path(name)
    if part.is_absolute():
        return part
    beside = merged.parent / part
    return beside if beside.exists() or not part.exists() else part


def _check_parts(f: h5py.File, path: Path, names) -> None:
    """Every part a merged file's virtual data sets point into is there and holds its data set.

    HDF5 reads an unreachable part as its fill value: a merged file with a part moved away would
    read as zeros where that part's samples were, without an error.
    """
    checked = set()
    for name in names:
        dataset = f[name]
        if not dataset.is_virtual:
            continue
        for source in dataset.virtual_sources():
            if source.file_name == "." or (source.file_name, source.dset_name) in checked:
                continue
            checked.add((source.file_name, source.dset_name))
            part = part_location(source.file_name, path)
            if not part.is_file():
                raise DataFileError(f"{path}: {part}, a part of this merged data set, is missing; put it back beside "
                                    "the merged file (or merge the parts again)")
            try:
                with h5py.File(part, "r") as g:
                    present = source.dset_name.lstrip("/") in g
            except OSError:
                present = False
            if not present:
                raise DataFileError(f"{path}: {part}, a part of this merged data set, is not the pydiff data set it "
                                    f"was (no {source.dset_name}); merge the parts again")


def load(path: str | os.PathLike, lazy: bool = False, allow_partial: bool = False) -> GroundTruth:
    """Read a data set written by :func:`generate`.

    Args:
        path: the HDF5 file.
        lazy: keep the arrays on disk (h5py datasets, read on indexing) instead of loading them;
            close the result (or use it as a context manager) when done.
        allow_partial: accept a file whose ``n_complete`` is below ``n`` (an interrupted run);
            only the complete rows are returned.

    Raises:
        DataFileError: missing, truncated, foreign, wrong-version or incomplete file.
    """
    f, attrs, problem = inspect(path)
    if int(attrs["n_complete"]) < int(attrs["n"]) and not allow_partial:
        f.close()
        raise DataFileError(f"{path}: incomplete ({attrs['n_complete']} of {attrs['n']} samples); finish it with --resume")
    m = int(attrs["n_complete"])
    made_up = {} if "source_count" in _arrays(attrs) else \
        {"source_count": np.full(int(attrs["n"]), problem.n_sources, dtype=np.int16)}
    if lazy:
        arrays = {name: f[name] for name in _arrays(attrs)}
        return GroundTruth(Path(path), attrs, problem, **arrays, **made_up, _file=f)
    try:
        arrays = {name: f[name][:m] for name in _arrays(attrs)}
    finally:
        f.close()
    return GroundTruth(Path(path), attrs, problem, **arrays, **{k: v[:m] for k, v in made_up.items()})


def summary(path: str | os.PathLike, block: int = 1024) -> tuple[dict, "list[dict]"]:
    """Attributes and per-array (shape, dtype, min, max) of a data set, read block by block."""
    f, attrs, _ = inspect(path)
    rows = []
    with f:
        m = int(attrs["n_complete"])
        for name in _arrays(attrs):
            ds = f[name]
            lo, hi = np.inf, -np.inf
            for start in range(0, m, block):
                part = ds[start : min(m, start + block)]
                lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
            rows.append({"array": name, "shape": str(ds.shape), "dtype": str(ds.dtype),
                         "min": lo if m else float("nan"), "max": hi if m else float("nan")})
    return attrs, rows
