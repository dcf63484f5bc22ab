"""Benchmark: crawl throughput (pages/s, posts/s) of the xenforo spider on the demo forum,
throttling off, beside two baselines measured in the same run on the same pages:

- ``fetch_only``: the same page URLs fetched one after another with ``urllib`` (one connection at
  a time, no parsing, no items): what a naive sequential downloader would reach;
- ``parse_only``: the spider's ``parse`` on pre-rendered pages in this process (no HTTP): the
  extraction ceiling.

The crawl runs as the crawl stage runs it (``python -m scrapy crawl`` in a subprocess, the Parquet
feed, throttle settings off); its rates use Scrapy's ``elapsed_time_seconds`` (engine open to
close), and ``wall_s`` adds the subprocess start. A warm-up (demo forum built, a few pages fetched
and parsed) runs first. Prints one JSON object.

``--workers 1,2,4`` benchmarks the shared frontier instead (crawler/frontier.py): the crawl stage
(``python -m pipeline.crawl --workers N``) through a redis-server started on 127.0.0.1 (Debian's
``redis-server``; or ``--redis URL``), once per worker count, beside the single-process stage
(``crawl.frontier: ""``) in the same run; pages/s use the longest worker's engine time.

Usage: ``python bench/crawl.py [--genres tragedies ...] [--concurrency 16] [--workers 1,2,4 [--redis URL]]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow.parquet as pq  # noqa: E402
from scrapy.http import HtmlResponse  # noqa: E402
from scrapy.utils.test import get_crawler  # noqa: E402

from crawler.spiders.xenforo import XenforoSpider  # noqa: E402
from demoforum import pages  # noqa: E402
from demoforum.server import DemoForumServer  # noqa: E402
from demoforum.site import DemoForum  # noqa: E402

CONFIG = {
    "genres": ["tragedies"],  # demo forum subset (6 plays, 5,640 posts, ~350 pages)
    "seed": 0,
    "concurrency": 16,  # CONCURRENT_REQUESTS_PER_DOMAIN with throttling off (as `throttle: false`)
    "warmup_pages": 20,
}


def page_urls(forum: DemoForum) -> list[str]:
    urls = ["/"]
    for board in forum.boards:
        urls += [pages.page_path(board.path, n) for n in range(1, forum.board_pages(board) + 1)]
    for thread in forum.crawlable_threads():
        urls += [pages.page_path(thread.path, n) for n in range(1, forum.thread_pages(thread) + 1)]
    return urls


def fetch_all(base: str, urls: list[str]) -> tuple[float, int]:
    start, size = time.perf_counter(), 0
    for url in urls:
        with urllib.request.urlopen(base + url, timeout=30) as resp:
            size += len(resp.read())
    return time.perf_counter() - start, size


def parse_all(forum: DemoForum, base: str, limit: int | None = None) -> tuple[float, int, int]:
    spider = XenforoSpider.from_crawler(get_crawler(XenforoSpider), start_url=base + "/")
    rendered = [(base + pages.page_path(t.path, n), pages.thread_page(forum, t, n).encode())
                for t in forum.crawlable_threads() for n in range(1, forum.thread_pages(t) + 1)][:limit]
    start, items = time.perf_counter(), 0
    for url, body in rendered:
        items += sum(1 for o in spider.parse_thread(HtmlResponse(url=url, body=body, encoding="utf-8"))
                     if not hasattr(o, "callback"))
    return time.perf_counter() - start, len(rendered), items


def stage_crawl(base: str, tmp: Path, frontier: str, workers: int, concurrency: int) -> dict:
    """One run of the crawl stage on the demo forum at ``base``; its metrics."""
    import yaml

    run = Path(tempfile.mkdtemp(dir=tmp))
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))  # every key is stated
    params["sources"] = {"bench": {"spider": "xenforo", "throttle": False, "args": {"start_url": base + "/"},
                                   "settings": {"CONCURRENT_REQUESTS_PER_DOMAIN": concurrency}}}
    params["crawl"].update(sources=["bench"], log_level="WARNING", jobs_dir=str(run / "jobs"), frontier=frontier)
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "pipeline.crawl", "--params", str(run / "params.yaml"), "--raw-dir",
           str(run / "raw"), "--metrics-dir", str(run / "metrics")] + (["--workers", str(workers)] if frontier else [])
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((run / "metrics" / "bench.json").read_text())


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    import shutil
    import socket

    import redis

    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server not found: apt-get install redis-server, or pass --redis URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def bench_workers(genres: list[str], counts: list[int], concurrency: int, redis_url: str | None) -> dict:
    forum = DemoForum(genres=genres, seed=CONFIG["seed"])
    posts = sum(len(t.posts) for t in forum.crawlable_threads())
    runs = []
    with DemoForumServer(forum) as server, tempfile.TemporaryDirectory() as tmp:
        proc = None
        if redis_url is None:
            proc, redis_url = start_redis(Path(tmp))
        try:
            fetch_all(server.base_url, page_urls(forum)[: CONFIG["warmup_pages"]])  # warm-up
            for workers, frontier in [(1, "")] + [(n, redis_url) for n in counts]:
                m = stage_crawl(server.base_url, Path(tmp), frontier, workers, concurrency)
                runs.append({"workers": workers, "frontier": bool(frontier), "pages": m["pages"],
                             "posts": m["raw_rows"], "seconds": m["seconds"], "wall_s": m["wall_seconds"],
                             "pages_per_s": round(m["pages"] / m["seconds"], 1),
                             "pages_by_worker": {k: v["pages"] for k, v in m.get("workers", {}).items()},
                             "requeued": m.get("requeued", 0), "all_posts": m["raw_rows"] == posts})
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
    base = runs[0]["pages_per_s"]
    for run in runs:
        run["vs_single_process"] = round(run["pages_per_s"] / base, 2)
    return {"bench": "crawl_workers", "config": {**CONFIG, "genres": genres, "concurrency": concurrency,
                                                  "workers": counts},
            "forum": {"threads": len(forum.crawlable_threads()), "posts": posts}, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genres", nargs="*", default=CONFIG["genres"])
    parser.add_argument("--concurrency", type=int, default=CONFIG["concurrency"])
    parser.add_argument("--workers", help="comma-separated worker counts: benchmark the shared frontier")
    parser.add_argument("--redis", help="an existing Redis for --workers (default: start redis-server)")
    args = parser.parse_args()
    if args.workers:
        counts = [int(n) for n in args.workers.split(",")]
        print(json.dumps(bench_workers(args.genres, counts, args.concurrency, args.redis)))
        return
    forum = DemoForum(genres=args.genres, seed=CONFIG["seed"])
    urls = page_urls(forum)
    posts = sum(len(t.posts) for t in forum.crawlable_threads())
    with DemoForumServer(forum) as server, tempfile.TemporaryDirectory() as tmp:
        base = server.base_url
        fetch_all(base, urls[: CONFIG["warmup_pages"]])  # warm-up: server, page rendering
        parse_all(forum, base, limit=CONFIG["warmup_pages"])  # warm-up: selectors, lxml
        stats_file = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "scrapy", "crawl", "xenforo", "-a", f"start_url={base}/",
               "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
               "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={args.concurrency}", "-s", "LOG_LEVEL=WARNING",
               "-s", f"KOPITIAM_STATS_FILE={stats_file}", "-O", f"{Path(tmp) / 'out.parquet'}:parquet"]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True)
        wall = time.perf_counter() - start
        stats = json.loads(stats_file.read_text())
        rows = pq.ParquetFile(Path(tmp) / "out.parquet").metadata.num_rows
        fetch_s, fetch_bytes = fetch_all(base, urls)
    parse_s, parse_pages, parse_items = parse_all(forum, "http://127.0.0.1:1")
    crawl_s = stats["elapsed_time_seconds"]
    crawl_pages = stats["response_received_count"]
    result = {
        "bench": "crawl", "config": {**CONFIG, "genres": args.genres, "concurrency": args.concurrency},
        "forum": {"threads": len(forum.crawlable_threads()), "posts": posts, "pages": len(urls)},
        "crawl": {"pages": crawl_pages, "posts": rows, "seconds": round(crawl_s, 3), "wall_s": round(wall, 3),
                  "pages_per_s": round(crawl_pages / crawl_s, 1), "posts_per_s": round(rows / crawl_s, 1),
                  "mb_per_s": round(stats["downloader/response_bytes"] / crawl_s / 1e6, 2)},
        "baseline_fetch_only": {"pages": len(urls), "seconds": round(fetch_s, 3),
                                "pages_per_s": round(len(urls) / fetch_s, 1),
                                "mb_per_s": round(fetch_bytes / fetch_s / 1e6, 2)},
        "baseline_parse_only": {"pages": parse_pages, "posts": parse_items, "seconds": round(parse_s, 3),
                                "pages_per_s": round(parse_pages / parse_s, 1),
                                "posts_per_s": round(parse_items / parse_s, 1)},
    }
    crawl_rate = result["crawl"]["pages_per_s"]
    result["crawl_vs_fetch_only"] = round(crawl_rate / result["baseline_fetch_only"]["pages_per_s"], 2)
    result["crawl_vs_parse_only"] = round(crawl_rate / result["baseline_parse_only"]["pages_per_s"], 2)
    result["all_posts_crawled"] = rows == posts
    print(json.dumps(result))


if __name__ == "__main__":
    main()
