"""The pack's shape, read from its source: imports flow one way (`nodes/` -> `adapters/`, never back),
no two modules import each other (counting imports inside functions), `adapters/` names no model family,
and no function in `adapters/` or `nodes/` is over 60 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from comfy_harness import REPO
from diffusers import modular_pipelines
from pack_import import import_pack

LIBRARY = ("adapters", "nodes")
MAX_FUNCTION_LINES = 60


def pack_modules() -> dict[str, Path]:
    """Dotted module name (relative to the pack) -> file, for the pack's own code."""
    files = [REPO / "__init__.py", REPO / "api.py"]
    for folder in LIBRARY:
        files += sorted((REPO / folder).glob("*.py"))
    modules = {}
    for path in files:
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The pack modules `name` imports anywhere in its file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.split(".") if package else []
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        for alias in node.names:  # `from . import previews` imports a module, `from .x import y` the module x
            candidate = f"{target}.{alias.name}".lstrip(".")
            found.add(candidate if candidate in known else target)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = pack_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack = [(start, [start])]
    while stack:
        module, path = stack.pop()
        for target in graph[module]:
            if target == start:
                return [*path, start]
            if target not in path:
                stack.append((target, [*path, target]))
    return None


def test_the_import_graph_is_read():
    graph = import_graph()
    assert "adapters.run" in graph["adapters.factory"] and "nodes.families" in graph["nodes.catalog"]
    assert "nodes.previews" in graph["nodes.families"]  # `from . import previews`


def test_no_import_cycle_between_the_packs_modules():
    graph = import_graph()
    cycles = [cycle for cycle in (cycle_from(graph, module) for module in graph) if cycle]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_adapters_never_import_nodes():
    upward = {
        module: sorted(t for t in targets if t.startswith("nodes")) for module, targets in import_graph().items()
    }
    assert not {module: targets for module, targets in upward.items() if module.startswith("adapters") and targets}


def test_adapters_name_no_model_family():
    folders = [path for root in modular_pipelines.__path__ for path in Path(root).iterdir()]
    families = sorted(path.name for path in folders if (path / "__init__.py").is_file())
    assert len(families) > 10
    spellings = {spelling for family in families for spelling in (family, family.replace("_", ""))}
    word = re.compile(r"\b(" + "|".join(sorted(spellings, key=len, reverse=True)) + r")\b", re.IGNORECASE)
    named = {
        path.name: sorted(set(word.findall(path.read_text(encoding="utf-8"))))
        for path in (REPO / "adapters").glob("*.py")
    }
    assert not {name: found for name, found in named.items() if found}


@pytest.mark.parametrize("folder", LIBRARY)
def test_no_function_is_over_60_lines(folder):
    long = []
    for path in sorted((REPO / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_the_pack_imports():
    assert import_pack().__name__ == "comfyui_modular_diffusers"
