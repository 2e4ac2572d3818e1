"""The layers, read from the source: the import graph of lims/, api/, flows/ and cli/ with
the standard library's ``ast`` (imports inside functions and ``TYPE_CHECKING`` blocks
count too, since they are dependencies all the same).

* lims/ is the core: it imports neither api, flows, cli, fastapi nor prefect;
* no import cycle among lims modules, nor among api modules (strongly connected
  components of the module graph, each named with the modules in it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lims", "api", "flows", "cli")
FORBIDDEN_IN_CORE = ("api", "flows", "cli", "fastapi", "prefect")

Graph = dict[str, set[str]]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Dotted names ``node`` imports (for ``from a import b``: a.b and a)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join([*base, node.module] if node.module else base)
        else:
            prefix = node.module or ""
        yield prefix
        for alias in node.names:
            yield f"{prefix}.{alias.name}"


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> tuple[Graph, Graph]:
    """(graph among the project's modules, every dotted name each module imports)."""
    files = {
        _module_name(root, path): path
        for package in packages
        if (root / package).is_dir()
        for path in sorted((root / package).rglob("*.py"))
    }
    graph: Graph = {name: set() for name in files}
    raw: Graph = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                raw[name].add(target)
                # ``from a import b`` is the module a.b when there is one, else a name in a.
                if target in files and target != name:
                    graph[name].add(target)
    # Keep the most specific module only: ``from lims.qc import service`` is lims.qc.service.
    for name, targets in graph.items():
        graph[name] = {
            t for t in targets if not any(o.startswith(t + ".") and o in targets for o in targets)
        }
    return graph, raw


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), each
    sorted, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _within(graph: Graph, package: str) -> Graph:
    inside = {n for n in graph if n == package or n.startswith(package + ".")}
    return {n: {t for t in graph[n] if t in inside} for n in inside}


def core_violations(raw: Graph) -> list[str]:
    """'lims.x imports api.y' for every import of an upper layer or framework from lims/."""
    return sorted(
        f"{module} imports {target}"
        for module, targets in raw.items()
        if module == "lims" or module.startswith("lims.")
        for target in targets
        if target.split(".")[0] in FORBIDDEN_IN_CORE
    )


def _describe(found: list[list[str]]) -> str:
    return "; ".join(" <-> ".join(c) for c in found)


# --- the checks on this repository ------------------------------------------------------

GRAPH, RAW = import_graph(ROOT)


def test_the_graph_is_read_from_every_layer() -> None:
    assert {"lims.steps.service", "api.app", "flows.tasks", "cli.main"} <= set(GRAPH)
    assert "lims.steps.check" in GRAPH["lims.steps.service"]
    # An import inside a function counts: cli.main imports flows.demo in its demo command.
    assert "flows.demo" in GRAPH["cli.main"]


def test_the_core_imports_no_upper_layer_nor_framework() -> None:
    problems = core_violations(RAW)
    assert not problems, "lims/ must not import api, flows, cli, fastapi or prefect: " + "; ".join(
        problems
    )


def test_no_import_cycle_among_lims_modules() -> None:
    found = cycles(_within(GRAPH, "lims"))
    assert not found, f"import cycles in lims/: {_describe(found)}"


def test_no_import_cycle_among_api_modules() -> None:
    found = cycles(_within(GRAPH, "api"))
    assert not found, f"import cycles in api/: {_describe(found)}"


# --- the checker itself can fail ----------------------------------------------------------


def test_cycle_finder_on_a_synthetic_graph() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": set(),
        "f": {"f"},  # imports itself
        "g": {"h"},
        "h": {"g"},  # g <-> h
    }
    assert cycles(graph) == [["a", "b", "c"], ["f"], ["g", "h"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_checks_fail_on_a_tree_with_the_old_faults(tmp_path: Path) -> None:
    """A small tree with what the review found: materials <-> qc (the second import inside
    a function), steps.rules imported for its side effect, and the core naming api."""
    files = {
        "lims/__init__.py": "",
        "lims/materials/__init__.py": "",
        "lims/materials/service.py": (
            "def guard():\n    from lims.qc.service import release_problems\n"
        ),
        "lims/qc/__init__.py": "",
        "lims/qc/service.py": "from lims.materials.service import transition\n",
        "lims/steps/__init__.py": "",
        "lims/steps/rules.py": "from lims.steps.service import StepContext\n",
        "lims/steps/service.py": "def record():\n    from lims.steps import rules\n",
        "lims/cli.py": "def serve():\n    import flows.demo\n    from api import app\n",
        "api/__init__.py": "",
        "api/a.py": "from . import b\n",
        "api/b.py": "from api.a import x\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    graph, raw = import_graph(tmp_path)
    assert cycles(_within(graph, "lims")) == [
        ["lims.materials.service", "lims.qc.service"],
        ["lims.steps.rules", "lims.steps.service"],
    ]
    assert cycles(_within(graph, "api")) == [["api.a", "api.b"]]
    assert core_violations(raw) == [
        "lims.cli imports api",
        "lims.cli imports api.app",
        "lims.cli imports flows.demo",
    ]
