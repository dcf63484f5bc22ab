"""Stage crawl (pipeline/crawl.py) killed hard: the Scrapy child must not live on as an orphan.

SIGKILL goes to the stage's whole process group, as when `dvc repro` is killed; the Scrapy child runs in
its own session and must not live on unsupervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.params import write_params
from tests.helpers.spider_server import REPO_ROOT, FixtureServer, Page, vb_forum

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


class SlowPage(Page):
    def payload(self) -> bytes:
        time.sleep(1.0)
        return super().payload()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has stopped: not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_killing_the_stage_group_ends_the_crawler(tmp_path):
    routes, _ = vb_forum(threads=10, pages=3, per_page=2)
    routes = {path: SlowPage(page.body) for path, page in routes.items()}  # ~32 s at 1 page/s
    with FixtureServer(routes) as server:
        write_params(tmp_path / "params.yaml", {"crawl": {"sources": ["vb"], "jobs_dir": str(tmp_path / "jobs")}},
                     sources={"vb": {"spider": "vbulletin", "throttle": False,
                                     "args": {"start_url": server.url("/forumdisplay.php?f=1")},
                                     "settings": {"CONCURRENT_REQUESTS": 1}}})
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        stage = subprocess.Popen(  # its own process group, like `dvc repro` in a terminal
            [sys.executable, "-m", "pipeline.crawl", "--params", str(tmp_path / "params.yaml"),
             "--raw-dir", str(tmp_path / "raw"), "--metrics-dir", str(tmp_path / "metrics")],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        running = tmp_path / "jobs" / "vb" / "RUNNING"
        child = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.count() < 3:
                time.sleep(0.2)
            assert server.count() >= 3, "the crawl never got going"
            child = int(running.read_text().strip())
            assert alive(child)
            os.killpg(stage.pid, signal.SIGKILL)
            stage.wait(timeout=10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and alive(child):
                time.sleep(0.2)
            assert not alive(child), "the Scrapy child outlived the killed crawl stage"
            fetched = server.count()
            time.sleep(2.5)
            assert server.count() == fetched  # nobody is fetching any more
            assert fetched < len(routes)  # it really was stopped mid-crawl
        finally:
            if stage.poll() is None:
                os.killpg(stage.pid, signal.SIGKILL)
            if child is not None and alive(child):
                os.kill(child, signal.SIGKILL)
