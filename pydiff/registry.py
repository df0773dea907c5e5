"""Data only: Table 2's fourteen models and the presets that train them.

A preset is a set of :class:`~pydiff.training.config.TrainConfig` defaults (data size, width, optimiser,
epochs); every value can be overridden.  ``paper`` is the original code's set-up, made faithful
to its Flux.jl networks (docs/flux-parity.md); ``quick`` trains one model on a 2-core CPU in
minutes; ``smoke`` takes seconds and exists for the tests.  ``paper2024`` is the 2024 code's
encoder-decoder set-up (1-20 sources on 512^2, for GPUs) and ``quick2024`` its CPU miniature.  Nothing here trains or imports torch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from .errors import ConfigError
from .resources import resource

LATTICE = 100  # Table 1's shapes fix the image size of the 2021 networks

# The preconditioners of the a-posteriori estimate's CG steps (pydiff.evaluation.aposteriori):
# "spectral", the constant-D inverse; "multigrid", one torch-mg V-cycle; "auto", spectral where D
# is constant and multigrid where it varies.
PRECONDITIONERS = ("auto", "spectral", "multigrid")

# `pydiff pinn`'s Deep Galerkin fit (pydiff.solvers.pinn): Adam steps, units per layer, layers,
# collocation points per step (as many again near the sources) and the first learning rate
# (cosine to 1/100 of it).  Measured on the 2021 problem's images, one core of a loaded 2-core
# Xeon, 2026-12-01: 3 layers at 1e-2 for 1,500 steps reach a mean absolute error of 5.9e-3 and
# 1.1e-2 on two images in 105-140 s, where 2 layers at 3e-3 for 3,000 steps reached 1.2e-2 in
# 150 s (docs/physics.md lists what else was tried).
PINN_DEFAULTS = {"iterations": 1500, "width": 32, "layers": 3, "points": 256, "lr": 1e-2}


@dataclass(frozen=True)
class PaperModel:
    """One row of Table 2: hyper-parameters and the published test-set residuals."""

    model: int
    w: float
    p1: float
    p2: float
    dropout: tuple[float | None, float | None, float | None, float | None]  # None where the network is off
    loss: str
    mean_res: float
    p99_res: float
    max_res: float


def _rate(text: str) -> float | None:
    """A dropout rate; an empty cell (the network is not built) is None."""
    return float(text) if text.strip() else None


def table2() -> dict[int, PaperModel]:
    """The published Table 2, read from ``data/paper_table2.csv`` (shipped with the package)."""
    rows = {}
    with open(resource("paper_table2.csv"), newline="") as f:
        for r in csv.DictReader(f):
            rows[int(r["model"])] = PaperModel(
                model=int(r["model"]), w=float(r["w"]), p1=float(r["p1"]), p2=float(r["p2"]),
                dropout=(_rate(r["D1"]), _rate(r["D2"]), _rate(r["D3"]), _rate(r["D4"])), loss=r["loss"],
                mean_res=float(r["mean_res"]), p99_res=float(r["p99_res"]), max_res=float(r["max_res"]),
            )
    return rows


def paper_model(model_id: int) -> PaperModel:
    """Row ``model_id`` of Table 2; :class:`ConfigError` for an id outside 1..14."""
    rows = table2()
    if model_id not in rows:
        raise ConfigError(f"unknown model id {model_id}; Table 2 has models {min(rows)}-{max(rows)}")
    return rows[model_id]


# The CPU presets checkpoint every epoch: an epoch is minutes there and a checkpoint a second,
# and a SIGKILL (an OOM kill, a lost session) should cost at most one epoch, not the run.
# `paper`: the original DiffSolve.jl (Adam 5e-6, batch 25, 800 epochs, Flux's Glorot-uniform
# initialisation, fixed batches whose order is shuffled each epoch).  `quick`: see docs/training.md.
PRESETS: dict[str, dict] = {
    "paper": {
        "n_samples": 20000, "width": 1.0, "batch_size": 25, "lr": 5e-6, "lr_schedule": "constant",
        "epochs": 800, "output_scale": None, "init": "flux", "rollback": "paper", "shuffle": "batches",
        "checkpoint_every": 10,
    },
    "quick": {
        "n_samples": 10000, "width": 0.125, "batch_size": 16, "lr": 1e-3, "lr_schedule": "cosine",
        "epochs": 9, "output_scale": 0.14, "output_shift": 0.095, "init": "kaiming", "rollback": "paper",
        "recalibrate_bn": True, "checkpoint_every": 1,
    },
    # Table 2 as close to the paper as an hour of a 2-core CPU allows: the paper's data recipe
    # (20,000 samples, 80 % training and 20 % test, the best epoch on the test loss as the original
    # code chose it), Table 1's networks at 1/4 width with the quick preset's start, each epoch
    # picked with its BatchNorm statistics recomputed over 2,000 training inputs; the epochs fill
    # 60 minutes at this project's measured speed (docs/table2.md, "cpu-hour": model 9 2.54e-3 in
    # 56 minutes, where 1/8 width reached 2.69e-3 in 27 epochs and 2.93e-3 picked on the
    # training-mode statistics).
    "cpu-hour": {
        "n_samples": 20000, "split": (0.8, 0.2, 0.0), "select_on": "test", "width": 0.25, "batch_size": 16,
        "lr": 1e-3, "lr_schedule": "cosine", "epochs": 15, "output_scale": 0.14, "output_shift": 0.095,
        "init": "kaiming", "rollback": "paper", "recalibrate_bn": True, "recalibrate_each_epoch": 2000,
        "checkpoint_every": 1,
    },
    "smoke": {
        "n_samples": 40, "width": 0.0625, "batch_size": 8, "lr": 1e-3, "lr_schedule": "cosine",
        "epochs": 3, "output_scale": 0.14, "output_shift": 0.095, "init": "kaiming", "rollback": "paper",
        "recalibrate_bn": True,
    },
    # The 2024 code (DeepDiffusionSolver): SimpleCNN, Adam 1e-4, batch 50, 100 epochs, its
    # default loss (tanh step weight, MAE), 16,000 training and 4,000 test samples per source
    # count, the best epoch chosen on the test loss.  For GPUs: 320,000 training fields of 512^2.
    "paper2024": {
        "network": "encdec", "n_samples": 400000, "split": (0.8, 0.2, 0.0), "select_on": "test",
        "width": 1.0, "loss": "tanh-MAE", "w": 1.0, "batch_size": 50, "lr": 1e-4, "lr_schedule": "constant",
        "epochs": 100, "init": "default", "rollback": "off", "checkpoint_every": 1,
    },
    # The same study in miniature on a 2-core CPU: 64^2, 500 samples per source count, an
    # encoder-decoder of 1/8 the width (787k parameters), a held-out validation split.
    "quick2024": {
        "network": "encdec", "n_samples": 10000, "split": (0.8, 0.1, 0.1), "select_on": "val",
        "width": 0.125, "loss": "tanh-MAE", "w": 1.0, "batch_size": 50, "lr": 1e-3, "lr_schedule": "cosine",
        "epochs": 20, "init": "default", "rollback": "off", "checkpoint_every": 1,
    },
}
# The varied family (inclusions of contrast 10, zero walls): the 2024 set-ups, the encoder-decoder
# reading the diffusivity as a second channel; on a 2-core CPU (64^2) and, at the papers' 512^2,
# for GPUs with the 2024 code's training on 2,000 samples per source count.
PRESETS["quick-varied"] = dict(PRESETS["quick2024"])
PRESETS["paper-varied"] = dict(PRESETS["paper2024"], n_samples=40000)

# Darcy flow as the FNO paper poses it (pydiff.problem.darcy), at 85^2: 1,000 training, 200 test
# and 100 validation samples (selection on a split of its own).  The default network is
# neuraloperator's FNO in the FNO paper's configuration (12 modes, 32 channels, 4 layers, Adam 1e-3
# halved every 100 epochs, weight decay 1e-4, batch 20, the relative L2 loss) for 500 epochs;
# the network's output is scaled by 0.01, the order of u.  The paper's "12 modes" keeps
# frequencies -12..11 on the first axis and 0..11 on the second (its weights1 and weights2);
# neuraloperator counts both signs, so its n_modes of 24 is the paper's 12 (weights 32 x 32 x 24 x
# 13 per layer; with 12, 32 x 32 x 12 x 7: a quarter of the paper's modes).
PRESETS["darcy85"] = {
    "network": "fno", "n_samples": 1300, "split": (10 / 13, 2 / 13, 1 / 13), "select_on": "val", "width": 32 / 256,
    "fno_modes": 24, "loss": "rel-L2", "field_scale": 0.01, "batch_size": 20, "lr": 1e-3, "lr_schedule": "halving",
    "lr_halve_every": 100, "weight_decay": 1e-4, "epochs": 500, "init": "default", "rollback": "off",
    "checkpoint_every": 1,
}

# What each preset is for, in a phrase (the command line's --preset help is made of these).
PRESET_HELP: dict[str, str] = {
    "paper": "the original set-up (GPU)",
    "quick": "CPU minutes",
    "cpu-hour": "the paper's data, an hour of a 2-core CPU",
    "smoke": "seconds, for the tests",
    "paper2024": "the 2024 encoder-decoder on 1-20 sources at 512^2 (GPU)",
    "quick2024": "its CPU miniature at 64^2",
    "quick-varied": "quick2024 reading D as well, on inclusions of contrast 10 (CPU)",
    "paper-varied": "paper2024 reading D as well, on inclusions of contrast 10 (GPU)",
    "darcy85": "Darcy flow at 85^2 as the FNO paper poses it, its FNO configuration",
}
DEFAULT_PRESET = "quick"  # the preset of `pydiff train` and `reproduce` when none is named

# The problem each preset's data set poses (keyword arguments of pydiff.problem.Problem.for_setup);
# the 2021 presets pose the default problem (two sources, 100^2).
PRESET_PROBLEMS: dict[str, dict] = {
    "paper2024": {"setup": "paper2024", "lattice": 512, "n_sources": 20, "min_sources": 1},
    "quick2024": {"setup": "paper2024", "lattice": 64, "n_sources": 20, "min_sources": 1},
    "quick-varied": {"setup": "paper2024", "lattice": 64, "n_sources": 20, "min_sources": 1, "diffusivity": "inclusions",
                     "contrast": 10.0},
    "paper-varied": {"setup": "paper2024", "lattice": 512, "n_sources": 20, "min_sources": 1, "diffusivity": "inclusions",
                     "contrast": 10.0},
    "darcy85": {"setup": "darcy", "lattice": 85},
}

# The presets of the 2024 study of error against training-set size (`pydiff study train-size`):
# the 2024 networks on data of every source count from 1 to 20, whose fractions it takes equally.
STUDY_PRESETS: tuple[str, ...] = tuple(name for name, problem in PRESET_PROBLEMS.items()
                                       if problem.get("setup") == "paper2024")
STUDY_NETWORKS = ("encdec", "unet")  # the 2024 networks it trains


# The default time budget of `pydiff compare` per model, in minutes: the CPU presets' four models
# in under an hour on 2 cores.  Other presets give every model the preset's epochs.
COMPARE_BUDGET_MINUTES: dict[str, float] = {"quick": 12.0, "quick2024": 12.0, "quick-varied": 12.0, "darcy85": 20.0,
                                            "smoke": 0.0}


def preset(name: str) -> dict:
    """A copy of preset ``name``'s values; :class:`ConfigError` for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def preset_problem(name: str) -> dict:
    """The Problem keyword arguments of preset ``name``'s data (empty: the 2021 problem)."""
    preset(name)
    return dict(PRESET_PROBLEMS.get(name, {}))
