"""Table 2 from several seeds: `reproduce --seeds`, and `table`'s mean ± spread, rank agreement
with a bootstrap interval and the findings seed by seed."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from pydiff.evaluation.report import (
    SeedGroup,
    findings,
    group_runs,
    rank_intervals,
    seed_report,
    seed_table,
    spearman,
)
from pydiff.registry import table2

from .cli import assert_clean_failure, pydiff


def write_run(root, run, model, mean, p99=0.05, maximum=0.6, preset="quick"):
    """A run directory as `reproduce` leaves it, as far as `table` reads it: metrics.json."""
    path = root / run
    path.mkdir(parents=True)
    metrics = {"model": model, "preset": preset, "run_dir": str(path), "config": {"model": model, "preset": preset},
               "test": {"mean_res": mean, "p99_res": p99, "max_res": maximum, "n_samples": 2000}}
    (path / "metrics.json").write_text(json.dumps(metrics))


def test_table_aggregates_seeds_by_hand(tmp_path):
    for seed, mean, maximum in ((0, 5e-3, 0.6), (1, 6e-3, 0.7), (2, 7e-3, 0.8)):
        write_run(tmp_path, f"quick/model09-seed{seed}", 9, mean, maximum=maximum)
    write_run(tmp_path, "quick/model12-seed0", 12, 4e-3)
    write_run(tmp_path, "quick/model12-seed2", 12, 8e-3)
    write_run(tmp_path, "quick/model09-seed0-epochs5", 9, 9e-3)  # other options: a row of its own
    write_run(tmp_path, "compare/surrogate", 9, 1e-2)  # not a reproduce run: a row of its own
    result = pydiff("table", tmp_path, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(io.StringIO(result.stdout)).set_index("run")
    nine = rows.loc["quick/model09-seed0,1,2"]
    assert nine["seeds"] == 3 and nine["model"] == 9
    assert nine["mean res (ours)"] == pytest.approx(6e-3)
    # sample standard deviation: sqrt(((5-6)^2 + 0 + (7-6)^2) / (3 - 1)) = 1, times 1e-3
    assert nine["mean res (std)"] == pytest.approx(1e-3)
    assert nine["max res (ours)"] == pytest.approx(0.7) and nine["max res (std)"] == pytest.approx(0.1)
    assert nine["99-P res (std)"] == pytest.approx(0.0, abs=1e-15)
    assert nine["mean res (paper)"] == pytest.approx(2.08e-3)
    assert nine["mean res ratio"] == pytest.approx(6e-3 / 2.08e-3)
    twelve = rows.loc["quick/model12-seed0,2"]
    assert (twelve["seeds"], twelve["mean res (ours)"]) == (2, pytest.approx(6e-3))
    assert twelve["mean res (std)"] == pytest.approx(math.sqrt(2) * 2e-3)
    assert rows.loc["quick/model09-seed0-epochs5", "seeds"] == 1
    assert math.isnan(rows.loc["quick/model09-seed0-epochs5", "mean res (std)"])
    assert rows.loc["compare/surrogate", "mean res (ours)"] == pytest.approx(1e-2)
    assert len(rows) == 12 + 3 + 1  # the twelve models without a run (empty), three of 9, one of 12
    text = pydiff("table", tmp_path)
    assert "6.00e-03 ± 1.00e-03" in text.stdout and "0.7 ± 0.1" in text.stdout
    assert "mean ± the sample standard deviation" in text.stdout


def test_one_seed_table_is_the_comparison_table(tmp_path):
    # One seed per run: no seeds or spread columns, the run named as before.
    write_run(tmp_path, "quick/model09-seed0", 9, 5e-3)
    rows = pd.read_csv(io.StringIO(pydiff("table", tmp_path, "--format", "csv").stdout))
    assert "seeds" not in rows.columns and not any(c.endswith("(std)") for c in rows.columns)
    assert rows.loc[rows.model == 9, "run"].tolist() == ["quick/model09-seed0"]


def test_group_runs_names_variants():
    test = {"mean_res": 1.0, "p99_res": 1.0, "max_res": 1.0}
    groups = group_runs([(9, "quick/model09-seed1", test), (9, "quick/model09-seed0", test),
                         (12, "quick/model12-seed0", test), (9, "quick/model09-seed0-lr0.05", test),
                         (9, "model09-seed4", test), (9, "compare/surrogate", test)])
    named = {(g.model, g.name): (g.variant, g.seeds) for g in groups}
    assert named == {
        (9, "quick/model09-seed0,1"): ("quick/modelNN-seedS", (0, 1)),
        (12, "quick/model12-seed0"): ("quick/modelNN-seedS", (0,)),
        (9, "quick/model09-seed0-lr0.05"): ("quick/modelNN-seedS-lr0.05", (0,)),
        (9, "model09-seed4"): ("modelNN-seedS", (4,)),
        (9, "compare/surrogate"): ("compare/surrogate", (-1,)),
    }


def test_spearman_by_hand():
    # ranks 1 2 3 4 against 1 3 2 4: d = 0, -1, 1, 0, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([10.0, 20.0, 30.0, 40.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    # a tie: ranks 1.5 1.5 3 against 1 2 3, less their means: -0.5 -0.5 1 against -1 0 1; the Pearson
    # correlation of the ranks, (0.5 + 0 + 1) / sqrt(1.5 * 2)
    assert spearman([1.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(1.5 / math.sqrt(1.5 * 2))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    rows = spearman(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), np.array([1.0, 2.0, 3.0]))
    assert rows.tolist() == pytest.approx([1.0, -1.0])


def groups_of(values: dict[int, list[float]]) -> list[SeedGroup]:
    """Groups whose three residuals are the same numbers (one variant)."""
    return [SeedGroup(m, "quick/modelNN-seedS", f"quick/model{m:02d}", tuple(range(len(v))),
                      {key: tuple(v) for key in ("mean_res", "p99_res", "max_res")}) for m, v in values.items()]


def test_rank_intervals_by_hand_contain_the_estimate_and_repeat_with_their_seed():
    # Published mean residuals of models 9, 12, 4, 1, 10, 6: 2.08, 2.12, 2.49, 2.77, 3.19, 75.8 (e-3),
    # ranks 1 to 6.  Our means over the seeds: 2.2, 2.1, 2.67, 3, 3.13, 80 (e-3): ranks 2 1 3 4 5 6,
    # d = -1, 1, 0, 0, 0, 0, rho = 1 - 6 * 2 / (6 * 35) = 0.942857...
    groups = groups_of({1: [2e-3, 3e-3, 4e-3], 6: [7e-2, 8e-2, 9e-2], 9: [2.0e-3, 2.4e-3, 2.2e-3],
                        12: [2.0e-3, 2.2e-3, 2.1e-3], 4: [2.4e-3, 2.6e-3, 3.0e-3], 10: [3.0e-3, 3.3e-3, 3.1e-3]})
    intervals = rank_intervals(groups, resamples=500, seed=3)
    mean = intervals["mean res"]
    assert mean.rho == pytest.approx(1 - 12 / 210)
    assert mean.low <= mean.rho <= mean.high and mean.low < mean.high <= 1.0
    assert (mean.resamples, mean.level, mean.seed) == (500, 0.95, 3)
    again = rank_intervals(groups, resamples=500, seed=3)["mean res"]
    assert (again.low, again.high) == (mean.low, mean.high)
    other = [rank_intervals(groups, resamples=500, seed=s)["mean res"] for s in (0, 1, 2)]
    assert any((o.low, o.high) != (mean.low, mean.high) for o in other)
    # No spread between the seeds and a perfect ranking: every resample ranks as the paper does.
    exact = rank_intervals(groups_of({m: [table2()[m].mean_res] * 3 for m in (1, 6, 9, 12)}), resamples=200)
    assert (exact["mean res"].rho, exact["mean res"].low, exact["mean res"].high) == (1.0, 1.0, 1.0)


def test_findings_count_the_seeds_that_agree():
    # MAE vs MSE, pair 2 (MSE) vs 10 (MAE): model 2 worse in seeds 0 and 2, not in seed 1.
    groups = groups_of({2: [5e-3, 4e-3, 6e-3], 10: [4e-3, 5e-3, 5e-3], 6: [7e-2] * 3, 7: [8e-2] * 3})
    found = findings(groups).set_index("comparison")
    pair = found.loc["2 vs 10 (MSE vs MAE)"]
    assert pair["finding"] == "MAE beats MSE" and pair["seeds agreeing"] == "2 of 3"
    assert pair["ours agrees"] == "yes"  # 5e-3 against 4.67e-3
    assert pair["paper agrees"] == "no"  # 2.91e-3 against 3.19e-3
    nn1 = found.loc["6 vs the best of 2 models with NN2"]
    assert nn1["seeds agreeing"] == "3 of 3" and nn1["paper agrees"] == "yes"
    # The pairs with a model missing are left out; 2 vs 1 (w) needs model 1.
    assert not any("vs 1 " in c for c in found.index)
    # Seeds both sides share: model 3 of seeds 0 and 5 only, against model 2's 0, 1, 2.
    groups.append(SeedGroup(3, "quick/modelNN-seedS", "quick/model03", (0, 5),
                            {k: (1e-3, 9.0) for k in ("mean_res", "p99_res", "max_res")}))
    dropout = findings(groups).set_index("comparison").loc["2 vs 3 (D 0.3/0.3/0.3/0.3 vs D 0.4/0.4/0.1/0.1)"]
    assert dropout["seeds agreeing"] == "1 of 1"


def test_seed_report_states_the_interval_and_the_findings():
    runs = [(m, f"quick/model{m:02d}-seed{s}", {"mean_res": table2()[m].mean_res * (1 + 0.001 * s),
                                                "p99_res": table2()[m].p99_res, "max_res": table2()[m].max_res})
            for s in (0, 1, 2) for m in range(1, 15)]
    text = seed_report(runs, resamples=200)
    assert "Spearman rank correlation with the paper over 14 models (3 seeds each): mean res 1.00 [1.00, 1.00]" in text
    assert "95 % bootstrap interval: 200 resamples" in text
    assert "MAE beats MSE" in text and "NN1 alone" in text and "3 of 3" in text
    assert seed_report(runs, "csv").count("\n") == 15  # the table alone
    markdown = seed_report(runs, "markdown", resamples=200)
    assert markdown.startswith("| model") and "| finding | comparison | seeds agreeing |" in markdown
    table = seed_table(group_runs(runs))
    assert table["seeds"].tolist() == [3] * 14


@pytest.mark.parametrize("args, match", [
    (["--seeds", "0,x"], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", ""], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", "0,,1"], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", "-1"], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", "0,1", "--seed", "0"], "give either --seed S or --seeds LIST, not both"),
])
def test_bad_seeds(tmp_path, args, match):
    assert_clean_failure(pydiff("reproduce", "--model", 9, "--preset", "smoke", *args, cwd=tmp_path), 2, match)
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_run_order_is_seed_by_seed():
    from pydiff.pipelines.reproduce import run_order

    assert run_order([1, 2, 3], [0, 1]) == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]


def test_reproduce_seeds_resumes(tmp_path, monkeypatch):
    from pydiff.evaluation import report

    monkeypatch.setattr(report, "write_figures", lambda *args: [])  # figures: tested in test_reproduce.py
    first = pydiff("reproduce", "--preset", "smoke", "--model", 9, "--seeds", "0,1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.index("== model 9, seed 0") < first.stdout.index("== model 9, seed 1")
    runs = [tmp_path / "runs" / "smoke" / f"model09-seed{s}" for s in (0, 1)]
    data = list((tmp_path / "data").glob("*.h5"))
    assert [d.name for d in data] == ["two_sources-L100-n40-seed0-spectral.h5"]  # one data set for both seeds
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    assert [c["seed"] for c in configs] == [0, 1] and configs[0]["data"] == configs[1]["data"]
    means = [json.loads((run / "metrics.json").read_text())["test"]["mean_res"] for run in runs]
    assert f"{np.mean(means):.2e} ± {np.std(means, ddof=1):.2e}" in first.stdout
    stamps = {p: p.stat().st_mtime_ns for run in runs for p in (run / "model.safetensors", run / "metrics.json")}
    again = pydiff("reproduce", "--preset", "smoke", "--model", 9, "--seeds", "0,1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # reused, not trained or evaluated again
    assert f"{np.mean(means):.2e} ± {np.std(means, ddof=1):.2e}" in again.stdout
    table = pd.read_csv(io.StringIO(pydiff("table", tmp_path / "runs", "--format", "csv").stdout))
    nine = table[table.model == 9].iloc[0]
    assert (nine["run"], nine["seeds"]) == ("smoke/model09-seed0,1", 2)
    assert nine["mean res (ours)"] == pytest.approx(np.mean(means))
    # --seed 1, the one-seed form, is the same run
    one = pydiff("reproduce", "--preset", "smoke", "--model", 9, "--seed", 1, cwd=tmp_path)
    assert one.returncode == 0 and "== model 9 (preset smoke) ==" in one.stdout
    assert (runs[1] / "model.safetensors").stat().st_mtime_ns == stamps[runs[1] / "model.safetensors"]
