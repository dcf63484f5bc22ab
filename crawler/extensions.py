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


PARENT_PID_ENV = "KOPITIAM_PARENT_PID"


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

        pid = os.environ.get(PARENT_PID_ENV)
        if not pid:
            raise NotConfigured(f"{PARENT_PID_ENV} is not set")
        return cls(int(pid), crawler.settings.getfloat("KOPITIAM_PARENT_GRACE", 30.0))

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
    """Under ``scrapy check`` (which switches logging off), print the spider's own error counters
    and its first warnings when the spider closes, so a failed contract such as ``Returned 0 items,
    expected 1..inf`` comes with the reason the spider knew (``thread page ...: no thread id
    found``). Off outside ``scrapy check`` (``SCRAPY_CHECK`` unset)."""

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
        import os

        if not os.environ.get("SCRAPY_CHECK"):
            raise NotConfigured("only under scrapy check")
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
