# Shared frontier: one crawl split across worker processes (and machines) through one Redis server.
"""A crawl frontier in Redis: scrapy-redis' queue and duplicate filter, plus leases, a "done" rule,
shared per-site politeness and the crawl's items.

scrapy-redis (the well-kept Scrapy answer for a shared scheduler) gives the request queue (a
sorted set by priority) and the duplicate filter (a set of fingerprints). Measured with scrapy-redis
0.9.1 and Scrapy 2.19, three things it lacks are built here, on Redis:

- **Leases.** Its ``PriorityQueue.pop`` removes a request for good, so a worker killed with SIGKILL
  loses its in-flight requests (their fingerprints stay in the filter: nobody fetches them again).
  ``LeasedPriorityQueue`` pops atomically (a Lua script) into the worker's lease hash
  ``leases:<worker>``; the worker acknowledges (deletes) a lease once Scrapy is completely done
  with the request (downloaded, parsed, its items stored, its new requests queued). Each worker
  renews ``alive:<worker>`` (a key with a TTL of ``lease_timeout`` seconds); when it expires, any
  worker moves that worker's leases back to the queue, counted in ``requeued``.
- **When the crawl is done.** A plain spider closes as soon as the shared queue is momentarily
  empty, and ``SCHEDULER_IDLE_BEFORE_CLOSE`` is ignored by the priority queue. Here an idle worker
  stays open (``DontCloseSpider``, crawler/frontierworker.py) until one atomic check holds: the start
  URLs were seeded, the queue is empty and no worker holds a lease (work in flight anywhere can still queue requests).
- **Politeness across workers.** Each worker's downloader throttles only itself; N workers would
  hit a site N times harder. ``SharedSiteLimit`` (crawler/sitelimit.py) takes a per-site token in Redis before every
  request: at most ``CONCURRENT_REQUESTS_PER_DOMAIN`` in flight per site across all workers, and
  consecutive requests to a site at least the site's download delay apart (the local slot delay,
  which holds ``DOWNLOAD_DELAY``, AutoThrottle's current delay and robots.txt's Crawl-delay).
  Times come from the Redis server's clock, so machines need not agree on the time.

Items go to the hash ``items`` (post id -> JSON row, first write wins, so a page fetched twice after
a requeue stores its posts once); the crawl stage turns them into ``data/raw/<source>.parquet``.
Per-worker counts of pages and posts live in ``worker:<worker>``.

The Redis layout and the client the crawl stage shares are in contracts/frontier.py. Every
Scrapy component of a worker is off (``NotConfigured``) unless the setting
``KOPITIAM_FRONTIER`` (the Redis URL) is set, so a plain crawl is unchanged.

Settings: ``KOPITIAM_FRONTIER`` (redis://...), ``KOPITIAM_FRONTIER_PREFIX``,
``KOPITIAM_FRONTIER_WORKER`` (this worker's id), ``KOPITIAM_FRONTIER_SEED`` (this worker queues
the start URLs), ``KOPITIAM_LEASE_TIMEOUT`` (seconds). ``contracts.frontier.frontier_settings`` builds them.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from contracts import keys
from contracts.frontier import SETTING, URL_ENV, Frontier, connect

logger = logging.getLogger(__name__)

LEASE_META = "frontier_lease"

# Pop the best request into this worker's lease hash (value: "<score>\n<encoded request>").
_LEASE = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
redis.call('HSET', KEYS[2], ARGV[1], r[2] .. '\\n' .. r[1])
return r[1]
"""


def frontier_url(settings) -> str:
    """The worker's Redis URL: ``$KOPITIAM_FRONTIER_URL`` when set, else the setting."""
    return os.environ.get(URL_ENV) or settings.get(SETTING)


def frontier_from_settings(settings) -> Frontier:
    return Frontier(connect(frontier_url(settings)), settings.get(keys.FRONTIER_PREFIX))


class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis' priority queue whose pop leases the request to this worker instead of
    removing it for good (see the module docstring); ``FrontierScheduler`` acknowledges."""

    def __init__(self, server, spider, key, serializer=None) -> None:
        super().__init__(server, spider, key, serializer)
        settings = spider.crawler.settings
        self.worker = settings.get(keys.FRONTIER_WORKER)
        self.leases_key = settings.get(keys.FRONTIER_PREFIX) + f"leases:{self.worker}"
        self._lease = server.register_script(_LEASE)
        self._next_id = 0

    def pop(self, timeout: int = 0):
        self._next_id += 1
        lease = f"{time.time_ns()}-{self._next_id}"  # unique across restarts of the same worker id
        data = self._lease(keys=[self.key, self.leases_key], args=[lease])
        if data is None:
            return None
        request = self._decode_request(data)
        request.meta[LEASE_META] = lease
        return request

    def ack(self, leases: list[str]) -> None:
        if leases:
            self.server.hdel(self.leases_key, *leases)


class FrontierScheduler(Scheduler):
    """scrapy-redis' Scheduler with leased requests: it remembers what it handed out, and
    ``acknowledge`` releases the leases of requests the engine no longer holds.

    It also leases at most ``CONCURRENT_REQUESTS_PER_DOMAIN`` requests at a time (forum crawls hit
    one site): Scrapy would otherwise take ``CONCURRENT_REQUESTS`` at once into one worker, where
    they wait for the shared site token while other workers find the queue empty.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leased: dict[str, Any] = {}
        self.crawler = None
        self.max_leases = 8

    @classmethod
    def from_crawler(cls, crawler):
        # scrapy-redis would connect through the REDIS_URL setting (logged by Scrapy): connect here
        # with frontier_url instead and hand it the client and its duplicate filter.
        settings = crawler.settings
        server = connect(frontier_url(settings))
        dupefilter = RFPDupeFilter(server, key=settings.get("SCHEDULER_DUPEFILTER_KEY"),
                                   debug=settings.getbool("DUPEFILTER_DEBUG"))
        instance = cls(server=server, persist=settings.getbool("SCHEDULER_PERSIST"),
                       queue_key=settings.get("SCHEDULER_QUEUE_KEY"),
                       queue_cls=settings.get("SCHEDULER_QUEUE_CLASS"), dupefilter=dupefilter)
        instance.stats = crawler.stats
        instance.crawler = crawler
        instance.max_leases = max(1, crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8))
        return instance

    def in_progress(self) -> set:
        # Scrapy removes a request from the engine slot only after its response went through the
        # spider and item pipelines and its new requests were queued: then the lease can go.
        slot = getattr(self.crawler.engine, "_slot", None) if self.crawler else None
        return set(slot.inprogress) if slot is not None else set()

    def next_request(self):
        if len(self.leased) >= self.max_leases:
            self.acknowledge(self.in_progress())
            if len(self.leased) >= self.max_leases:
                return None  # FrontierWorker's tick asks again while the queue holds requests
        request = self.queue.pop()
        if request is not None:
            self.leased[request.meta[LEASE_META]] = request
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def enqueue_request(self, request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def acknowledge(self, in_progress: set) -> int:
        """Ack every leased request the engine has finished with (not in ``in_progress``)."""
        finished = [lease for lease, request in self.leased.items() if request not in in_progress]
        self.queue.ack(finished)
        for lease in finished:
            del self.leased[lease]
        return len(finished)
