"""Run the command line in a subprocess, as a user would."""

import subprocess
import sys


def pydiff(*args, cwd=None, timeout=300):
    """Run ``python -m pydiff ARGS``; returns the CompletedProcess (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "pydiff", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


def assert_clean_failure(result, code, match):
    """One line on stderr naming the problem, the given status, and no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert match in lines[0], lines[0]
