"""The shared crawl frontier's Redis layout and client: what the crawl stage
(pipeline/crawlworkers.py) and the crawler's workers (crawler/frontier.py, frontierworker.py,
sitelimit.py) agree on about one crawl in Redis. Needs only the ``redis`` client, not Scrapy.

Keys start with ``kopitiam:<source>:<crawl id>:`` (``frontier_prefix``), so two sources or two
crawls never mix: ``requests`` (scrapy-redis' priority queue), ``dupefilter``,
``leases:<worker>`` (hash: lease id -> "<score>\n<encoded request>"), ``alive:<worker>``
(heartbeat with a TTL of the lease timeout), ``workers`` (set), ``worker:<worker>`` (pages,
posts), ``items`` (post id -> JSON row, first write wins), ``meta`` (spider, args, settings,
incremental index, for ``--join`` workers), ``seeded``, ``done``, ``requeued``,
``site:<host>:next|inflight`` (shared politeness). The Lua scripts build some key names at run
time, so one Redis server (not a Redis Cluster) holds a crawl.

The worker's Redis URL travels in ``$KOPITIAM_FRONTIER_URL`` (it may hold a password, and Scrapy
logs its settings); the setting ``KOPITIAM_FRONTIER`` holds the URL without credentials and
switches the worker components on.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from contracts import keys

SETTING = keys.FRONTIER
URL_ENV = keys.FRONTIER_URL_ENV

# Move the leases of workers whose alive key expired (or of ARGV[2], a worker closing) back to the
# queue; return how many; count the expired ones (not a closing worker's) in `requeued`.
# ARGV[1] = key prefix.
_REQUEUE = """
local expired = 0
local n = 0
for _, w in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'workers')) do
  local dead = redis.call('EXISTS', ARGV[1] .. 'alive:' .. w) == 0
  if w == ARGV[2] or dead then
    local lk = ARGV[1] .. 'leases:' .. w
    local kv = redis.call('HGETALL', lk)
    for i = 2, #kv, 2 do
      local v = kv[i]
      local p = string.find(v, '\\n', 1, true)
      redis.call('ZADD', ARGV[1] .. 'requests', string.sub(v, 1, p - 1), string.sub(v, p + 1))
      n = n + 1
      if w ~= ARGV[2] then expired = expired + 1 end
    end
    redis.call('DEL', lk)
  end
end
if expired > 0 then redis.call('INCRBY', ARGV[1] .. 'requeued', expired) end
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

# Store a post's row unless its id is stored, and count it for the worker, as one step: a worker
# killed between two separate calls would leave a stored post that no worker counted.
# KEYS[1] = items hash, KEYS[2] = the worker's counts; ARGV[1] = post id, ARGV[2] = row (JSON).
_STORE_ITEM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'posts', 1)
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


def frontier_settings(url: str, prefix: str, worker: str, *, seed: bool, lease_timeout: float) -> dict[str, str]:
    """Scrapy settings that make one ``scrapy crawl`` a worker of the shared frontier (the
    process also needs ``$KOPITIAM_FRONTIER_URL`` = ``url`` when it holds credentials)."""
    return {
        SETTING: redact_url(url), keys.FRONTIER_PREFIX: prefix, keys.FRONTIER_WORKER: worker,
        keys.FRONTIER_SEED: str(seed), keys.LEASE_TIMEOUT: str(lease_timeout),
        "SCHEDULER": "crawler.frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.frontier.LeasedPriorityQueue",
        "SCHEDULER_QUEUE_KEY": prefix + "requests", "SCHEDULER_DUPEFILTER_KEY": prefix + "dupefilter",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": "True",  # the queue outlives a worker: others (and a resumed run) go on
    }


class Frontier:
    """The Redis side of one crawl, for the crawl stage and the workers' Scrapy components."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self._requeue = client.register_script(_REQUEUE)
        self._done = client.register_script(_DONE)
        self._store_item = client.register_script(_STORE_ITEM)

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
        """Keep the first row per post id and count it for ``worker``, atomically. True when it was new."""
        return bool(self._store_item(keys=[self.key("items"), self.key(f"worker:{worker}")],
                                     args=[post_id, json.dumps(row, default=str)]))

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
