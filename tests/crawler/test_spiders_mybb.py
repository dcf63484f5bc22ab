"""Spider ``mybb`` (crawler/spiders/mybb.py): MyBB 1.8 markup on fixture pages built from its default
theme's templates (postbit, forumdisplay, index; plain and SEO routes, relative dates with their
exact time in a title, nested quotes, a guest, a signature), the clean stage under its markup record,
and a real crawl on 127.0.0.1 from a board with SEO links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.spiders.mybb import MARKUP, MybbSpider
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_spider(**args):
    args.setdefault("timezone", "Asia/Singapore")
    return MybbSpider.from_crawler(get_crawler(MybbSpider), start_url="http://forum.test/index.php", **args)


def response(name: str, url: str) -> HtmlResponse:
    return HtmlResponse(url, body=fixture_bytes("mybb", name))


def test_thread_page_posts_dates_and_quotes():
    spider = make_spider()
    page = response("mybb18_thread_p1.html", "http://forum.test/showthread.php?tid=17")
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == ("17", "Best kopi in Toa Payoh?",
                                                                   "Eat, Drink, Man, Woman", 1)
    posts = spider.posts(page)
    assert [(p.post_id, p.author, p.position) for p in posts] == [
        ("1201", "kopi_king", 0), ("1202", "ah_beng88", 1), ("1203", "makcik_lim", 2)]  # a guest: plain text
    # absolute text; "Yesterday" with the day in the title and the time after it; "5 minutes ago"
    # with the exact time in the title: all in Singapore time (UTC+8)
    assert [p.posted_at for p in posts] == [utc(2023, 3, 2, 9, 15), utc(2023, 3, 3, 1, 40), utc(2023, 3, 4, 2, 2)]
    assert [p.quoted_post_ids for p in posts] == [[], ["1201"], ["1202"]]  # top-level quotes only
    assert posts[0].body.rstrip().endswith('<div class="signature scaleimages">Kopi first, talk later.</div>')
    assert posts[1].url == "http://forum.test/showthread.php?tid=17&pid=1202"
    assert spider.thread_page_links(page) == ["http://forum.test/showthread.php?tid=17&page=2"]


def test_seo_page_two_guest_date_and_one_url_per_page():
    spider = make_spider()
    first = response("mybb18_thread_p1.html", "http://forum.test/showthread.php?tid=17")
    spider.thread_page_links(first)
    page = response("mybb18_thread_p2_seo.html", "http://forum.test/Thread-Best-kopi-in-Toa-Payoh?page=2")
    info = spider.thread_info(page)  # no id in a slug URL: the printable version's tid= link
    assert (info.thread_id, info.page) == ("17", 2)
    posts = spider.posts(page)
    assert [(p.post_id, p.position, p.quoted_post_ids) for p in posts] == [("1210", 3, ["1203"]), ("1211", 4, [])]
    assert posts[0].posted_at == utc(2023, 3, 4, 3, 30) and posts[1].posted_at is None  # "Today, 11:30 AM"; none
    assert spider.thread_page_links(page) == []  # page 1 was read already, under its tid= URL
    fresh = make_spider()  # a crawl starting here: page 1 as showthread.php?tid=17
    assert fresh.thread_page_links(page) == ["http://forum.test/showthread.php?tid=17"]


def test_board_with_seo_links_and_index():
    spider = make_spider()
    board = response("mybb18_board_seo.html", "http://forum.test/Forum-Eat-Drink-Man-Woman")
    assert spider.page_kind(board) == "board"
    assert spider.thread_links(board) == ["http://forum.test/showthread.php?tid=17",
                                          "http://forum.test/showthread.php?tid=9"]
    assert spider.board_next_page(board) == "http://forum.test/Forum-Eat-Drink-Man-Woman?page=2"
    last = spider.thread_last_posts(board)
    assert {k: v.posted_at for k, v in last.items()} == {"17": utc(2023, 3, 4, 3, 30), "9": utc(2008, 5, 6, 15, 42)}
    index = response("mybb18_index.html", "http://forum.test/index.php")
    assert spider.page_kind(index) == "index"
    assert spider.board_links(index) == ["http://forum.test/forumdisplay.php?fid=2",
                                         "http://forum.test/forumdisplay.php?fid=3"]


@pytest.mark.parametrize("url, thread, page", [
    ("https://f.test/showthread.php?tid=17&page=3", "17", 3),
    ("https://f.test/forum/showthread.php?pid=5&tid=9", "9", None),
    ("https://f.test/thread-17.html", "17", None),
    ("https://f.test/thread-17-page-4.html", "17", 4),
    ("https://f.test/Thread-Best-kopi?page=2", None, 2),
    ("https://f.test/forumdisplay.php?fid=2", None, None),
])
def test_urls(url, thread, page):
    spider = make_spider()
    assert (spider.thread_id_from_url(url), spider.page_from_url(url)) == (thread, page)


def test_bodies_clean_under_the_markup_record():
    posts = make_spider().posts(response("mybb18_thread_p1.html", "http://forum.test/showthread.php?tid=17"))
    record = HTML.combine(MARKUP)
    first = html_to_text(posts[0].body, markup=record)
    assert "Kopi first" not in first.text and first.n_signatures == 1 and "Smile" in first.text
    third = html_to_text(posts[2].body, markup=record)
    assert third.text.strip() == "Can confirm, went there this morning." and third.n_quotes == 1
    assert "Wrote" not in third.text and "sock" not in third.text


def test_recognise_its_pages_and_not_others():
    for name in ("mybb18_thread_p1.html", "mybb18_board_seo.html", "mybb18_index.html"):
        signals = MybbSpider.recognise(response(name, "http://forum.test/showthread.php?tid=17"))
        assert signals and "text: Powered By MyBB" in signals, name
    assert "url: showthread.php?tid=" in MybbSpider.recognise(response("mybb18_thread_p1.html",
                                                                       "http://forum.test/showthread.php?tid=17"))
    other = HtmlResponse("http://forum.test/showthread.php?tid=3",
                         body=fixture_bytes("vbulletin", "vb4_thread_p1.html"))
    assert MybbSpider.recognise(other) is None  # a MyBB route alone recognises nothing


def test_crawl_board_with_seo_links(tmp_path):
    routes = {
        "/Forum-Eat-Drink-Man-Woman": Page(fixture_bytes("mybb", "mybb18_board_seo.html")),
        "/showthread.php?tid=17": Page(fixture_bytes("mybb", "mybb18_thread_p1.html")),
        "/showthread.php?tid=17&page=2": Page(fixture_bytes("mybb", "mybb18_thread_p2_seo.html")),
        # /showthread.php?tid=9 and the board's page 2 answer 404
    }
    with FixtureServer(routes) as server:
        run = run_spider("mybb", {"start_url": server.url("/Forum-Eat-Drink-Man-Woman"), "source": "mb",
                                  "timezone": "Asia/Singapore"}, tmp_path)
        requested = server.paths()
    assert sorted(requested) == sorted(list(routes) + ["/showthread.php?tid=9", "/Forum-Eat-Drink-Man-Woman?page=2"])
    by_id = {i["post_id"]: i for i in run.items}
    assert sorted(by_id) == ["1201", "1202", "1203", "1210", "1211"]
    assert [by_id[i]["position"] for i in sorted(by_id)] == [0, 1, 2, 3, 4]
    assert by_id["1210"]["page"] == 2 and by_id["1210"]["quoted_post_ids"] == ["1203"]
    assert {i["board"] for i in run.items} == {"Eat, Drink, Man, Woman"} and {i["source"] for i in run.items} == {"mb"}
    assert run.stats["forum/posts"] == 5
