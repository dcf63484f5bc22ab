"""JsonForumSpider: what the spiders of forums read through a JSON API share (Discourse, NodeBB, Flarum).

Such an engine keeps ``ForumSpider``'s arguments, limits, stats and markup record, but has its own
``start`` (page URLs mapped to API routes) and ``parse`` (dispatch on the JSON document's shape);
NodeBB's and Flarum's posts go through the base class's item assembly (``PostData`` +
``ThreadInfo``: ``since``, positions, counting), Discourse assembles a topic's items once all its
chunks are in (its quotes name post numbers, mapped to ids through the whole topic). Helpers here:
``load_json`` (a counted, logged error on anything that is not a JSON object), ``utc`` (ISO strings
and epoch milliseconds), ``site`` (scheme and host), ``wanted_thread`` (the ``since`` / incremental
/ ``max_threads`` rules of a listing's row), ``quote_lead_ids`` (quoted post ids in the links of a
quote's lead paragraph or its own links), ``obj`` and ``rows`` (a JSON value as the object or list
of objects the API documents, else empty: an answer of the wrong shape reads as missing data, never
as an exception), ``guarded`` (what a callback yields; an unforeseen exception is counted
``errors/parse_failed`` and logged with the URL) and ``api_request`` (its errback ``failed`` counts
a request that got no answer: ``errors/page_failed``).
The ``ForumSpider`` HTML hooks (``page_kind`` ...) are not used by these spiders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from contracts.timestamps import to_utc
from crawler.incremental import LastPost
from crawler.spiders.forum import ForumSpider, fragment


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def rows(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (other members dropped); [] when ``value`` is no list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class JsonForumSpider(ForumSpider):
    """Base class of the JSON API spiders (no ``name``: Scrapy does not list it)."""

    def api_request(self, url: str, meta: dict[str, Any] | None = None) -> scrapy.Request:
        """A request of an API route, answered by ``parse``; a failure is counted by ``failed``."""
        return scrapy.Request(url, callback=self.parse, errback=self.failed, meta=meta or {})

    def failed(self, failure: Failure) -> None:
        """A request that got no usable answer (an HTTP error after the retries, a timeout): what
        it would have brought is missing, so it is counted (``errors/page_failed``) and logged with
        the URL. The posts of a topic's other pages are kept: each page is yielded on its own."""
        request = getattr(failure, "request", None)
        why = (f"HTTP {failure.value.response.status}" if failure.check(HttpError)
               else f"{failure.type.__name__}: {failure.getErrorMessage()}")
        self.inc("errors/page_failed")
        self.logger.error("%s: %s; what it holds is missing from this crawl",
                          request.url if request is not None else "a request", why)

    def guarded(self, response: Response, results: Iterable[Any]) -> Iterator[Any]:
        """``results`` as they come; an exception the spider did not foresee ends them, counted
        (``errors/parse_failed``) and logged with the URL, instead of escaping the callback."""
        try:
            yield from results
        except Exception as exc:  # a document of a shape nobody foresaw: lose this page, not the crawl
            self.inc("errors/parse_failed")
            self.logger.error("%s: could not read the answer (%s: %s); the rest of this page is skipped",
                              response.url, type(exc).__name__, exc)

    def load_json(self, response: Response) -> dict[str, Any] | None:
        """The response's JSON object, or None (counted ``errors/bad_json``, logged with the URL)."""
        try:
            data = json.loads(response.text)
        except (ValueError, AttributeError) as exc:
            self.inc("errors/bad_json")
            self.logger.error("%s: not JSON (%s): skipped; is this a %s site's API?", response.url, exc, self.name)
            return None
        if not isinstance(data, dict):
            self.inc("errors/bad_json")
            self.logger.error("%s: expected a JSON object, got %s", response.url, type(data).__name__)
            return None
        return data

    def utc(self, value: Any, where: str) -> datetime | None:
        """An ISO time or epoch milliseconds (int) -> aware UTC; None (counted) when unreadable."""
        if value in (None, ""):
            return None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return datetime.fromtimestamp(value / 1000, tz=UTC)
            return to_utc(str(value), where)
        except (ValueError, OverflowError, OSError):
            self.inc("errors/bad_time")
            self.logger.warning("%s: unreadable time %r", where, value)
            return None

    @staticmethod
    def site(response: Response) -> str:
        parts = urlparse(response.url)
        return f"{parts.scheme}://{parts.netloc}"

    def wanted_thread(self, thread_id: str, last: LastPost) -> str:
        """What to do with a listed thread: ``"fetch"``, ``"stale"`` (last post before ``since``),
        ``"unchanged"`` (incremental re-crawl) or ``"seen"`` (already claimed, or ``max_threads``)."""
        if self.since and last.posted_at and last.posted_at < self.since:
            self.inc("skipped/thread_before_since")
            return "stale"
        if self.thread_index and self.thread_index.unchanged(thread_id, last):
            self.inc("skipped/unchanged")
            return "unchanged"
        return "fetch" if self._claim_thread(thread_id) else "seen"

    @staticmethod
    def quote_lead_ids(html: str, pattern: re.Pattern[str], own_id: str, inside: str = "") -> list[str]:
        """Post ids the top-level ``<blockquote>``s of ``html`` cite: ``pattern`` (group 1: the id) on
        the ``data-id`` or ``href`` of the links of the paragraph right before each quote, or of the
        quote's own links selected by XPath ``inside`` (relative to the quote)."""
        if not html:
            return []
        ids: list[str] = []
        for quote in fragment(html).xpath("//blockquote[not(ancestor::blockquote)]"):
            links = quote.xpath(inside) if inside else quote.xpath("preceding-sibling::*[1][self::p]//a")
            for link in links:
                for value in (link.attrib.get("data-id", ""), link.attrib.get("href", "")):
                    match = pattern.search(value)
                    if match and match.group(1) != own_id and match.group(1) not in ids:
                        ids.append(match.group(1))
                        break
        return ids
