"""The machine a measurement was made on, in one line, for the tables of the README and docs."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """A one-line description of this machine, for the README's tables."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
