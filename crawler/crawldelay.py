# Downloader middleware: honour robots.txt `Crawl-delay` (Scrapy parses it but never applies it).
"""``CrawlDelayMiddleware``: a site's robots.txt ``Crawl-delay`` becomes its minimum download delay.

Scrapy 2.18+ parses the directive (``RobotParser.crawl_delay``) and announces each parsed
robots.txt with the ``robots_parsed`` signal, but applies the delay nowhere, and AutoThrottle
would lower a slot's delay again after each response. This middleware, placed after Scrapy's
``RobotsTxtMiddleware`` (so a site's robots.txt is parsed before its first request passes):

- on ``robots_parsed``: reads ``crawl_delay(user agent)`` and remembers it for the host
  (capped at ``KOPITIAM_ROBOTSTXT_CRAWL_DELAY_MAX`` seconds, logged);
- before each request and after each response (after AutoThrottle's adjustment): raises the
  download slot's delay to at least that value, so neither the default delay nor AutoThrottle
  goes faster than the site asks. Slower is always allowed.

Settings: ``ROBOTSTXT_OBEY`` (off: the middleware is off too), ``KOPITIAM_ROBOTSTXT_CRAWL_DELAY``
(default True), ``KOPITIAM_ROBOTSTXT_CRAWL_DELAY_MAX`` (default 60 s). Stats: ``kopitiam/crawl_delay/<host>``.
"""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from contracts import keys

logger = logging.getLogger(__name__)


class CrawlDelayMiddleware:
    def __init__(self, crawler, max_delay: float) -> None:
        self.crawler = crawler
        self.max_delay = max_delay
        self.delays: dict[str, float] = {}  # host -> seconds
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT")

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        if not (settings.getbool("ROBOTSTXT_OBEY") and settings.getbool(keys.CRAWL_DELAY, True)):
            raise NotConfigured
        mw = cls(crawler, settings.getfloat(keys.CRAWL_DELAY_MAX, 60.0))
        crawler.signals.connect(mw.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(mw.response_downloaded, signal=signals.response_downloaded)
        return mw

    def robots_parsed(self, robotparser, request) -> None:
        host = urlparse_cached(request).hostname or ""
        delay = robotparser.crawl_delay(self.user_agent)
        if not delay or delay <= 0:
            return
        if delay > self.max_delay:
            logger.warning("%s asks for Crawl-delay %.1f s; capped at KOPITIAM_ROBOTSTXT_CRAWL_DELAY_MAX=%.1f s",
                           host, delay, self.max_delay)
            delay = self.max_delay
        self.delays[host] = float(delay)
        self.crawler.stats.set_value(f"kopitiam/crawl_delay/{host}", float(delay))
        logger.info("robots.txt of %s: Crawl-delay %.1f s applied", host, delay)

    def _enforce(self, request) -> None:
        delay = self.delays.get(urlparse_cached(request).hostname or "")
        if not delay:
            return
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        if slot is None:  # first request of the host: the slot is created with this delay
            downloader.per_slot_settings.setdefault(key, {}).setdefault("delay", delay)
            downloader.per_slot_settings[key]["delay"] = max(downloader.per_slot_settings[key]["delay"], delay)
        elif slot.delay < delay:
            slot.delay = delay

    def process_request(self, request, spider=None):
        self._enforce(request)

    def response_downloaded(self, response, request, spider=None) -> None:
        self._enforce(request)
