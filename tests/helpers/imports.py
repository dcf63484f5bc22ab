"""The project's import graph, read statically with ``ast``: which project modules a module imports
(top-level and lazy imports inside functions alike), and the closure of an entry module. Used by the
import-graph test (no cycles, one-way packages) and the dvc.yaml test (code deps cover the closure)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "crawler", "demoforum", "pipeline", "model")


def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (a module or a package's ``__init__.py``)."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = path.resolve().relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> list[str]:
    return sorted(module_name(p) for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py"))


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def direct_imports(name: str) -> frozenset[str]:
    """Project modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod`` when that is a
    module, else as ``pkg``)."""
    path = module_file(name)
    if path is None:
        return frozenset()
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, name, path.name == "__init__.py")
            subs = {f"{target}.{alias.name}" for alias in node.names}
            found |= {s for s in subs if module_file(s)} or {target}
            if not all(module_file(s) for s in subs):
                found.add(target)
    return frozenset(m for m in found if module_file(m) and m != name)


def _runs_code(path: Path) -> bool:
    """A package ``__init__`` that holds more than a docstring (importing a submodule runs it)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def closure(entry: str) -> set[str]:
    """Every project module importing ``entry`` can run, with the package ``__init__`` files that
    hold code."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += direct_imports(name)
        parts = name.split(".")
        packages = (module_file(".".join(parts[:i])) for i in range(1, len(parts)))
        todo += [module_name(init) for init in packages if init is not None and _runs_code(init)]
    return seen


def reachable(start: str) -> set[str]:
    """Modules ``start`` imports, directly or through others (``start`` itself only on a cycle)."""
    seen: set[str] = set()
    todo = list(direct_imports(start))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += direct_imports(name)
    return seen


def cycles() -> list[list[str]]:
    """Import cycles among project modules: each group of modules that reach one another, sorted."""
    reach = {m: reachable(m) for m in all_modules()}
    groups = {tuple(sorted({m} | {o for o in reach[m] if m in reach[o]})) for m in reach if m in reach[m]}
    return sorted(list(g) for g in groups)
