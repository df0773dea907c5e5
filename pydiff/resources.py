"""Files pydiff reads at run time that the repository keeps outside the package: the published
Table 2 (``data/paper_table2.csv``) and the Julia ground-truth script
(``julia/PyDiffGroundTruth.jl``).

A wheel carries copies of them in ``pydiff/_shipped/`` (pyproject.toml's force-include); an
editable install from a checkout reads them where the repository has them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import ConfigError

# file name -> the repository folder that holds it
REPOSITORY_FOLDER = {"paper_table2.csv": "data", "PyDiffGroundTruth.jl": "julia"}


def resource(name: str) -> Path:
    """The path of shipped file ``name``; :class:`ConfigError` when this installation lacks it."""
    shipped = files("pydiff") / "_shipped" / name
    if shipped.is_file():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[1] / REPOSITORY_FOLDER[name] / name
    if checkout.is_file():
        return checkout
    raise ConfigError(f"{name} is missing from this installation of pydiff ({shipped}); reinstall pydiff")
