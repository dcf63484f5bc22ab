"""ForumSpider: what every forum-engine spider shares, so a new engine is a small subclass.

The base class owns the crawl logic: start URLs (boards or threads), following thread links and
pagination, the limits (``max_threads``, ``max_pages`` per thread, ``since``), host restriction,
positions, assembling ``PostItem``s and counting every skip and error in the crawl stats
(``forum/...`` keys, which the crawl stage copies into ``metrics/crawl/<source>.json``).

A subclass supplies the engine's markup: ``markup``, an ``EngineMarkup`` record (contracts.markup)
of what in a post body is not the poster's text (quotes and the ids they cite, signatures, "Click
to expand" links, smilies, @mentions; required: the crawl refuses to start without it, so quotes
never silently become training text; the feed exporter stores it in the raw file for the clean
stage), and these methods (all take a Scrapy response and use Scrapy's own selectors):

- ``recognise(response) -> list[str] | None`` (classmethod: the signals that a page is this engine's,
  for the engine-agnostic ``forum`` spider; crawler/recognise.py has the helpers)
- ``page_kind(response) -> "thread" | "board" | "index" | None`` (index: a list of boards)
- ``board_links(response) -> list[str]`` (boards listed on an index page; default none)
- ``thread_info(response) -> ThreadInfo`` (thread id, title, board, page number)
- ``posts(response) -> list[PostData]`` (one per post on the page, in page order)
- ``thread_links(response) -> list[str]`` (thread URLs on a board page, absolute or relative)
- ``thread_page_links(response) -> list[str]`` (other pages of this thread)
- ``board_next_page(response) -> str | None``
- ``thread_last_posts(response) -> dict[str, LastPost]`` (optional: the last post of each thread a
  board lists, so incremental re-crawls skip unchanged threads; see crawler/incremental.py)
- ``thread_id_from_url(url) -> str | None`` and ``canonical_thread_url(url) -> str`` (default:
  ``strip_session``)
- ``page_from_url(url) -> int | None`` (for ``max_pages``; offset pagination converts ``start=N``
  with ``posts_per_page``)

Pages reach the hooks through ``parseable`` (control characters lxml refuses in names replaced),
so a damaged page does not make a selector raise; whatever a callback still raises is counted by
the spider middleware ``crawler.guard.CallbackErrors``.

Helpers a subclass calls: ``local_date(text)`` (a date shown as local-time text, read in the
``timezone`` and ``date_order`` arguments, relative ones against the fetch time;
``parse_local_date`` does the work), ``strip_session(url)``
(drops the class's ``SESSION_PARAMS`` and the fragment; applied to every link the base class
follows), ``inc(key)`` (a ``forum/<key>`` stat; ``errors/...`` keys reach the crawl metrics).

Arguments (``-a name=value``): ``start_url`` (comma-separated URLs), ``max_threads`` (0 = no
limit), ``max_pages`` (per thread, 0 = no limit), ``since`` (ISO date or time; older posts are
skipped, and so are threads a board lists with an older last post, and the board's later pages
once a whole page is older), ``source`` (the value of the items' ``source`` field; default: the spider name),
``posts_per_page`` (for positions when a page does not number its posts, and for offset
pagination), ``timezone`` (the forum's display zone for local-time dates, default UTC),
``date_order`` (``MDY`` default, ``DMY``, ``YMD``). Unknown arguments are an error naming them.
A post whose date cannot be read is kept and counted by ``crawler.pipelines.PostDatePipeline``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any, ClassVar, Iterator
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser
import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse
from w3lib.url import url_query_cleaner

from contracts import keys
from contracts.markup import EngineMarkup
from contracts.timestamps import to_utc
from crawler.incremental import SETTING as INCREMENTAL_SETTING
from crawler.incremental import LastPost, ThreadIndex
from crawler.items import PostItem


@dataclass
class ThreadInfo:
    thread_id: str | None
    title: str | None
    board: str | None
    page: int


@dataclass
class PostData:
    """What an engine extracts from one post's markup; the base class completes the item."""

    post_id: str | None
    author: str | None = None
    posted_at: datetime | None = None
    body: str | None = None
    url: str | None = None
    position: int | None = None  # 0-based, when the page numbers its posts
    quoted_post_ids: list[str] = field(default_factory=list)


