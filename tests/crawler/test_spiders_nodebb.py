"""Spider ``nodebb`` (crawler/spiders/nodebb.py): the read API on fixtures built from NodeBB's
categories, category and topic answers (quotes after the composer's "said in" line, nested quotes,
emoji, mentions, a deleted topic and post, epoch-ms times), the clean stage under its markup record,
and a real crawl on 127.0.0.1 answered 429 + Retry-After once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.items import PostItem
from crawler.spiders.nodebb import MARKUP, NodebbSpider, api_url
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

API = "http://forum.test/api"
JSON = "application/json; charset=utf-8"


def make_spider(**args):
    args.setdefault("start_url", "http://forum.test/categories")
    return NodebbSpider.from_crawler(get_crawler(NodebbSpider), **args)


def response(name: str, url: str, meta: dict | None = None, headers: dict | None = None) -> TextResponse:
    return TextResponse(url, body=fixture_bytes("nodebb", name), encoding="utf-8", headers=headers,
                        request=Request(url, meta=meta or {}))


def split(results):
    results = list(results)
    return [r for r in results if isinstance(r, PostItem)], [r for r in results if isinstance(r, Request)]


def test_topic_first_page_and_its_other_pages():
    spider = make_spider()
    items, requests = split(spider.parse(response("topic_17.json", f"{API}/topic/17/best-kopi-in-toa-payoh")))
    assert [(i["post_id"], i["author"], i["position"], i["page"]) for i in items] == [
        ("1201", "kopi_king", 0, 1), ("1202", "ah_beng88", 1, 1), ("1203", "makcik_lim", 2, 1)]
    assert items[0]["posted_at"] == datetime(2023, 3, 2, 9, 15, tzinfo=UTC)  # timestamp 1677748500000 ms
    # the /post/N link of the line before each top-level quote; 1203's nested quote is 1202's own
    assert [i["quoted_post_ids"] for i in items] == [[], ["1201"], ["1202"]]
    assert {(i["thread_id"], i["thread_title"], i["board"]) for i in items} == {
        ("17", "Best kopi in Toa Payoh?", "Eat, Drink, Man, Woman")}
    assert items[1]["url"] == "http://forum.test/post/1202"
    assert [r.url for r in requests] == [f"{API}/topic/17/best-kopi-in-toa-payoh?page=2"]


def test_later_page_skips_deleted_posts_and_asks_for_nothing():
    spider = make_spider()
    items, requests = split(spider.parse(response("topic_17_p2.json", f"{API}/topic/17/best-kopi-in-toa-payoh?page=2")))
    assert [(i["post_id"], i["position"], i["page"]) for i in items] == [("1210", 3, 2), ("1212", 5, 2)]
    assert items[0]["quoted_post_ids"] == []  # "@makcik_lim said:" names no post
    assert requests == [] and spider.crawler.stats.get_value("forum/skipped/deleted") == 1


def test_categories_and_a_category_page():
    spider = make_spider()
    _, requests = split(spider.parse(response("categories.json", f"{API}/categories")))
    # sub-categories too; a category that only links elsewhere holds no topics
    assert [(r.url, r.meta["board"]) for r in requests] == [
        (f"{API}/category/1/makan", "Makan"), (f"{API}/category/2/eat-drink-man-woman", "Eat, Drink, Man, Woman")]
    _, requests = split(spider.parse(response("category_2.json", f"{API}/category/2/eat-drink-man-woman")))
    assert [r.url for r in requests] == [f"{API}/topic/17/best-kopi-in-toa-payoh", f"{API}/topic/9/cafe-or-kopitiam",
                                         f"{API}/category/2/eat-drink-man-woman?page=2"]
    assert spider.crawler.stats.get_value("forum/skipped/deleted_topic") == 1


def test_since_and_max_pages():
    spider = make_spider(since="2023-01-01")
    _, requests = split(spider.parse(response("category_2.json", f"{API}/category/2/eat-drink-man-woman")))
    assert [r.url for r in requests] == [f"{API}/topic/17/best-kopi-in-toa-payoh",
                                         f"{API}/category/2/eat-drink-man-woman?page=2"]
    assert spider.crawler.stats.get_value("forum/skipped/thread_before_since") == 1
    limited = make_spider(max_pages=1)
    _, requests = split(limited.parse(response("topic_17.json", f"{API}/topic/17/best-kopi-in-toa-payoh")))
    assert requests == [] and limited.crawler.stats.get_value("forum/skipped/max_pages") == 1


@pytest.mark.parametrize("url, expected", [
    ("https://f.test/", "https://f.test/api/categories"),
    ("https://f.test/categories", "https://f.test/api/categories"),
    ("https://f.test/topic/17/best-kopi/5", "https://f.test/api/topic/17/best-kopi"),
    ("https://f.test/forum/category/2/eat?page=3&sort=x", "https://f.test/forum/api/category/2/eat?page=3"),
    ("https://f.test/users", None),
])
def test_start_urls_map_to_the_api(url, expected):
    assert api_url(url) == expected


def test_bad_start_url_and_bad_json():
    spider = make_spider(start_url="https://f.test/users")

    async def first():
        async for request in spider.start():
            return request
    with pytest.raises(ValueError, match="not a NodeBB topic"):
        asyncio.run(first())
    bad = make_spider()
    assert list(bad.parse(TextResponse(f"{API}/topic/1", body=b"<html>", encoding="utf-8"))) == []
    assert bad.crawler.stats.get_value("forum/errors/bad_json") == 1
    assert list(bad.parse(TextResponse(f"{API}/x", body=b'{"a": 1}', encoding="utf-8"))) == []
    assert bad.crawler.stats.get_value("forum/errors/unknown_page") == 1


def test_content_cleans_under_the_markup_record():
    items, _ = split(make_spider().parse(response("topic_17.json", f"{API}/topic/17/best-kopi-in-toa-payoh")))
    record = HTML.combine(MARKUP)
    second = html_to_text(items[1]["body"], markup=record, mention_placeholder="@user")
    # the quote and the composer's "@user said in [title]:" line before it are gone
    assert second.text.strip().startswith("Block 190 lor") and "said in" not in second.text
    third = html_to_text(items[2]["body"], markup=record, mention_placeholder="")
    assert third.text.strip() == "Can confirm, went there this morning." and third.n_quotes == 1
    first = html_to_text(items[0]["body"], markup=record)
    assert first.text.split()[-1] == "🙂"


def test_recognise_headers_json_and_not_others():
    topic = response("topic_17.json", f"{API}/topic/17/best-kopi", headers={"Content-Type": JSON})
    assert NodebbSpider.recognise(topic) == ["json: NodeBB topic answer (tid/cid/pid, pagination)",
                                             "url: /topic/N/slug"]
    page = TextResponse("http://forum.test/", body=b"<html><body><p>Loading</p></body></html>", encoding="utf-8",
                        headers={"X-Powered-By": "NodeBB", "Content-Type": "text/html"})
    assert NodebbSpider.recognise(page) == ["header: X-Powered-By NodeBB"]
    discourse = TextResponse("http://forum.test/t/17.json", body=fixture_bytes("discourse", "topic_17.json"),
                             encoding="utf-8", headers={"Content-Type": JSON})
    assert NodebbSpider.recognise(discourse) is None


def test_crawl_categories_with_a_429_and_retry_after(tmp_path):
    routes = {
        "/api/categories": [Page("Too Many Requests", "text/plain", 429, {"Retry-After": "1"}),
                            Page(fixture_bytes("nodebb", "categories.json"), JSON)],
        "/api/category/2/eat-drink-man-woman": Page(fixture_bytes("nodebb", "category_2.json"), JSON),
        "/api/topic/17/best-kopi-in-toa-payoh": Page(fixture_bytes("nodebb", "topic_17.json"), JSON),
        "/api/topic/17/best-kopi-in-toa-payoh?page=2": Page(fixture_bytes("nodebb", "topic_17_p2.json"), JSON),
        # category 1, the category's page 2 and topic 9 answer 404
    }
    with FixtureServer(routes) as server:
        run = run_spider("nodebb", {"start_url": server.url("/categories"), "source": "nb"}, tmp_path)
        requested = server.paths()
    assert requested.count("/api/categories") == 2  # 429, then the answer after Retry-After
    assert run.stats["downloader/response_status_count/429"] == 1 and run.stats["kopitiam/retry_after/honoured"] == 1
    assert sorted(i["post_id"] for i in run.items) == ["1201", "1202", "1203", "1210", "1212"]
    assert {i["board"] for i in run.items} == {"Eat, Drink, Man, Woman"} and {i["source"] for i in run.items} == {"nb"}
    assert run.stats["forum/errors/page_failed"] == 3  # the three 404s, counted with their URLs in the log
    assert "/api/topic/9/cafe-or-kopitiam: HTTP 404; what it holds is missing" in run.log


def test_a_failed_topic_page_loses_only_its_own_posts(tmp_path):
    routes = {"/api/topic/17/best-kopi-in-toa-payoh": Page(fixture_bytes("nodebb", "topic_17.json"), JSON),
              "/api/topic/17/best-kopi-in-toa-payoh?page=2": Page("boom", "text/plain", 500)}
    with FixtureServer(routes) as server:
        run = run_spider("nodebb", {"start_url": server.url("/topic/17/best-kopi-in-toa-payoh"),
                                    "source": "nb"}, tmp_path, settings={"RETRY_TIMES": "1"})
        requested = server.paths()
    assert requested.count("/api/topic/17/best-kopi-in-toa-payoh?page=2") == 2  # tried, retried
    assert sorted(i["post_id"] for i in run.items) == ["1201", "1202", "1203"]  # page 1's posts are kept
    assert run.stats["forum/errors/page_failed"] == 1
    assert "/api/topic/17/best-kopi-in-toa-payoh?page=2: HTTP 500" in run.log
