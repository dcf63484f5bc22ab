"""Charset repair (crawler/encoding.py): a wrongly declared charset is fixed before the spider reads the page.

Checked with a real xenforo crawl: one thread served as windows-1252 bytes under a UTF-8 header, one thread
URL answering 404 in the middle."""

from __future__ import annotations

import pytest

from crawler.encoding import repaired_encoding
from tests.helpers.spider_server import FixtureServer, Page, fixture_text, run_spider


def test_repaired_encoding_rules():
    latin = "Café crème".encode("cp1252")
    utf8 = "Café crème".encode("utf-8")
    assert repaired_encoding(latin, "utf-8", None) == "cp1252"  # header lies, no meta: windows-1252
    assert repaired_encoding(latin, "utf-8", "iso-8859-15") == "iso-8859-15"  # the page's own meta wins
    assert repaired_encoding(utf8, "cp1252", None) == "utf-8"  # Latin-1 header over UTF-8 bytes
    assert repaired_encoding(utf8, "utf-8", None) is None and repaired_encoding(latin, "cp1252", None) is None
    assert repaired_encoding(b"plain ascii", "cp1252", None) is None  # nothing to decide
    assert repaired_encoding(latin, None, None) is None  # undeclared: Scrapy's own detection


@pytest.mark.slow
def test_xenforo_crawl_with_wrong_charset_and_404(tmp_path):
    html = fixture_text("xenforo", "thread_p1.html")
    marker = "Café crème, señor"  # non-ASCII text added to the first post's body
    html = html.replace('<div class="bbWrapper">', f'<div class="bbWrapper">{marker} ', 1)
    thread = "/threads/a-midsummer-night-s-dream-act-i-scene-i-athens-the-palace-of.1/"
    routes = {thread: Page(html.encode("cp1252", errors="xmlcharrefreplace"), "text/html; charset=utf-8")}
    with FixtureServer(routes) as server:
        urls = [server.url("/threads/deleted-thread.9/"), server.url(thread)]
        run = run_spider("xenforo", {"start_url": ",".join(urls), "max_pages": 1}, tmp_path)
    assert len(run.items) == 20
    assert marker in run.items[0]["body"] and not any("\ufffd" in i["body"] for i in run.items)
    assert run.stats["kopitiam/encoding_fixed/utf-8->cp1252"] == 1
    assert run.stats["downloader/response_status_count/404"] == 1
