"""The package's layers point one way: import-linter checks the contracts in pyproject.toml
(imports inside functions included), and the checker is shown to catch a violation."""

import sys
import textwrap
from pathlib import Path

import pytest

importlinter = pytest.importorskip("importlinter.application.use_cases")
pytest.importorskip("importlinter.configuration").configure()  # as its command line does

ROOT = Path(__file__).resolve().parents[1]


def lint(config: Path, monkeypatch, path: Path) -> bool:
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.chdir(path)
    return importlinter.lint_imports(config_filename=str(config), cache_dir=None, no_logo=True)


def test_pydiff_keeps_its_import_contracts(monkeypatch, capsys):
    kept = lint(ROOT / "pyproject.toml", monkeypatch, ROOT)
    assert kept, capsys.readouterr().out


def test_the_checker_sees_an_upward_import_inside_a_function(tmp_path, monkeypatch, capsys):
    package = tmp_path / "layered"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "high.py").write_text("from .low import helper\n")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "helper.py").write_text(textwrap.dedent("""
        def f():
            from ..high import something  # an upward import, hidden in a function
    """))
    config = tmp_path / "pyproject.toml"
    config.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_package = "layered"

        [[tool.importlinter.contracts]]
        name = "layers"
        type = "layers"
        containers = ["layered"]
        exhaustive = true
        layers = ["high", "low"]
    """))
    assert not lint(config, monkeypatch, tmp_path)
    assert "layered.low.helper -> layered.high" in capsys.readouterr().out
    sys.modules.pop("layered", None)


def test_nothing_points_users_outside_the_repository():
    for path in (ROOT / "pydiff").rglob("*.py"):
        assert "DESIGN.md" not in path.read_text(), path
