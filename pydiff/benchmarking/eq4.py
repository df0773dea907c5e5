"""The paper's Eq. 4 measured here: δ, ε, M, E and N_min beside the published values (``pydiff bench``).

N_min = (M + E/δ) / (1 - ε/δ) is the number of uses after which a surrogate pays for the samples
it was trained on (M, made at δ each) and its training (E seconds).
"""

from __future__ import annotations

from pathlib import Path

from .speed import time_solver, time_surrogate


PAPER = {"delta": 1.16, "speedup": 1000.0, "E": 12 * 3600.0, "M": 20000, "N_min": 57300.0}


def samples_made(config, result: dict) -> int:
    """Eq. 4's M for a finished run: the samples of its data file it used (its first
    ``n_samples``, or all of them), or, where the file is gone, those it trained on."""
    from ..datasets.hdf5 import load

    if config.data and Path(config.data).is_file():
        with load(config.data, lazy=True) as data:
            return len(data) if config.n_samples is None else min(config.n_samples, len(data))
    return int(config.n_samples or result["n_train"])


def bench_eq4(run_dir=None, width: float = 1.0, backends=("spectral", "direct"), n_delta: int = 200,
              batch_sizes=(1, 256)) -> "list[dict]":
    """δ, ε, M, E and N_min (Eq. 4) measured here, beside the paper's values.

    M and E come from a finished run (its data size and training seconds) when ``run_dir`` is
    given, else the paper's (20,000 samples, 12 h) are used and marked as such.
    """
    import torch

    from ..evaluation.metrics import n_min
    from ..training.checkpoint import read_config, read_result

    rows = []
    deltas = {}
    for backend in backends:
        deltas[backend] = time_solver(backend, n_delta if backend != "timestep" else 4)
        rows.append({"quantity": f"delta: {backend} solver, s/sample", "measured": deltas[backend], "paper": PAPER["delta"]})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    epsilons = {}
    for device in devices:
        for b in batch_sizes:
            epsilons[(device, b)] = time_surrogate(width, b, device)
            rows.append({"quantity": f"epsilon: model 9 width {width:g}, {device}, batch {b}, s/sample",
                         "measured": epsilons[(device, b)], "paper": PAPER["delta"] / PAPER["speedup"]})
    M: float
    if run_dir is not None:
        config, result = read_config(run_dir), read_result(run_dir)
        if result is None:
            from ..errors import DataFileError

            raise DataFileError(f"{run_dir}: the run is not finished (no result.json)")
        M, E, source = samples_made(config, result), result["seconds"], f"run {run_dir}"
    else:
        M, E, source = PAPER["M"], PAPER["E"], "paper's M and E"
    rows.append({"quantity": f"M: samples generated ({source})", "measured": M, "paper": PAPER["M"]})
    rows.append({"quantity": f"E: training seconds ({source})", "measured": E, "paper": PAPER["E"]})
    best_eps = min(epsilons.values())
    for backend, delta in deltas.items():
        rows.append({"quantity": f"delta/epsilon ({backend}, best epsilon)", "measured": delta / best_eps,
                     "paper": PAPER["speedup"]})
        rows.append({"quantity": f"N_min ({backend}, best epsilon)",
                     "measured": n_min(M, E, delta, best_eps),
                     "paper": PAPER["N_min"]})
    rows.append({"quantity": "N_min (paper's delta = 1.16 s, best epsilon here)",
                 "measured": n_min(M, E, PAPER["delta"], best_eps),
                 "paper": PAPER["N_min"]})
    return rows
