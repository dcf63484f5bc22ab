"""Spider ``articles``: essay and blog sites -> one item per article (main text, title, date).

Two ways in, combinable:

- index pages (``start_url``): article links are taken from the page's main content (``link_css``,
  default the first of ``main``, ``[role=main]``, ``#content``, ``.content``, ``body`` that exists),
  restricted to the index's host, to ``article_pattern`` when given, and never to navigation
  pages (tag, category, login, feed... as judged by courlan); the index's ``rel=next`` pagination
  is followed up to ``max_index_pages``;
- sitemaps (``sitemap_url``: sitemap.xml, sitemap index or robots.txt URLs) through Scrapy's own
  ``SitemapSpider``; entries older than ``since`` (by ``<lastmod>``) are not fetched.

Article pages go to trafilatura (a maintained main-content extractor, also used for the CommonCrawl
corpora behind many LLM datasets) for the main text, title, author and date: no hand-written
boilerplate heuristics. ``body`` is the extracted plain text (``body_format = "text"``), the title
``thread_title``, the site's host ``board``; ``thread_id = post_id = host + path``.
Articles with less than ``min_chars`` of text are counted (``kopitiam/articles/skipped_short``)
and skipped; a page trafilatura cannot read is counted under ``kopitiam/articles/no_text``.

Usage::

    scrapy crawl articles -a start_url=https://blog.example.com/ -a article_pattern=/\\d{4}/ -O out.parquet
    scrapy crawl articles -a sitemap_url=https://blog.example.com/sitemap.xml -a since=2020-01-01
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, AsyncIterator, Iterable, Iterator
from urllib.parse import urlparse

import courlan
import scrapy
import trafilatura
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import SitemapSpider
from w3lib.url import url_query_cleaner

from contracts.timestamps import to_utc
from crawler.items import PostItem
from crawler.spiders.forum import parse_limit, parse_since

MAIN_CSS = ("main", "[role=main]", "#content", ".content", "body")
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # trafilatura/htmldate: keep the time and offset when present


def _urls(value: str | None) -> list[str]:
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def article_id(url: str) -> str:
    """host + path without trailing slash: stable, readable, unique per site."""
    parts = urlparse(url)
    return f"{parts.netloc}{parts.path.rstrip('/') or '/'}"


def extract_article(html: str, url: str) -> dict[str, Any] | None:
    """trafilatura's main text and metadata of an article page (None when it finds no text)."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, date_extraction_params={"outputformat": DATE_FORMAT})
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    return data if (data.get("text") or "").strip() else None


