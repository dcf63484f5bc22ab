# Extensions: crawl-wide side effects. StatsFile dumps the crawl's stats as JSON when the spider
# closes, so the crawl stage (which runs Scrapy in a subprocess) can write its metrics.
"""Scrapy extensions for kopitiam."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from scrapy import signals
from scrapy.exceptions import NotConfigured

from pipeline.common import write_json_atomic

logger = logging.getLogger(__name__)


class StatsFile:
    """Write all crawl stats plus the close reason to ``KOPITIAM_STATS_FILE`` (off when unset)."""

    def __init__(self, path: str, stats) -> None:
        self.path = path
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get("KOPITIAM_STATS_FILE")
        if not path:
            raise NotConfigured("KOPITIAM_STATS_FILE is not set")
        ext = cls(path, crawler.stats)
        # Run after the core stats extension has filled in finish_time and elapsed_time_seconds.
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider, reason: str) -> None:
        stats = {k: (v.isoformat() if isinstance(v, datetime) else v)
                 for k, v in self.stats.get_stats().items()}
        stats["finish_reason"] = reason
        write_json_atomic(self.path, json.loads(json.dumps(stats, default=str)))
        logger.info("crawl stats written to %s", self.path)
