"""robots.txt ``Crawl-delay`` (crawler/crawldelay.py): applied as the site's minimum delay.

It applies even with DOWNLOAD_DELAY 0 and AutoThrottle off. Only lower bounds on gaps are checked (a busy
machine can only make gaps longer)."""

from __future__ import annotations

import pytest

from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

pytestmark = pytest.mark.slow

DUMP = fixture_bytes("text", "plain_dump.txt")


def crawl(tmp_path, robots: str):
    routes = {f"/t{i}.txt": Page(DUMP, "text/plain; charset=utf-8") for i in range(3)}
    routes["/robots.txt"] = Page(robots, "text/plain")
    with FixtureServer(routes) as server:
        urls = ",".join(server.url(f"/t{i}.txt") for i in range(3))
        run = run_spider("text", {"start_url": urls, "min_chars": 1}, tmp_path,
                         settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 4})
        times = [t for path, t in server.times if path != "/robots.txt"]
    return run, [b - a for a, b in zip(times, times[1:])]


def test_crawl_delay_spaces_requests(tmp_path):
    run, gaps = crawl(tmp_path, "User-agent: *\nCrawl-delay: 0.6\nDisallow:\n")
    assert len(gaps) == 2 and len(run.items) == 12
    assert run.stats["kopitiam/crawl_delay/127.0.0.1"] == 0.6
    # Scrapy randomises each delay to 0.5-1.5 x its value (>= 0.3 s); without the middleware the
    # gaps here are a few milliseconds
    assert min(gaps) >= 0.27, gaps


def test_no_crawl_delay_no_stat(tmp_path):
    run, gaps = crawl(tmp_path, "User-agent: *\nDisallow:\n")
    assert len(gaps) == 2 and not any(k.startswith("kopitiam/crawl_delay") for k in run.stats)
