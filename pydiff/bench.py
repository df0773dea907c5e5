"""Timing harness behind ``pydiff bench`` and ``benchmarks/``: measured, never asserted.

Speed targets live here and in the README, not in tests: a timed test fails on a busy machine
and proves nothing on a fast one.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

from .problem import Problem


def machine() -> str:
    """A one-line description of this machine, for the README's tables."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def bench_generate(backends=("spectral",), n: int = 20000, batch_size: int = 500,
                   problem: Problem | None = None, memory_batches: int = 3) -> "list[dict]":
    """Time ``pydiff.generate`` end to end (file written) for each backend.

    Each backend writes ``n`` samples to a temporary file; a second, short run of
    ``memory_batches`` batches under tracemalloc gives the peak of numpy/Python memory, which
    stays at a few batches whatever ``n`` because the file is streamed.

    Returns:
        One dict per backend: samples, seconds, samples_per_second, peak_traced_MB, file_MB.
    """
    from .dataset import generate

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
