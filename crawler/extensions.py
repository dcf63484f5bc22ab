# Extensions: crawl-wide side effects. CrawlMetrics writes the finished crawl metrics as JSON when
# the spider closes, so the crawl stage (which runs Scrapy in a subprocess) reads one finished file
# and never parses the crawler's stats keys; StatsFile dumps the raw stats (debugging, tests).
"""Scrapy extensions for kopitiam: crawl metrics, stats dump, parent watch, check report."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Mapping

from scrapy import signals
from scrapy.exceptions import NotConfigured

from contracts import keys
from contracts.files import write_json_atomic

logger = logging.getLogger(__name__)


def summarize(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Crawl metrics from the crawl's stats: counts by kind, bytes, seconds, rates (the stats keys
    are the spiders', item pipelines' and Scrapy's own, all read here, beside their writers)."""
    def group(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in sorted(stats.items()) if k.startswith(prefix)}

    errors = {**group("forum/errors/"), **group("kopitiam/errors/"),
              **{f"dropped/{k}": v for k, v in group("kopitiam/dropped/").items()},
              **{f"spider_exception/{k}": v for k, v in group("spider_exceptions/").items()},
              **{f"http_{k}": v for k, v in group("httperror/response_ignored_status_count/").items()},
              **{f"download/{k.rsplit('.', 1)[-1]}": v for k, v in
                 group("downloader/exception_type_count/").items() if not k.endswith("IgnoreRequest")}}
    if stats.get("retry/max_reached"):
        errors["retry_max_reached"] = stats["retry/max_reached"]
    seconds = float(stats.get("elapsed_time_seconds") or 0.0)
    # robots.txt responses pass through the same downloader as pages: counted apart, so `pages`
    # is what the spider fetched (boards, threads, ...; by kind in `pages_by_kind`)
    robots_txt = int(stats.get("robotstxt/response_count", 0))
    pages = int(stats.get("response_received_count", 0)) - robots_txt
    posts = int(stats.get("item_scraped_count", 0))
    return {
        "pages": pages, "pages_by_kind": group("forum/pages/"), "robots_txt": robots_txt, "posts": posts,
        "threads": int(stats.get("forum/threads", 0)), "errors": errors,
        "errors_total": int(sum(errors.values())), "skipped": group("forum/skipped/"),
        "retries": int(stats.get("retry/count", 0)),
        "retry_after_honoured": int(stats.get("kopitiam/retry_after/honoured", 0)),
        "robots_forbidden": int(stats.get("robotstxt/forbidden", 0)),
        "http_status": group("downloader/response_status_count/"),
        "bytes": int(stats.get("downloader/response_bytes", 0)), "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 2) if seconds else None,
        "posts_per_s": round(posts / seconds, 2) if seconds else None,
        "finish_reason": stats.get("finish_reason"),
        **{"engine": name for name in group("forum/recognised/")},  # the engine the ``forum`` spider chose
    }


def _stats(crawler_stats, reason: str) -> dict[str, Any]:
    """The crawl's stats as JSON values (datetimes as ISO strings), with the close reason."""
    stats = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in crawler_stats.get_stats().items()}
    stats["finish_reason"] = reason
    return json.loads(json.dumps(stats, default=str))


class CrawlMetrics:
    """Write the finished crawl metrics (``summarize``) to ``KOPITIAM_METRICS_FILE`` when the spider
    closes (off when unset). The crawl stage reads this file; ``finish_reason`` tells it whether
    the crawl ran to its end (``finished``) or was stopped (``shutdown``: resumable)."""

    def __init__(self, path: str, stats) -> None:
        self.path = path
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get(keys.METRICS_FILE)
        if not path:
            raise NotConfigured(f"{keys.METRICS_FILE} is not set")
        ext = cls(path, crawler.stats)
        # Run after the core stats extension has filled in finish_time and elapsed_time_seconds.
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider, reason: str) -> None:
        write_json_atomic(self.path, summarize(_stats(self.stats, reason)))
        logger.info("crawl metrics written to %s", self.path)


