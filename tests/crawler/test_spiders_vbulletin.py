"""Spider ``vbulletin`` (crawler/spiders/vbulletin.py): vB3/vB4 markup on fixtures and in a real crawl.

Also vBulletin 3's header-cell dates in the forum's time zone and the real vBulletin 4 page in ../shared
(skipped when absent); the real crawl runs on 127.0.0.1."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.extensions import summarize
from crawler.spiders.forum import parse_local_date
from crawler.spiders.vbulletin import VbulletinSpider
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

SGT = ZoneInfo("Asia/Singapore")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def spider():
    crawler = get_crawler(VbulletinSpider)
    return VbulletinSpider.from_crawler(crawler, start_url="http://forum.test/forumdisplay.php?f=16")


def response(name: str, url: str) -> HtmlResponse:
    return HtmlResponse(url, body=fixture_bytes("vbulletin", name))


def test_vb4_thread_page(spider):
    page = response("vb4_thread_p1.html", "http://forum.test/showthread.php?t=5001&s=abc123")
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == (
        "5001", "Where to get the best kopi near Toa Payoh?", "Eat-Drink-Man-Woman", 1)
    posts = spider.posts(page)
    assert [p.post_id for p in posts] == ["70001", "70002", "70003"]
    assert [p.author for p in posts] == ["kopi_king", "ah_beng88", "Guest"]
    assert [p.position for p in posts] == [0, 1, 2]
    assert posts[0].posted_at == utc(2011, 3, 2, 9, 15) and posts[2].posted_at == utc(2011, 3, 2, 13, 30)
    assert posts[1].quoted_post_ids == ["70001"] and posts[0].quoted_post_ids == []
    assert "<b>kopi-o kosong</b>" in posts[0].body  # HTML as served
    assert 'id="ppost_message_70002"' in posts[1].body  # the decoy is inside the body, not a post
    assert posts[0].url == "http://forum.test/showthread.php?t=5001&p=70001"  # session id stripped
    assert spider.thread_page_links(page) == ["http://forum.test/showthread.php?t=5001&page=2"]


def test_vb4_page_two_missing_date_and_vb3_markup(spider):
    page2 = response("vb4_thread_p2.html", "http://forum.test/showthread.php?t=5001&page=2")
    posts = spider.posts(page2)
    assert spider.thread_info(page2).page == 2 and [p.position for p in posts] == [3, 4]
    assert posts[1].posted_at is None and posts[1].author == "kopi_king"  # no date: null, not a crash
    vb3 = response("vb3_thread.html", "http://forum.test/showthread.php?t=5002")
    info = spider.thread_info(vb3)
    assert (info.thread_id, info.title, info.board) == ("5002", "Café or kopitiam?", "Eat-Drink-Man-Woman")
    posts = spider.posts(vb3)
    assert [(p.post_id, p.author, p.position) for p in posts] == [("80001", "sotong", 0), ("80002", "kiasu_kid", 1)]
    assert posts[0].posted_at == utc(2008, 5, 6, 23, 42) and posts[1].posted_at == utc(2008, 5, 7, 0, 5)
    assert posts[1].quoted_post_ids == ["80001"] and "Kopitiam still the best" in posts[1].body


def test_board_page(spider):
    board = response("vb4_board_p1.html", "http://forum.test/forumdisplay.php?f=16")
    assert spider.page_kind(board) == "board"
    assert spider.thread_links(board) == ["http://forum.test/showthread.php?t=5001",
                                          "http://forum.test/showthread.php?t=5002"]
    assert spider.board_next_page(board) == "http://forum.test/forumdisplay.php?f=16&page=2"


@pytest.mark.parametrize("url, thread, page", [
    ("https://f.test/showthread.php?t=123&page=4", "123", 4),
    ("https://f.test/showthread.php?123-some-title/page3", "123", 3),
    ("https://f.test/forum-x/122760-microsoft-beginnt-auslieferung-34.html", "122760", 34),
    ("https://f.test/forumdisplay.php?f=16", None, None),
])
def test_urls(spider, url, thread, page):
    assert spider.thread_id_from_url(url) == thread
    assert spider.page_from_url(url) == page


def test_dates_and_session_ids(spider):
    assert parse_local_date("03-04-2011, 02:17 PM") == utc(2011, 3, 4, 14, 17)
    assert parse_local_date("03-04-2011, 02:17 PM", date_order="DMY") == utc(2011, 4, 3, 14, 17)
    assert parse_local_date("03.04.2011,\xa014:17") == utc(2011, 4, 3, 14, 17)  # dotted: day first
    assert parse_local_date("03-04-2011, 10:00 PM", timezone="Asia/Singapore") == utc(2011, 3, 4, 14, 0)
    assert parse_local_date("Today, 09:12 AM") is not None and parse_local_date("no date here") is None
    assert spider.strip_session("http://f/showthread.php?s=ab12&t=5#post9") == "http://f/showthread.php?t=5"


def test_bad_argument_is_named():
    with pytest.raises(ValueError, match="date_order='XYZ'"):
        VbulletinSpider(start_url="http://f.test/", date_order="XYZ")
    with pytest.raises(ValueError, match="timezone='Mars/Olympus' is not a time zone"):
        VbulletinSpider(start_url="http://f.test/", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown argument\\(s\\) max_thread"):
        VbulletinSpider(start_url="http://f.test/", max_thread=3)


def test_real_vbulletin4_page(spider, forum_pages):
    """A real vB4 page (pocketpc.ch, ISO-8859-1, decoy div#ppost_message_N in every post)."""
    path = forum_pages / "vb4_pocketpc_showthread.html"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    url = "https://www.pocketpc.ch/windows-phone-7-allgemein/122760-microsoft-beginnt-auslieferung-vorbereitungsupdate-34.html"
    page = HtmlResponse(url, body=path.read_bytes(), headers={"Content-Type": "text/html; charset=ISO-8859-1"})
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.page) == ("122760", 34)
    assert info.title == "Microsoft beginnt mit der Auslieferung des Vorbereitungsupdate!"
    posts = spider.posts(page)
    assert len(posts) == 20  # not 40: the decoys are not posts
    assert [p.position for p in posts] == list(range(660, 680))
    assert (posts[0].post_id, posts[0].author) == ("949757", "Predator")
    assert posts[0].posted_at == utc(2011, 3, 3, 14, 17)
    assert (posts[1].post_id, posts[1].author) == ("949763", "Chatfix")
    assert (posts[-1].post_id, posts[-1].author) == ("949908", "tommyp")
    assert posts[0].quoted_post_ids and posts[1].quoted_post_ids  # TheFreeman's, Predator's posts
    assert posts[1].quoted_post_ids[0] != posts[0].post_id
    assert all(p.body and p.posted_at for p in posts)
    assert "<script" in posts[0].body  # ads kept as served: the clean stage removes them
    links = spider.thread_page_links(page)
    assert any(link.endswith("-35.html") for link in links) and not any("s=" in link for link in links)


