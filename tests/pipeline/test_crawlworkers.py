"""Crawl workers on a shared Redis frontier (pipeline/crawlworkers.py, crawler/frontier.py).

Leases and requeueing on the Redis side (contracts/frontier.py); two local workers plus a ``--join``
worker SIGKILLed mid-crawl giving the same posts (once each, same rows) as a single-process crawl; the
per-site request rate with three workers staying within the single-process limit."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from contracts.frontier import Frontier, frontier_prefix, frontier_settings, redact_url
from crawler.frontier import LeasedPriorityQueue
from demoforum.server import DemoForumServer
from demoforum.site import DemoForum
from pipeline.common import ParamsError
from pipeline.crawl import crawl_source
from tests.helpers.params import repo_params
from tests.helpers.params import write_params as write_repo_params

PLAY = "a-midsummer-night-s-dream"
REDIS_SERVER = shutil.which("redis-server")
PASSWORD = "s3cret-frontier-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on 127.0.0.1 and a free port, no persistence, with a password (which
    must never reach the logs or the metrics), stopped after the module."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), "--requirepass", PASSWORD],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


class TimedServer(DemoForumServer):
    """The demo forum, also recording when each request arrived (monotonic seconds)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[float] = []

    def respond(self, target: str):
        self.times.append(time.monotonic())
        return super().respond(target)


def write_params(tmp: Path, base_url: str, *, frontier: str = "", settings: dict | None = None,
                 throttle: bool = False) -> Path:
    """The repository's params with one source ``t`` on ``base_url`` and the frontier set."""
    return write_repo_params(tmp / "params.yaml", {"crawl": {
        "sources": ["t"], "jobs_dir": str(tmp / "jobs"), "frontier": frontier, "lease_timeout": 3}},
        sources={"t": {"spider": "xenforo", "throttle": throttle, "settings": settings or {},
                       "args": {"start_url": base_url + "/"}}})


def crawl_cmd(python_exe: str, tmp: Path, *extra: str) -> list[str]:
    return [python_exe, "-m", "pipeline.crawl", "--params", str(tmp / "params.yaml"), "--raw-dir",
            str(tmp / "raw"), "--metrics-dir", str(tmp / "metrics"), *extra]


def test_redact_url():
    assert redact_url("redis://user:secret@10.0.0.5:6379/2") == "redis://10.0.0.5:6379/2"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.slow
def test_lease_requeue_and_done_rule(redis_url):
    """A popped request is leased, not lost: the worker's heartbeat lapsing puts it back in the
    queue (counted), and the crawl is done only once nothing is queued or leased."""
    prefix = frontier_prefix("unit", "c1")
    crawler = get_crawler(Spider, frontier_settings(redis_url, prefix, "w1", seed=False, lease_timeout=0.2))
    spider = Spider.from_crawler(crawler, name="unit")
    frontier = Frontier(redis.Redis.from_url(redis_url), prefix)
    frontier.clear()
    queue = LeasedPriorityQueue(frontier.client, spider, prefix + "requests")
    frontier.register("w1", 0.2)
    frontier.client.set(frontier.key("seeded"), 1)
    queue.push(Request("http://127.0.0.1/a", priority=1))
    queue.push(Request("http://127.0.0.1/b"))
    first = queue.pop()
    assert first.url == "http://127.0.0.1/a" and first.meta["frontier_lease"]
    assert frontier.client.hlen(frontier.key("leases:w1")) == 1 and not frontier.done()
    assert frontier.requeue_expired() == 0  # w1 is alive: its lease stays
    time.sleep(0.3)  # no heartbeat: the lease expires
    assert frontier.requeue_expired() == 1 and frontier.requeued() == 1
    assert sorted(r.url for r in (queue.pop(), queue.pop())) == ["http://127.0.0.1/a", "http://127.0.0.1/b"]
    assert queue.pop() is None and not frontier.done()  # two leases still held
    frontier.heartbeat("w1", 5)  # alive again, then closing: its leases are handed back, not expired
    assert frontier.requeue_expired(closing_worker="w1") == 2 and frontier.requeued() == 1
    assert sorted(r.url for r in (queue.pop(), queue.pop())) == ["http://127.0.0.1/a", "http://127.0.0.1/b"]
    queue.ack(list(frontier.client.hkeys(frontier.key("leases:w1"))))
    assert frontier.done()
    assert frontier.clear() > 0 and not frontier.client.keys(prefix + "*")


