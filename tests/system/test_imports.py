"""The house plan, read from the code's own imports: no circle, no service importing another, no
`shared` importing a service, and the admin command and the console using nothing of a service but
its `operations` module (and nothing importing the console). Reads the source files only; nothing
is imported or run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = [ROOT / "shared", ROOT / "admin", *sorted((ROOT / "services").iterdir())]
SERVICES = ("registration", "mailer", "confirmation_web", "console")
# What operates the services (the `userreg` command, the web console): they may use a service's
# `operations` module, and nothing else of it.
OPERATORS = ("admin", "console")


def _modules() -> dict[str, Path]:
    """Every module of the production tree, by dotted name (userreg.<part>.…)."""
    found = {}
    for folder in PACKAGE_FOLDERS:
        for path in (folder / "userreg").rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The userreg modules a module imports, wherever in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from userreg.x import y` may import the module userreg.x.y or a name of userreg.x.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("userreg.") and target in MODULES:
                yield target


GRAPH = {name: set(_imports(name, path)) - {name} for name, path in MODULES.items()}


def _part(module: str) -> str:
    return module.split(".")[1]


def test_the_tree_is_read():
    assert {
        "userreg.registration.app",
        "userreg.mailer.consumer",
        "userreg.shared.outbox",
        "userreg.admin.cli",
        "userreg.confirmation_web.app",
        "userreg.console.app",
    } <= set(GRAPH)


def test_no_import_circle():
    # Tarjan's strongly connected components: a component of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in GRAPH[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert circles == []


def test_no_service_imports_another_and_shared_imports_none():
    wrong = sorted(
        (module, imported)
        for module, imports in GRAPH.items()
        for imported in imports
        if _part(imported) in SERVICES and _part(module) != _part(imported) and _part(module) not in OPERATORS
    )
    assert wrong == []


def test_the_admin_command_and_the_console_use_only_the_services_operations_modules():
    wrong = sorted(
        (module, imported)
        for module, imports in GRAPH.items()
        if _part(module) in OPERATORS
        for imported in imports
        if _part(imported) in SERVICES
        and _part(imported) != _part(module)
        and imported != f"userreg.{_part(imported)}.operations"
    )
    assert wrong == []


def test_nothing_imports_the_console():
    wrong = sorted(
        (module, imported)
        for module, imports in GRAPH.items()
        if _part(module) != "console"
        for imported in imports
        if _part(imported) == "console"
    )
    assert wrong == []
