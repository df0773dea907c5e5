"""Mutation testing of the numerical core, each module against its own tests (mutmut 3).

    nice -n 10 .venv/bin/python benchmarks/mutation.py                  # the four modules, 10-20 minutes on 2 cores
    nice -n 10 .venv/bin/python benchmarks/mutation.py metrics bound    # some of them
    .venv/bin/python benchmarks/mutation.py --list                      # what each module is tested with

Needs the ``dev`` extra (``pip install -e ".[dev]"``: mutmut).  For each module it copies the
working tree (the files git tracks or would track: ``git ls-files -co --exclude-standard``) to
``build/mutation/MODULE/`` and runs mutmut there, configured for that module alone (a
``[tool.mutmut]`` table appended to the copy's pyproject.toml): only that file is mutated, and
each mutant is run against the tests listed in :data:`MODULES` that call the mutated function.
mutmut writes its mutants into the copy's ``mutants/`` folder; nothing in the repository itself
is ever changed, so the tree can be edited (and tested) while this runs.

Prints, per module, the mutants killed out of those tested (a timeout counts as killed, as in
mutmut's own score) and each survivor's diff, and writes ``build/mutation/MODULE/report.md``
(the survivors' diffs) and ``build/mutation/summary.json``.  Exits 1 when a module scores below
``--threshold`` (80 %).  docs/mutation.md has the last figures and why each survivor lives.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"

# module -> (the file mutated, the tests that are its own: files or pytest node ids)
MODULES: dict[str, tuple[str, list[str]]] = {
    "operator": ("pydiff/problem/operator.py", [
        "tests/test_operator_mutants.py",
        "tests/test_varied.py::test_the_operator_on_three_by_three_cells_by_hand",
        "tests/test_varied.py::test_a_manufactured_solution_converges_at_second_order",
        "tests/test_solvers.py::test_operator_matches_dense_matrix",
        "tests/test_physics.py",
    ]),
    "spectral": ("pydiff/solvers/spectral.py", [
        "tests/test_solvers.py",
        "tests/test_torch_transforms.py",
        "tests/test_spectral_mutants.py",
    ]),
    # Only the tests that train no network: each mutant reruns its tests, and the integration tests
    # of test_bound.py and test_serving.py train one per run (minutes per mutant, hours per module).
    "bound": ("pydiff/evaluation/bound.py", [
        "tests/test_bound_mutants.py",
        "tests/test_bound.py::test_the_conformal_quantile_by_hand",
        "tests/test_bound.py::test_the_bound_covers_held_out_samples_within_the_binomial_tolerance",
        "tests/test_serving.py::test_each_shipped_model_ships_a_calibration_of_its_own_weights",
        "tests/test_serving.py::test_network_pays_only_where_its_served_fraction_saves_more_than_it_costs",
    ]),
    "metrics": ("pydiff/evaluation/metrics.py", [
        "tests/test_metrics.py",
        "tests/test_metrics_mutants.py",
    ]),
}

THRESHOLD = 80.0
KILLED = ("killed", "timeout")  # mutmut's own score counts a mutant that hangs the tests as detected
NOT_TESTED = ("skipped",)


def tracked_files() -> list[Path]:
    """The working tree as git would commit it: tracked and untracked-but-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode()
    return [Path(p) for p in out.split("\0") if p and (ROOT / p).is_file()]


def exists(work: Path, test: str) -> bool:
    """Whether a test file, or the test ``file::name``, is in the copy (one renamed or not yet
    written is left out rather than failing the run)."""
    path, _, name = test.partition("::")
    if not (work / path).is_file():
        return False
    return not name or f"def {name.split('[')[0]}(" in (work / path).read_text(encoding="utf-8")


def prepare(name: str) -> tuple[Path, list[str]]:
    """A fresh copy of the tree in build/mutation/NAME, configured to mutate NAME's file alone;
    and the tests it runs."""
    path, tests = MODULES[name]
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    files = tracked_files()
    for relative in files:
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    tests = [t for t in tests if exists(work, t)]
    top = sorted({f.parts[0] for f in files if len(f.parts) > 1} - {"pydiff", "tests"}
                 | {f.name for f in files if len(f.parts) == 1})
    table = {
        "source_paths": ["pydiff"],
        "only_mutate": [path],
        "also_copy": top,  # data/, julia/, ...: what the package reads beside itself
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "-x"],
        "use_git_change_detection": False,
    }
    lines = ["", "", "# written by benchmarks/mutation.py", "[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    with open(work / "pyproject.toml", "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return work, tests


def mutmut(work: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, text=True, **kwargs)


def statuses(work: Path, path: str) -> dict[str, str]:
    """Each mutant's name -> mutmut's verdict, from its .meta file."""
    sys.path.insert(0, str(work))
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / (path + ".meta")).read_text())
    return {key: status_by_exit_code[code] for key, code in meta["exit_code_by_key"].items()}


def run(name: str, children: int) -> dict:
    path = MODULES[name][0]
    work, tests = prepare(name)
    start = time.perf_counter()
    print(f"== {name}: mutating {path}, against {' '.join(tests)}", flush=True)
    done = mutmut(work, "run", "--max-children", str(children))
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not (work / "mutants" / (path + ".meta")).is_file():
        raise SystemExit(f"{name}: mutmut run failed (exit {done.returncode}); see its output above")
    verdicts = statuses(work, path)
    counts: dict[str, int] = {}
    for status in verdicts.values():
        counts[status] = counts.get(status, 0) + 1
    tested = len(verdicts) - sum(counts.get(s, 0) for s in NOT_TESTED)
    killed = sum(counts.get(s, 0) for s in KILLED)
    survivors = sorted(k for k, s in verdicts.items() if s not in KILLED + NOT_TESTED)
    diffs = [mutmut(work, "show", key, capture_output=True).stdout.strip() for key in survivors]
    (work / "report.md").write_text(f"# {name}: {path}\n\n{killed} of {tested} mutants killed; {counts}\n\n"
                                    + "\n\n".join(f"```diff\n{d}\n```" for d in diffs) + "\n")
    score = 100.0 * killed / tested if tested else 0.0
    for diff in diffs:
        print(diff, flush=True)
    print(f"== {name}: {killed} / {tested} killed ({score:.1f} %), {counts}, {seconds:.0f} s", flush=True)
    return {"module": path, "tests": tests, "killed": killed, "tested": tested, "score": round(score, 1),
            "counts": counts, "survivors": survivors, "seconds": round(seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="the least score in %% (default 80)")
    parser.add_argument("--list", action="store_true", help="print each module's file and tests, and stop")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    if args.list:
        for name in names:
            print(f"{name}: {MODULES[name][0]} <- {' '.join(MODULES[name][1])}")
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    results = {name: run(name, args.children) for name in names}
    summary = WORK / "summary.json"
    previous = json.loads(summary.read_text()) if summary.is_file() else {}
    summary.write_text(json.dumps({**previous, **results}, indent=2) + "\n")
    print("\nmodule    killed / tested   score")
    for name, r in results.items():
        print(f"{name:9} {r['killed']:6} / {r['tested']:<6}  {r['score']:5.1f} %")
    low = [name for name, r in results.items() if r["score"] < args.threshold]
    if low:
        print(f"below {args.threshold:g} %: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
