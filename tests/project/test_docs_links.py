"""Every relative link in README.md and docs/*.md resolves: the file exists and, for a ``#anchor``,
a heading of the target page has that anchor under GitHub's rules (text lowercased, punctuation
other than ``-`` and ``_`` removed, spaces turned into hyphens, ``-1``, ``-2``, ... for repeats).
Links inside code blocks and code spans are not links; URLs with a scheme are not checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE_RE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN_RE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
INLINE_LINK_RE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
HTML_ANCHOR_RE = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def strip_code(text: str) -> str:
    """The text without fenced code blocks and HTML comments (their content is no link)."""
    text = FENCE_RE.sub("", text)
    return COMMENT_RE.sub("", text)


def heading_text(raw: str) -> str:
    """What GitHub renders of a heading: link text for links, code span contents, no emphasis marks."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", raw)
    return CODE_SPAN_RE.sub(lambda m: m.group(0).strip("`").strip(), text)


def slug(text: str) -> str:
    """GitHub's anchor for a heading's rendered text (before the -N suffix of repeats)."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE_RE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found: set[str] = set(HTML_ANCHOR_RE.findall(text))
    for match in HEADING_RE.finditer(text):
        base = slug(heading_text(match.group(2)))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = CODE_SPAN_RE.sub("", strip_code(path.read_text(encoding="utf-8")))
    return INLINE_LINK_RE.findall(text) + REF_DEF_RE.findall(text)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link of ``path`` that does not resolve."""
    problems = []
    for target in links(path):
        if not target or SCHEME_RE.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: {target}: no file {file_part}")
        elif not dest.is_relative_to(root):
            problems.append(f"{path.relative_to(root)}: {target}: outside the repository")
        elif anchor and dest.suffix != ".md":
            problems.append(f"{path.relative_to(root)}: {target}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: {target}: no heading with anchor #{anchor} in "
                            f"{dest.relative_to(root)}")
    return problems


DOC_MENTION_RE = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")
CODE_PLACES = ("contracts", "crawler", "demoforum", "pipeline", "model", "bench", "tests", ".ci")
CODE_FILES = ("params.yaml", "dvc.yaml", "pyproject.toml")


def code_files(root: Path = ROOT) -> list[Path]:
    found = [root / name for name in CODE_FILES if (root / name).exists()]
    for place in CODE_PLACES:
        found += [p for p in sorted((root / place).rglob("*")) if p.is_file() and p.suffix in {".py", ".yaml", ""}
                  and "__pycache__" not in p.parts]
    return [p for p in found if p != Path(__file__).resolve()]  # this file's examples are meant to fail


def broken_mentions(path: Path, root: Path = ROOT) -> list[str]:
    """``docs/<page>.md#anchor`` written in code, params or CI files that names no page or heading."""
    problems = []
    for page, anchor in DOC_MENTION_RE.findall(path.read_text(encoding="utf-8", errors="replace")):
        dest = root / "docs" / page
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: docs/{page}: no such page")
        elif anchor and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: docs/{page}#{anchor}: no such heading")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert links(path) or path.name != "README.md", "README.md should link into docs/"
    assert broken_links(path) == []


def test_docs_named_in_code_exist() -> None:
    files = code_files()
    assert ROOT / "params.yaml" in files and ROOT / "bench" / "shakespeare.py" in files
    assert [problem for path in files for problem in broken_mentions(path)] == []


def test_slugs_follow_github_rules() -> None:
    assert slug(heading_text("Training speed and recipe")) == "training-speed-and-recipe"
    assert slug(heading_text("CI: `.ci/run`")) == "ci-cirun"
    assert slug(heading_text("Set-up: two commands")) == "set-up-two-commands"
    assert slug(heading_text("Training outputs (`model/train.py`)")) == "training-outputs-modeltrainpy"
    assert slug(heading_text("`RAW_SCHEMA` and [links](x.md)")) == "raw_schema-and-links"


def test_checker_reports_what_does_not_resolve(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "a.md"
    (tmp_path / "README.md").write_text("# Top\n\n## Part\n\n## Part\n", encoding="utf-8")
    page.write_text(
        "# A\n\n[ok](../README.md#part-1) [self](#a) [web](https://example.com/x.md)\n"
        "`[code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n"
        "[gone](missing.md) [bad anchor](../README.md#part-2) [lost](#nowhere)\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ")[1] for p in problems] == ["missing.md", "../README.md#part-2", "#nowhere"]
    assert broken_links(tmp_path / "README.md", root=tmp_path) == []
    code = tmp_path / "stage.py"
    code.write_text('"""See docs/a.md#a, docs/a.md#gone and docs/none.md."""\n', encoding="utf-8")
    assert [p.split(": ")[1] for p in broken_mentions(code, root=tmp_path)] == ["docs/a.md#gone", "docs/none.md"]