@pytest.mark.slow
def test_a_post_is_stored_and_counted_in_one_server_call(redis_url):
    """First write per post id wins and is counted for its worker; storing and counting are one
    atomic call, so a worker killed between them cannot leave a stored post nobody counted."""
    frontier = Frontier(redis.Redis.from_url(redis_url), frontier_prefix("unit", "store"))
    frontier.clear()
    frontier.register("w1", 5)
    frontier.register("w2", 5)
    sent, execute = [], frontier.client.execute_command

    def recording(*args, **options):  # the real client, its commands written down
        sent.append(str(args[0]).upper())
        return execute(*args, **options)

    frontier.client.execute_command = recording
    assert frontier.store_item("w1", "p1", {"post_id": "p1", "text": "first"})
    assert "EVALSHA" in sent and set(sent) <= {"EVALSHA", "SCRIPT LOAD"}, sent  # the script, loaded once
    del frontier.client.execute_command
    assert not frontier.store_item("w2", "p1", {"post_id": "p1", "text": "again"})  # a requeued page
    assert frontier.store_item("w2", "p2", {"post_id": "p2", "text": "second"})
    assert frontier.worker_stats() == {"w1": {"pages": 0, "posts": 1}, "w2": {"pages": 0, "posts": 1}}
    assert sorted(row["text"] for row in frontier.iter_items()) == ["first", "second"]
    frontier.clear()


def test_workers_need_a_frontier(tmp_path):
    params = repo_params({"crawl": {"sources": ["t"], "frontier": ""}},
                         sources={"t": {"spider": "xenforo", "args": {"start_url": "http://127.0.0.1:1/"}}})
    with pytest.raises(ParamsError, match="crawl.frontier"):
        crawl_source("t", params, raw_dir=tmp_path, metrics_dir=tmp_path, workers=2)


@pytest.fixture(scope="module")
def forum_server():
    with TimedServer(DemoForum(plays=[PLAY], threads_per_page=4)) as server:
        yield server


