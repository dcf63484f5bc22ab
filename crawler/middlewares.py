# Downloader middlewares: HTTP behaviour that Scrapy's own components lack.
# RetryAfterMiddleware replaces Scrapy's RetryMiddleware (same settings: RETRY_TIMES,
# RETRY_HTTP_CODES) and honours the server's `Retry-After` header on 429/503 answers.
"""Retry with ``Retry-After`` honoured (seconds or an HTTP date), capped by ``RETRY_AFTER_MAX``."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet import reactor
from twisted.internet.task import deferLater

logger = logging.getLogger(__name__)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retry, but a response carrying ``Retry-After`` waits that long before its retry.

    A wait longer than ``RETRY_AFTER_MAX`` seconds is not honoured by hammering early: the request
    is given up (stats ``kopitiam/retry_after/too_long``).
    """

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 120.0)

    async def process_response(self, request, response, spider=None):
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        stats = self.crawler.stats if getattr(self, "crawler", None) else None
        if wait is not None:
            if wait > self.retry_after_max:
                logger.warning("%s asked to retry after %.0f s (> RETRY_AFTER_MAX %.0f s): giving up",
                               request.url, wait, self.retry_after_max)
                if stats:
                    stats.inc_value("kopitiam/retry_after/too_long")
                return response
            if stats:
                stats.inc_value("kopitiam/retry_after/honoured")
            logger.info("%s: %d, Retry-After %.1f s", request.url, response.status, wait)
            if wait > 0:
                await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
        return self._retry(request, response_status_message(response.status)) or response
