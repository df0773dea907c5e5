"""The public API as tools see it: mypy passes on the package (configured in pyproject.toml),
``dir(pydiff)`` shows every public name, lazy ones included, and importing pydiff stays cheap."""

import subprocess
import sys
from pathlib import Path

import pytest

import pydiff

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_passes_on_the_package(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install -e '.[dev]')")
    monkeypatch.chdir(ROOT)  # [tool.mypy] in pyproject.toml, and its cache beside it
    report, errors, status = api.run(["pydiff"])
    assert status == 0, report + errors


def test_dir_lists_every_public_name_and_each_resolves():
    listed = dir(pydiff)
    missing = [name for name in pydiff.__all__ if name not in listed]
    assert not missing, f"dir(pydiff) lacks {missing}"
    assert len(set(pydiff.__all__)) == len(pydiff.__all__), "a name appears twice in __all__"
    for name in pydiff.__all__:
        assert getattr(pydiff, name) is not None, name
    assert pydiff.TrainConfig.__module__ == "pydiff.training.config"
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        pydiff.not_a_name  # noqa: B018


def test_importing_pydiff_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import pydiff, sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", "import pydiff imported torch: keep the heavy modules lazy (pydiff/__init__.py)"
