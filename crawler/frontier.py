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
  stays open (``DontCloseSpider``, crawler/frontierworker.py) until one atomic check holds: the start URLs were seeded, the
  queue is empty and no worker holds a lease (work in flight anywhere can still queue requests).
- **Politeness across workers.** Each worker's downloader throttles only itself; N workers would
  hit a site N times harder. ``SharedSiteLimit`` (crawler/sitelimit.py) takes a per-site token in Redis before every
  request: at most ``CONCURRENT_REQUESTS_PER_DOMAIN`` in flight per site across all workers, and
  consecutive requests to a site at least the site's download delay apart (the local slot delay,
  which holds ``DOWNLOAD_DELAY``, AutoThrottle's current delay and robots.txt's Crawl-delay).
  Times come from the Redis server's clock, so machines need not agree on the time.

Items go to the hash ``items`` (post id -> JSON row, first write wins, so a page fetched twice after
a requeue stores its posts once); the crawl stage turns them into ``data/raw/<source>.parquet``.
Per-worker counts of pages and posts live in ``worker:<worker>``.

All keys start with ``kopitiam:<source>:<crawl id>:`` (``frontier_prefix``), so two sources or two
crawls never mix. The Lua scripts build some key names at run time, so one Redis server (not a
Redis Cluster) holds a crawl. Every Scrapy component of a worker is off (``NotConfigured``) unless the setting
``KOPITIAM_FRONTIER`` (the Redis URL) is set, so a plain crawl is unchanged.

Settings: ``KOPITIAM_FRONTIER`` (redis://...), ``KOPITIAM_FRONTIER_PREFIX``,
``KOPITIAM_FRONTIER_WORKER`` (this worker's id), ``KOPITIAM_FRONTIER_SEED`` (this worker queues
the start URLs), ``KOPITIAM_LEASE_TIMEOUT`` (seconds). ``frontier_settings`` builds them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

logger = logging.getLogger(__name__)

SETTING = "KOPITIAM_FRONTIER"
# The Redis URL with its password travels in this environment variable, never in a setting:
# Scrapy logs every overridden setting (the setting holds the URL without credentials).
URL_ENV = "KOPITIAM_FRONTIER_URL"
LEASE_META = "frontier_lease"

# Pop the best request into this worker's lease hash (value: "<score>\n<encoded request>").
_LEASE = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
redis.call('HSET', KEYS[2], ARGV[1], r[2] .. '\\n' .. r[1])
return r[1]
"""

# Move the leases of workers whose alive key expired (or of ARGV[2], a worker closing) back to the
# queue; count them. ARGV[1] = key prefix.
_REQUEUE = """
local n = 0
for _, w in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'workers')) do
  if w == ARGV[2] or redis.call('EXISTS', ARGV[1] .. 'alive:' .. w) == 0 then
    local lk = ARGV[1] .. 'leases:' .. w
    local kv = redis.call('HGETALL', lk)
    for i = 2, #kv, 2 do
      local v = kv[i]
      local p = string.find(v, '\\n', 1, true)
      redis.call('ZADD', ARGV[1] .. 'requests', string.sub(v, 1, p - 1), string.sub(v, p + 1))
      n = n + 1
    end
    redis.call('DEL', lk)
  end
end
if n > 0 then redis.call('INCRBY', ARGV[1] .. 'requeued', n) end
return n
"""

# Done: seeded, nothing queued, no lease held by any worker. Sets the `done` flag.
_DONE = """
if redis.call('EXISTS', ARGV[1] .. 'done') == 1 then return 1 end
if redis.call('EXISTS', ARGV[1] .. 'seeded') == 0 then return 0 end
if redis.call('ZCARD', ARGV[1] .. 'requests') > 0 then return 0 end
for _, w in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'workers')) do
  if redis.call('HLEN', ARGV[1] .. 'leases:' .. w) > 0 then return 0 end
end
redis.call('SET', ARGV[1] .. 'done', 1)
return 1
"""

def frontier_prefix(source: str, crawl_id: str) -> str:
    """The key prefix of one crawl of one source."""
    return f"kopitiam:{source}:{crawl_id}:"


def redact_url(url: str) -> str:
    """``url`` without a user name or password (safe for logs and metrics)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (redis://HOST:PORT/DB), checked with a PING; errors name the URL."""
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"frontier {redact_url(url)!r}: expected redis://HOST:PORT/DB")
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConnectionError(f"frontier {redact_url(url)}: cannot reach Redis ({exc})") from None
    return client


