"""docs/adding-a-source.md's worked example, run as written: its spider crawls its pages as described.

The guide's spider file and pages are read from the guide itself, the spider is added to a copy of the
project and crawls the pages on 127.0.0.1. Local-time dates in the forum's zone (summer and winter
offsets), offset pagination, session ids, quotes and signatures must come out as the guide says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from contracts import markup
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import REPO_ROOT, FixtureServer, Page, check_raw

pytestmark = pytest.mark.slow

GUIDE = REPO_ROOT / "docs" / "adding-a-source.md"
BLOCK_RE = re.compile(r"<!-- guide-(file|page): (\S+) -->\n```\w*\n(.*?)```", re.S)


def guide_blocks() -> tuple[dict[str, str], dict[str, str]]:
    files: dict[str, str] = {}
    pages: dict[str, str] = {}
    for kind, name, text in BLOCK_RE.findall(GUIDE.read_text(encoding="utf-8")):
        (files if kind == "file" else pages)[name] = text
    return files, pages


def test_the_guides_example_engine_crawls_as_described(tmp_path):
    files, pages = guide_blocks()
    assert set(files) == {"crawler/spiders/kopiforum.py"}
    assert set(pages) == {"/viewforum?f=3", "/viewtopic?t=42", "/viewtopic?t=42&start=2"}
    project = tmp_path / "kopitiam"
    for name in ("contracts", "crawler"):
        shutil.copytree(REPO_ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "scrapy.cfg", project / "scrapy.cfg")
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")

    out = tmp_path / "out.parquet"
    with FixtureServer({path: Page(html) for path, html in pages.items()}) as server:
        cmd = [sys.executable, "-m", "scrapy", "crawl", "kopiforum", "-O", str(out),
               "-a", f"start_url={server.url('/viewforum?f=3')}", "-a", "timezone=Europe/Berlin",
               "-a", "date_order=DMY", "-a", "posts_per_page=2",
               "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "DOWNLOAD_DELAY=0"]
        run = subprocess.run(cmd, cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
                             capture_output=True, text=True, timeout=120)
        fetched = server.paths()
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(fetched) == sorted(pages)  # each page once: session ids stripped
    items = sorted(pq.read_table(out).to_pylist(), key=lambda i: i["position"])
    check_raw(items)
    assert [(i["post_id"], i["position"], i["page"]) for i in items] == [
        ("501", 0, 1), ("502", 1, 1), ("517", 2, 2)]
    assert {(i["thread_id"], i["thread_title"], i["board"]) for i in items} == {
        ("42", "Kaya toast: thick or thin?", "Breakfast")}
    # Berlin local time: summer (UTC+2) and winter (UTC+1); "Today" is read too
    assert items[0]["posted_at"] == datetime(2011, 4, 30, 15, 10, tzinfo=timezone.utc)
    assert items[1]["posted_at"] == datetime(2011, 12, 13, 7, 5, tzinfo=timezone.utc)
    assert items[2]["posted_at"] is not None and "no date could be read" not in run.stderr
    # quotes: ids from the engine's attribute, and the clean stage removes the quote itself
    assert items[1]["quoted_post_ids"] == ["501"]
    records = markup.from_metadata(pq.read_schema(out).metadata)  # the spider's record, in the file
    assert [r.name for r in records] == ["kopiforum"]
    text = html_to_text(items[1]["body"], markup=markup.for_file(records))
    assert text.n_quotes == 1 and "Thin, always" not in text.text and "Thick lah." in text.text
    # signatures stay out of the body
    assert all("Toast is life" not in i["body"] for i in items)