@pytest.mark.slow
def test_crawl_board_pagination_wrong_encoding_and_404(tmp_path):
    latin1 = fixture_bytes("vbulletin", "vb3_thread.html")  # ISO-8859-1 bytes ...
    routes = {
        "/forumdisplay.php?f=16": Page(fixture_bytes("vbulletin", "vb4_board_p1.html")),
        "/forumdisplay.php?f=16&page=2": Page(fixture_bytes("vbulletin", "vb4_board_p2.html")),
        "/showthread.php?t=5001": Page(fixture_bytes("vbulletin", "vb4_thread_p1.html")),
        "/showthread.php?t=5001&page=2": Page(fixture_bytes("vbulletin", "vb4_thread_p2.html")),
        "/showthread.php?t=5002": Page(latin1, "text/html; charset=UTF-8"),  # ... declared UTF-8
        # /showthread.php?t=5003 is listed on board page 2 and answers 404
    }
    with FixtureServer(routes) as server:
        run = run_spider("vbulletin", {"start_url": server.url("/forumdisplay.php?f=16"), "source": "vb"}, tmp_path)
        requested = server.paths()
    assert sorted(requested) == sorted(list(routes) + ["/showthread.php?t=5003"])  # each page once
    by_id = {i["post_id"]: i for i in run.items}
    assert sorted(by_id) == ["70001", "70002", "70003", "70010", "70011", "80001", "80002"]
    assert [by_id[i]["position"] for i in ("70001", "70002", "70003", "70010", "70011")] == [0, 1, 2, 3, 4]
    assert by_id["70010"]["page"] == 2 and by_id["70011"]["posted_at"] is None
    assert "café" in by_id["80001"]["body"] and "£3" in by_id["80001"]["body"]  # repaired encoding
    assert by_id["80002"]["quoted_post_ids"] == ["80001"]
    assert {i["board"] for i in run.items} == {"Eat-Drink-Man-Woman"} and {i["source"] for i in run.items} == {"vb"}
    assert run.stats["downloader/response_status_count/404"] == 1
    assert run.stats["kopitiam/encoding_fixed/utf-8->cp1252"] == 1


