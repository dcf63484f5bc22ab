"""XenForo 1.x markup for the ``xenforo`` spider (a mixin: no spider of its own).

XenForo 1 (2010-2017; many boards still run it) shares XenForo 2's URLs (``threads/slug.N/``,
``forums/slug.N/``, ``page-N``, ``index.php?`` routes) and body markup classes (the ``xenforo``
``MARKUP`` record names both versions' quote classes), but not its page markup. What it relies on
(XenForo 1's default templates, matched by class tokens and ids):

- page: ``html#XenForo``; thread ``div#content.thread_view``, board ``.forum_view``; a ``<base href>``
  that relative links resolve against (Scrapy's ``urljoin`` honours it);
- posts: ``ol#messageList > li.message`` with ``id="post-N"`` and ``data-author``; deleted-post
  placeholders (``li.message.deleted``) are skipped and counted; number ``a.postNumber`` (``#N``),
  permalink ``a.datePermalink`` (``#post-N`` added to the first post's, which is the thread's URL);
- time, exact first: ``abbr.DateTime[data-time]`` (epoch seconds; recent posts), else
  ``span.DateTime[title]`` ("Mar 13, 2011 at 6:46 AM", the forum's local time: argument
  ``timezone``), else the shown text (relative: "Yesterday at 10:02 PM", against the fetch time);
- body: the inner HTML of ``blockquote.messageText`` (its ``.messageTextEndMarker`` left out), then
  the signature ``div.signature`` (outer HTML, dropped and counted by the clean stage); quotes are
  ``div.bbCodeQuote[data-author]`` with an ``.attribution`` link ``goto/post?id=N#post-N``;
- thread: id from the URL or ``link[rel=canonical]``; title ``.titleBar h1`` (thread prefixes,
  ``span.prefix``, left out); board the last
  breadcrumb (``.breadcrumb .crust [itemprop=title]``); page from the URL or ``.PageNav[data-page]``;
  other pages in ``.PageNav nav a``; the next one ``link[rel=next]``, else computed from the
  ``.PageNav`` data attributes (``data-page``, ``data-last``, ``data-baseurl``);
- board: thread links ``.discussionListItem h3.title a``, each thread's last post time in its
  ``.lastPost .DateTime``; index: board links ``.nodeTitle a`` to ``forums/slug.N/``.
"""

from __future__ import annotations

import re
from datetime import datetime

from parsel import Selector
from scrapy.http import Response

from contracts.timestamps import to_utc
from crawler.incremental import LastPost
from crawler.spiders.forum import PostData

