"""A Discourse topic whose ``posts.json`` chunks fail keeps the posts it has: yielded, with quotes
mapped where the quoted post's number is known (the rest counted as ``quotes/unmapped``), and the
failure counted (``forum/errors/chunk_failed``, the chunk's URL in the log; its posts in
``errors/post_missing``). In-process on the demo forum's JSON, and in a real crawl of the demo
Discourse with the chunks answering 404."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import Request, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from crawler.items import PostItem
from crawler.spiders.discourse import DiscourseSpider
from tests.helpers.spider_server import run_spider

PER_PAGE = 10


@pytest.fixture(scope="module")
def forum():
    site = pytest.importorskip("demoforum.site")
    return site.DemoForum(plays=["julius-caesar"], threads_per_page=5, posts_per_page=PER_PAGE, engine="discourse")


def long_topic(forum):
    """A topic of three chunks or more, with a post in a later chunk quoting one in the second."""
    for thread in forum.crawlable_threads():
        if len(thread.posts) > 3 * PER_PAGE and any(
                p.position >= 2 * PER_PAGE and forum.posts[q].position // PER_PAGE == 1
                for p in thread.posts for q in p.quoted_post_ids[:1]):
            return thread
    raise AssertionError("no topic with a quote into its second chunk")


def answer(forum, url: str, meta: dict | None = None) -> TextResponse:
    from demoforum.discourse import route_json
    parts = urlsplit(url)
    data = route_json(forum, parts.path, parse_qs(parts.query), 0)
    return TextResponse(url, body=json.dumps(data).encode(), encoding="utf-8", request=Request(url, meta=meta or {}))


def test_a_failed_chunk_costs_only_its_own_posts(forum):
    thread = long_topic(forum)
    spider = DiscourseSpider.from_crawler(get_crawler(DiscourseSpider), start_url="http://d.test/categories")
    out = list(spider.parse(answer(forum, f"http://d.test/t/{thread.thread_id}.json")))
    assert len(out) == 1 and isinstance(out[0], Request) and out[0].errback == spider.chunk_failed
    failed = out[0]  # the second chunk: answered 404 after the retries
    error = HttpError(TextResponse(failed.url, status=404, body=b"{}", request=failed), "Ignoring non-200 response")
    failure = Failure(error)
    failure.request = failed
    out = list(spider.chunk_failed(failure))
    assert len(out) == 1 and isinstance(out[0], Request)  # the topic goes on with its third chunk
    items = []
    while out and isinstance(out[0], Request):
        nxt = out[0]
        out = list(spider.parse_chunk(answer(forum, nxt.url, nxt.meta)))
        items += [o for o in out if isinstance(o, PostItem)]
    lost = {str(p.post_id) for p in thread.posts[PER_PAGE:2 * PER_PAGE]}
    assert [i["post_id"] for i in items] == [str(p.post_id) for p in thread.posts if str(p.post_id) not in lost]
    stats = spider.crawler.stats
    assert stats.get_value("forum/errors/chunk_failed") == 1
    assert stats.get_value("forum/errors/post_missing") == PER_PAGE
    unmapped = 0
    for item in items:
        post = forum.posts[int(item["post_id"])]
        quoted = [str(q) for q in post.quoted_post_ids]
        if quoted and quoted[0] in lost:
            unmapped += 1
            assert item["quoted_post_ids"] == []  # the quoted post's number is unknown: counted, not guessed
        else:
            assert item["quoted_post_ids"] == quoted
    assert unmapped >= 1 and stats.get_value("forum/quotes/unmapped") >= unmapped


@pytest.mark.slow
def test_crawl_keeps_the_first_chunk_when_the_others_fail(forum, tmp_path):
    from demoforum.server import DemoForumServer
    thread = long_topic(forum)
    gone = f"/t/{thread.thread_id}/posts.json"
    with DemoForumServer(forum, gone=[gone]) as server:
        run = run_spider("forum", {"start_url": f"{server.base_url}/t/{thread.slug}/{thread.thread_id}"}, tmp_path)
    assert [i["post_id"] for i in run.items] == [str(p.post_id) for p in thread.posts[:PER_PAGE]]
    chunks = -(-(len(thread.posts) - PER_PAGE) // PER_PAGE)
    assert run.stats["forum/errors/chunk_failed"] == chunks
    assert run.stats["forum/errors/post_missing"] == len(thread.posts) - PER_PAGE
    assert sum(1 for line in run.log.splitlines() if f"{gone}?post_ids" in line and "HTTP 404" in line) == chunks
