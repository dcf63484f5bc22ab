# Shared frontier, the Scrapy side: what makes one `scrapy crawl` a worker of crawler/frontier.py.
"""Scrapy components of a shared-frontier worker (all off unless ``KOPITIAM_FRONTIER`` is set):

- ``FrontierWorker`` (extension): heartbeat, acknowledgements, requeueing dead workers' leases,
  pages per worker, and the "crawl is done" rule on ``spider_idle``;
- ``FrontierSeed`` (spider middleware): only the seeding worker queues the start requests, once;
- ``FrontierItemStore`` (item pipeline, last): posts into the shared ``items`` hash.

The per-site politeness shared by all workers is ``crawler.sitelimit.SharedSiteLimit``.
"""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from twisted.internet import task

from contracts import keys
from contracts.frontier import SETTING, Frontier
from contracts.markup import EngineMarkup
from crawler.frontier import FrontierScheduler, frontier_from_settings

logger = logging.getLogger(__name__)


class FrontierWorker:
    """Extension: heartbeat, acknowledgements, requeueing dead workers' leases, page counts and the
    "crawl is done" rule (``spider_idle``) of one worker."""

    def __init__(self, crawler, frontier: Frontier, worker: str, lease_timeout: float) -> None:
        self.crawler, self.frontier, self.worker = crawler, frontier, worker
        self.lease_timeout = lease_timeout
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get(SETTING):
            raise NotConfigured(f"{SETTING} is not set")
        ext = cls(crawler, frontier_from_settings(crawler.settings), crawler.settings.get(keys.FRONTIER_WORKER),
                  crawler.settings.getfloat(keys.LEASE_TIMEOUT, 30.0))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    def spider_opened(self, spider) -> None:
        self.frontier.register(self.worker, self.lease_timeout)
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(min(1.0, max(0.2, self.lease_timeout / 5)), now=False)
        logger.info("frontier worker %s joined %s (lease timeout %.0f s)", self.worker,
                    self.frontier.prefix, self.lease_timeout)

    def _scheduler(self) -> FrontierScheduler | None:
        slot = getattr(self.crawler.engine, "_slot", None)
        return slot.scheduler if slot is not None else None

    def tick(self) -> None:
        self.frontier.heartbeat(self.worker, self.lease_timeout)
        scheduler = self._scheduler()
        if scheduler is not None:
            scheduler.acknowledge(scheduler.in_progress())
        requeued = self.frontier.requeue_expired()
        if requeued:
            self.crawler.stats.inc_value("frontier/requeued", requeued)
            logger.warning("frontier: %d request(s) of a worker that stopped answering went back to "
                           "the queue", requeued)
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and self.frontier.queued():
            slot.nextcall.schedule()  # pick up queued work now, not at the engine's 5 s heartbeat

    def response_received(self, response, request, spider=None) -> None:
        if not request.url.endswith("/robots.txt"):
            self.frontier.client.hincrby(self.frontier.key(f"worker:{self.worker}"), "pages", 1)

    def spider_idle(self, spider) -> None:
        scheduler = self._scheduler()
        if scheduler is not None:
            scheduler.acknowledge(scheduler.in_progress())
        self.frontier.requeue_expired()
        if not self.frontier.done():
            raise DontCloseSpider  # others still hold work that may queue more requests

    def spider_closed(self, spider, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        scheduler = self._scheduler()
        if scheduler is not None:
            scheduler.acknowledge(scheduler.in_progress())
        back = self.frontier.requeue_expired(closing_worker=self.worker)  # stopped early: hand work back
        if back:
            logger.info("frontier worker %s: %d unfinished request(s) returned to the queue", self.worker, back)
        self.frontier.client.delete(self.frontier.key(f"alive:{self.worker}"))


class FrontierSeed:
    """Spider middleware: only the seeding worker queues the spider's start requests, once per
    crawl; it marks the frontier ``seeded`` after the last one is queued."""

    def __init__(self, frontier: Frontier, seed: bool) -> None:
        self.frontier, self.seed = frontier, seed

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get(SETTING):
            raise NotConfigured(f"{SETTING} is not set")
        return cls(frontier_from_settings(crawler.settings), crawler.settings.getbool(keys.FRONTIER_SEED))

    async def process_start(self, start):
        if not self.seed or self.frontier.started():
            return
        async for request in start:
            yield request
        # The engine queues each start request before asking for the next one: all are queued now.
        self.frontier.client.set(self.frontier.key("seeded"), 1)


class FrontierItemStore:
    """Item pipeline (last): each post into the shared ``items`` hash, first write per post id wins."""

    def __init__(self, crawler, frontier: Frontier, worker: str) -> None:
        self.crawler, self.frontier, self.worker, self.stats = crawler, frontier, worker, crawler.stats

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get(SETTING):
            raise NotConfigured(f"{SETTING} is not set")
        return cls(crawler, frontier_from_settings(crawler.settings), crawler.settings.get(keys.FRONTIER_WORKER))

    def open_spider(self, spider=None) -> None:
        # The engine's markup record travels with the posts (the Parquet feed keeps it in the
        # file's schema metadata; the crawl stage does the same from Redis).
        record = getattr(spider or self.crawler.spider, "markup", None)
        if isinstance(record, EngineMarkup):
            self.frontier.set_meta(markup=record.to_dict())

    def process_item(self, item, spider=None):
        from crawler.exporters import row_from_item

        row = row_from_item(item)
        if not self.frontier.store_item(self.worker, str(row["post_id"]), row):
            self.stats.inc_value("frontier/duplicate_post")  # fetched again after a requeue
        return item
