"""Spider ``flarum`` (crawler/spiders/flarum.py): the JSON:API on fixtures built from Flarum's tags,
discussions, discussion and posts documents (PostMention quotes, nested quotes, a reply mention outside
any quote, an event post, a hidden post, emoji), the clean stage under its markup record, and a real
crawl on 127.0.0.1 answered 429 + Retry-After once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from contracts.markup import HTML
from crawler.items import PostItem
from crawler.spiders.flarum import MARKUP, FlarumSpider, api_url
from pipeline.htmltext import html_to_text
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

API = "http://forum.test/api"
JSON = "application/vnd.api+json"


def posts_url(offset: int, base: str = API) -> str:
    return f"{base}/posts?" + urlencode({"filter[discussion]": 17, "page[offset]": offset, "page[limit]": 20,
                                         "sort": "number"})


def make_spider(**args):
    args.setdefault("start_url", "http://forum.test/tags")
    return FlarumSpider.from_crawler(get_crawler(FlarumSpider), **args)


def response(name: str, url: str, meta: dict | None = None) -> TextResponse:
    return TextResponse(url, body=fixture_bytes("flarum", name), encoding="utf-8", headers={"Content-Type": JSON},
                        request=Request(url, meta=meta or {}))


def split(results):
    results = list(results)
    return [r for r in results if isinstance(r, PostItem)], [r for r in results if isinstance(r, Request)]


def test_discussion_asks_for_its_posts_page_by_page():
    spider = make_spider()
    _, requests = split(spider.parse(response("discussion_17.json", f"{API}/discussions/17")))
    assert [r.url for r in requests] == [posts_url(0), posts_url(20)]  # 23 post ids: two pages of 20
    assert requests[0].meta == {"board": "Eat, Drink, Man, Woman", "title": "Best kopi in Toa Payoh?",
                                "slug": "17-best-kopi-in-toa-payoh"}
    limited = make_spider(max_pages=1)
    _, requests = split(limited.parse(response("discussion_17.json", f"{API}/discussions/17")))
    assert len(requests) == 1 and limited.crawler.stats.get_value("forum/skipped/max_pages") == 1


def test_posts_pages():
    spider = make_spider()
    meta = {"board": "Eat, Drink, Man, Woman", "title": "Best kopi in Toa Payoh?"}
    items, requests = split(spider.parse(response("posts_17.json", posts_url(0), meta)))
    assert requests == []
    assert [(i["post_id"], i["author"], i["position"], i["page"]) for i in items] == [
        ("1201", "kopi_king", 0, 1), ("1202", "ah_beng88", 1, 1), ("1203", "makcik_lim", 3, 1)]  # number 3: an event
    assert items[0]["posted_at"] == datetime(2023, 3, 2, 9, 15, tzinfo=UTC)
    # the quote's own PostMention; the nested quote's is the quoted post's, the reply mention no quote
    assert [i["quoted_post_ids"] for i in items] == [[], ["1201"], ["1202"]]
    assert {(i["thread_id"], i["thread_title"], i["board"]) for i in items} == {
        ("17", "Best kopi in Toa Payoh?", "Eat, Drink, Man, Woman")}
    assert items[2]["url"] == "http://forum.test/d/17/4"
    items, _ = split(spider.parse(response("posts_17_p2.json", posts_url(20), meta)))
    assert [(i["post_id"], i["position"], i["page"]) for i in items] == [("1210", 20, 2), ("1212", 22, 2)]
    stats = spider.crawler.stats.get_stats()
    assert stats["forum/skipped/event_post"] == 1 and stats["forum/skipped/hidden"] == 1


def test_tags_and_a_listing_with_since():
    spider = make_spider(since="2023-01-01")
    _, requests = split(spider.parse(response("tags.json", f"{API}/tags")))
    assert [(r.url, r.meta["board"]) for r in requests] == [
        (f"{API}/discussions?filter%5Btag%5D=eat-drink-man-woman", "Eat, Drink, Man, Woman"),
        (f"{API}/discussions?filter%5Btag%5D=kopi-talk", "Kopi Talk")]
    _, requests = split(spider.parse(response("discussions_eat.json", requests[0].url, requests[0].meta)))
    assert [r.url for r in requests] == [f"{API}/discussions/17",  # links.next: as the document wrote it
                                         "https://forum.test/api/discussions?filter%5Btag%5D=eat-drink-man-woman"
                                         "&page%5Boffset%5D=20"]
    assert requests[0].meta["board"] == "Eat, Drink, Man, Woman"
    assert spider.crawler.stats.get_value("forum/skipped/thread_before_since") == 1


@pytest.mark.parametrize("url, expected", [
    ("https://f.test/", "https://f.test/api/discussions"),
    ("https://f.test/tags", "https://f.test/api/tags"),
    ("https://f.test/t/kopi-talk", "https://f.test/api/discussions?filter%5Btag%5D=kopi-talk"),
    ("https://f.test/d/17-best-kopi/5", "https://f.test/api/discussions/17"),
    ("https://f.test/forum/d/17", "https://f.test/forum/api/discussions/17"),
    ("https://f.test/u/kopi_king", None),
])
def test_start_urls_map_to_the_api(url, expected):
    assert api_url(url) == expected


def test_bad_start_url_and_documents():
    spider = make_spider(start_url="https://f.test/u/kopi_king")

    async def first():
        async for request in spider.start():
            return request
    with pytest.raises(ValueError, match="not a Flarum discussion"):
        asyncio.run(first())
    bad = make_spider()
    assert list(bad.parse(TextResponse(f"{API}/x", body=b'{"errors": []}', encoding="utf-8"))) == []
    assert list(bad.parse(TextResponse(f"{API}/x", body=b"[1]", encoding="utf-8"))) == []
    stats = bad.crawler.stats.get_stats()
    assert stats["forum/errors/unknown_page"] == 1 and stats["forum/errors/bad_json"] == 1


def test_content_cleans_under_the_markup_record():
    items, _ = split(make_spider().parse(response("posts_17.json", posts_url(0))))
    record = HTML.combine(MARKUP)
    second = html_to_text(items[1]["body"], markup=record)
    assert second.text.strip().startswith("Block 190 lor") and "Anyone knows" not in second.text
    third = html_to_text(items[2]["body"], markup=record, mention_placeholder="@user")
    assert third.text.strip() == "Can confirm, went there this morning. @user thanks!" and third.n_quotes == 1
    assert html_to_text(items[0]["body"], markup=record).text.split()[-1] == "🙂"


def test_recognise_documents_boot_page_and_not_others():
    assert FlarumSpider.recognise(response("posts_17.json", posts_url(0))) == [
        "json: JSON:API posts", "url: /api/discussions, /api/posts, /api/tags"]
    assert FlarumSpider.recognise(response("discussion_17.json", "http://forum.test/d/17")) == [
        "json: JSON:API discussions", "url: /d/N-slug"]
    boot = TextResponse("http://forum.test/", encoding="utf-8", headers={"Content-Type": "text/html"},
                        body=b'<html><body><div id="flarum-loading">Loading...</div><script>flarum.core.app.load({})'
                             b'</script></body></html>')
    assert FlarumSpider.recognise(boot) == ["html: #flarum-loading", "text: flarum.core"]
    discourse = TextResponse("http://forum.test/t/17.json", body=fixture_bytes("discourse", "topic_17.json"),
                             encoding="utf-8", headers={"Content-Type": "application/json"})
    assert FlarumSpider.recognise(discourse) is None


def test_crawl_a_tag_with_a_429_and_retry_after(tmp_path):
    with FixtureServer() as server:
        page = server.url("/api/posts?")[len(server.url("")):]
        server.routes.update({
            "/api/discussions?filter%5Btag%5D=eat-drink-man-woman": [
                Page("Too Many Requests", "text/plain", 429, {"Retry-After": "1"}),
                Page(fixture_bytes("flarum", "discussions_eat.json"), JSON)],
            "/api/discussions/17": Page(fixture_bytes("flarum", "discussion_17.json"), JSON),
            page + posts_url(0).split("?", 1)[1]: Page(fixture_bytes("flarum", "posts_17.json"), JSON),
            page + posts_url(20).split("?", 1)[1]: Page(fixture_bytes("flarum", "posts_17_p2.json"), JSON),
        })  # discussion 9 and the listing's next page (absolute fixture links: offsite) are not served
        run = run_spider("flarum", {"start_url": server.url("/t/eat-drink-man-woman"), "source": "fl"}, tmp_path)
        requested = server.paths()
    assert requested.count("/api/discussions?filter%5Btag%5D=eat-drink-man-woman") == 2
    assert run.stats["downloader/response_status_count/429"] == 1
    assert sorted(i["post_id"] for i in run.items) == ["1201", "1202", "1203", "1210", "1212"]
    assert {i["board"] for i in run.items} == {"Eat, Drink, Man, Woman"} and {i["source"] for i in run.items} == {"fl"}
