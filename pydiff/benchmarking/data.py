"""Data-set speed: ``pydiff generate`` end to end (samples/s and peak memory), and reading random
training batches from a file as streamed training reads them."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from ..problem import Problem


def bench_generate(backends=("spectral",), n: int = 20000, batch_size: int = 500,
                   problem: Problem | None = None, memory_batches: int = 3) -> "list[dict]":
    """Time ``pydiff.generate`` end to end (file written) for each backend.

    Each backend writes ``n`` samples to a temporary file; a second, short run of
    ``memory_batches`` batches under tracemalloc gives the peak of numpy/Python memory, which
    stays at a few batches whatever ``n`` because the file is streamed.

    Returns:
        One dict per backend: samples, seconds, samples_per_second, peak_traced_MB, file_MB.
    """
    from ..datasets.writer import generate

    problem = problem or Problem()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out = Path(tmp) / f"{backend}.h5"
            start = time.perf_counter()
            generate(out, n, problem, backend=backend, batch_size=batch_size, progress=False)
            seconds = time.perf_counter() - start
            size = out.stat().st_size / 1e6
            out.unlink()
            tracemalloc.start()
            generate(out, min(n, memory_batches * batch_size), problem, backend=backend,
                     batch_size=batch_size, progress=False)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            out.unlink()
            rows.append({"backend": backend, "samples": n, "batch_size": batch_size, "seconds": seconds,
                         "samples_per_second": n / seconds, "peak_traced_MB": peak, "file_MB": size})
    return rows


def bench_read(path, batch_size: int = 50, batches: int = 20, seed: int = 0) -> dict:
    """Training-time read speed of a data file: random batches of ``batch_size`` samples
    (inputs and fields) read as streamed training reads them (:class:`pydiff.datasets.batches.StreamedSamples`,
    one batch ahead in a thread), to the CPU.  Cold pages of a file bigger than the page cache
    read at disk speed; a small file measured twice reads from memory the second time.

    Returns:
        samples_per_second, MB_per_second (both arrays), lattice, samples, batch_size.
    """
    import numpy as np
    import torch

    from ..datasets.batches import Rows, StreamedSamples
    from ..datasets.hdf5 import load

    data = load(path, lazy=True)
    try:
        n = len(data)
        rng = np.random.default_rng(seed)
        order = torch.from_numpy(rng.permutation(n)[: batch_size * batches])
        samples = StreamedSamples(Rows(data.inputs), Rows(data.fields), np.arange(n), torch.device("cpu"))
        start = time.perf_counter()
        read = sum(len(x) for x, _ in samples.epoch_batches(0, list(order.split(batch_size))))
        seconds = time.perf_counter() - start
    finally:
        data.close()
    L = data.problem.lattice
    return {"file": str(path), "lattice": L, "samples": read, "batch_size": batch_size,
            "samples_per_second": read / seconds, "MB_per_second": read * 2 * L * L * 4 / 1e6 / seconds}
