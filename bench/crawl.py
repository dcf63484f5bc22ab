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

Usage: ``python bench/crawl.py [--genres tragedies ...] [--concurrency 16]``
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genres", nargs="*", default=CONFIG["genres"])
    parser.add_argument("--concurrency", type=int, default=CONFIG["concurrency"])
    args = parser.parse_args()
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
    result["crawl_vs_fetch_only"] = round(result["crawl"]["pages_per_s"] / result["baseline_fetch_only"]["pages_per_s"], 2)
    result["crawl_vs_parse_only"] = round(result["crawl"]["pages_per_s"] / result["baseline_parse_only"]["pages_per_s"], 2)
    result["all_posts_crawled"] = rows == posts
    print(json.dumps(result))


if __name__ == "__main__":
    main()