def frontier_url(settings) -> str:
    """The worker's Redis URL: ``$KOPITIAM_FRONTIER_URL`` when set, else the setting."""
    return os.environ.get(URL_ENV) or settings.get(SETTING)


def frontier_settings(url: str, prefix: str, worker: str, *, seed: bool, lease_timeout: float) -> dict[str, str]:
    """Scrapy settings that make one ``scrapy crawl`` a worker of the shared frontier (the
    process also needs ``$KOPITIAM_FRONTIER_URL`` = ``url`` when it holds credentials)."""
    return {
        SETTING: redact_url(url), "KOPITIAM_FRONTIER_PREFIX": prefix, "KOPITIAM_FRONTIER_WORKER": worker,
        "KOPITIAM_FRONTIER_SEED": str(seed), "KOPITIAM_LEASE_TIMEOUT": str(lease_timeout),
        "SCHEDULER": "crawler.frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.frontier.LeasedPriorityQueue",
        "SCHEDULER_QUEUE_KEY": prefix + "requests", "SCHEDULER_DUPEFILTER_KEY": prefix + "dupefilter",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": "True",  # the queue outlives a worker: others (and a resumed run) go on
    }


class Frontier:
    """The Redis side of one crawl, for the crawl stage and the Scrapy components below."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self._requeue = client.register_script(_REQUEUE)
        self._done = client.register_script(_DONE)

    def key(self, name: str) -> str:
        return self.prefix + name

    def register(self, worker: str, lease_timeout: float) -> None:
        self.client.sadd(self.key("workers"), worker)
        self.heartbeat(worker, lease_timeout)

    def heartbeat(self, worker: str, lease_timeout: float) -> None:
        self.client.set(self.key(f"alive:{worker}"), 1, px=max(1, int(lease_timeout * 1000)))

    def requeue_expired(self, closing_worker: str = "") -> int:
        """Return the leases of dead workers (and of ``closing_worker``) to the queue."""
        return int(self._requeue(args=[self.prefix, closing_worker]))

    def done(self) -> bool:
        return bool(self._done(args=[self.prefix]))

    def started(self) -> bool:
        return bool(self.client.exists(self.key("seeded")))

    def queued(self) -> int:
        return int(self.client.zcard(self.key("requests")))

    def set_meta(self, **values: Any) -> None:
        self.client.hset(self.key("meta"), mapping={k: json.dumps(v) for k, v in values.items()})

    def meta(self) -> dict[str, Any]:
        raw = self.client.hgetall(self.key("meta"))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def store_item(self, worker: str, post_id: str, row: dict[str, Any]) -> bool:
        """Keep the first row per post id; count it for ``worker``. True when it was new."""
        new = bool(self.client.hsetnx(self.key("items"), post_id, json.dumps(row, default=str)))
        if new:
            self.client.hincrby(self.key(f"worker:{worker}"), "posts", 1)
        return new

    def iter_items(self, batch: int = 5000):
        """Every stored row (in Redis' hash order; callers sort)."""
        for _, value in self.client.hscan_iter(self.key("items"), count=batch):
            yield json.loads(value)

    def worker_stats(self) -> dict[str, dict[str, int]]:
        """Pages and posts per worker id, in worker id order."""
        out = {}
        for worker in sorted(w.decode() for w in self.client.smembers(self.key("workers"))):
            counts = self.client.hgetall(self.key(f"worker:{worker}"))
            out[worker] = {"pages": int(counts.get(b"pages", 0)), "posts": int(counts.get(b"posts", 0))}
        return out

    def requeued(self) -> int:
        return int(self.client.get(self.key("requeued")) or 0)

    def clear(self) -> int:
        """Delete every key of this crawl (after its output is written); returns how many."""
        keys = list(self.client.scan_iter(match=self.prefix.replace("*", r"\*") + "*", count=1000))
        return int(self.client.delete(*keys)) if keys else 0


def frontier_from_settings(settings) -> Frontier:
    return Frontier(connect(frontier_url(settings)), settings.get("KOPITIAM_FRONTIER_PREFIX"))


class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis' priority queue whose pop leases the request to this worker instead of
    removing it for good (see the module docstring); ``FrontierScheduler`` acknowledges."""

    def __init__(self, server, spider, key, serializer=None) -> None:
        super().__init__(server, spider, key, serializer)
        settings = spider.crawler.settings
        self.worker = settings.get("KOPITIAM_FRONTIER_WORKER")
        self.leases_key = settings.get("KOPITIAM_FRONTIER_PREFIX") + f"leases:{self.worker}"
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
