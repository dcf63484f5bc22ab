"""vBulletin 5 in the ``vbulletin`` spider: fixtures built from vBulletin 5's templates (friendly
``/forum/<channel>/<sub>/<id>-<slug>`` URLs, ``li.b-post`` posts, ``<time datetime>`` without an
offset, with one, and missing, ``bbcode_quote`` nesting, ``.post-signature``), the URL forms
(``/node/N``, ``/pageN``), and the demo forum's vBulletin 5 rendering page for page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import scrapy
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts import markup
from crawler.spiders.vbulletin import MARKUP, VbulletinSpider
from demoforum import vbulletin5
from demoforum.site import DemoForum
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import fixture_bytes

THREAD = "https://vb5.test/forum/main-forum/makan/5150-where-to-get-good-bak-kut-teh"


@pytest.fixture
def spider():
    return VbulletinSpider.from_crawler(get_crawler(VbulletinSpider), start_url="https://vb5.test/",
                                        timezone="Asia/Singapore")


def test_thread_page(spider):
    response = HtmlResponse(THREAD, body=fixture_bytes("vbulletin", "vb5_thread_p1.html"))
    assert spider.page_kind(response) == "thread"
    info = spider.thread_info(response)
    assert (info.thread_id, info.title, info.board, info.page) == ("5150", "Where to get good bak kut teh?", "Makan", 1)
    posts = spider.posts(response)
    assert [(p.post_id, p.author, p.position) for p in posts] == [
        ("5150", "pork_rib_pete", 0), ("5153", "auntie_mei", 1), ("5160", "hungry_ghost", 2)]
    assert posts[0].posted_at == datetime(2017, 7, 14, 13, 40, 5, tzinfo=UTC)  # no offset: the forum's zone
    assert posts[1].posted_at == datetime(2017, 7, 14, 14, 5, tzinfo=UTC)  # its own offset
    assert posts[2].posted_at is not None  # "Today, 08:15 AM": the shown text, against the fetch time
    assert [p.quoted_post_ids for p in posts] == [[], ["5150"], ["5153"]]
    assert posts[1].url == THREAD + "?p=5153"
    assert spider.thread_page_links(response) == [THREAD + "/page2"]
    record = markup.for_file([MARKUP])
    outs = [html_to_text(p.body, markup=record) for p in posts]
    assert [o.n_quotes for o in outs] == [0, 1, 1] and [o.n_signatures for o in outs] == [1, 0, 1]
    assert " ".join(outs[2].text.split()) == ("Went there this morning on your advice. "
                                              "Three refills of soup, no regrets at all.")


def test_channel_page(spider):
    board = HtmlResponse("https://vb5.test/forum/main-forum/makan", body=fixture_bytes("vbulletin", "vb5_channel.html"))
    assert spider.page_kind(board) == "board"
    urls = [r.url for r in spider.parse(board) if isinstance(r, scrapy.Request)]
    assert urls == ["https://vb5.test/forum/main-forum/makan/5001-forum-rules", THREAD,
                    "https://vb5.test/forum/main-forum/makan/page2"]
    assert spider.thread_last_posts(board)["5150"].post_id == "5177"


@pytest.mark.parametrize("url, thread, page", [
    (THREAD, "5150", None),
    (THREAD + "/page3", "5150", 3),
    ("https://vb5.test/node/5150", "5150", None),
    ("https://vb5.test/forum/main-forum/makan", None, None),
    ("https://vb5.test/forum/main-forum/makan/page2", None, 2),
])
def test_urls(spider, url, thread, page):
    assert spider.thread_id_from_url(url) == thread and spider.page_from_url(url) == page


def test_demo_rendering_page_for_page(spider):
    forum = DemoForum(plays=["julius-caesar"], threads_per_page=5, posts_per_page=15, engine="vbulletin5")
    thread = next(t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 3)
    url = "http://127.0.0.1:1" + vbulletin5.thread_path(thread) + "/page2"
    posts = spider.posts(HtmlResponse(url, body=vbulletin5.thread_page(forum, thread, 2).encode()))
    for got, post in zip(posts, thread.posts[15:30], strict=True):
        assert (got.post_id, got.author, got.position) == (str(post.post_id), post.author, post.position)
        assert got.quoted_post_ids == [str(q) for q in post.quoted_post_ids]
        assert got.posted_at == datetime.fromtimestamp(post.epoch, UTC)
