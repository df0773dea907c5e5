"""Run the command line as a user would: in this process through click's test runner (fast), or
in a fresh interpreter where a real process matters (signals, torchrun, what gets imported)."""

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from click.testing import CliRunner

from pydiff.cli import main


@dataclass
class Ran:
    """What ``pydiff ARGS`` gave: its exit status and its two output streams."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def working_directory(path):
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def pydiff(*args, cwd=None):
    """``pydiff ARGS`` in this process.  An exception that is not pydiff's own one-line exit
    (a traceback, to a user) is raised, so the test fails with it.

    No time limit: a call in this process cannot be stopped from outside it (a solver or a
    training step in C does not return to Python until it is done).  A test that needs one
    runs :func:`pydiff_process`.  ``result.stderr`` apart from ``result.stdout`` needs click 8.2
    (CliRunner's ``mix_stderr`` went away: the two streams are always kept apart), hence
    ``click>=8.2`` in pyproject.toml."""
    with working_directory(cwd):
        result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def pydiff_process(*args, cwd=None, timeout=300, env=None):
    """``python -m pydiff ARGS`` in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "pydiff", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def assert_clean_failure(result, code, match):
    """One line on stderr naming the problem, the given status, and no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert match in lines[0], lines[0]


def ctrl_c_in_epoch(monkeypatch, epoch: int) -> None:
    """A Ctrl-C as training epoch ``epoch`` starts, for a :func:`pydiff` call in this process:
    pydiff's handler records the SIGINT and the epoch stops at its next step."""
    from pydiff.training.trainer import Trainer

    one_epoch = Trainer.train_one_epoch

    def ctrl_c(trainer, e):
        if e == epoch:
            os.kill(os.getpid(), signal.SIGINT)
        return one_epoch(trainer, e)

    monkeypatch.setattr(Trainer, "train_one_epoch", ctrl_c)