class StatsFile:
    """Write all crawl stats plus the close reason to ``KOPITIAM_STATS_FILE`` (off when unset)."""

    def __init__(self, path: str, stats) -> None:
        self.path = path
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get(keys.STATS_FILE)
        if not path:
            raise NotConfigured(f"{keys.STATS_FILE} is not set")
        ext = cls(path, crawler.stats)
        # Run after the core stats extension has filled in finish_time and elapsed_time_seconds.
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider, reason: str) -> None:
        write_json_atomic(self.path, _stats(self.stats, reason))
        logger.info("crawl stats written to %s", self.path)


class ParentWatch:
    """Stop this crawl when the process that started it is gone (``KOPITIAM_PARENT_PID``; off when unset).

    The crawl stage runs Scrapy in its own session (so a terminal's Ctrl-C reaches only the stage,
    which forwards it once for a clean stop); a SIGKILL of the stage's process group would then
    leave the crawler running as an orphan nobody supervises, still fetching. On Linux the kernel
    sends SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes: no extra
    package); everywhere a watchdog thread polls the parent pid, sends SIGTERM itself where prctl
    is missing, and SIGKILLs the crawl if the graceful stop has not ended it within
    ``KOPITIAM_PARENT_GRACE`` seconds (default 30). SIGTERM is Scrapy's graceful shutdown: the feed
    part and JOBDIR are saved, so the next run resumes.
    """

    def __init__(self, parent_pid: int, grace: float) -> None:
        import os
        import signal
        import threading

        self.parent_pid, self.grace = parent_pid, grace
        self.prctl = self._set_pdeathsig(signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=self._watch, name="parent-watch", daemon=True).start()

    @classmethod
    def from_crawler(cls, crawler):
        import os

        pid = os.environ.get(keys.PARENT_PID_ENV)
        if not pid:
            raise NotConfigured(f"{keys.PARENT_PID_ENV} is not set")
        return cls(int(pid), crawler.settings.getfloat(keys.PARENT_GRACE, 30.0))

    @staticmethod
    def _set_pdeathsig(signum: int) -> bool:
        import ctypes
        import ctypes.util
        import sys

        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1  # <linux/prctl.h>
            return libc.prctl(pr_set_pdeathsig, int(signum), 0, 0, 0) == 0
        except OSError:
            return False

    def _watch(self) -> None:
        import os
        import signal
        import time

        while os.getppid() == self.parent_pid:
            time.sleep(0.5)
        logger.error("the crawl stage (pid %d) is gone: stopping this crawl; its state is saved "
                     "for the next run", self.parent_pid)
        if not self.prctl:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(self.grace)
        logger.error("still running %.0f s after the crawl stage died: killing this crawl", self.grace)
        os.kill(os.getpid(), signal.SIGKILL)


class CheckReport:
    """When logging is off (``scrapy check`` switches it off), print the spider's own error counters
    and its first warnings when the spider closes, so a failed contract such as ``Returned 0 items,
    expected 1..inf`` comes with the reason the spider knew (``thread page ...: no thread id
    found``). On when ``LOG_ENABLED`` is false or ``KOPITIAM_CHECK_REPORT`` is true."""

    PREFIXES = ("forum/errors/", "kopitiam/errors/", "kopitiam/dropped/", "spider_exceptions/")
    KEEP = 5  # first warnings kept per spider

    def __init__(self, stats, spider_name: str) -> None:
        self.stats = stats
        self.records: list[str] = []
        outer = self

        class Keep(logging.Handler):  # the spider's own logger only (several spiders run at once)
            def emit(self, record: logging.LogRecord) -> None:
                if record.name == spider_name and len(outer.records) < outer.KEEP:
                    outer.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")

        self.handler = Keep(level=logging.WARNING)
        logging.getLogger().addHandler(self.handler)

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        if settings.getbool("LOG_ENABLED", True) and not settings.getbool(keys.CHECK_REPORT):
            raise NotConfigured("logging is on: the log already shows the spider's errors")
        ext = cls(crawler.stats, crawler.spidercls.name)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider, reason: str) -> None:
        import sys

        logging.getLogger().removeHandler(self.handler)
        counters = {k: v for k, v in sorted(self.stats.get_stats().items()) if k.startswith(self.PREFIXES)}
        if not counters and not self.records:
            return
        lines = [f"spider {spider.name!r} counted: " + (", ".join(f"{k}={v}" for k, v in counters.items())
                                                       or "no errors")]
        lines += [f"  {line}" for line in self.records]
        print("\n" + "\n".join(lines), file=sys.stderr)