def parse_since(value: str | None) -> datetime | None:
    """``since`` argument: an ISO date (``2025-01-01``) or time; naive values are UTC."""
    if value in (None, "", "None"):
        return None
    try:
        return to_utc(str(value), "since")
    except ValueError as exc:
        raise ValueError(f"spider argument since={value!r}: expected an ISO date such as "
                         f"2025-01-01 or 2025-01-01T08:00:00+08:00") from exc


# Where a date starts in a post header's text: numeric (03-04-2011, 03.04.2011, 2011/04/03), with a
# month name (30th Apr 2011, April 30th, 2011) or relative (Today, Yesterday, Heute, Gestern,
# "5 minutes ago", "Just now", "vor 5 Minuten").
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_UNIT = r"(?:sec|second|min|minute|hr|hour|day|week|month|year)s?"
DATE_LIKE_RE = re.compile(
    r"\d{1,4}[./-]\d{1,2}[./-]\d{2,4}"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    r"|\b(?:today|yesterday|heute|gestern|just now)\b"
    rf"|\b(?:\d+|an?|one)\s+{_UNIT}\s+ago\b|\bvor\s+(?:\d+|einer?)\s+\w+"
    r"|\b(?:a\s+)?moments?\s+ago\b", re.I)
MOMENT_RE = re.compile(r"\b(?:a\s+)?moments?\s+ago\b", re.I)  # XenForo's "A moment ago": dateparser reads "just now"
DATE_ORDERS = ("MDY", "DMY", "YMD")
DATE_TEXT_MAX = 64  # characters from the first date-like token that parse_local_date reads


def parse_local_date(text: str, timezone: str = "UTC", date_order: str = "MDY",
                     now: datetime | None = None) -> datetime | None:
    """A post date shown as local-time text ("03-03-2011, 02:17 PM", "30th Apr 2011, 17:10",
    "Today, 09:12", "Yesterday at 10:02 PM", "5 minutes ago") -> an aware UTC datetime, or None
    when the text holds no date.

    Text before the first date-like token (a post number, an icon's alt text) is ignored, and so
    is anything past ``DATE_TEXT_MAX`` characters from it. The
    text is read in the forum's ``timezone`` (an IANA name, so each date gets the offset that was
    in force on that day, daylight saving included) and ``date_order`` for numeric dates; dotted
    dates (03.04.2011) are always day first. Relative dates count back from ``now`` (the fetch
    time, aware; default: the clock now) as the forum's clock showed it. dateparser (maintained;
    ~200 locales, relative days, 12/24-hour clocks) does the reading.
    """
    text = " ".join(text.replace("\xa0", " ").split())
    match = DATE_LIKE_RE.search(text)
    if not match:
        return None
    # a date is short: what follows it on a damaged page (a whole post, when tags are lost) only
    # slows dateparser down (seconds per call on a long text)
    text = MOMENT_RE.sub("just now", text[match.start():match.start() + DATE_TEXT_MAX])
    order = "DMY" if re.match(r"\d{1,2}\.\d{1,2}\.\d{2,4}", text) else date_order
    settings = {"TIMEZONE": timezone, "TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True,
                "DATE_ORDER": order, "PREFER_DAY_OF_MONTH": "first",
                "RELATIVE_BASE": _local_clock(now or datetime.now(dt_timezone.utc), timezone)}
    return dateparser.parse(text, settings=settings)


