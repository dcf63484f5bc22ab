"""Resumable crawls (pipeline/crawlstate.py, Scrapy JOBDIR): an interrupted crawl stage continues next run.

Together the runs fetch every page once and keep every post once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from pipeline.crawlstate import CrawlJob, merge_posts, thread_index
from tests.helpers.spider_server import FixtureServer, Page, run_crawl_stage, vb_forum


class SlowPage(Page):
    """A page that tells the test it was requested, then answers slowly (the crawl is mid-way)."""

    def __init__(self, page: Page, requested: threading.Event, delay: float) -> None:
        super().__init__(page.body, page.content_type)
        self.requested, self.delay = requested, delay

    def payload(self) -> bytes:
        self.requested.set()
        time.sleep(self.delay)
        return super().payload()


@pytest.mark.slow
def test_interrupted_crawl_resumes_without_duplicates_or_gaps(tmp_path):
    routes, all_ids = vb_forum(threads=6, pages=2, per_page=4)
    requested = threading.Event()
    slow_path = "/showthread.php?t=101&page=2"
    routes[slow_path] = SlowPage(routes[slow_path], requested, delay=1.0)
    with FixtureServer(routes) as server:
        source = {"spider": "vbulletin", "throttle": False,
                  "args": {"start_url": server.url("/forumdisplay.php?f=1")},
                  "settings": {"CONCURRENT_REQUESTS": 1}}  # one page at a time: a well-defined middle
        first = run_crawl_stage({"vb": source}, tmp_path, background=True)
        assert requested.wait(60), "the crawl never reached the slow page"
        first.send_signal(signal.SIGTERM)  # like `kill PID` (Ctrl-C is handled the same way)
        out, _ = first.communicate(timeout=120)
        first_paths = server.paths()
        assert first.returncode != 0 and "run the stage again to resume" in out, out[-3000:]
        job = tmp_path / "jobs" / "vb"
        assert (job / "scrapy").is_dir() and list((job / "parts").glob("run-*.parquet"))
        assert not (tmp_path / "raw" / "vb.parquet").exists()  # no half output

        second = run_crawl_stage({"vb": source}, tmp_path)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-4000:]
        assert "resuming the interrupted crawl" in second.stderr
        second_paths = server.paths()[len(first_paths):]
    assert slow_path in first_paths and len(first_paths) < len(routes)  # really stopped mid-way
    assert second_paths and slow_path not in second_paths
    assert sorted(first_paths + second_paths) == sorted(routes)  # every page fetched exactly once
    table = pq.read_table(tmp_path / "raw" / "vb.parquet")
    assert table.schema.equals(RAW_SCHEMA)
    ids = table["post_id"].to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) == all_ids  # no duplicates, no gaps
    metrics = json.loads((tmp_path / "metrics" / "vb.json").read_text())
    assert metrics["raw_rows"] == len(all_ids) and metrics["run_rows"] < len(all_ids)
    assert not job.exists()  # a finished, non-incremental crawl leaves no state behind


def test_killed_run_discards_untrusted_job_state(tmp_path):
    job = CrawlJob(tmp_path, "s", fingerprint="a")
    job.begin()
    (job.jobdir / "requests.seen").parent.mkdir(parents=True)
    (job.jobdir / "requests.seen").write_text("fingerprints of pages whose posts were lost\n")
    # the process died here: RUNNING is still there, so the next run must not trust requests.seen
    settings = CrawlJob(tmp_path, "s", fingerprint="a").begin()
    assert not job.jobdir.exists() and settings["JOBDIR"] == str(job.jobdir)


def test_changed_arguments_start_over(tmp_path):
    job = CrawlJob(tmp_path, "s", incremental=True, fingerprint="a")
    job.begin()
    job.part_path().write_bytes(b"x")
    job.interrupted()
    CrawlJob(tmp_path, "s", incremental=True, fingerprint="b").begin()
    assert not list(job.parts.glob("*"))


def test_merge_keeps_the_newest_copy_and_index_marks_gaps():
    def rows(ids, positions, body):
        return [{"source": "s", "url": f"u{i}", "thread_id": "t1", "position": p, "post_id": str(i),
                 "body": body, "body_format": "html", "fetched_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                 "quoted_post_ids": []}
                for i, p in zip(ids, positions)]
    old = pa.Table.from_pylist(rows([1, 2], [0, 1], "old"), schema=RAW_SCHEMA)
    new = pa.Table.from_pylist(rows([2, 3], [1, 2], "new"), schema=RAW_SCHEMA)
    merged = merge_posts([old, new])
    assert merged["post_id"].to_pylist() == ["1", "2", "3"]
    assert merged["body"].to_pylist() == ["old", "new", "new"]  # the newest fetch of post 2 wins
    assert thread_index(merged)["t1"] == {"last_post_id": "3", "last_page": None, "last_posted_at": None,
                                          "posts": 3, "complete": True}
    gap = pa.Table.from_pylist(rows([1, 3], [0, 2], "x"), schema=RAW_SCHEMA)
    assert thread_index(gap)["t1"]["complete"] is False  # a missing page: never skipped


def test_second_crawl_of_a_running_source_is_refused(tmp_path):
    job = CrawlJob(tmp_path, "s", fingerprint="a")
    job.begin()
    job.running.write_text(str(os.getpid()))  # a live process holds the source
    with pytest.raises(RuntimeError, match=f"still running \\(pid {os.getpid()}"):
        CrawlJob(tmp_path, "s", fingerprint="a").begin()