POST_ID_RE = re.compile(r"^post-(\d+)$")
NUMBER_RE = re.compile(r"#\s*([\d,]+)")
BOARD_LINK_RE = re.compile(r"forums/(?:[^/?#]*\.)?\d+/")
SENTINEL = "{{sentinel}}"


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class Xenforo1Markup:
    """XenForo 1 page markup; mixed into ``XenforoSpider`` (which supplies ``inc``, ``local_date``,
    ``quoted_ids`` and the URL rules both versions share)."""

    # Listed after ForumSpider in the spider's bases, and slot-less, so the spider's instance layout is
    # ForumSpider's: the ``forum`` spider switches an object's class to it.
    __slots__ = ()

    @staticmethod
    def is_xf1(response: Response) -> bool:
        return bool(response.css("html#XenForo, #messageList, .discussionListItem"))

    def xf1_page_kind(self, response: Response) -> str | None:
        if response.css("#messageList > li.message"):
            return "thread"
        if response.css(".discussionListItem"):
            return "board"
        content = " ".join(response.css("#content::attr(class)").getall())
        if "thread_view" in content:
            return "thread"
        if "forum_view" in content:
            return "board"
        return "index" if self.xf1_board_links(response) else None

    def xf1_board_links(self, response: Response) -> list[str]:
        return [h for h in response.css(".nodeTitle a::attr(href)").getall() if BOARD_LINK_RE.search(h)]

    def xf1_thread_id(self, response: Response) -> str | None:
        for url in (response.url, *response.css("link[rel='canonical']::attr(href)").getall()):
            if thread_id := self.thread_id_from_url(response.urljoin(url)):
                return thread_id
        return None

    def xf1_board(self, response: Response) -> str | None:
        names = [n for n in (" ".join(t.split()) for t in response.css(
            ".breadcrumb .crust [itemprop='title']::text").getall()) if n]
        return names[-1] if names else None

    def xf1_page(self, response: Response) -> int:
        page = self.page_from_url(response.url)
        if page is None:
            current = response.css(".PageNav::attr(data-page)").re_first(r"^\d+$")
            page = int(current) if current else 1
        return page

    # ---- posts -------------------------------------------------------------------------------
    def xf1_posts(self, response: Response) -> list[PostData]:
        posts = []
        for li in response.css("#messageList > li.message"):
            if "deleted" in (li.attrib.get("class") or "").split():
                self.inc("skipped/deleted_post")
                continue
            posts.append(self.xf1_post(response, li))
        return posts

    def xf1_post(self, response: Response, li: Selector) -> PostData:
        match = POST_ID_RE.match(li.attrib.get("id") or "")
        text = li.css("blockquote.messageText")[:1]
        body = None
        if text:
            body = "".join(text.xpath("node()[not(self::div[contains(@class, 'messageTextEndMarker')])]").getall())
            signature = li.css(".signature")[:1]
            if signature:
                body += signature.get()
        number = NUMBER_RE.search(" ".join(li.css("a.postNumber::text").getall()))
        link = li.css("a.datePermalink::attr(href), a.postNumber::attr(href)").get()
        post_id = match.group(1) if match else None
        if link and post_id and "#" not in link:  # the first post's permalink is the thread's URL
            link += f"#post-{post_id}"
        return PostData(
            post_id=post_id,
            author=li.attrib.get("data-author") or _text(li.css(".messageUserInfo .username")[:1]),
            posted_at=self.xf1_time(li.css(".messageMeta .DateTime, .messageDetails .DateTime")[:1]),
            body=body, url=response.urljoin(link) if link else None,
            position=int(number.group(1).replace(",", "")) - 1 if number else None,
            quoted_post_ids=self.quoted_ids(text[0]) if text else [])

    def xf1_time(self, sel: list) -> datetime | None:
        """Exact ``data-time`` first, else the ``title`` text, else the shown text (maybe relative)."""
        if not sel:
            return None
        epoch = sel[0].attrib.get("data-time")
        if epoch and epoch.isdigit():
            return to_utc(int(epoch), "posted_at")
        shown = sel[0].attrib.get("title") or _text(sel)
        when = self.local_date(shown) if shown else None
        if shown and when is None:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable post date %r", shown)
        return when

    # ---- links -------------------------------------------------------------------------------
    def xf1_thread_links(self, response: Response) -> list[str]:
        return [h for h in response.css(".discussionListItem h3.title a::attr(href)").getall() if "threads/" in h]

    def xf1_last_posts(self, response: Response) -> dict[str, LastPost]:
        found: dict[str, LastPost] = {}
        for row in response.css(".discussionListItem"):
            link = next((h for h in row.css("h3.title a::attr(href)").getall() if "threads/" in h), None)
            thread_id = self.thread_id_from_url(response.urljoin(link)) if link else None
            when = self.xf1_time(row.css(".lastPost .DateTime")[:1])
            if thread_id and when:
                found[thread_id] = LastPost(posted_at=when)
        return found

    def xf1_page_links(self, response: Response) -> list[str]:
        links = response.css(".PageNav nav a::attr(href), link[rel='next']::attr(href)").getall()
        return list(dict.fromkeys(links))

    def xf1_next_page(self, response: Response) -> str | None:
        """``link[rel=next]``, else the next page built from ``.PageNav``'s data attributes."""
        nxt = response.css("link[rel='next']::attr(href)").get()
        if nxt:
            return nxt
        nav = response.css(".PageNav")[:1]
        if not nav:
            return None
        page, last = nav.attrib.get("data-page", ""), nav.attrib.get("data-last", "")
        base = nav.attrib.get("data-baseurl") or ""
        if page.isdigit() and last.isdigit() and int(page) < int(last) and SENTINEL in base:
            return base.replace(SENTINEL, str(int(page) + 1))
        return None
