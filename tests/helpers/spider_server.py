"""Test helper: serve fixture pages on 127.0.0.1, run a spider against them in a subprocess, and
check its output against the raw schema.

Usage in a test::

    from tests.helpers.spider_server import FixtureServer, Page, run_spider

    with FixtureServer({"/t/1": Page(html), "/robots.txt": Page("User-agent: *\\nAllow: /\\n",
                        "text/plain")}) as server:
        result = run_spider("vbulletin", {"start_url": server.url("/t/1")}, tmp_path)
    assert len(result.items) == 20
    assert server.count("/t/1") == 1

- ``FixtureServer`` (a ``ThreadingHTTPServer`` on a free port) answers from a dict of paths
  (path + query string) to ``Page`` objects, which may be changed between crawls; a ``Page`` may
  be a list of pages served in turn (e.g. 503 then 200). Every request is logged (path and
  headers) for request-counting assertions. Unknown paths answer 404.
- ``run_spider`` runs ``python -m scrapy crawl`` (the reactor cannot restart in-process) with
  throttling off, writes Parquet through the project's feed exporter, reads the crawl stats JSON,
  and returns the items after ``check_raw`` has verified them against ``RAW_SCHEMA``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import RAW_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
ROBOTS_ALLOW_ALL = "User-agent: *\nDisallow:\n"


@dataclass
class Page:
    body: str | bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else self.body.encode("utf-8")


class FixtureServer:
    """Serve ``routes`` (path -> Page or list of Pages served in turn) on 127.0.0.1."""

    def __init__(self, routes: Mapping[str, Page | list[Page]] | None = None) -> None:
        self.routes: dict[str, Page | list[Page]] = dict(routes or {})
        self.routes.setdefault("/robots.txt", Page(ROBOTS_ALLOW_ALL, "text/plain"))
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.times: list[tuple[str, float]] = []  # (path, time.monotonic()) of every request
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                with server._lock:
                    server.requests.append((self.path, dict(self.headers)))
                    server.times.append((self.path, time.monotonic()))
                    n = server._hits.get(self.path, 0)
                    server._hits[self.path] = n + 1
                    page = server.routes.get(self.path)
                if isinstance(page, list):
                    page = page[min(n, len(page) - 1)]
                if page is None:
                    page = Page("<html><body><h1>404 Not Found</h1></body></html>", status=404)
                payload = page.payload()
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in page.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str | None = None) -> int:
        """Requests for ``path`` (all requests but robots.txt when None)."""
        with self._lock:
            if path is None:
                return sum(1 for p, _ in self.requests if p != "/robots.txt")
            return sum(1 for p, _ in self.requests if p == path)

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.requests if p != "/robots.txt"]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.times.clear()
            self._hits.clear()

    def __enter__(self) -> "FixtureServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class SpiderRun:
    returncode: int
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    log: str
    output: Path


FAST_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "0",
    "DOWNLOAD_DELAY": "0",
    "RETRY_AFTER_MAX": "5",
    "LOG_LEVEL": "INFO",
}


def run_spider(spider: str, args: Mapping[str, Any], workdir: Path, *, settings: Mapping[str, Any] | None = None,
               output: str = "items.parquet", timeout: float = 120, check: bool = True,
               append: bool = False) -> SpiderRun:
    """Run ``scrapy crawl spider`` in a subprocess from the repository root; return items and stats.

    ``output`` (relative to ``workdir``) is overwritten (``-O``) unless ``append``.
    ``check`` asserts exit code 0 and that the items satisfy the raw schema.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / output
    stats_file = workdir / (Path(output).stem + ".stats.json")
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-o" if append else "-O", str(out)]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    for key, value in {**FAST_SETTINGS, "KOPITIAM_STATS_FILE": str(stats_file), **(settings or {})}.items():
        cmd += ["-s", f"{key}={value}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f"scrapy crawl {spider} failed ({proc.returncode}):\n{log[-4000:]}"
    items = pq.read_table(out).to_pylist() if out.exists() else []
    if check:
        check_raw(items)
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return SpiderRun(proc.returncode, items, stats, log, out)


def run_scrapy(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m scrapy ARGS`` in the Scrapy project at ``cwd`` (the repository or a copy of it)."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def check_raw(items: list[dict[str, Any]]) -> pa.Table:
    """Items as a RAW_SCHEMA table: every column present, required fields set, ids unique."""
    table = pa.Table.from_pylist(items, schema=RAW_SCHEMA)
    for f in RAW_SCHEMA:
        if not f.nullable:
            assert table[f.name].null_count == 0, f"raw field {f.name!r} is null in some items"
    assert set(table["body_format"].to_pylist()) <= {"html", "text"}
    ids = table["post_id"].to_pylist()
    assert len(ids) == len(set(ids)), "post_id values are not unique"
    return table


def fixture_text(*parts: str, encoding: str = "utf-8") -> str:
    return FIXTURES.joinpath(*parts).read_text(encoding=encoding)


def fixture_bytes(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


def run_crawl_stage(sources: Mapping[str, Any], workdir: Path, *, crawl: Mapping[str, Any] | None = None,
                    timeout: float = 180, background: bool = False):
    """Run the crawl stage (``python -m pipeline.crawl``) on a params file written to ``workdir``.

    State goes to ``workdir/jobs``, output to ``workdir/raw`` and ``workdir/metrics``. Returns the
    finished ``CompletedProcess`` or, with ``background``, the running ``Popen``.
    """
    from tests.helpers.params import write_params

    workdir.mkdir(parents=True, exist_ok=True)
    write_params(workdir / "params.yaml", {"crawl": {"sources": list(sources), "jobs_dir": str(workdir / "jobs"),
                                                     **(crawl or {})}}, sources=sources)
    cmd = [sys.executable, "-m", "pipeline.crawl", "--params", str(workdir / "params.yaml"),
           "--raw-dir", str(workdir / "raw"), "--metrics-dir", str(workdir / "metrics")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    if background:
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def vb_thread_html(thread_id: int, page: int, pages: int, posts: list[tuple[int, str]], first_number: int) -> str:
    """A minimal vBulletin 4 thread page: ``posts`` are (post id, text); numbering from ``first_number``."""
    items = "".join(
        f'<li class="postbit postcontainer" id="post_{pid}"><div class="posthead"><span class="date">'
        f'01-0{1 + page % 9}-2011, <span class="time">10:{i:02d} AM</span></span>'
        f'<a id="postcount{pid}" name="{first_number + i}"></a></div>'
        f'<div class="username_container"><a class="username"><strong>user{pid % 7}</strong></a></div>'
        f'<div id="post_message_{pid}"><blockquote class="postcontent">{text}</blockquote></div></li>'
        for i, (pid, text) in enumerate(posts))
    nav = "".join(f'<span class="selected"><a href="javascript://">{n}</a></span>' if n == page else
                  f'<span><a href="showthread.php?t={thread_id}{f"&amp;page={n}" if n > 1 else ""}">{n}</a></span>'
                  for n in range(1, pages + 1))
    return (f'<html><head><meta charset="utf-8"><title>Thread {thread_id}</title></head><body>'
            f'<div class="navbit"><a href="forumdisplay.php?f=1">Board</a></div>'
            f'<span class="threadtitle"><a>Thread {thread_id}</a></span>'
            f'<div class="pagination"><input type="hidden" name="t" value="{thread_id}">{nav}</div>'
            f'<ol id="posts">{items}</ol></body></html>')


def vb_board_html(threads: list[tuple[int, int]], next_url: str | None = None) -> str:
    """A minimal vBulletin 4 board page: ``threads`` are (thread id, last post id)."""
    rows = "".join(f'<li class="threadbit" id="thread_{tid}"><a id="thread_title_{tid}" '
                   f'href="showthread.php?t={tid}&amp;s=0f">T{tid}</a>'
                   f'<a href="showthread.php?t={tid}&amp;p={last}#post{last}">last</a></li>'
                   for tid, last in threads)
    nxt = f'<div class="pagination"><a rel="next" href="{next_url}">Next</a></div>' if next_url else ""
    return (f'<html><head><meta charset="utf-8"><title>Board</title></head>'
            f'<body><ol id="threads">{rows}</ol>{nxt}</body></html>')


def vb_forum(threads: int, pages: int, per_page: int, extra_posts: Mapping[int, int] | None = None
             ) -> tuple[dict[str, Page], set[str]]:
    """A vBulletin 4 forum: one board (2 pages), ``threads`` threads of ``pages`` x ``per_page`` posts.

    ``extra_posts`` {thread index: n} appends n posts to a thread (on its last page), so a second
    crawl sees a changed thread. Returns (routes, every post id).
    """
    routes: dict[str, Page] = {}
    all_ids: set[str] = set()
    board: list[tuple[int, int]] = []
    for t in range(threads):
        tid = 100 + t
        ids = [tid * 1000 + n for n in range(pages * per_page + (extra_posts or {}).get(t, 0))]
        chunks = [ids[i * per_page:(i + 1) * per_page] for i in range(pages)]
        chunks[-1] = ids[(pages - 1) * per_page:]
        for p, chunk in enumerate(chunks, start=1):
            path = f"/showthread.php?t={tid}" + (f"&page={p}" if p > 1 else "")
            routes[path] = Page(vb_thread_html(tid, p, pages, [(i, f"post {i} text") for i in chunk],
                                               (p - 1) * per_page + 1))
        all_ids.update(str(i) for i in ids)
        board.append((tid, ids[-1]))
    half = (len(board) + 1) // 2
    routes["/forumdisplay.php?f=1"] = Page(vb_board_html(board[:half], "forumdisplay.php?f=1&page=2"))
    routes["/forumdisplay.php?f=1&page=2"] = Page(vb_board_html(board[half:]))
    return routes, all_ids
