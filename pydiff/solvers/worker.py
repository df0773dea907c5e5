"""Run a backend in a separate, long-lived worker process.

juliacall and torch loaded into one process can crash depending on which came first, and a
Julia session cannot be unloaded; so the Julia backend lives in a fresh ("spawn") Python process
that starts once per run and exchanges numpy arrays with the parent over a pipe.  The protocol
is backend-agnostic (any registered backend can run inside, which is how it is tested):

    parent -> worker   ("solve", (images, D))     worker -> parent   ("ok", u)
    parent -> worker   ("close", None)            worker -> parent   ("error", kind, message)

and, once at start-up, the worker answers ("ready", None) or ("error", kind, message).  The
worker's own stdout/stderr go to a log file, so that installer chatter never reaches the user.

An error comes back as its own kind: pydiff's errors and Python's built-in ones as themselves,
others as :class:`WorkerError` naming their kind.  Only what says that the backend cannot start
here (its package or program missing: :data:`START_UP_FAILURES`) becomes
:class:`~pydiff.errors.BackendUnavailable`; a bug at start-up surfaces as the bug it is.
"""

from __future__ import annotations

import builtins
import multiprocessing as mp
import os
import sys
import tempfile
import traceback
from typing import TYPE_CHECKING

import numpy as np

from .. import errors
from ..errors import BackendUnavailable, PydiffError
from ..problem import Problem
from .base import Solver

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

# pydiff's errors by name, rebuilt in the parent from what the worker sends
_ERRORS = {name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, PydiffError)}
# what a backend's construction raises when it cannot run here: its package or its program missing
START_UP_FAILURES = (ImportError, OSError)


class WorkerError(RuntimeError):
    """An error in the worker of a kind the parent does not import (its message names the kind)."""


def _kind(exc: BaseException, starting: bool = False) -> str:
    """The kind the worker reports for ``exc``: its class's name, or BackendUnavailable for a
    start-up failure of :data:`START_UP_FAILURES`."""
    if starting and isinstance(exc, START_UP_FAILURES) and not isinstance(exc, PydiffError):
        return "BackendUnavailable"
    return type(exc).__name__


def _rebuilt(kind: str, message: str) -> BaseException:
    """The parent's exception for the worker's ``("error", kind, message)``."""
    if kind in _ERRORS:
        return _ERRORS[kind](message)
    cls = getattr(builtins, kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except TypeError:  # a built-in that takes other arguments (UnicodeDecodeError)
            pass
    if isinstance(cls, type) and issubclass(cls, BaseException):  # KeyboardInterrupt, SystemExit: the worker stopped
        return PydiffError(f"{kind}: {message}")
    return WorkerError(f"{kind}: {message}")


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
    except BaseException as exc:  # report any start-up failure as its kind, then exit
        traceback.print_exc()
        conn.send(("error", _kind(exc, starting=True), str(exc) or type(exc).__name__))
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
                conn.send(("error", _kind(exc), str(exc)))


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
            raise _rebuilt(kind, f"{message} [worker log: {self.log_path}]")
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