def _local_clock(now: datetime, zone: str) -> datetime:
    """``now`` as the naive wall-clock time of ``zone`` (an IANA name or a UTC offset), which is
    how dateparser takes the base of relative dates."""
    try:
        return now.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    except (ZoneInfoNotFoundError, ValueError):
        offset = dateparser.parse("2000-01-01 00:00 " + zone, settings={"RETURN_AS_TIMEZONE_AWARE": True})
        if offset is None or offset.tzinfo is None:
            raise ValueError(f"unknown time zone {zone!r}") from None
        return now.astimezone(offset.tzinfo).replace(tzinfo=None)


# C0 control characters but tab, newlines and form feed: lxml keeps them in the tag and attribute
# names it parses, then refuses such a name when asked for it (ValueError from ``Selector.attrib``, which
# reads every attribute of an element, and from serialising the element); in HTML they are parse
# errors a browser shows as U+FFFD or drops. Replacing them once, before any selector runs, makes
# every read of a page safe (``.attrib``, ``::attr()``, ``.get()``), so spiders need no guarded readers.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def parseable(response: Response) -> Response:
    """``response`` with control characters replaced by U+FFFD (re-encoded as UTF-8), so no selector
    on a damaged page raises; the response itself when it has none (nearly always). The base class's
    callbacks pass every page through it before the engine's hooks see it."""
    if not isinstance(response, TextResponse):
        return response
    text = response.text
    if not CONTROL_RE.search(text):
        return response
    return response.replace(body=CONTROL_RE.sub("\ufffd", text).encode("utf-8"), encoding="utf-8")


def fragment(html: str) -> Selector:
    """A selector over an HTML fragment from a JSON answer (a post's ``cooked`` / ``content``), its
    control characters replaced as ``parseable`` does for pages (JSON escapes can carry them)."""
    return Selector(text=CONTROL_RE.sub("\ufffd", html))


def strip_params(url: str, params: tuple[str, ...]) -> str:
    """``url`` without the query parameters ``params`` (session ids) and without a fragment."""
    return url_query_cleaner(url, params, remove=True, keep_fragments=False)


