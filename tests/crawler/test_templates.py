"""The spider templates (crawler/templates/spiders/): `scrapy genspider -t forum|document` make working spiders.

In a copy of the project, the generated spider runs against fixture pages, passes `scrapy check`, and
`scrapy list` lists it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from contracts import markup
from tests.helpers.spider_server import REPO_ROOT, FixtureServer, Page, check_raw, run_scrapy

pytestmark = pytest.mark.slow

THREAD = """<html><head><title>Kaya toast</title><link rel="canonical" href="https://kaya.example/threads/42"></head><body>
<div class="breadcrumb"><a href="/">Home</a> <a href="/boards/7">Breakfast</a></div>
<h1>Kaya toast: thick or thin?</h1>
<div class="post" data-post-id="501"><span class="author">toastie</span>
  <time datetime="2024-05-01T07:30:00+08:00">1 May</time>
  <div class="post-body">Thin, <b>always</b>.</div></div>
<div class="post" data-post-id="502"><span class="author">kaya_fan</span>
  <time datetime="2024-05-01T08:00:00+08:00">1 May</time>
  <div class="post-body"><blockquote data-post-id="501">Thin, always.</blockquote>Thick lah.</div></div>
<div class="pagination"><a href="/threads/42?page=2">2</a></div>
</body></html>"""
THREAD_P2 = """<html><body><h1>Kaya toast: thick or thin?</h1>
<div class="post" data-post-id="503"><span class="author">toastie</span>
  <div class="post-body">Agree to disagree.</div></div></body></html>"""
BOARD = """<html><body><a class="thread-title" href="/threads/42">Kaya toast: thick or thin?</a></body></html>"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Scrapy project (crawler/ and the contracts it imports, scrapy.cfg: no pipeline/,
    which the crawler must not need) to generate a spider in."""
    copy = tmp_path / "kopitiam"
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("contracts", "crawler"):
        shutil.copytree(REPO_ROOT / name, copy / name, ignore=ignore)
    shutil.copy(REPO_ROOT / "scrapy.cfg", copy / "scrapy.cfg")
    return copy


def test_genspider_forum_template_makes_a_working_spider(project, tmp_path):
    made = run_scrapy(["genspider", "-t", "forum", "kayaforum", "kaya.example"], project)
    assert made.returncode == 0, made.stderr[-2000:]
    spider_file = project / "crawler" / "spiders" / "kayaforum.py"
    source = spider_file.read_text()
    assert "class KayaforumSpider(ForumSpider):" in source and 'name = "kayaforum"' in source
    other = run_scrapy(["genspider", "-t", "document", "kayaessays", "https://kaya.example/essays/"], project)
    assert other.returncode == 0, other.stderr[-2000:]
    listed = set(run_scrapy(["list"], project).stdout.split())  # both generated modules import cleanly
    assert {"xenforo", "vbulletin", "text", "articles", "kayaforum", "kayaessays"} <= listed

    # the template's selectors describe a simple engine; crawl a board of it for real
    routes = {"/boards/7": Page(BOARD), "/threads/42": Page(THREAD), "/threads/42?page=2": Page(THREAD_P2)}
    with FixtureServer(routes) as server:
        out = tmp_path / "out.parquet"
        run = run_scrapy(["crawl", "kayaforum", "-a", f"start_url={server.url('/boards/7')}", "-O", str(out),
                      "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "DOWNLOAD_DELAY=0"], project)
    assert run.returncode == 0, run.stderr[-3000:]
    items = pq.read_table(out).to_pylist()
    check_raw(items)
    assert [i["post_id"] for i in items] and sorted(i["post_id"] for i in items) == ["501", "502", "503"]
    by_id = {i["post_id"]: i for i in items}
    assert by_id["502"]["quoted_post_ids"] == ["501"] and by_id["501"]["author"] == "toastie"
    assert by_id["501"]["thread_title"] == "Kaya toast: thick or thin?" and by_id["501"]["board"] == "Breakfast"
    assert by_id["503"]["page"] == 2 and by_id["503"]["posted_at"] is None
    # the engine's markup record travels in the raw file, for the clean stage
    records = markup.from_metadata(pq.read_schema(out).metadata)
    assert [r.name for r in records] == ["kayaforum"] and records[0].quote_attrs == ("data-post-id",)

    # its contract runs offline once the fixture page is saved where the template says
    fixture = project / "tests" / "fixtures" / "kayaforum" / "thread_p1.html"
    fixture.parent.mkdir(parents=True)
    fixture.write_text(THREAD)
    check = run_scrapy(["check", "kayaforum"], project)
    assert check.returncode == 0 and "OK" in check.stderr, check.stderr[-3000:]
