"""Run a backend in a separate, long-lived worker process.

juliacall and torch loaded into one process can crash depending on which came first, and a
Julia session cannot be unloaded; so the Julia backend lives in a fresh ("spawn") Python process
that starts once per run and exchanges numpy arrays with the parent over a pipe.  The protocol
is backend-agnostic (any registered backend can run inside, which is how it is tested):

    parent -> worker   ("solve", (images, D))     worker -> parent   ("ok", u)
    parent -> worker   ("close", None)            worker -> parent   ("error", kind, message)

and, once at start-up, the worker answers ("ready", None) or ("error", kind, message).  The
worker's own stdout/stderr go to a log file, so that installer chatter never reaches the user.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import traceback
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BackendUnavailable, ConfigError, PydiffError
from ..problem import Problem
from .base import Solver

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

_ERRORS = {"ConfigError": ConfigError, "BackendUnavailable": BackendUnavailable}


def _build(target: str, problem: Problem, options: dict) -> Solver:
    """A registry name, or ``"module:Class"`` for a backend's in-process half."""
    if ":" in target:
        import importlib

        module, cls = target.split(":")
        return getattr(importlib.import_module(module), cls)(problem, **options)
    from . import make_solver

    return make_solver(target, problem, **options)


def _serve(conn, target: str, problem_attrs: dict, options: dict, log_path: str) -> None:
    """Worker main loop (runs in the child process)."""
    log = open(log_path, "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    try:
        solver = _build(target, Problem(**problem_attrs), options)
    except BaseException as exc:  # report any start-up failure, then exit
        traceback.print_exc()
        kind = type(exc).__name__ if isinstance(exc, PydiffError) else "BackendUnavailable"
        conn.send(("error", kind, str(exc) or type(exc).__name__))
        return
    conn.send(("ready", None))
    with solver:
        while True:
            try:
                command, payload = conn.recv()
            except EOFError:  # the parent went away
                return
            if command == "close":
                return
            try:
                conn.send(("ok", solver(*payload)))
            except BaseException as exc:
                traceback.print_exc()
                conn.send(("error", type(exc).__name__, str(exc)))


class WorkerSolver(Solver):
    """A proxy that runs ``target`` in a worker process started now and kept until ``close``.

    ``target`` is a registered backend name or ``"module:Class"``.  Raises, at construction, the error the backend raised at its own start-up (for example
    :class:`BackendUnavailable` when Julia cannot be obtained).
    """

    def __init__(self, problem: Problem, target: str, options: dict | None = None) -> None:
        super().__init__(problem)
        self.name = self.name or target
        fd, self.log_path = tempfile.mkstemp(prefix=f"pydiff-{self.name}-worker-", suffix=".log")
        os.close(fd)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process: SpawnProcess | None = ctx.Process(
            target=_serve,
            args=(child, target, problem.to_attrs(), options or {}, self.log_path),
            daemon=True,
        )
        self._process.start()
        child.close()
        try:
            self._receive()
        except BaseException:
            self.close()
            raise

    def _receive(self):
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            code = self._process.exitcode
            raise BackendUnavailable(
                f"the {self.name} worker process died (exit code {code}); see {self.log_path}"
            ) from None
        if reply[0] == "error":
            _, kind, message = reply
            raise _ERRORS.get(kind, PydiffError)(f"{message} [worker log: {self.log_path}]")
        return reply[1]

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        self._conn.send(("solve", (np.ascontiguousarray(images), diffusivity)))
        return self._receive()

    def close(self) -> None:
        if self._process is None:
            return
        try:
            if self._process.is_alive():
                self._conn.send(("close", None))
        except OSError:
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._process = None
        if os.path.exists(self.log_path) and os.path.getsize(self.log_path) == 0:
            os.remove(self.log_path)
