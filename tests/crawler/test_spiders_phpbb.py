"""Spider ``phpbb`` (crawler/spiders/phpbb.py): prosilver 3.3 and 3.0 markup on fixtures and in a real crawl.

Fixture pages are built from phpBB's templates (dates as <time> and as local text, offset pagination,
quotes with and without post ids, signatures, session ids); the real crawl runs on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.spiders.phpbb import PhpbbSpider
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

SID = "sid=9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_spider(**args):
    return PhpbbSpider.from_crawler(get_crawler(PhpbbSpider), start_url="http://forum.test/viewforum.php?f=2", **args)


def response(name: str, url: str) -> HtmlResponse:
    return HtmlResponse(url, body=fixture_bytes("phpbb", name))


def test_33_topic_first_page():
    spider = make_spider()
    page = response("phpbb33_topic_p1.html", f"http://forum.test/viewtopic.php?f=2&t=17&{SID}")
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == (
        "17", "Best kopi in Toa Payoh?", "Eat, Drink, Man, Woman", 1)
    posts = spider.posts(page)
    assert [p.post_id for p in posts] == ["1201", "1202", "1203"]
    assert [p.author for p in posts] == ["kopi_king", "ah_beng88", "Guest"]
    assert [p.position for p in posts] == [0, 1, 2]
    assert posts[0].posted_at == utc(2023, 3, 2, 9, 15) and posts[2].posted_at == utc(2023, 3, 2, 13, 30)
    # top-level quotes only: the nested quote of 1201 inside 1203's quote of 1202 is not 1203's
    assert [p.quoted_post_ids for p in posts] == [[], ["1201"], ["1202"]]
    assert '<strong class="text-strong">kopi-o kosong</strong>' in posts[0].body
    assert posts[0].body.endswith('<div id="sig1201" class="signature">Kopi first, talk later.</div>')
    assert posts[0].url == "http://forum.test/viewtopic.php?p=1201#p1201"
    # the offset link, with the session id stripped, once (top and bottom bars, rel=next)
    assert spider.thread_page_links(page) == ["http://forum.test/viewtopic.php?f=2&t=17&start=3"]
    assert spider.page_from_url("http://forum.test/viewtopic.php?f=2&t=17&start=3") == 2


def test_33_topic_offset_page_and_missing_date():
    spider = make_spider()
    page = response("phpbb33_topic_p2.html", "http://forum.test/viewtopic.php?f=2&t=17&start=3")
    info = spider.thread_info(page)
    assert (info.thread_id, info.page) == ("17", 2)
    posts = spider.posts(page)
    assert [(p.post_id, p.position) for p in posts] == [("1210", 3), ("1211", 4)]
    assert posts[1].posted_at is None and posts[1].author == "makcik_lim"  # no date: null, not a crash
    assert spider.thread_page_links(page) == ["http://forum.test/viewtopic.php?f=2&t=17"]


def test_30_topic_local_dates_bare_quote_and_page_size():
    spider = make_spider(timezone="Asia/Singapore")
    url = "http://forum.test/viewtopic.php?f=2&t=9&start=4&sid=0123456789abcdef0123456789abcdef"
    page = response("phpbb30_topic.html", url)
    info = spider.thread_info(page)
    # page size 4: the step between this page's offset and the first page's
    assert (info.thread_id, info.title, info.board, info.page) == (
        "9", "Café or kopitiam?", "Eat, Drink, Man, Woman", 2)
    posts = spider.posts(page)
    assert [(p.post_id, p.author, p.position) for p in posts] == [("905", "sotong", 4), ("906", "kiasu_kid", 5)]
    # "Tue May 06, 2008 11:42 pm" in Singapore time (UTC+8)
    assert posts[0].posted_at == utc(2008, 5, 6, 15, 42) and posts[1].posted_at == utc(2008, 5, 6, 16, 5)
    assert posts[1].quoted_post_ids == []  # 3.0's bare quote names no post
    assert posts[1].body.startswith("<blockquote><div><cite>sotong wrote:</cite>")
    assert 'class="signature"' in posts[0].body and "£3" in posts[0].body
    assert spider.thread_page_links(page) == ["http://forum.test/viewtopic.php?f=2&t=9"]
    assert make_spider(timezone="UTC", date_order="DMY").posts(page)[0].posted_at == utc(2008, 5, 6, 23, 42)


def test_boards_33_and_30():
    spider = make_spider()
    board = response("phpbb33_board.html", f"http://forum.test/viewforum.php?f=2&{SID}")
    assert spider.page_kind(board) == "board"
    assert spider.thread_links(board) == ["http://forum.test/viewtopic.php?f=2&t=17",
                                          "http://forum.test/viewtopic.php?f=2&t=9"]
    assert spider.board_next_page(board) == "http://forum.test/viewforum.php?f=2&start=2"
    last = spider.thread_last_posts(board)
    assert {k: v.post_id for k, v in last.items()} == {"17": "1211", "9": "906"}
    old = response("phpbb30_board.html", "http://forum.test/viewforum.php?f=2&start=25")
    assert spider.page_kind(old) == "board"
    assert spider.thread_links(old) == ["http://forum.test/viewtopic.php?f=2&t=9"]
    # no rel=next in 3.0: the pagination link with the next offset
    assert spider.board_next_page(old) == "http://forum.test/viewforum.php?f=2&start=50"
    assert spider.thread_last_posts(old)["9"].post_id == "906"


@pytest.mark.parametrize("url, topic", [
    ("https://f.test/viewtopic.php?f=2&t=17&start=20", "17"),
    ("https://f.test/forum/viewtopic.php?t=5", "5"),
    ("https://f.test/viewtopic.php?p=1201#p1201", None),
    ("https://f.test/viewforum.php?f=2", None),
])
def test_topic_urls(url, topic):
    assert make_spider().thread_id_from_url(url) == topic


def test_session_ids_stripped():
    spider = make_spider()
    assert spider.strip_session(f"http://f/viewtopic.php?f=2&t=5&{SID}&start=10#p9") == \
        "http://f/viewtopic.php?f=2&t=5&start=10"


@pytest.mark.slow
def test_crawl_board_offsets_and_session_ids(tmp_path):
    p1 = fixture_bytes("phpbb", "phpbb33_topic_p1.html")
    routes = {
        "/viewforum.php?f=2": Page(fixture_bytes("phpbb", "phpbb33_board.html")),
        "/viewtopic.php?f=2&t=17": Page(p1),
        "/viewtopic.php?f=2&t=17&start=3": Page(fixture_bytes("phpbb", "phpbb33_topic_p2.html")),
        "/viewtopic.php?f=2&t=9&start=4": Page(fixture_bytes("phpbb", "phpbb30_topic.html")),
        # /viewtopic.php?f=2&t=9 (3.0 topic page 1) and /viewforum.php?f=2&start=2 answer 404
    }
    with FixtureServer(routes) as server:
        run = run_spider("phpbb", {"start_url": server.url("/viewforum.php?f=2"), "source": "pb",
                                   "timezone": "Asia/Singapore"}, tmp_path)
        requested = server.paths()
    assert all("sid=" not in path for path in requested)
    assert sorted(requested) == sorted(["/viewforum.php?f=2", "/viewforum.php?f=2&start=2",
                                        "/viewtopic.php?f=2&t=17", "/viewtopic.php?f=2&t=17&start=3",
                                        "/viewtopic.php?f=2&t=9"])  # each page once
    by_id = {i["post_id"]: i for i in run.items}
    assert sorted(by_id) == ["1201", "1202", "1203", "1210", "1211"]
    assert [by_id[i]["position"] for i in sorted(by_id)] == [0, 1, 2, 3, 4]
    assert by_id["1203"]["quoted_post_ids"] == ["1202"] and by_id["1211"]["page"] == 2
    assert {i["board"] for i in run.items} == {"Eat, Drink, Man, Woman"} and {i["source"] for i in run.items} == {"pb"}
    assert run.stats["downloader/response_status_count/404"] == 2
