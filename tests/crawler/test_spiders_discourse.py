"""Spider ``discourse`` (crawler/spiders/discourse.py): Discourse's JSON API on fixtures and in a real crawl.

Fixtures are built from Discourse's topic, posts and topic-list answers (cooked HTML with quotes by post
number, oneboxes, emoji, mentions, a small-action post, a topic answered from a later post); the real crawl
on 127.0.0.1 meets a 429 + Retry-After."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.items import PostItem
from crawler.spiders.discourse import MARKUP, DiscourseSpider, json_url
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider


def make_spider(**args):
    args.setdefault("start_url", "http://forum.test/c/kopitiam/5")
    return DiscourseSpider.from_crawler(get_crawler(DiscourseSpider), **args)


def response(name: str, url: str, meta: dict | None = None) -> TextResponse:
    return TextResponse(url, body=fixture_bytes("discourse", name), encoding="utf-8",
                        request=Request(url, meta=meta or {}))


def split(results):
    results = list(results)
    return ([r for r in results if isinstance(r, PostItem)], [r for r in results if isinstance(r, Request)])


def test_topic_quotes_by_number_oneboxes_and_small_actions():
    spider = make_spider()
    items, requests = split(spider.parse(response("topic_17.json", "http://forum.test/t/17.json")))
    assert requests == []
    assert [i["post_id"] for i in items] == ["501", "502", "507"]  # 503 is "closed the topic"
    assert [i["position"] for i in items] == [0, 1, 4]  # post_number - 1 (number 4 was deleted)
    assert [i["author"] for i in items] == ["kopi_king", "ah_beng88", "makcik_lim"]
    assert items[0]["posted_at"] == datetime(2023, 3, 2, 9, 15, 0, 123000, tzinfo=UTC)
    # data-post is a number in the topic: mapped to ids; the nested quote is the quoted post's own;
    # the quote of topic 9 cannot be mapped without fetching it
    assert [i["quoted_post_ids"] for i in items] == [[], ["501"], ["502"]]
    assert items[2]["url"] == "http://forum.test/t/best-kopi-in-toa-payoh/17/5"
    assert {i["thread_title"] for i in items} == {"Best kopi in Toa Payoh?"} and {i["page"] for i in items} == {1}
    assert items[0]["board"] == "category 5"  # a topic start URL: the category's id only
    stats = spider.crawler.stats.get_stats()
    assert stats["forum/skipped/small_action"] == 1 and stats["forum/oneboxes"] == 1
    assert stats["forum/quotes/other_topic"] == 1


def test_cooked_html_cleans_under_the_markup_record():
    items, _ = split(make_spider().parse(response("topic_17.json", "http://forum.test/t/17.json")))
    first = html_to_text(items[0]["body"], markup=HTML.combine(MARKUP))
    assert "Ten kopitiams" not in first.text and first.n_quotes == 1  # the onebox, counted as a quote
    assert ":coffee:" in first.text
    second = html_to_text(items[1]["body"], markup=HTML.combine(MARKUP), mention_placeholder="@user")
    assert second.text.count("brewed in a sock") == 0 and "@user go early" in second.text
    third = html_to_text(items[2]["body"], markup=HTML.combine(MARKUP))
    assert third.text.strip() == "Can confirm, went there yesterday." and third.n_quotes == 2
    assert third.quoted_post_ids == []  # numbers are not ids: only the spider maps them


def test_long_topic_answered_from_a_later_post_fetches_the_rest_in_a_chunk():
    spider = make_spider()
    items, requests = split(spider.parse(response("topic_42.json", "http://forum.test/t/42.json")))
    assert items == [] and len(requests) == 1  # nothing yielded before the topic is complete
    ids = [str(600 + n) for n in range(1, 6)]
    assert requests[0].url == "http://forum.test/t/42/posts.json?" + urlencode([("post_ids[]", i) for i in ids])
    chunk = response("topic_42_posts.json", requests[0].url, requests[0].meta)
    items, requests = split(spider.parse_chunk(chunk))
    assert requests == [] and [i["position"] for i in items] == list(range(25))
    assert [i["page"] for i in items] == [1] * 20 + [2] * 5
    by_id = {i["post_id"]: i for i in items}
    assert by_id["610"]["quoted_post_ids"] == ["602"]  # post 2 arrived in the later chunk


def test_max_pages_limits_the_stream():
    spider = make_spider(max_pages=1)
    _, requests = split(spider.parse(response("topic_42.json", "http://forum.test/t/42.json")))
    assert len(requests) == 1 and requests[0].url.count("post_ids") == 5  # the first 20 of the stream
    assert spider.crawler.stats.get_value("forum/skipped/max_pages") == 1


def test_listing_since_and_more_topics_url():
    spider = make_spider(since="2023-03-15")
    _, requests = split(spider.parse(response("category_5.json", "http://forum.test/c/kopitiam/5.json")))
    assert [r.url for r in requests] == ["http://forum.test/t/42.json", "http://forum.test/c/kopitiam/5.json?page=1"]
    assert requests[0].meta["board"] == "kopitiam"
    assert spider.crawler.stats.get_value("forum/skipped/thread_before_since") == 1
    _, requests = split(spider.parse(response("category_5_p1.json", "http://forum.test/c/kopitiam/5.json?page=1",
                                              {"board": "kopitiam"})))
    assert requests == []


@pytest.mark.parametrize("url, expected", [
    ("http://f.test/latest?page=1", "http://f.test/latest.json?page=1"),
    ("http://f.test/", "http://f.test/latest.json"),
    ("http://f.test/c/kopitiam/5", "http://f.test/c/kopitiam/5.json"),
    ("http://f.test/t/17.json", "http://f.test/t/17.json"),
])
def test_json_url(url, expected):
    assert json_url(url) == expected


def test_start_urls_and_errors():
    assert make_spider().thread_id_from_url("http://f.test/t/best-kopi/17/5") == "17"
    assert make_spider().thread_id_from_url("http://f.test/t/17") == "17"
    spider = make_spider(start_url="http://f.test/u/kopi_king")

    async def first():
        async for request in spider.start():
            return request
    with pytest.raises(ValueError, match="not a Discourse topic"):
        asyncio.run(first())
    bad = make_spider()
    assert list(bad.parse(TextResponse("http://f.test/t/1.json", body=b"<html>", encoding="utf-8"))) == []
    assert bad.crawler.stats.get_value("forum/errors/bad_json") == 1


@pytest.mark.slow
def test_crawl_category_chunks_and_retry_after(tmp_path):
    chunk = "/t/42/posts.json?" + urlencode([("post_ids[]", str(600 + n)) for n in range(1, 6)])
    routes = {
        "/c/kopitiam/5.json": [Page("rate limited", "text/plain", 429, {"Retry-After": "1"}),
                               Page(fixture_bytes("discourse", "category_5.json"), "application/json")],
        "/c/kopitiam/5.json?page=1": Page(fixture_bytes("discourse", "category_5_p1.json"), "application/json"),
        "/t/17.json": Page(fixture_bytes("discourse", "topic_17.json"), "application/json"),
        "/t/42.json": Page(fixture_bytes("discourse", "topic_42.json"), "application/json"),
        chunk: Page(fixture_bytes("discourse", "topic_42_posts.json"), "application/json"),
        # /t/3.json (listed on page 2) answers 404
    }
    with FixtureServer(routes) as server:
        run = run_spider("discourse", {"start_url": server.url("/c/kopitiam/5"), "source": "dc"}, tmp_path)
        requested = server.paths()
    assert requested.count("/c/kopitiam/5.json") == 2  # 429, then the answer after Retry-After
    assert sorted(set(requested)) == sorted(list(routes) + ["/t/3.json"])
    assert len(run.items) == 3 + 25 and {i["board"] for i in run.items} == {"kopitiam"}
    assert {i["source"] for i in run.items} == {"dc"}
    assert run.stats["downloader/response_status_count/429"] == 1


def test_start_urls_become_json_requests():
    spider = make_spider(start_url="http://f.test/t/best-kopi/17/5,http://f.test/t/9,"
                                   "http://f.test/latest?page=2,http://f.test/categories,http://f.test/c/kopitiam/5")

    async def urls():
        return [r.url async for r in spider.start()]
    assert asyncio.run(urls()) == ["http://f.test/t/17.json", "http://f.test/t/9.json", "http://f.test/latest.json?page=2",
                                   "http://f.test/categories.json", "http://f.test/c/kopitiam/5.json"]
