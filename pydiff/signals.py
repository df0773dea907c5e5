"""Stop requests from SIGINT (Ctrl-C) and SIGTERM (a scheduler's pre-emption), polled by long jobs.

A handler that only records the signal, checked by the job between units of work (a batch of
samples, a training step), makes every interruption land at a point where the files are
consistent.  Python's default SIGINT handling raises KeyboardInterrupt wherever the main thread
happens to be, and when that is inside a garbage-collector callback (h5py's object registries
use weak references) the exception is printed and dropped: the job would run on.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass


@dataclass
class StopRequest:
    """The first stop signal received (None: none yet)."""

    signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a signal"

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(request: StopRequest | None = None):
    """Within the block, SIGINT and SIGTERM set ``request.signum`` instead of stopping the
    process; the previous handlers come back afterwards.  Off the main thread (where Python
    cannot install handlers) the request is never set."""
    request = request if request is not None else StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def record(signum, frame):
        if request.signum is None:
            request.signum = signum

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
