"""Spider ``smf`` (crawler/spiders/smf.py): SMF 2.1 and 2.0 markup on fixture pages built from SMF's
Display, MessageIndex and BoardIndex templates (offset pagination, PHPSESSID in every link, local-time
dates and "Today at", "Reply #N", quotes with the attribution inside (2.1) or before the quote (2.0),
signatures, smileys), the clean stage under its markup record, and a real crawl on 127.0.0.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.spiders.smf import MARKUP, SmfSpider
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

SID = "PHPSESSID=8c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
SGT = ZoneInfo("Asia/Singapore")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_spider(**args):
    args.setdefault("timezone", "Asia/Singapore")
    return SmfSpider.from_crawler(get_crawler(SmfSpider), start_url="https://forum.test/index.php", **args)


def response(name: str, url: str) -> HtmlResponse:
    return HtmlResponse(url, body=fixture_bytes("smf", name))


def test_21_topic_first_page():
    spider = make_spider()
    page = response("smf21_topic_p1.html", "https://forum.test/index.php?topic=17.0")
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == ("17", "Best kopi in Toa Payoh?",
                                                                   "Eat, Drink, Man, Woman", 1)
    posts = spider.posts(page)
    assert [(p.post_id, p.author, p.position) for p in posts] == [
        ("1201", "kopi_king", 0), ("1202", "ah_beng88", 1), ("1203", "makcik_lim", 2)]
    assert posts[0].posted_at == utc(2023, 3, 2, 9, 15) and posts[1].posted_at == utc(2023, 3, 3, 1, 40)
    today = datetime.now(SGT).date()  # "Today at 10:02:00 AM": today in the forum's zone
    assert posts[2].posted_at.astimezone(SGT).date() == today and posts[2].posted_at.astimezone(SGT).hour == 10
    assert [p.quoted_post_ids for p in posts] == [[], ["1201"], ["1202"]]
    assert posts[0].body.endswith('<div class="signature" id="msg_1201_signature">Kopi first, talk later.</div>')
    assert posts[1].url == "https://forum.test/index.php?msg=1202"  # PHPSESSID stripped
    assert spider.thread_page_links(page) == ["https://forum.test/index.php?topic=17.3"]


def test_20_topic_offset_page_quoteheader_and_missing_date():
    spider = make_spider()
    page = response("smf20_topic_p2.html", f"https://forum.test/index.php?{SID}&topic=17.3")
    info = spider.thread_info(page)  # title: the linktree's topic link (2.0 has no #top_subject here)
    assert (info.thread_id, info.title, info.board, info.page) == ("17", "Best kopi in Toa Payoh?",
                                                                   "Eat, Drink, Man, Woman", 2)
    posts = spider.posts(page)
    assert [(p.post_id, p.author, p.position) for p in posts] == [("1210", "sotong", 3), ("1211", "kiasu_kid", 4)]
    assert posts[0].posted_at == utc(2023, 3, 4, 3, 30) and posts[1].posted_at is None
    assert posts[0].quoted_post_ids == ["1203"]  # from the div.quoteheader before the blockquote
    assert spider.thread_page_links(page) == ["https://forum.test/index.php?topic=17.0"]


def test_board_index_and_session_ids():
    spider = make_spider()
    board = response("smf21_board.html", "https://forum.test/index.php?board=2.0")
    assert spider.page_kind(board) == "board"
    assert spider.thread_links(board) == ["https://forum.test/index.php?topic=17.0", "https://forum.test/index.php?topic=9.0"]
    assert spider.board_next_page(board) == "https://forum.test/index.php?board=2.2"
    assert {k: v.post_id for k, v in spider.thread_last_posts(board).items()} == {"17": "1211", "9": "906"}
    index = response("smf20_index.html", "https://forum.test/index.php")
    assert spider.page_kind(index) == "index"
    assert spider.board_links(index) == ["https://forum.test/index.php?board=2.0", "https://forum.test/index.php?board=3.0"]


@pytest.mark.parametrize("url, expected", [
    (f"https://f.test/index.php?{SID}&topic=3.0;prev_next=prev#new", "https://f.test/index.php?topic=3.0;prev_next=prev"),
    (f"https://f.test/index.php?action=profile;{SID};u=5", "https://f.test/index.php?action=profile;u=5"),
    (f"https://f.test/index.php?{SID}&", "https://f.test/index.php"),
])
def test_session_ids_stripped(url, expected):
    assert make_spider().strip_session(url) == expected


@pytest.mark.parametrize("url, canonical", [
    ("https://f.test/index.php?topic=3.msg12#msg12", "https://f.test/index.php?topic=3.0"),
    (f"https://f.test/forum/index.php?{SID}&topic=3.45", "https://f.test/forum/index.php?topic=3.0"),
    ("https://f.test/index.php/topic,3.15.html", "https://f.test/index.php/topic,3.0.html"),
])
def test_canonical_topic_urls(url, canonical):
    spider = make_spider()
    assert spider.canonical_thread_url(url) == canonical and spider.thread_id_from_url(url) == "3"


def test_bodies_clean_under_the_markup_record():
    record = HTML.combine(MARKUP)
    posts = make_spider().posts(response("smf21_topic_p1.html", "https://forum.test/index.php?topic=17.0"))
    first = html_to_text(posts[0].body, markup=record)
    assert first.text.split()[-1] == ":)" and "Kopi first" not in first.text and first.n_signatures == 1
    third = html_to_text(posts[2].body, markup=record)
    assert third.text.strip() == "Can confirm, went there this morning." and third.n_quotes == 1
    old = make_spider().posts(response("smf20_topic_p2.html", "https://forum.test/index.php?topic=17.3"))[0]
    text = html_to_text(old.body, markup=record)  # 2.0: the header and footer outside the quote go too
    assert "Quote from" not in text.text and "Can confirm" not in text.text and text.n_quotes == 1
    assert text.text.strip().startswith("Sock kopi is the best kopi.") and "Ink is blood" not in text.text


def test_recognise_its_pages_and_not_others():
    for name in ("smf21_topic_p1.html", "smf20_topic_p2.html", "smf21_board.html", "smf20_index.html"):
        signals = SmfSpider.recognise(response(name, "https://forum.test/index.php?topic=17.0"))
        assert signals and "text: Simple Machines footer" in signals, name
    other = HtmlResponse("https://forum.test/index.php?topic=17.0",
                         body=fixture_bytes("phpbb", "phpbb33_topic_p1.html"))
    assert SmfSpider.recognise(other) is None


def test_crawl_board_offsets_and_session_ids(tmp_path):
    def local(name: str) -> bytes:  # SMF links absolutely: point the fixtures at the test server
        return re.sub(rb"https://forum\.test", server.url("").encode(), fixture_bytes("smf", name))
    with FixtureServer() as server:
        server.routes.update({
            "/index.php?board=2.0": Page(local("smf21_board.html")),
            "/index.php?topic=17.0": Page(local("smf21_topic_p1.html")),
            "/index.php?topic=17.3": Page(local("smf20_topic_p2.html")),
        })  # topic 9 and the board's second page answer 404
        run = run_spider("smf", {"start_url": server.url("/index.php?board=2.0"), "source": "sm",
                                 "timezone": "Asia/Singapore"}, tmp_path)
        requested = server.paths()
    assert not any("PHPSESSID" in r for r in requested)
    assert sorted(requested) == sorted(["/index.php?board=2.0", "/index.php?board=2.2", "/index.php?topic=17.0",
                                        "/index.php?topic=17.3", "/index.php?topic=9.0"])
    by_id = {i["post_id"]: i for i in run.items}
    assert sorted(by_id) == ["1201", "1202", "1203", "1210", "1211"]
    assert [by_id[i]["position"] for i in sorted(by_id)] == [0, 1, 2, 3, 4]
    assert by_id["1210"]["page"] == 2 and by_id["1210"]["quoted_post_ids"] == ["1203"]
    assert run.stats["forum/posts"] == 5 and datetime.now(UTC) - by_id["1203"]["posted_at"] < timedelta(days=2)
