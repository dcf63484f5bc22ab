"""Incremental re-crawls (crawler/incremental.py): threads unchanged since the last crawl are not fetched.

New posts are appended without duplicates (requests counted on the server); with ``crawl.http_cache`` a
second run is answered from the cache."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.helpers.spider_server import FixtureServer, run_crawl_stage, vb_forum

pytestmark = pytest.mark.slow


def crawl(server, tmp_path):
    source = {"spider": "vbulletin", "throttle": False, "incremental": True,
              "args": {"start_url": server.url("/forumdisplay.php?f=1")}}
    server.reset_log()
    done = run_crawl_stage({"vb": source}, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    table = pq.read_table(tmp_path / "raw" / "vb.parquet")
    return server.paths(), table, json.loads((tmp_path / "metrics" / "vb.json").read_text())


def test_recrawl_fetches_only_changed_threads(tmp_path):
    routes, ids = vb_forum(threads=4, pages=3, per_page=3)
    boards = {"/forumdisplay.php?f=1", "/forumdisplay.php?f=1&page=2"}
    with FixtureServer(routes) as server:
        paths, table, _ = crawl(server, tmp_path)
        assert sorted(paths) == sorted(routes)  # first crawl: everything
        assert set(table["post_id"].to_pylist()) == ids

        # thread 102 gets two new posts (its last page and the board's "last post" link change)
        changed, new_ids = vb_forum(threads=4, pages=3, per_page=3, extra_posts={2: 2})
        server.routes.update(changed)
        paths, table, metrics = crawl(server, tmp_path)
        # thread 102's entry page and its last page (where the new posts are); not page 2
        assert sorted(paths) == sorted(boards | {"/showthread.php?t=102", "/showthread.php?t=102&page=3"})
        posts = table["post_id"].to_pylist()
        assert len(posts) == len(set(posts)) and set(posts) == new_ids == ids | {"102009", "102010"}
        positions = [r["position"] for r in table.to_pylist() if r["thread_id"] == "102"]
        assert positions == list(range(11))  # appended after the old posts, in order
        assert metrics["skipped"]["unchanged"] == 3 and metrics["run_rows"] == 3 + 5  # pages 1 and 3

def test_http_cache_switch_replays_pages(tmp_path):
    """crawl.http_cache: a second run is answered from the cache (development), same posts."""
    from tests.helpers.spider_server import Page, fixture_bytes

    routes = {"/book.txt": Page(fixture_bytes("text", "gutenberg_book.txt"), "text/plain; charset=utf-8")}
    with FixtureServer(routes) as server:
        source = {"spider": "text", "throttle": False, "args": {"start_url": server.url("/book.txt")},
                  "settings": {"HTTPCACHE_DIR": str(tmp_path / "httpcache")}}
        runs = []
        for _ in range(2):
            server.reset_log()
            done = run_crawl_stage({"book": source}, tmp_path, crawl={"http_cache": True})
            assert done.returncode == 0, done.stderr[-3000:]
            runs.append((len(server.requests), pq.read_table(tmp_path / "raw" / "book.parquet")))
    assert runs[0][0] >= 1 and runs[1][0] == 0  # robots.txt and the book both came from the cache
    assert runs[0][1]["body"].to_pylist() == runs[1][1]["body"].to_pylist() and runs[1][1].num_rows == 3
