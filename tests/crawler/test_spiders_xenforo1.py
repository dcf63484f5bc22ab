"""XenForo 1 in the ``xenforo`` spider: fixtures built from XenForo 1's templates (``index.php?``
routes under a sub-folder ``<base href>``, span/abbr dates, a deleted post, nested quotes, a
signature, thread prefixes) and the demo forum's XenForo 1 rendering, page for page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import scrapy
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts import markup
from crawler.spiders.xenforo import MARKUP, XenforoSpider
from demoforum import xenforo1
from demoforum.site import DemoForum
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import fixture_bytes

BASE = "http://xf1.test/community/"
THREAD = BASE + "index.php?threads/best-kaya-toast-in-tiong-bahru.4242/"


def make_spider():
    crawler = get_crawler(XenforoSpider)
    return XenforoSpider.from_crawler(crawler, start_url=BASE, timezone="Asia/Singapore"), crawler.stats


def page(name: str, url: str) -> HtmlResponse:
    return HtmlResponse(url, body=fixture_bytes("xenforo", name))


def test_thread_page():
    spider, stats = make_spider()
    response = page("xf1_thread_p1.html", THREAD)
    assert spider.page_kind(response) == "thread"
    info = spider.thread_info(response)
    assert (info.thread_id, info.title, info.board, info.page) == ("4242", "Best kaya toast in Tiong Bahru?",
                                                                  "Makan Places", 1)
    posts = spider.posts(response)
    assert [(p.post_id, p.author, p.position) for p in posts] == [
        ("700101", "kaya_king", 0), ("700102", "teh_tarik_tan", 1), ("700104", "makcik_rose", 3)]
    assert stats.get_value("forum/skipped/deleted_post") == 1  # the placeholder of post 700103
    assert posts[0].posted_at == datetime(2011, 3, 12, 22, 46, tzinfo=UTC)  # title "Mar 13, 2011 at 6:46 AM" +0800
    assert posts[1].posted_at == datetime.fromtimestamp(1300002300, UTC)  # data-time wins over the text
    assert [p.quoted_post_ids for p in posts] == [[], ["700101"], ["700102"]]
    assert posts[0].url == THREAD + "#post-700101" and posts[1].url == THREAD + "#post-700102"
    assert "messageTextEndMarker" not in posts[0].body and "signature" in posts[0].body
    assert spider.thread_page_links(response) == ["index.php?threads/best-kaya-toast-in-tiong-bahru.4242/",
                                                  "index.php?threads/best-kaya-toast-in-tiong-bahru.4242/page-2"]


def test_relative_date_without_machine_time():
    """Post 700104 shows only "Yesterday at 10:02 PM": read against the fetch time, in the forum's zone."""
    spider, _ = make_spider()
    before = datetime.now(UTC)
    when = spider.posts(page("xf1_thread_p1.html", THREAD))[2].posted_at
    day = before.astimezone(ZoneInfo("Asia/Singapore")).date() - timedelta(days=1)
    expected = datetime(day.year, day.month, day.day, 22, 2, tzinfo=ZoneInfo("Asia/Singapore"))
    assert when in (expected, expected + timedelta(days=1))  # the clock may pass midnight in between


def test_bodies_clean_under_the_record():
    spider, _ = make_spider()
    posts = spider.posts(page("xf1_thread_p1.html", THREAD))
    record = markup.for_file([MARKUP])
    outs = [html_to_text(p.body, markup=record, mention_placeholder="@user") for p in posts]
    assert [o.n_quotes for o in outs] == [0, 1, 1] and outs[0].n_signatures == 1
    assert [o.quoted_post_ids for o in outs] == [[], ["700101"], ["700102"]]
    assert " ".join(outs[2].text.split()) == ("Seng Poh Road is good but @user forgot the half-boiled eggs there "
                                              "are even better than the toast.")
    assert "Toast first" not in outs[0].text and ":(" in outs[0].text
    assert all("Click to expand" not in o.text and "said:" not in o.text for o in outs)


def test_board_page_and_next_page_from_the_pager():
    spider, _ = make_spider()
    board = page("xf1_board.html", BASE + "index.php?forums/makan-places.7/")
    assert spider.page_kind(board) == "board"
    out = list(spider.parse(board))
    assert [r.url for r in out if isinstance(r, scrapy.Request)] == [
        BASE + "index.php?threads/board-rules-read-first.4100/", THREAD,
        BASE + "index.php?forums/makan-places.7/page-2"]  # no rel=next: built from data-baseurl
    last = spider.thread_last_posts(board)
    assert last["4242"].posted_at == datetime.fromtimestamp(1300090000, UTC)
    assert last["4100"].posted_at == datetime(2010, 1, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def forum():
    return DemoForum(plays=["julius-caesar"], threads_per_page=5, posts_per_page=15, engine="xenforo1")


def test_demo_rendering_page_for_page(forum):
    spider, _ = make_spider()
    thread = next(t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 3)
    html = xenforo1.thread_page(forum, thread, 2)
    response = HtmlResponse("http://127.0.0.1:1" + thread.path + "page-2", body=html.encode())
    posts = spider.posts(response)
    for got, post in zip(posts, thread.posts[15:30], strict=True):
        assert (got.post_id, got.author, got.position) == (str(post.post_id), post.author, post.position)
        assert got.quoted_post_ids == [str(q) for q in post.quoted_post_ids]
        exact = datetime.fromtimestamp(post.epoch, UTC)
        assert got.posted_at == exact if post.post_id % 4 == 0 else got.posted_at == exact.replace(second=0)
    index = HtmlResponse("http://127.0.0.1:1/", body=xenforo1.index_page(forum).encode())
    assert spider.page_kind(index) == "index" and spider.board_links(index) == ["forums/roman.4/"]
