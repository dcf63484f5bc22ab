"""Crawl metrics from Scrapy's stats (crawler/extensions.py)."""

from __future__ import annotations

from crawler.extensions import summarize


def test_crawl_metrics_count_robots_txt_apart_from_pages():
    stats = {"response_received_count": 12, "robotstxt/response_count": 1, "forum/pages/board": 2,
             "forum/pages/thread": 9, "forum/errors/unknown_page": 1, "elapsed_time_seconds": 2.0,
             "item_scraped_count": 100, "finish_reason": "finished"}
    metrics = summarize(stats)
    assert metrics["pages"] == 11 and metrics["robots_txt"] == 1
    assert metrics["pages_by_kind"] == {"board": 2, "thread": 9}
    assert metrics["pages_per_s"] == 5.5
