"""The package's layers point one way: walk pydiff/ with ast, imports inside functions included."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pydiff"

# Lower numbers are lower layers; a module may import only from its own layer or below, and
# never in a cycle.  Every module of the package must be listed.
LAYERS = {
    0: {"version", "errors", "registry", "problem", "models", "encoder_decoder", "losses", "metrics", "rollback",
        "physics", "operators", "signals", "atomic"},
    1: {"solvers", "solvers.base", "solvers.spectral", "solvers.timestep", "solvers.direct", "solvers.julia",
        "solvers.worker", "solvers.torch_spectral", "dataset", "shards", "config", "device", "distributed", "snapshots"},
    2: {"data", "rundir", "samples"},
    3: {"train", "evaluate"},
    4: {"figures", "report", "inference"},
    5: {"steps"},
    6: {"reproduce", "bench", "study", "trust", "compare"},  # compare times its models with bench
    7: {"__init__"},
    8: {"cli", "__main__"},
}
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def internal_imports(path: Path) -> set[str]:
    """Modules of pydiff that ``path`` imports anywhere in its body (relative or absolute)."""
    name = module_name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("pydiff"):
                target = node.module.removeprefix("pydiff").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import rundir` imports a module, `from .x import y` a name
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in LAYER_OF else (target or "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pydiff"):
                    found.add(alias.name.removeprefix("pydiff").lstrip(".") or "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): internal_imports(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    assert set(import_graph()) == set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(LAYER_OF))
def test_imports_point_down(module):
    graph = import_graph()
    upward = {other for other in graph[module] if LAYER_OF[other] > LAYER_OF[module]}
    assert not upward, f"{module} (layer {LAYER_OF[module]}) imports {upward} from above"


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for other in sorted(graph[node]):
            if state.get(other) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, other]))
            if other not in state:
                visit(other, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_walker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "pydiff" / "x.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .train import train\n    from . import rundir\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "pydiff"
    try:
        assert internal_imports(source) == {"train", "rundir"}
    finally:
        PACKAGE = saved


def test_nothing_points_users_outside_the_repository():
    for path in PACKAGE.rglob("*.py"):
        assert "DESIGN.md" not in path.read_text(), path
