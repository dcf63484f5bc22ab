"""Spider ``invision`` (crawler/spiders/invision.py): Invision Community 4 and 5 markup on fixture pages
built from IPS's topic, forum and index templates (comment articles, ipsQuote with the quoted comment
id, signatures beside the content, <time datetime>, perPage positions), the clean stage under its
markup record, and a real crawl on 127.0.0.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.spiders.invision import MARKUP, InvisionSpider
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

TOPIC = "https://forum.test/topic/17-best-kopi-in-toa-payoh/"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_spider(**args):
    return InvisionSpider.from_crawler(get_crawler(InvisionSpider), start_url="https://forum.test/", **args)


def response(name: str, url: str, body: bytes | None = None) -> HtmlResponse:
    return HtmlResponse(url, body=body if body is not None else fixture_bytes("invision", name))


def test_ips4_topic_posts_quotes_and_signature_left_out():
    spider = make_spider()
    page = response("ips4_topic_p1.html", TOPIC)
    assert spider.page_kind(page) == "thread"
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == ("17", "Best kopi in Toa Payoh?",
                                                                   "Eat, Drink, Man, Woman", 1)
    posts = spider.posts(page)
    assert [(p.post_id, p.author, p.position) for p in posts] == [
        ("1201", "kopi_king", 0), ("1202", "ah_beng88", 1), ("1203", "makcik_lim", 2)]
    assert [p.posted_at for p in posts] == [utc(2023, 3, 2, 9, 15), utc(2023, 3, 3, 1, 40), utc(2023, 3, 4, 2, 2)]
    assert [p.quoted_post_ids for p in posts] == [[], ["1201"], ["1202"]]
    assert "Kopi first" not in posts[0].body  # the signature is beside the content, not in the body
    assert posts[1].url == TOPIC + "?do=findComment&comment=1202"
    assert spider.thread_page_links(page) == [TOPIC + "page/2/"]


def test_ips5_topic_page_two_positions_from_per_page():
    spider = make_spider()
    page = response("ips5_topic_p2.html", TOPIC + "page/2/")
    info = spider.thread_info(page)
    assert (info.thread_id, info.title, info.board, info.page) == ("17", "Best kopi in Toa Payoh?",
                                                                   "Eat, Drink, Man, Woman", 2)
    posts = spider.posts(page)  # data-ipspagination-perpage="3": page 2 starts at position 3
    assert [(p.post_id, p.author, p.position, p.quoted_post_ids) for p in posts] == [
        ("1210", "sotong", 3, ["1203"]), ("1211", "kiasu_kid", 4, [])]
    assert posts[0].posted_at == utc(2023, 3, 4, 3, 30) and posts[1].posted_at is None
    assert posts[0].url == TOPIC + "page/2/#findComment-1210"
    assert spider.thread_page_links(page) == [TOPIC]


def test_forum_and_index_pages():
    spider = make_spider()
    board = response("ips4_forum.html", "https://forum.test/forum/2-eat-drink-man-woman/")
    assert spider.page_kind(board) == "board"
    # each row's title link (not its mini pagination), the query dropped by canonical_thread_url
    links = spider.thread_links(board)
    assert links == [TOPIC, "https://forum.test/topic/9-caf%C3%A9-or-kopitiam/?do=getNewComment"]
    assert spider.canonical_thread_url(links[1]) == "https://forum.test/topic/9-caf%C3%A9-or-kopitiam/"
    assert spider.board_next_page(board) == "https://forum.test/forum/2-eat-drink-man-woman/page/2/"
    last = spider.thread_last_posts(board)
    assert {k: v.posted_at for k, v in last.items()} == {"17": utc(2023, 3, 4, 3, 30), "9": utc(2008, 5, 6, 15, 42)}
    index = response("ips5_index.html", "https://forum.test/")
    assert spider.page_kind(index) == "index"
    assert spider.board_links(index) == ["https://forum.test/forum/2-eat-drink-man-woman/",
                                         "https://forum.test/forum/3-kopi-talk/"]


@pytest.mark.parametrize("url, topic, page", [
    ("https://f.test/topic/17-best-kopi/", "17", None),
    ("https://f.test/topic/17-best-kopi/page/3/", "17", 3),
    ("https://f.test/index.php?/topic/17-best-kopi/page/2/", "17", 2),
    ("https://f.test/index.php?showtopic=17&page=2", "17", 2),
    ("https://f.test/forum/2-eat-drink/", None, None),
])
def test_urls(url, topic, page):
    spider = make_spider()
    assert (spider.thread_id_from_url(url), spider.page_from_url(url)) == (topic, page)


def test_bodies_clean_under_the_markup_record():
    posts = make_spider().posts(response("ips4_topic_p1.html", TOPIC))
    record = HTML.combine(MARKUP)
    first = html_to_text(posts[0].body, markup=record)
    assert first.text.split()[-1] == ":)"  # the emoticon's alt
    second = html_to_text(posts[1].body, markup=record, mention_placeholder="@user")
    assert "said:" not in second.text and "Anyone knows" not in second.text
    assert "@user the uncle" in second.text and second.quoted_post_ids == ["1201"]  # read by the clean stage too
    third = html_to_text(posts[2].body, markup=record)
    assert third.text.strip() == "Can confirm, went there this morning." and third.n_quotes == 1


def test_recognise_its_pages_and_not_others():
    for name in ("ips4_topic_p1.html", "ips5_topic_p2.html", "ips4_forum.html", "ips5_index.html"):
        signals = InvisionSpider.recognise(response(name, TOPIC))
        assert signals and "html: body.ipsApp" in signals, name
    assert {"html: blockquote.ipsQuote", "url: /topic/N-slug/"} <= set(
        InvisionSpider.recognise(response("ips4_topic_p1.html", TOPIC)))
    other = HtmlResponse(TOPIC, body=fixture_bytes("xenforo", "thread_p1.html"))
    assert InvisionSpider.recognise(other) is None


def test_crawl_forum_pages_and_topic_pages(tmp_path):
    def local(name: str) -> bytes:  # the fixtures' absolute links, pointed at the test server
        return re.sub(rb"https://forum\.test", server.url("").encode(), fixture_bytes("invision", name))
    with FixtureServer() as server:
        server.routes.update({
            "/forum/2-eat-drink-man-woman/": Page(local("ips4_forum.html")),
            "/topic/17-best-kopi-in-toa-payoh/": Page(local("ips4_topic_p1.html")),
            "/topic/17-best-kopi-in-toa-payoh/page/2/": Page(local("ips5_topic_p2.html")),
        })  # topic 9 and the forum's page 2 answer 404
        run = run_spider("invision", {"start_url": server.url("/forum/2-eat-drink-man-woman/"), "source": "ips"},
                         tmp_path)
        requested = server.paths()
    topic = "/topic/17-best-kopi-in-toa-payoh/"
    assert sorted(set(requested)) == sorted(["/forum/2-eat-drink-man-woman/", "/forum/2-eat-drink-man-woman/page/2/",
                                             topic, topic + "page/2/", "/topic/9-caf%C3%A9-or-kopitiam/"])
    assert len(requested) == len(set(requested))  # each page once
    by_id = {i["post_id"]: i for i in run.items}
    assert sorted(by_id) == ["1201", "1202", "1203", "1210", "1211"]
    assert [by_id[i]["position"] for i in sorted(by_id)] == [0, 1, 2, 3, 4]
    assert {i["board"] for i in run.items} == {"Eat, Drink, Man, Woman"} and by_id["1211"]["page"] == 2
