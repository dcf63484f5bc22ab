"""Item pipelines (crawler/pipelines.py): a post without a readable date is kept, counted and warned about.

It is counted under ``errors.post_without_date`` and warned about once with its URL, never a silent null."""

from __future__ import annotations

import re

import pytest

from crawler.extensions import summarize
from demoforum import pages
from demoforum.site import DemoForum
from tests.helpers.spider_server import FixtureServer, Page, run_spider

pytestmark = pytest.mark.slow


def test_xenforo_posts_without_a_date_are_counted_and_warned_once(tmp_path):
    forum = DemoForum(plays=["a-midsummer-night-s-dream"], posts_per_page=20)
    thread = next(t for t in forum.crawlable_threads() if len(t.posts) >= 5)
    html = pages.thread_page(forum, thread, 1)
    # a theme that shows no machine-readable time: every <time> element removed
    html = re.sub(r"<time[^>]*>.*?</time>", "", html, flags=re.S)
    with FixtureServer({thread.path: Page(html)}) as server:
        result = run_spider("xenforo", {"start_url": server.url(thread.path), "max_pages": 1}, tmp_path)
    n = len(result.items)
    assert n == min(20, len(thread.posts)) and all(item["posted_at"] is None for item in result.items)
    assert result.stats["kopitiam/errors/post_without_date"] == n
    assert summarize(result.stats)["errors"] == {"post_without_date": n}
    warnings = [line for line in result.log.splitlines() if "no date could be read" in line]
    assert len(warnings) == 1 and thread.path in warnings[0]