def parse_limit(name: str, value: Any) -> int:
    """A non-negative integer argument (0 = no limit), with an error naming the argument."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"spider argument {name}={value!r}: expected a whole number >= 0 "
                         f"(0 = no limit)") from None
    if number < 0:
        raise ValueError(f"spider argument {name}={value!r}: must be >= 0 (0 = no limit)")
    return number


class ForumSpider(scrapy.Spider):
    """Base class for forum engines (no ``name``: Scrapy does not list it as a spider)."""

    #: Arguments every forum spider accepts (name -> meaning); subclasses may extend the dict.
    ARGUMENTS: ClassVar[dict[str, str]] = {
        "start_url": "board or thread URL(s), comma-separated",
        "max_threads": "most threads to crawl (0 = no limit)",
        "max_pages": "most pages per thread (0 = no limit)",
        "since": "skip posts older than this ISO date/time",
        "source": "value of the items' source field (default: spider name)",
        "posts_per_page": "posts per thread page, for positions when posts are not numbered",
        "timezone": "the forum's display time zone for local-time dates (IANA name or UTC offset, "
                    "default UTC)",
        "date_order": "order of numeric dates: MDY (default), DMY or YMD",
    }
    #: Query parameters that carry a session id (e.g. vBulletin's ``s``): removed from every link
    #: by ``strip_session`` so that each page has one URL (and one request fingerprint).
    SESSION_PARAMS: ClassVar[tuple[str, ...]] = ()
    #: The engine's body markup (quotes, signatures, ...): stored in the raw file, read by clean.
    markup: ClassVar[EngineMarkup | None] = None

    def __init__(self, start_url: str | None = None, max_threads: Any = 0, max_pages: Any = 0,
                 since: str | None = None, source: str | None = None,
                 posts_per_page: Any = None, timezone: str = "UTC", date_order: str = "MDY",
                 **kwargs: Any) -> None:
        if not isinstance(self.markup, EngineMarkup):
            raise ValueError(f"spider {self.name!r}: no markup record: set the class attribute "
                             f"markup = EngineMarkup(...) (contracts.markup) naming this engine's quote, "
                             f"signature and expander classes; see docs/adding-a-source.md")
        unknown = sorted(set(kwargs) - set(self.ARGUMENTS) - {"name"})
        if unknown:
            raise ValueError(f"spider {self.name!r}: unknown argument(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(self.ARGUMENTS))}")
        super().__init__(**{k: v for k, v in kwargs.items() if k == "name"})
        urls = [u.strip() for u in (start_url or "").split(",") if u.strip()]
        # Built without start_url (as `scrapy check` does: its contracts supply fixture URLs) the
        # spider can parse pages but not start a crawl (``start`` raises); an empty one is a mistake.
        if start_url is not None and not urls:
            raise ValueError(f"spider {self.name!r}: start_url is required "
                             f"(-a start_url=URL[,URL...], a board or a thread)")
        for url in urls:
            parts = urlparse(url)
            if not (parts.scheme in ("http", "https") and parts.netloc or parts.scheme == "file"):
                raise ValueError(f"spider {self.name!r}: start_url {url!r} is not an http(s) URL")
        self.start_urls = urls
        self.max_threads = parse_limit("max_threads", max_threads)
        self.max_pages = parse_limit("max_pages", max_pages)
        self.since = parse_since(since)
        self.source = source or self.name
        self._posts_per_page = parse_limit("posts_per_page", posts_per_page) if posts_per_page else None
        # Only the start URLs' hosts (with their ports) are followed; OffsiteMiddleware also gets
        # the host names, for redirects.
        # no start URL: only file:// links (netloc "") are followed, i.e. fixtures
        self.allowed_netlocs = {urlparse(u).netloc for u in urls} or {""}
        self.allowed_domains = sorted({urlparse(u).hostname for u in urls if urlparse(u).hostname})
        if str(date_order).upper() not in DATE_ORDERS:
            raise ValueError(f"spider {self.name!r}: date_order={date_order!r}: expected "
                             f"{', '.join(DATE_ORDERS)}")
        self.timezone, self.date_order = str(timezone), str(date_order).upper()
        try:
            parse_local_date("01-01-2011, 10:00 AM", self.timezone)
        except Exception as exc:  # dateparser/pytz raise their own types for an unknown zone
            raise ValueError(f"spider {self.name!r}: timezone={timezone!r} is not a time zone "
                             f"(e.g. Asia/Singapore, +08:00, UTC): {exc}") from None
        self.threads_seen: set[str] = set()
        self.thread_limit_hit = False
        self.pages_skipped: set[str] = set()

    @property
    def posts_per_page(self) -> int:
        if self._posts_per_page:
            return self._posts_per_page
        return self.settings.getint(keys.POSTS_PER_PAGE, 20) if hasattr(self, "settings") else 20

    # ---- engine hooks (override in a subclass) ---------------------------------------------
    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The signals on ``response`` (any page a start URL answers: thread, board, index, JSON)
        that it was rendered by this engine, or None. The ``forum`` spider asks every engine and
        continues as the one with the most signals. None unless the answer itself (markup, text,
        headers, JSON shape) shows the engine: URL routes only add to the signals
        (``crawler.recognise.recognised``). Never raises (the helpers in crawler/recognise.py don't)."""
        return None

    def page_kind(self, response: Response) -> str | None:
        raise NotImplementedError

    def board_links(self, response: Response) -> list[str]:
        return []

    def thread_info(self, response: Response) -> ThreadInfo:
        raise NotImplementedError

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Board page: thread id -> its last post as listed (for incremental re-crawls; default none)."""
        return {}

    @property
    def thread_index(self) -> ThreadIndex | None:
        """The previous crawl's threads (``KOPITIAM_INCREMENTAL_STATE``), or None: fetch everything."""
        if not hasattr(self, "_thread_index"):
            path = self.settings.get(INCREMENTAL_SETTING) if hasattr(self, "settings") else None
            self._thread_index = ThreadIndex.load(path)
        return self._thread_index

    def posts(self, response: Response) -> list[PostData]:
        raise NotImplementedError

    def thread_links(self, response: Response) -> list[str]:
        raise NotImplementedError

    def thread_page_links(self, response: Response) -> list[str]:
        raise NotImplementedError

    def board_next_page(self, response: Response) -> str | None:
        raise NotImplementedError

    def thread_id_from_url(self, url: str) -> str | None:
        raise NotImplementedError

    def canonical_thread_url(self, url: str) -> str:
        return self.strip_session(url)

    # ---- shared helpers for engine hooks -----------------------------------------------------
    def local_date(self, text: str, now: datetime | None = None) -> datetime | None:
        """A date shown as local-time text, read in this crawl's ``timezone`` and ``date_order``;
        relative dates ("5 minutes ago", "Yesterday at 10:02 PM") count back from ``now`` (default:
        the clock now, moments after the page was fetched)."""
        return parse_local_date(text, self.timezone, self.date_order, now)

    def strip_session(self, url: str) -> str:
        """``url`` without the engine's ``SESSION_PARAMS`` and without a fragment; the base class
        applies it to every link it follows (boards, thread pages, next pages)."""
        if not self.SESSION_PARAMS:  # leave the query exactly as the site wrote it
            return url.split("#", 1)[0]
        return strip_params(url, self.SESSION_PARAMS)

    def links_by_css(self, response: Response, css: str) -> list[str]:
        """Absolute links selected by ``css`` (an ``::attr(href)`` query), session ids stripped,
        ``javascript:`` and in-page ``#`` links left out, duplicates dropped, first seen first."""
        links = [self.strip_session(response.urljoin(h)) for h in response.css(css).getall()
                 if h and not h.startswith(("javascript:", "#"))]
        return list(dict.fromkeys(links))

    def page_from_url(self, url: str) -> int | None:
        return None

    # ---- crawl logic -------------------------------------------------------------------------
    def inc(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"forum/{key}", n)

    async def start(self):
        if not self.start_urls:
            raise ValueError(f"spider {self.name!r}: start_url is required "
                             f"(-a start_url=URL[,URL...], a board or a thread)")
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """A start URL: dispatch on what the page is."""
        response = parseable(response)
        kind = self.page_kind(response)
        if kind == "thread":
            thread_id = self.thread_info(response).thread_id
            if thread_id:
                self._claim_thread(thread_id)
            yield from self.parse_thread(response)
        elif kind == "board":
            yield from self.parse_board(response)
        elif kind == "index":
            self.inc("pages/index")
            for link in self.board_links(response):
                url = self.strip_session(response.urljoin(link))
                if self._allowed(url):
                    yield scrapy.Request(url, callback=self.parse_board)
        else:
            self.inc("errors/unknown_page")
            self.logger.error("%s is neither a board nor a thread page of a %s forum: skipped",
                              response.url, self.name)

    def _allowed(self, url: str) -> bool:
        if urlparse(url).netloc in self.allowed_netlocs:
            return True
        self.inc("skipped/offsite")
        self.logger.debug("not following %s: outside the start URLs' hosts", url)
        return False

    def _claim_thread(self, thread_id: str) -> bool:
        """Reserve a thread under ``max_threads``; False when it was seen or the limit is hit."""
        if thread_id in self.threads_seen:
            return False
        if self.max_threads and len(self.threads_seen) >= self.max_threads:
            self.thread_limit_hit = True
            self.inc("skipped/max_threads")
            return False
        self.threads_seen.add(thread_id)
        self.inc("threads")
        return True

    def parse_board(self, response: Response) -> Iterator[scrapy.Request]:
        self.inc("pages/board")
        response = parseable(response)
        links = self.thread_links(response)
        if not links:
            self.inc("errors/board_without_threads")
            self.logger.warning("board page %s lists no threads", response.url)
        last_posts = self.thread_last_posts(response) if (self.thread_index or self.since) else {}
        stale = 0  # threads whose last post is older than `since`: nothing to read there
        for link in links:
            url = self.canonical_thread_url(response.urljoin(link))
            thread_id = self.thread_id_from_url(url)
            if thread_id is None:
                self.inc("errors/thread_link_without_id")
                self.logger.warning("board %s: no thread id in link %s", response.url, url)
                continue
            last = last_posts.get(thread_id)
            if self.since and last and last.posted_at and last.posted_at < self.since:
                stale += 1
                self.inc("skipped/thread_before_since")
                continue
            if self.thread_index and self.thread_index.unchanged(thread_id, last_posts.get(thread_id)):
                self.inc("skipped/unchanged")  # incremental re-crawl: nothing new since last time
                continue
            if self._allowed(url) and self._claim_thread(thread_id):
                yield scrapy.Request(url, callback=self.parse_thread)
        next_page = self.board_next_page(response)
        # Boards list threads by latest activity: once a whole page is older than `since`, so is
        # every later page.
        if next_page and self.since and links and stale == len(links):
            self.inc("skipped/board_pages_before_since")
            next_page = None
        if next_page and not self.thread_limit_hit:
            url = self.strip_session(response.urljoin(next_page))
            if self._allowed(url):
                yield scrapy.Request(url, callback=self.parse_board)

    def parse_thread(self, response: Response) -> Iterator[Any]:
        self.inc("pages/thread")
        response = parseable(response)
        info = self.thread_info(response)
        if not info.thread_id:
            self.inc("errors/thread_without_id")
            self.logger.error("thread page %s: no thread id found; page skipped", response.url)
            return
        posts = self.posts(response)
        if not posts:
            self.inc("errors/page_without_posts")
            self.logger.error("thread page %s: no posts found (broken or unexpected markup)",
                              response.url)
        yield from self._post_items(response, info, posts)
        yield from self._thread_page_requests(response, info)

    def _post_items(self, response: Response, info: ThreadInfo, posts: list[PostData]) -> Iterator[PostItem]:
        fetched_at = datetime.now(dt_timezone.utc)
        for index, post in enumerate(posts):
            if not post.post_id:
                self.inc("errors/post_without_id")
                self.logger.error("thread page %s: post #%d has no id; skipped", response.url, index)
                continue
            if post.body is None:
                self.inc("errors/post_without_body")
                self.logger.warning("post %s on %s: no body found", post.post_id, response.url)
            if self.since and post.posted_at and post.posted_at < self.since:
                self.inc("skipped/before_since")
                continue
            position = post.position
            if position is None:
                position = (info.page - 1) * self.posts_per_page + index
            self.inc("posts")
            yield PostItem(
                source=self.source, url=post.url or f"{response.url}#post-{post.post_id}",
                board=info.board, thread_id=info.thread_id, thread_title=info.title,
                page=info.page, position=position, post_id=post.post_id, author=post.author,
                posted_at=post.posted_at, body=post.body, body_format="html",
                quoted_post_ids=list(post.quoted_post_ids), fetched_at=fetched_at,
            )

    def _thread_page_requests(self, response: Response, info: ThreadInfo) -> Iterator[scrapy.Request]:
        # incremental re-crawl of a changed thread: pages before the one that held its last known
        # post are unchanged; only that page and later ones are fetched again
        resume_page = self.thread_index.resume_page(info.thread_id) if self.thread_index else None
        for link in self.thread_page_links(response):
            url = self.strip_session(response.urljoin(link))
            page = self.page_from_url(url) or 1
            if resume_page and page < resume_page:
                continue
            if self.max_pages and page > self.max_pages:
                if url not in self.pages_skipped:
                    self.pages_skipped.add(url)
                    self.inc("skipped/max_pages")
                continue
            if self._allowed(url):
                yield scrapy.Request(url, callback=self.parse_thread)
