# Downloader middleware: per-site politeness shared by every worker of a shared frontier.
"""``SharedSiteLimit``: a per-site token in Redis before each request (off unless ``KOPITIAM_FRONTIER``).

Each worker's Scrapy downloader throttles only itself, so N workers would hit a site N times
harder. Before every request a worker takes the site's token (a Lua script, atomic): at most
``CONCURRENT_REQUESTS_PER_DOMAIN`` requests in flight per site across all workers (a sorted set
of tokens that expire after ``DOWNLOAD_TIMEOUT`` + 30 s, so a killed worker's tokens lapse), and
consecutive requests at least the site's delay apart: the local download slot's delay, which
holds ``DOWNLOAD_DELAY``, AutoThrottle's current delay and robots.txt's Crawl-delay
(crawler/crawldelay.py runs just before). Times come from the Redis server's clock, so machines
need not agree on the time. Stats: ``frontier/site_waits``.
"""

from __future__ import annotations

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import reactor, task

from contracts import keys
from contracts.frontier import SETTING, Frontier
from crawler.frontier import frontier_from_settings

SITE_TOKEN_META = "frontier_site_token"

# A per-site token: returns 0 (taken) or the milliseconds to wait. KEYS: next-allowed time, in-flight
# set. ARGV: interval ms, concurrency limit, token, token lifetime ms.
_SITE_TOKEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 25 end
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < nxt then return nxt - now end
redis.call('SET', KEYS[1], now + tonumber(ARGV[1]), 'PX', 3600000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
return 0
"""


class SharedSiteLimit:
    """Downloader middleware: a per-site token in Redis before each request (see module docstring)."""

    def __init__(self, crawler, frontier: Frontier, worker: str) -> None:
        self.crawler, self.frontier, self.worker = crawler, frontier, worker
        settings = crawler.settings
        self.limit = max(1, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8))
        self.default_delay = settings.getfloat("DOWNLOAD_DELAY", 0.0)
        self.token_ms = int((settings.getfloat("DOWNLOAD_TIMEOUT", 180.0) + 30) * 1000)
        self._take = frontier.client.register_script(_SITE_TOKEN)
        self._count = 0

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get(SETTING):
            raise NotConfigured(f"{SETTING} is not set")
        mw = cls(crawler, frontier_from_settings(crawler.settings), crawler.settings.get(keys.FRONTIER_WORKER))
        # Every way out of the downloader (response, error, a redirect that replaces the request)
        # passes here, whereas process_response is skipped when a later middleware answers first.
        crawler.signals.connect(mw.request_left_downloader, signal=signals.request_left_downloader)
        return mw

    def _delay(self, request) -> float:
        downloader = self.crawler.engine.downloader
        slot = downloader.slots.get(downloader.get_slot_key(request))
        return slot.delay if slot is not None else self.default_delay

    async def process_request(self, request, spider=None):
        host = urlparse_cached(request).hostname or ""
        self._count += 1
        token = f"{self.worker}:{self._count}"
        keys = [self.frontier.key(f"site:{host}:next"), self.frontier.key(f"site:{host}:inflight")]
        while True:
            wait_ms = int(self._take(keys=keys, args=[int(self._delay(request) * 1000), self.limit, token,
                                                       self.token_ms]))
            if wait_ms <= 0:
                break
            self.crawler.stats.inc_value("frontier/site_waits")
            await maybe_deferred_to_future(task.deferLater(reactor, wait_ms / 1000, lambda: None))
        request.meta[SITE_TOKEN_META] = (keys[1], token)

    def _release(self, request) -> None:
        held = request.meta.pop(SITE_TOKEN_META, None)
        if held:
            self.frontier.client.zrem(*held)

    def request_left_downloader(self, request, spider=None) -> None:
        self._release(request)

    def process_exception(self, request, exception, spider=None):
        self._release(request)
