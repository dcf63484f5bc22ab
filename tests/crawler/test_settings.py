"""The Scrapy project from the command line at the repository root (scrapy.cfg, crawler/settings.py)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from demoforum.server import DemoForumServer
from demoforum.site import DemoForum

pytestmark = pytest.mark.slow

PLAY = "a-midsummer-night-s-dream"


def test_scrapy_crawl_cli_writes_json_lines(tmp_path, repo_root, python_exe):
    """`scrapy crawl xenforo -a start_url=<thread> -O out.jsonl` at the repo root (docs/crawl.md's use)."""
    forum = DemoForum(plays=[PLAY])
    thread = next(t for t in forum.crawlable_threads() if forum.thread_pages(t) >= 2)
    with DemoForumServer(forum) as server:
        done = subprocess.run([python_exe, "-m", "scrapy", "crawl", "xenforo", "-a",
                               f"start_url={server.base_url}{thread.path}", "-s", "AUTOTHROTTLE_ENABLED=False",
                               "-s", "DOWNLOAD_DELAY=0", "-O", str(tmp_path / "out.jsonl")],
                              cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["position"] for r in rows) == list(range(len(thread.posts)))
    first = min(rows, key=lambda r: r["position"])
    assert first["posted_at"] == datetime.fromtimestamp(thread.posts[0].epoch, tz=timezone.utc).isoformat()
    assert first["source"] == "xenforo" and first["thread_id"] == str(thread.thread_id)