@pytest.fixture(scope="module")
def local_crawl(tmp_path_factory, forum_server, repo_root, python_exe):
    """The single-process crawl (no frontier): the reference."""
    tmp = tmp_path_factory.mktemp("local")
    write_params(tmp, forum_server.base_url)
    done = subprocess.run(crawl_cmd(python_exe, tmp), cwd=repo_root, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return pq.read_table(tmp / "raw" / "t.parquet")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_two_workers_and_a_killed_join_worker(tmp_path, redis_url, forum_server, local_crawl, repo_root,
                                              python_exe):
    """Done when: --workers 2 plus a --join worker SIGKILLed halfway give the single-process crawl's
    posts, once each, in the same rows and order (fetch times aside)."""
    # A small delay stretches the crawl (about 36 requests) so the join worker is mid-crawl when killed.
    write_params(tmp_path, forum_server.base_url, frontier=redis_url,
                 settings={"DOWNLOAD_DELAY": 0.3, "CONCURRENT_REQUESTS_PER_DOMAIN": 2})
    client = redis.Redis.from_url(redis_url)
    main = subprocess.Popen(crawl_cmd(python_exe, tmp_path, "--workers", "2"), cwd=repo_root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    joiner = None
    try:
        deadline = time.monotonic() + 120
        while not client.keys("kopitiam:t:*:meta"):
            assert main.poll() is None and time.monotonic() < deadline, "the crawl never started"
            time.sleep(0.1)
        prefix = client.keys("kopitiam:t:*:meta")[0].decode()[:-len("meta")]
        joiner = subprocess.Popen(crawl_cmd(python_exe, tmp_path, "--join"), cwd=repo_root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        join_id = f"{socket.gethostname()}-join-{joiner.pid}"
        # Kill it once it has fetched pages and holds leases (requests taken, not yet finished).
        while not (int(client.hget(prefix + f"worker:{join_id}", "pages") or 0) >= 2
                   and client.hlen(prefix + f"leases:{join_id}") > 0):
            assert main.poll() is None and time.monotonic() < deadline, "the crawl ended before the join"
            time.sleep(0.02)
        held = client.hlen(prefix + f"leases:{join_id}")
        for pid in _children(joiner.pid):
            os.kill(pid, signal.SIGKILL)
        joiner.kill()
        joiner.wait(timeout=30)
        out, _ = main.communicate(timeout=300)
    finally:
        for proc in (main, joiner):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert main.returncode == 0, out[-5000:]
    table = pq.read_table(tmp_path / "raw" / "t.parquet")
    ids = table["post_id"].to_pylist()
    assert len(ids) == len(set(ids)) == local_crawl.num_rows
    assert set(ids) == set(local_crawl["post_id"].to_pylist())
    assert table.drop_columns(["fetched_at"]).equals(local_crawl.drop_columns(["fetched_at"]))
    assert table.schema.metadata == local_crawl.schema.metadata  # the engine's markup record
    metrics = json.loads((tmp_path / "metrics" / "t.json").read_text())
    assert set(metrics["workers"]) == {f"{socket.gethostname()}-0", f"{socket.gethostname()}-1", join_id}
    assert all(w["pages"] > 0 for w in metrics["workers"].values()), metrics["workers"]
    assert held > 0 and metrics["requeued"] > 0  # the killed worker's leases went back to the queue
    assert sum(w["posts"] for w in metrics["workers"].values()) == metrics["posts"] == len(ids)
    assert metrics["frontier"] == redact_url(redis_url) and PASSWORD not in metrics["frontier"]
    assert PASSWORD not in out  # the stage's and its workers' logs
    assert metrics["finish_reason"] == "finished"
    assert not client.keys(prefix + "*")  # the finished crawl's keys are gone


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.slow
def test_three_workers_keep_the_single_process_site_rate(tmp_path_factory, redis_url, repo_root, python_exe):
    """Per-site politeness is shared: 3 workers together stay within one process's request rate
    (from the server's request timestamps: rate = requests / span)."""
    delay = 0.25
    polite = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": delay, "RANDOMIZE_DOWNLOAD_DELAY": False,
              "CONCURRENT_REQUESTS_PER_DOMAIN": 1}

    def crawl(workers: int, frontier: str) -> float:
        tmp = tmp_path_factory.mktemp(f"rate{workers}")
        with TimedServer(DemoForum(plays=[PLAY], threads_per_page=4)) as server:
            write_params(tmp, server.base_url, frontier=frontier, settings=polite, throttle=True)
            extra = ("--workers", str(workers)) if frontier else ()
            done = subprocess.run(crawl_cmd(python_exe, tmp, *extra), cwd=repo_root, capture_output=True,
                                  text=True, timeout=300, check=False)
            assert done.returncode == 0, done.stderr[-4000:]
            times = sorted(server.times)
        if frontier:
            metrics = json.loads((tmp / "metrics" / "t.json").read_text())
            assert sum(1 for w in metrics["workers"].values() if w["pages"]) >= 2, metrics["workers"]
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            assert gaps[len(gaps) // 2] >= 0.8 * delay, gaps  # median gap: one site, one pace
        return _rate(times)

    # the two crawls mostly wait out the delay, each against its own server: side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {workers: pool.submit(crawl, workers, frontier) for workers, frontier in ((1, ""), (3, redis_url))}
        rates = {workers: future.result() for workers, future in futures.items()}
    assert rates[1] <= 1.15 / delay  # the single-process limit itself
    assert rates[3] <= 1.15 * max(rates[1], 1 / delay), rates  # not 3x: the limit is per site


@pytest.mark.slow
def test_interrupted_shared_crawl_resumes(tmp_path, redis_url, forum_server, local_crawl, repo_root, python_exe):
    """Ctrl-C stops the workers cleanly: their unfinished requests go back to the queue, the crawl
    stays in Redis, and the next run resumes it (no re-seeding) to the complete set of posts."""
    write_params(tmp_path, forum_server.base_url, frontier=redis_url, settings={"DOWNLOAD_DELAY": 0.2})
    client = redis.Redis.from_url(redis_url)
    cmd = crawl_cmd(python_exe, tmp_path, "--workers", "2")
    first = subprocess.Popen(cmd, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while sum(int(client.hget(k, "pages") or 0) for k in client.keys("kopitiam:t:*:worker:*")) < 6:
            assert first.poll() is None and time.monotonic() < deadline, "the crawl ended too early"
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1 and "run the stage again to resume" in err, err[-3000:]
    assert not client.keys("kopitiam:t:*:leases:*")  # handed back, not left to expire
    assert client.keys("kopitiam:t:*:requests") and client.keys("kopitiam:t:*:seeded")
    second = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "resuming crawl" in second.stderr
    table = pq.read_table(tmp_path / "raw" / "t.parquet")
    assert table.drop_columns(["fetched_at"]).equals(local_crawl.drop_columns(["fetched_at"]))


def test_combine_metrics_adds_workers_up():
    from pipeline.crawlworkers import combine_metrics

    a = {"pages": 3, "posts": 40, "seconds": 2.0, "errors": {"http_404": 1}, "finish_reason": "finished",
         "pages_per_s": 1.5, "memusage": None}
    b = {"pages": 4, "posts": 20, "seconds": 5.0, "errors": {"http_404": 2, "retry_max_reached": 1},
         "finish_reason": "finished", "pages_per_s": 0.8, "memusage": 7}
    assert combine_metrics([a, b]) == {
        "pages": 7, "posts": 60, "seconds": 5.0, "errors": {"http_404": 3, "retry_max_reached": 1},
        "finish_reason": "finished", "pages_per_s": 1.4, "posts_per_s": 12.0, "memusage": 7}
