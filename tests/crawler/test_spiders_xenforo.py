"""Spider ``xenforo`` (crawler/spiders/xenforo.py): parsing a real HardwareZone page and demo-forum pages.

No network: pages are given to the spider as responses."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import scrapy
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.spiders.xenforo import XenforoSpider
from demoforum import pages
from demoforum.site import DemoForum

EDMW_URL = "https://forums.hardwarezone.com.sg/threads/sg-soon-no-need-water-from-malaysia-liao.7105036/page-2"
DEMO = "http://127.0.0.1:8000"


def make_spider(**kwargs):
    crawler = get_crawler(XenforoSpider)
    kwargs.setdefault("start_url", DEMO + "/")
    return XenforoSpider.from_crawler(crawler, **kwargs), crawler.stats


def run(spider, url: str, html: str | bytes):
    body = html.encode("utf-8") if isinstance(html, str) else html
    out = list(spider.parse(HtmlResponse(url=url, body=body, encoding="utf-8")))
    items = [dict(o) for o in out if not isinstance(o, scrapy.Request)]
    requests = [o.url for o in out if isinstance(o, scrapy.Request)]
    return items, requests


@pytest.fixture(scope="module")
def forum() -> DemoForum:
    return DemoForum(plays=["a-midsummer-night-s-dream"], threads_per_page=4)


def test_edmw_page(forum_pages):
    spider, stats = make_spider(start_url=EDMW_URL, source="edmw")
    items, requests = run(spider, EDMW_URL, (forum_pages / "xf2_hardwarezone_edmw_thread_p2.html").read_bytes())
    assert len(items) == 20
    assert [i["position"] for i in items] == list(range(20, 40))  # "#21".."#40"
    first, second, third = items[:3]
    assert first["post_id"] == "155324874" and first["author"] == "Can Or Not"
    assert first["posted_at"] == datetime(2025, 2, 15, 11, 48, 27, tzinfo=timezone.utc)  # 19:48:27+0800
    assert first["quoted_post_ids"] == ["155324854"]  # only in a.bbCodeBlock-sourceJump
    assert "We are limited by energy" in first["body"] and "Click to expand..." in first["body"]
    assert second["post_id"] == "155324906" and second["author"] == "ahnyaahnya"
    assert second["posted_at"] == datetime(2025, 2, 15, 11, 52, 40, tzinfo=timezone.utc)
    assert third["author"] == "articland05" and third["quoted_post_ids"] == []
    assert sum(1 for i in items if i["quoted_post_ids"]) == 11
    assert items[-1]["post_id"] == "155326460"
    for item in items:
        assert item["thread_id"] == "7105036" and item["page"] == 2 and item["source"] == "edmw"
        assert item["thread_title"] == "SG soon no need water from malaysia liao"
        assert item["board"] == "Eat-Drink-Man-Woman" and item["body_format"] == "html"
        assert item["url"].endswith(f"/post-{item['post_id']}")
        assert "gpt-ad" not in item["body"] and "document.write" not in item["body"]  # ads sit between posts
    thread = EDMW_URL.rsplit("page-", 1)[0]
    assert {thread, thread + "page-3", thread + "page-6"} <= set(requests)
    assert stats.get_value("forum/posts") == 20


def test_demo_thread_page_matches_the_forum(forum):
    thread = next(t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 3)
    spider, _ = make_spider()
    items, requests = run(spider, DEMO + thread.path + "page-2", pages.thread_page(forum, thread, 2))
    expected = thread.posts[20:40]
    assert [i["post_id"] for i in items] == [str(p.post_id) for p in expected]
    for item, post in zip(items, expected):
        assert item["author"] == post.author and item["position"] == post.position
        assert item["posted_at"] == datetime.fromtimestamp(post.epoch, tz=timezone.utc)
        assert item["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids]
        assert item["thread_id"] == str(thread.thread_id) and item["thread_title"] == thread.title
        assert item["board"] == thread.board.title and item["page"] == 2
        assert item["url"] == f"{DEMO}{thread.path}post-{post.post_id}"
        assert ("message-signature" in item["body"]) == (post.signature is not None)
    assert DEMO + thread.path + "page-3" in requests and DEMO + thread.path in requests


def test_nested_quotes_count_only_the_top_level():
    html = ('<html><body><div class="bbWrapper">'
            '<blockquote class="bbCodeBlock bbCodeBlock--quote" data-source="post: 7">'
            '<blockquote class="bbCodeBlock bbCodeBlock--quote" data-source="post: 3">old</blockquote>'
            'mid</blockquote>'
            '<blockquote class="js-expandWatch bbCodeBlock--quote bbCodeBlock"><div class="bbCodeBlock-title">'
            '<a class="bbCodeBlock-sourceJump" href="/goto/post?id=9">x said:</a></div></blockquote>'
            'reply</div></body></html>')
    body = HtmlResponse(url=DEMO, body=html.encode(), encoding="utf-8").css(".bbWrapper")[0]
    assert XenforoSpider.quoted_ids(body) == ["7", "9"]


def test_board_page_limits_and_pagination(forum):
    board = forum.boards[0]
    spider, stats = make_spider(max_threads=2)
    _, requests = run(spider, DEMO + board.path, pages.board_page(forum, board, 1))
    threads = [u for u in requests if "/threads/" in u]
    assert threads == [DEMO + t.path for t in board.threads[:2]]  # canonical thread URLs, in order
    assert not any("/forums/" in u for u in requests)  # limit reached: board pagination stops
    assert stats.get_value("forum/skipped/max_threads") == 2

    spider, _ = make_spider()
    _, requests = run(spider, DEMO + board.path, pages.board_page(forum, board, 1))
    assert DEMO + board.path + "page-2" in requests
    assert len([u for u in requests if "/threads/" in u]) == 4


def test_board_last_posts(forum):
    board = forum.boards[0]
    spider, _ = make_spider()
    html = pages.board_page(forum, board, 1)
    last = spider.thread_last_posts(HtmlResponse(url=DEMO + board.path, body=html.encode(), encoding="utf-8"))
    assert set(last) == {str(t.thread_id) for t in board.threads[:4]}
    for thread in board.threads[:4]:
        assert last[str(thread.thread_id)].posted_at == datetime.fromtimestamp(thread.posts[-1].epoch, timezone.utc)


def test_since_skips_old_threads_and_ends_the_board(forum):
    board = forum.boards[0]
    newest = board.threads[1:4]  # threads_per_page=4: the old backstage sticky, then by activity
    cutoff = datetime.fromtimestamp(newest[1].posts[-1].epoch, timezone.utc)
    spider, stats = make_spider(since=cutoff.isoformat())
    _, requests = run(spider, DEMO + board.path, pages.board_page(forum, board, 1))
    assert requests == [DEMO + t.path for t in newest[:2]] + [DEMO + board.path + "page-2"]
    assert stats.get_value("forum/skipped/thread_before_since") == 2
    spider, stats = make_spider(since=cutoff.isoformat())
    _, requests = run(spider, DEMO + board.path + "page-2", pages.board_page(forum, board, 2))
    assert requests == [] and stats.get_value("forum/skipped/board_pages_before_since") == 1


def test_max_pages_since_and_host_restriction(forum):
    thread = next(t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 3)
    cutoff = thread.posts[5].epoch
    spider, stats = make_spider(max_pages=2, since=datetime.fromtimestamp(cutoff, timezone.utc).isoformat())
    html = pages.thread_page(forum, thread, 1).replace(
        f'href="{thread.path}page-2"', f'href="http://elsewhere.example{thread.path}page-2"', 1)
    items, requests = run(spider, DEMO + thread.path, html)
    assert [i["post_id"] for i in items] == [str(p.post_id) for p in thread.posts[5:20]]
    assert stats.get_value("forum/skipped/before_since") == 5
    assert all(u.startswith(DEMO) for u in requests)
    assert not any(u.endswith("page-3") for u in requests)
    assert stats.get_value("forum/skipped/offsite") == 1
    assert forum.thread_pages(thread) == 3
    assert stats.get_value("forum/skipped/max_pages") == 1  # page-3, counted once


def test_broken_page_is_counted_not_fatal(forum):
    thread = forum.crawlable_threads()[0]
    spider, stats = make_spider()
    items, requests = run(spider, DEMO + thread.path, pages.broken_thread_page(forum, thread, 1))
    assert items == []
    assert stats.get_value("forum/errors/post_without_id") == 1
    assert requests  # the top page navigation survived: the crawl goes on


@pytest.mark.parametrize("kwargs, message", [
    ({"start_url": ""}, "start_url is required"),
    ({"start_url": "ftp://x/"}, "not an http(s) URL"),
    ({"max_pages": "many"}, "max_pages='many'"),
    ({"max_threads": -1}, "max_threads=-1"),
    ({"since": "last tuesday"}, "since='last tuesday'"),
    ({"max_thread": 3}, "unknown argument(s) max_thread"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_spider(**kwargs)
