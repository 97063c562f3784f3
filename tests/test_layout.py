"""The package's shape: no import cycles, a lean handler import path, a small root, a CLI nothing imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
ROOT = PACKAGE.parent
JSON_LIBRARIES = {"msgspec"}  # the one third-party module the handler may load: its JSON parser
OPTIONAL = {"typing_extensions"}  # msgspec imports it when it is installed (it is not in the Lambda zip)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ``pipeline`` modules *path* imports, anywhere in it (lazy imports inside functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import sandbox` names a module
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, computed from the source."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycles_between_modules() -> None:
    graph = import_graph()
    # A package's __init__ is imported with each of its modules: a module importing its own package is not a cycle.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    assert _cycle(graph) == []


def test_no_import_cycles_between_subpackages() -> None:
    def group(module: str) -> str:
        if module == "pipeline.__main__":  # `python -m pipeline` is the command line
            return "pipeline.cli"
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "pipeline"

    packages: dict[str, set[str]] = {}
    for module, deps in import_graph().items():
        packages.setdefault(group(module), set()).update(group(d) for d in deps if group(d) != group(module))
    assert _cycle(packages) == []
    assert packages["pipeline"] == set(), "the package root imports none of its subpackages"


def test_nothing_imports_the_command_line() -> None:
    importers = {m for m, deps in import_graph().items() if any(d.startswith("pipeline.cli") for d in deps)}
    assert {m for m in importers if not m.startswith("pipeline.cli")} == {"pipeline.__main__"}


def test_the_root_holds_at_most_20_modules() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 20


def test_importing_the_handler_loads_only_the_package_root_and_the_standard_library() -> None:
    probe = "import sys, json; import handler; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PIPELINE_COLUMNS": "id,name", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, check=True)
    loaded = json.loads(run.stdout)
    ours = [m for m in loaded if m == "pipeline" or m.startswith("pipeline.")]
    assert [m for m in ours if m.count(".") > 1 or (m != "pipeline" and (PACKAGE / m.split(".")[1]).is_dir())] == []
    outside = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names) - {"pipeline", "handler", "__main__"}
    site = {"_distutils_hack", "sitecustomize", "usercustomize"} | {m for m in outside if m.startswith("__editable__")}
    assert outside - site - OPTIONAL <= JSON_LIBRARIES, outside


@pytest.mark.parametrize("name", ["athena_ddl", "from_export"])
def test_companion_names_are_still_reached_through_the_package(name: str) -> None:
    import pipeline

    assert callable(getattr(pipeline, name))


def test_value_types_are_tuples_whose_annotations_name_their_fields() -> None:
    """The namedtuple subclasses (see pipeline.records): annotations in field order, no per-instance dict."""
    from pipeline.columns import Column
    from pipeline.config import Config
    from pipeline.records import Drop, Record, Step
    from pipeline.reingest import CallLimits, Limits

    for kind in (Column, Config, Drop, Record, Step, CallLimits, Limits):
        assert kind._fields == tuple(kind.__annotations__), kind
        assert not hasattr(kind(*[None] * len(kind._fields)), "__dict__"), kind