def test_nested_quote_cites_only_the_outer_post(spider):
    """A quote of a post that itself quoted: the inner back-link is the quoted post's own quote."""
    html = ('<html><body><ol id="posts"><li id="post_9"><div id="post_message_9"><blockquote class="postcontent">'
            '<div class="bbcode_container"><div class="bbcode_quote"><div class="bbcode_postedby">Originally Posted by'
            ' <strong>a</strong> <a href="showthread.php?p=8#post8">view</a></div><div class="message">'
            '<div class="bbcode_container"><div class="bbcode_quote"><div class="bbcode_postedby">Originally Posted by'
            ' <strong>b</strong> <a href="showthread.php?p=7#post7">view</a></div><div class="message">old</div>'
            '</div></div>newer</div></div></div>reply</blockquote></div></li></ol></body></html>')
    page = HtmlResponse("http://forum.test/showthread.php?t=1", body=html.encode())
    assert spider.posts(page)[0].quoted_post_ids == ["8"]


def vb3_post(post_id: int, number: int, date: str) -> str:
    """One post as vBulletin 3's default postbit_legacy renders it: a table whose header cell
    holds the status icon, the date and (floated right) the post number."""
    return f"""<div id="edit{post_id}"><table id="post{post_id}" class="tborder" width="100%">
<tr><td class="thead" style="font-weight:normal">
  <div class="normal" style="float:right">&nbsp;#<a href="showpost.php?p={post_id}&amp;postcount={number}"
     id="postcount{post_id}" name="{number}"><strong>{number}</strong></a>&nbsp;</div>
  <div class="normal"><a name="post{post_id}"><img class="inlineimg" src="images/statusicon/post_old.gif"
     alt="Old" /></a> {date}</div>
</td></tr>
<tr valign="top"><td class="alt2" width="175"><div id="postmenu_{post_id}">
  <a class="bigusername" href="member.php?u={number}">user{number}</a></div></td>
<td class="alt1" id="td_post_{post_id}"><div id="post_message_{post_id}">Post number {number} here.</div></td></tr>
</table></div>"""


def vb3_thread(dates: list[str]) -> str:
    posts = "\n".join(vb3_post(90000 + i, i + 1, d) for i, d in enumerate(dates))
    return f"""<html><head><title>Kopi talk - Old Forum</title></head><body>
<table class="tborder"><tr><td class="navbar"><a href="forumdisplay.php?f=3">Makan</a>
<strong>Kopi talk</strong></td></tr></table>
<input type="hidden" name="t" value="4242" />
<div id="posts">{posts}</div></body></html>"""


@pytest.mark.slow
def test_vbulletin3_header_cell_dates_in_the_forum_time_zone(tmp_path):
    dates = [f"{d}th Apr 2011, 17:{d:02d}" for d in range(4, 30)] + \
            ["30th Apr 2011, 17:10", "Today, 17:10", "Yesterday, 09:05", "no date shown"]
    assert len(dates) == 30
    with FixtureServer({"/showthread.php?t=4242": Page(vb3_thread(dates))}) as server:
        url = server.url("/showthread.php?t=4242")
        result = run_spider("vbulletin", {"start_url": url, "timezone": "Asia/Singapore",
                                          "date_order": "DMY"}, tmp_path)
    when = {item["position"]: item["posted_at"] for item in result.items}
    assert len(when) == 30
    assert when[0] == datetime(2011, 4, 4, 9, 4, tzinfo=timezone.utc)  # 17:04 SGT = 09:04 UTC
    assert when[26] == datetime(2011, 4, 30, 9, 10, tzinfo=timezone.utc)
    fetched = min(item["fetched_at"] for item in result.items).astimezone(SGT).date()
    today = datetime(fetched.year, fetched.month, fetched.day, 17, 10, tzinfo=SGT)
    assert when[27] in (today.astimezone(timezone.utc), (today + timedelta(days=1)).astimezone(timezone.utc))
    yesterday = datetime(fetched.year, fetched.month, fetched.day, 9, 5, tzinfo=SGT) - timedelta(days=1)
    assert when[28] in (yesterday.astimezone(timezone.utc), (yesterday + timedelta(days=1)).astimezone(timezone.utc))
    # the one post without a date: kept, counted, warned about once with its URL
    assert when[29] is None
    assert result.stats["kopitiam/errors/post_without_date"] == 1
    assert summarize(result.stats)["errors"]["post_without_date"] == 1
    warnings = [line for line in result.log.splitlines() if "no date could be read" in line]
    assert len(warnings) == 1 and f"{url.split('/showthread')[0]}/showpost.php?p=90029" in warnings[0]
