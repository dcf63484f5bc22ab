"""Spider ``forum`` (crawler/spiders/anyforum.py): every engine's fixture pages are recognised as that
engine by its ``recognise`` hook (engines found through Scrapy's SpiderLoader, so a new engine's
fixtures join this test by themselves); a page no engine recognises is an error naming what it
shows; ``scrapy crawl forum`` on the demo forum in every engine it renders continues as the right
spider, and a resumed job continues as the engine it recognised."""

from __future__ import annotations

import logging

import pytest
from scrapy.http import HtmlResponse, Request
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader
from scrapy.utils.test import get_crawler

from crawler import recognise as rx
from crawler import settings as project_settings
from crawler.commands.checkargs import check
from crawler.spiders.anyforum import AnyForumSpider
from crawler.spiders.forum import ForumSpider
from tests.helpers import mutations
from tests.helpers.spider_server import FixtureServer, Page, run_spider

DEMO_STARTS = {  # demo engine -> (start path, the spider the forum spider must become)
    "xenforo": ("/", "xenforo"), "xenforo1": ("/", "xenforo"), "vbulletin": ("/forumdisplay.php?f=4", "vbulletin"),
    "vbulletin5": ("/forum", "vbulletin"), "phpbb": ("/index.php", "phpbb"), "discourse": ("/categories", "discourse"),
}


@pytest.mark.parametrize("case", mutations.cases(), ids=lambda c: c.name)
def test_every_fixture_is_recognised_as_its_engine(case):
    response = mutations.response_for(case, case.path.read_bytes(), None)
    found, failed = rx.recognise_all(response, rx.engine_spiders())
    assert failed == {} and rx.best_engine(found) == case.spider.name, found


def test_engines_are_found_through_the_spider_loader():
    names = [c.name for c in rx.engine_spiders()]
    assert {"xenforo", "vbulletin", "phpbb", "discourse"} <= set(names) and "forum" not in names
    assert all(issubclass(c, ForumSpider) for c in rx.engine_spiders())


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
    bad = check(loader, "forum", {"start_url": "http://f.test/", "engine": "smf"}, True)
    assert bad["error"] == "value" and "engine='smf' is not a forum engine spider" in bad["message"]
    assert check(loader, "forum", {"start_url": "http://f.test/", "max_thread": "1"}, False)["error"] == "arguments"


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(DEMO_STARTS))
def test_crawl_forum_on_every_demo_engine(engine, tmp_path):
    site = pytest.importorskip("demoforum.site")
    from demoforum.discourse import username as discourse_username
    from demoforum.server import DemoForumServer
    forum = site.DemoForum(plays=["julius-caesar"], threads_per_page=5, posts_per_page=15, engine=engine)
    start, spider = DEMO_STARTS[engine]
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
        assert item["author"] == (post.author if engine != "discourse" else discourse_username(post))
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
    forum = site.DemoForum(plays=["julius-caesar"], threads_per_page=5, posts_per_page=15, engine="xenforo1")
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


def test_refused_with_a_shared_frontier():
    crawler = get_crawler(AnyForumSpider, settings_dict={"KOPITIAM_FRONTIER": "redis://127.0.0.1:9/0"})
    with pytest.raises(ValueError, match="cannot run with a shared frontier"):
        AnyForumSpider.from_crawler(crawler, start_url="http://f.test/")


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
    assert failed == {} and rx.best_engine(found) == engine, found


def test_crawl_metrics_name_the_recognised_engine():
    from crawler.extensions import summarize
    assert summarize({"forum/recognised/vbulletin": 1, "item_scraped_count": 3})["engine"] == "vbulletin"
    assert "engine" not in summarize({"item_scraped_count": 3})  # engine spiders' metrics as before