class ArticlesSpider(SitemapSpider):
    name = "articles"
    ARGUMENTS = {
        "start_url": "index page URL(s), comma-separated",
        "article_url": "article page URL(s) to fetch directly, comma-separated",
        "sitemap_url": "sitemap.xml / sitemap index / robots.txt URL(s), comma-separated",
        "article_pattern": "regex an article URL must match (default: any same-host, non-navigation link)",
        "link_css": "CSS selector of the index region holding article links",
        "max_articles": "most articles to fetch (0 = no limit)",
        "max_index_pages": "most index pages per start URL (0 = no limit)",
        "since": "skip articles (sitemap lastmod, article date) older than this ISO date",
        "min_chars": "skip articles with less text than this (default 200)",
        "source": "value of the items' source field (default: spider name)",
    }

    def __init__(self, start_url: str = "", article_url: str = "", sitemap_url: str = "",
                 article_pattern: str = "", link_css: str = "", max_articles: Any = 0,
                 max_index_pages: Any = 0, since: str | None = None, min_chars: Any = 200,
                 source: str = "", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {"name"})
        if unknown:
            raise ValueError(f"spider 'articles': unknown argument(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(self.ARGUMENTS))}")
        try:
            self.article_re = re.compile(article_pattern) if article_pattern else None
        except re.error as exc:
            raise ValueError(f"spider 'articles': article_pattern={article_pattern!r} is not a regex: {exc}") from None
        self.index_urls, self.article_urls = _urls(start_url), _urls(article_url)
        self.sitemap_urls = _urls(sitemap_url)
        self.sitemap_rules = [(self.article_re or "", "parse_article")]
        super().__init__(**kwargs)
        self.link_css = link_css
        self.max_articles = parse_limit("max_articles", max_articles)
        self.max_index_pages = parse_limit("max_index_pages", max_index_pages)
        self.min_chars = parse_limit("min_chars", min_chars)
        self.since = parse_since(since)
        self.source = source or self.name
        self.allowed_netlocs = {urlparse(u).netloc for u in self.index_urls + self.article_urls + self.sitemap_urls}
        if not self.allowed_netlocs:  # built without URLs (`scrapy check`): fixtures on file:// only
            self.allowed_netlocs.add("")
        self.articles_requested = 0

    def inc(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"kopitiam/articles/{key}", n)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not (self.index_urls or self.article_urls or self.sitemap_urls):
            raise ValueError("spider 'articles': give start_url (index pages), article_url or sitemap_url")
        for url in self.index_urls:
            yield scrapy.Request(url, callback=self.parse_index, cb_kwargs={"index_page": 1})
        for url in self.article_urls:
            if request := self._article_request(url):
                yield request
        async for request in super().start():  # sitemap_urls -> SitemapSpider._parse_sitemap
            yield request

    # ---- sitemaps --------------------------------------------------------------------------------
    def sitemap_filter(self, entries: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``since`` against ``<lastmod>``; in a urlset also the article test and ``max_articles``."""
        urlset = getattr(entries, "type", "urlset") == "urlset"  # Scrapy passes the Sitemap itself
        for entry in entries:
            lastmod = entry.get("lastmod")
            if self.since and lastmod:
                try:
                    if to_utc(lastmod, "lastmod") < self.since:
                        self.inc("skipped/before_since")
                        continue
                except ValueError:
                    self.inc("errors/bad_lastmod")
            if urlset and not self._is_article_link(entry.get("loc", ""), check_host=False):
                self.inc("skipped/not_article")
                continue
            if urlset and not self._claim():
                continue
            yield entry

    # ---- index pages -----------------------------------------------------------------------------
    def _claim(self) -> bool:
        if self.max_articles and self.articles_requested >= self.max_articles:
            self.inc("skipped/max_articles")
            return False
        self.articles_requested += 1
        return True

    def _is_article_link(self, url: str, check_host: bool = True) -> bool:
        if check_host and urlparse(url).netloc not in self.allowed_netlocs:
            return False
        if self.article_re is not None:
            return bool(self.article_re.search(url))
        path = urlparse(url).path
        return path not in ("", "/") and not courlan.is_navigation_page(url) and not courlan.is_not_crawlable(url)

    def _article_request(self, url: str) -> scrapy.Request | None:
        if not self._claim():
            return None
        return scrapy.Request(url, callback=self.parse_article)

    def _link_css(self, response: Response) -> str:
        if self.link_css:
            return self.link_css
        return next((css for css in MAIN_CSS if response.css(css)), "body")

    def parse_index(self, response: Response, index_page: int = 1) -> Iterator[scrapy.Request]:
        """An index page: article links in its main content, then its next page.

        @url tests/fixtures/articles/index.html
        @returns items 0 0
        @returns requests 3 3
        """
        self.inc("pages/index")
        extractor = LinkExtractor(restrict_css=self._link_css(response), unique=True)
        found = 0
        for link in extractor.extract_links(response):
            url = url_query_cleaner(link.url, ("utm_source", "utm_medium", "utm_campaign"), remove=True)
            if not self._is_article_link(url):
                continue
            found += 1
            if request := self._article_request(url):
                yield request
        if not found:
            self.inc("errors/index_without_articles")
            self.logger.warning("index page %s: no article links found (link_css=%r, article_pattern=%r)",
                                response.url, self._link_css(response), self.article_re and self.article_re.pattern)
        next_page = response.css("link[rel=next]::attr(href), a[rel=next]::attr(href)").get()
        if next_page and not (self.max_index_pages and index_page >= self.max_index_pages):
            yield response.follow(next_page, callback=self.parse_index, cb_kwargs={"index_page": index_page + 1})

    # ---- articles --------------------------------------------------------------------------------
    def parse_article(self, response: Response, **kwargs: Any) -> Iterator[PostItem]:
        """One item per article page, via trafilatura.

        @url tests/fixtures/articles/the-art-of-pulling-teh.html
        @returns items 1 1
        @returns requests 0 0
        @scrapes source url board thread_id thread_title position post_id author posted_at body body_format fetched_at
        """
        self.inc("pages/article")
        if not hasattr(response, "text"):
            self.inc("errors/not_html")
            self.logger.error("%s is not a text page; skipped", response.url)
            return
        data = extract_article(response.text, response.url)
        if data is None:
            self.inc("no_text")
            self.logger.warning("%s: no main text found; skipped", response.url)
            return
        text = data["text"].strip()
        if len(text) < self.min_chars:
            self.inc("skipped_short")
            return
        posted_at = None
        if data.get("date"):
            try:
                posted_at = to_utc(data["date"], "posted_at")
            except ValueError:
                self.inc("errors/bad_date")
        if self.since and posted_at and posted_at < self.since:
            self.inc("skipped/before_since")
            return
        ident = article_id(response.url)
        self.inc("articles")
        yield PostItem(
            source=self.source, url=response.url, board=urlparse(response.url).netloc or None,
            thread_id=ident, thread_title=data.get("title"), page=None, position=0, post_id=ident,
            author=data.get("author"), posted_at=posted_at, body=text, body_format="text",
            quoted_post_ids=[], fetched_at=dt.datetime.now(dt.timezone.utc))
