"""The import graph: packages import one way (contracts <- crawler; contracts <- pipeline <- model).

demoforum is a website that imports no project package (the crawl stage starts it). Every module of each
package is parsed with ``ast`` (imports inside functions count too), so the rule holds for lazy imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "crawler", "demoforum", "pipeline", "model")
# what each package may import from the project (besides itself)
ALLOWED = {
    "contracts": set(),
    "crawler": {"contracts"},
    "demoforum": set(),
    "pipeline": {"contracts", "demoforum"},  # crawl.py serves the demo forum during a crawl
    "model": {"contracts", "pipeline"},
}


def project_imports(path: Path) -> set[tuple[str, int]]:
    """(top-level project package, line) for every absolute import in one module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_the_graph_allows(package):
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules, f"{package}/ has no modules"
    wrong = [f"{m.relative_to(REPO_ROOT)}:{line} imports {target}"
             for m in modules for target, line in sorted(project_imports(m))
             if target != package and target not in ALLOWED[package]]
    allowed = sorted(ALLOWED[package]) or "no project package"
    assert not wrong, f"{package} may import only {allowed}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", ["contracts", "pipeline", "model", "demoforum"])
def test_only_the_crawler_imports_scrapy(package):
    """The crawl stage reaches the crawler through ``scrapy`` commands in a subprocess only."""
    wrong = []
    for module in sorted((REPO_ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{module.relative_to(REPO_ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "scrapy"]
    assert not wrong, "imports scrapy: " + ", ".join(wrong)


def test_the_checker_sees_lazy_and_from_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom pipeline.common import x\n\ndef f():\n    import crawler.items\n")
    assert project_imports(module) == {("pipeline", 2), ("crawler", 5)}


def test_no_import_cycles():
    """Two modules that import each other (even lazily) are one module split in two: the shared
    part belongs in a third module both import."""
    from tests.helpers.imports import cycles

    assert cycles() == [], "import cycles among project modules:\n" + "\n".join(" <-> ".join(c) for c in cycles())


def test_the_cycle_finder_sees_a_lazy_cycle():
    from tests.helpers.imports import direct_imports

    assert "model.training" in direct_imports("model.train")
    assert "pipeline.dedupe_core" in direct_imports("pipeline.dedupe_dask")
    assert "model.train" not in direct_imports("model.distribute")
