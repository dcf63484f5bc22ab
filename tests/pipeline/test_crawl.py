"""Stage crawl (pipeline/crawl.py): one real crawl of the demo forum in a subprocess, and its params errors."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from demoforum.server import DemoForumServer
from demoforum.site import DemoForum
from pipeline.common import ParamsError
from pipeline.crawl import crawl_source
from tests.helpers.params import repo_params, write_params

PLAY = "a-midsummer-night-s-dream"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, repo_root, python_exe):
    """Crawl a small demo forum (3 board pages, 9 threads, 500 posts) through `python -m pipeline.crawl`,
    with one page answering 503 once and one page of broken markup."""
    tmp = tmp_path_factory.mktemp("crawl")
    forum = DemoForum(plays=[PLAY], threads_per_page=4)
    threads = [t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 2]
    flaky, broken = threads[0].path + "page-2", threads[1].path + "page-2"
    with DemoForumServer(forum, fail_once=[flaky], broken=[broken]) as server:
        board = forum.boards[0]
        write_params(tmp / "params.yaml",
                     {"crawl": {"sources": ["t"], "log_level": "INFO", "jobs_dir": str(tmp / "jobs")}},
                     sources={"t": {"spider": "xenforo", "throttle": False,
                                    "args": {"start_url": server.base_url + board.path}}})
        done = subprocess.run([python_exe, "-m", "pipeline.crawl", "--params", str(tmp / "params.yaml"),
                               "--raw-dir", str(tmp / "raw"), "--metrics-dir", str(tmp / "metrics")],
                              cwd=repo_root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        requests = list(server.requests)
    table = pq.read_table(tmp / "raw" / "t.parquet")
    metrics = json.loads((tmp / "metrics" / "t.json").read_text())
    return forum, table, metrics, requests, flaky, broken, done.stderr


@pytest.mark.slow
def test_every_post_exactly_once_with_correct_fields(crawled):
    forum, table, metrics, _, _, broken, _ = crawled
    rows = table.to_pylist()
    ids = [r["post_id"] for r in rows]
    assert len(ids) == len(set(ids))
    broken_thread = next(t for t in forum.crawlable_threads() if broken.startswith(t.path))
    lost = {str(p.post_id) for p in broken_thread.posts[20:40]}  # the broken page's posts
    expected = {str(p.post_id): (t, p) for t in forum.crawlable_threads() for p in t.posts}
    assert set(ids) == set(expected) - lost
    for row in rows:
        thread, post = expected[row["post_id"]]
        page = post.position // 20 + 1
        assert row["source"] == "t" and row["body_format"] == "html"
        assert (row["thread_id"], row["thread_title"], row["board"]) == (str(thread.thread_id), thread.title,
                                                                         "Comedies")
        assert (row["author"], row["position"], row["page"]) == (post.author, post.position, page)
        assert row["posted_at"] == datetime.fromtimestamp(post.epoch, tz=timezone.utc)
        assert row["quoted_post_ids"] == [str(q) for q in post.quoted_post_ids]
        assert row["url"].endswith(f"{thread.path}post-{post.post_id}")
        assert ("message-signature" in row["body"]) == (post.signature is not None)
        assert row["fetched_at"] is not None
    assert metrics["raw_rows"] == len(rows) == metrics["posts"]


@pytest.mark.slow
def test_pagination_robots_retry_and_broken_page(crawled):
    forum, table, metrics, requests, flaky, broken, _ = crawled
    board_pages = forum.board_pages(forum.boards[0])
    assert board_pages == 3 and metrics["pages_by_kind"]["board"] == board_pages
    assert metrics["threads"] == len(forum.crawlable_threads()) + 1  # + the robots-blocked sticky
    assert metrics["pages_by_kind"]["thread"] == sum(forum.thread_pages(t) for t in forum.crawlable_threads())
    # robots.txt: the backstage thread was found on the board but never requested.
    assert "/robots.txt" in requests
    assert not any(r.startswith("/threads/backstage-") for r in requests)
    assert metrics["robots_forbidden"] == 1
    # 503 (Retry-After: 1) then 200: retried once, its posts kept.
    assert requests.count(flaky) == 2 and metrics["retries"] == 1 and metrics["retry_after_honoured"] == 1
    # pages: what the spider fetched, by kind; robots.txt apart (both answered 200)
    assert metrics["pages"] == sum(metrics["pages_by_kind"].values()) and metrics["robots_txt"] == 1
    assert metrics["http_status"] == {"200": metrics["pages"] + metrics["robots_txt"], "503": 1}
    flaky_ids = {str(p.post_id) for t in forum.crawlable_threads() if flaky.startswith(t.path) for p in t.posts[20:40]}
    assert flaky_ids <= set(table.column("post_id").to_pylist())
    # Broken markup: logged and counted, the crawl went on to the end.
    assert metrics["errors"] == {"post_without_id": 1} and metrics["errors_total"] == 1
    assert metrics["finish_reason"] == "finished"
    assert {"bytes", "seconds", "pages", "posts", "pages_per_s", "posts_per_s"} <= set(metrics)


@pytest.mark.slow
def test_raw_schema_on_disk(crawled):
    assert crawled[1].schema.equals(RAW_SCHEMA)


def params_with(entry: dict) -> dict:
    return repo_params({"crawl": {"sources": ["bad"]}}, sources={"bad": entry})


@pytest.mark.parametrize("entry, message", [
    ({"spider": "xenfrogo", "args": {"start_url": "http://127.0.0.1:9/"}},
     r"sources\.bad\.spider: unknown spider 'xenfrogo'; available: .*xenforo"),
    ({"spider": "xenforo", "args": {"start_url": "http://127.0.0.1:9/", "max_thread": 5}},
     r"sources\.bad\.args: unknown argument\(s\) max_thread for spider 'xenforo'"),
    ({"spider": "xenforo", "start_url": "http://127.0.0.1:9/"}, r"sources\.bad: unknown key\(s\) start_url"),
    ({"args": {}}, r"sources\.bad: name exactly one of"),
    ({"spider": "xenforo", "demo_forum": {"genre": ["x"]}}, r"sources\.bad\.demo_forum: unknown key\(s\) genre"),
])
def test_bad_source_entries_are_named(tmp_path, entry, message):
    with pytest.raises(ParamsError, match=message):
        crawl_source("bad", params_with(entry), raw_dir=tmp_path, metrics_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_source_and_crawl_key(tmp_path):
    with pytest.raises(ParamsError, match=r"no source 'nope' under 'sources'; known: bad"):
        crawl_source("nope", params_with({"spider": "xenforo"}), raw_dir=tmp_path, metrics_dir=tmp_path)
    params = repo_params({"crawl": {"user_agnet": "x"}}, sources={"bad": {"spider": "xenforo"}})
    with pytest.raises(ParamsError, match=r"crawl\.user_agnet"):
        crawl_source("bad", params, raw_dir=tmp_path, metrics_dir=tmp_path)
