"""Spider ``articles`` (crawler/spiders/articles.py): index pages, a sitemap and trafilatura extraction.

Also pagination, a missing date, a wrongly declared encoding and a 404 article."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crawler.spiders.articles import ArticlesSpider, article_id, extract_article
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, fixture_text, run_spider

TEH = "/essays/2021/03/the-art-of-pulling-teh/"
QUEUES = "/essays/on-queues/"
LAST = "/essays/2020/11/the-last-kopitiam/"
GONE = "/essays/2020/12/missing-essay/"


def routes(base: str) -> dict[str, Page]:
    return {
        "/essays/": Page(fixture_bytes("articles", "index.html")),
        "/essays/page/2/": Page(fixture_bytes("articles", "index_p2.html")),
        TEH: Page(fixture_bytes("articles", "the-art-of-pulling-teh.html")),
        QUEUES: Page(fixture_bytes("articles", "on-queues.html"), "text/html; charset=ISO-8859-1"),  # UTF-8 bytes
        LAST: Page(fixture_bytes("articles", "the-last-kopitiam.html")),
        "/sitemap.xml": Page(fixture_text("articles", "sitemap.xml").replace("BASE", base), "application/xml"),
    }


def test_extract_article_main_text_and_metadata():
    data = extract_article(fixture_text("articles", "the-art-of-pulling-teh.html"), "http://k.test" + TEH)
    assert data["title"] == "The art of pulling teh" and data["author"] == "Siti Rahmah"
    assert data["date"].startswith("2021-03-14T08:30:00")
    assert "ten\nthousand cups" not in data["text"] and "ten thousand cups" in data["text"]
    for boilerplate in ("Subscribe to our newsletter", "All rights reserved", "Privacy"):
        assert boilerplate not in data["text"]
    assert article_id("http://k.test" + TEH) == "k.test/essays/2021/03/the-art-of-pulling-teh"


@pytest.mark.slow
def test_crawl_from_index_pages(tmp_path):
    with FixtureServer() as server:
        server.routes.update(routes(server.url("")))
        run = run_spider("articles", {"start_url": server.url("/essays/"), "source": "essays"}, tmp_path)
        requested = server.paths()
    assert sorted(requested) == sorted(["/essays/", "/essays/page/2/", TEH, QUEUES, LAST, GONE])  # no nav pages
    by_path = {i["url"].split(str(server.port))[1]: i for i in run.items}
    assert sorted(by_path) == sorted([TEH, QUEUES, LAST])
    teh = by_path[TEH]
    assert teh["thread_title"] == "The art of pulling teh" and teh["author"] == "Siti Rahmah"
    assert teh["posted_at"] == datetime(2021, 3, 14, 0, 30, tzinfo=timezone.utc)  # 08:30 +08:00
    assert teh["body_format"] == "text" and "conductor before an orchestra" in teh["body"]
    assert by_path[QUEUES]["posted_at"] is None and by_path[QUEUES]["author"] is None  # missing fields
    assert "There is a café near the market" in by_path[QUEUES]["body"]  # repaired encoding
    assert by_path[LAST]["posted_at"] == datetime(2020, 11, 2, tzinfo=timezone.utc)
    assert run.stats["downloader/response_status_count/404"] == 1
    assert run.stats["kopitiam/encoding_fixed/cp1252->utf-8"] == 1


@pytest.mark.slow
def test_crawl_from_sitemap_with_since_and_pattern(tmp_path):
    with FixtureServer() as server:
        server.routes.update(routes(server.url("")))
        server.routes["/robots.txt"] = Page(f"User-agent: *\nDisallow:\nSitemap: {server.url('/sitemap.xml')}\n",
                                            "text/plain")
        # the sitemap is found through robots.txt, as SitemapSpider does for real sites
        args = {"sitemap_url": server.url("/robots.txt"), "article_pattern": "/essays/", "since": "2021-01-01"}
        run = run_spider("articles", args, tmp_path)
        requested = server.paths()
    assert sorted(requested) == sorted(["/sitemap.xml", TEH, QUEUES])  # LAST is older, /about/ no article
    assert sorted(i["thread_title"] for i in run.items) == ["On queues", "The art of pulling teh"]
    assert run.stats["kopitiam/articles/skipped/before_since"] == 2  # LAST and /about/ (2019)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown argument\\(s\\) start_urls"):
        ArticlesSpider(start_urls="http://x/")
    with pytest.raises(ValueError, match="article_pattern='\\('"):
        ArticlesSpider(start_url="http://x/", article_pattern="(")
