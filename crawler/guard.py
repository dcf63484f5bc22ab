# Spider middleware: the net under every spider callback (settings.SPIDER_MIDDLEWARES).
"""``CallbackErrors``: an exception a spider callback raises becomes a counted, logged error.

Without it Scrapy logs "Spider error processing <url>" and loses the rest of the page's output,
with no ``forum/...`` count, so a page the markup rules did not foresee (damaged bytes, a theme's
odd tag) vanishes from the crawl metrics' error counts. With it, for any spider (engines added
later included): the items and requests the callback yielded before the exception are kept (Scrapy
has already passed them on), the rest of that page's output is lost, and the failure is counted as
``forum/errors/callback_exception`` (so it reaches ``errors`` in metrics/crawl/<source>.json) and
logged at ERROR with the URL, the callback and the traceback. The crawl goes on.

Left to the rest of Scrapy: ``HttpError`` (HttpErrorMiddleware counts ignored responses) and
``CloseSpider`` (a deliberate stop).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.exceptions import CloseSpider
from scrapy.spidermiddlewares.httperror import HttpError

logger = logging.getLogger(__name__)

STAT = "forum/errors/callback_exception"


def callback_name(response: Any, spider: Any) -> str:
    """The name of the callback that handled ``response`` (``parse`` when the request names none)."""
    request = getattr(response, "request", None)
    callback = getattr(request, "callback", None) if request is not None else None
    return getattr(callback, "__name__", None) or "parse"


class CallbackErrors:
    """Spider middleware: count and log a callback's exception with its URL, keep crawling."""

    def __init__(self, crawler: Any) -> None:
        self.crawler, self.stats = crawler, crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> CallbackErrors:
        return cls(crawler)

    def process_spider_exception(self, response: Any, exception: BaseException, spider: Any = None):
        if isinstance(exception, (HttpError, CloseSpider)):
            return None  # not a failure of the spider's code: Scrapy's own handling applies
        self.stats.inc_value(STAT)
        name = getattr(spider or getattr(self.crawler, "spider", None), "name", "?")
        logger.error("%s: spider %s's %s callback raised %s: %s; the page's remaining output is lost "
                     "(counted as %s)", getattr(response, "url", "?"), name, callback_name(response, spider),
                     type(exception).__name__, str(exception)[:300], STAT,
                     exc_info=(type(exception), exception, exception.__traceback__))
        return []
