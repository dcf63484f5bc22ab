"""vBulletin 5 markup for the ``vbulletin`` spider (a mixin: no spider of its own).

vBulletin 5 ("vB Connect", 2012-) rewrote the templates: nothing of vB 3/4's ``post_message_N``
markup is left, but post bodies keep the ``bbcode_quote`` blocks (the ``vbulletin`` ``MARKUP``
record covers both). What it relies on (vB5's default style, matched by class tokens):

- URLs: friendly ``/forum/<channel>[/<sub>...]/<id>-<slug>`` (a thread), ``/node/<id>``, pages
  ``/pageN``; a channel (board) is ``/forum/<channel>[/<sub>]``;
- thread: ``li.b-post[data-node-id]`` posts (the starter and the replies; ``data-node-id`` is the
  post id), number ``a.b-post__count`` (``#N``, also the permalink), author
  ``.b-userinfo__details .author`` (or ``[itemprop=name]``), time ``.b-post__timestamp time``:
  ``datetime`` is the forum's local time without an offset (read in the ``timezone`` argument;
  an offset, when present, wins), else the shown text; body the inner HTML of
  ``.js-post__content-text``, then the signature ``.post-signature`` (outer HTML, dropped by clean);
  title ``h1.main-title``, board the last ``.breadcrumbs a.crumb-link``, thread id from the URL or
  ``link[rel=canonical]``, page from the URL or the ``.js-pagenum`` input; other pages in
  ``.pagenav a``, the next one ``a[rel=next]`` / ``link[rel=next]``;
- channel: thread links ``a.topic-title`` in ``.topic-item`` rows, each row's last post id from its
  ``a.go-to-last-post`` (``#postN``); index: channel links ``a.forum-title``.
"""

from __future__ import annotations

import re
from datetime import datetime

from parsel import Selector
from scrapy.http import Response

from contracts.timestamps import to_utc
from crawler.incremental import LastPost
from crawler.spiders.forum import PostData, parse_local_date

NUMBER_RE = re.compile(r"#\s*([\d,]+)")
LAST_POST_RE = re.compile(r"#post(\d+)|[?&]p=(\d+)")
OFFSET_RE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class Vbulletin5Markup:
    """vBulletin 5 page markup; mixed into ``VbulletinSpider`` (which supplies ``inc``,
    ``local_date``, ``quoted_ids``, ``strip_session`` and the URL rules)."""

    # Listed after ForumSpider in the spider's bases, and slot-less, so the spider's instance layout is
    # ForumSpider's: the ``forum`` spider switches an object's class to it.
    __slots__ = ()

    @staticmethod
    def is_vb5(response: Response) -> bool:
        return bool(response.css("body#vb-page-body, li.b-post[data-node-id], "
                                 ".topic-item a.topic-title, a.forum-title"))

    def vb5_page_kind(self, response: Response) -> str | None:
        if response.css("li.b-post[data-node-id]"):
            return "thread"
        if response.css(".topic-item a.topic-title, a.js-topic-title"):
            return "board"
        if response.css("a.forum-title"):
            return "index"
        return None

    def vb5_thread_id(self, response: Response) -> str | None:
        for url in (response.url, *response.css("link[rel='canonical']::attr(href)").getall()):
            if thread_id := self.thread_id_from_url(response.urljoin(url)):
                return thread_id
        return None

    def vb5_page(self, response: Response) -> int:
        page = self.page_from_url(response.url)
        if page is None:
            shown = response.css("input.js-pagenum::attr(value)").re_first(r"^\d+$")
            page = int(shown) if shown else 1
        return page

    def vb5_board(self, response: Response) -> str | None:
        crumbs = [t for t in (_text(a) for a in response.css(".breadcrumbs a.crumb-link, #breadcrumbs a")) if t]
        return crumbs[-1] if crumbs else None

    # ---- posts -------------------------------------------------------------------------------
    def vb5_posts(self, response: Response) -> list[PostData]:
        return [self.vb5_post(response, li) for li in response.css("li.b-post[data-node-id]")]

    def vb5_post(self, response: Response, li: Selector) -> PostData:
        post_id = li.attrib.get("data-node-id", "")
        text = li.css(".js-post__content-text")[:1]
        body = None
        if text:
            body = "".join(text.xpath("node()").getall())
            signature = li.css(".post-signature")[:1]
            if signature:
                body += signature.get()
        number = NUMBER_RE.search(" ".join(li.css("a.b-post__count::text").getall()))
        link = li.css("a.b-post__count::attr(href)").get()
        return PostData(
            post_id=post_id if post_id.isdigit() else None,
            author=_text(li.css(".b-userinfo__details .author, .b-userinfo [itemprop='name']")[:1]),
            posted_at=self.vb5_time(li.css(".b-post__timestamp time")[:1]), body=body,
            url=self.strip_session(response.urljoin(link)) if link and not link.startswith("#") else None,
            position=int(number.group(1).replace(",", "")) - 1 if number else None,
            quoted_post_ids=self.quoted_ids(text[0], post_id) if text else [])

    def vb5_time(self, time: list) -> datetime | None:
        """``<time datetime>``: with an offset, exact; without one, the forum's local time; else the text."""
        if not time:
            return None
        stamp = (time[0].attrib.get("datetime") or "").strip()
        try:
            if stamp and OFFSET_RE.search(stamp):
                return to_utc(stamp, "time@datetime")
            when = parse_local_date(stamp, self.timezone, "YMD") if stamp else None
        except ValueError:
            when = None
        if when is None:
            when = self.local_date(_text(time) or "")
        if when is None:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable post time %r", stamp or _text(time))
        return when

    # ---- links -------------------------------------------------------------------------------
    def vb5_thread_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, ".topic-item a.topic-title::attr(href), a.js-topic-title::attr(href)")

    def vb5_board_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a.forum-title::attr(href)")

    def vb5_last_posts(self, response: Response) -> dict[str, LastPost]:
        found: dict[str, LastPost] = {}
        for row in response.css(".topic-item"):
            link = row.css("a.topic-title::attr(href)").get()
            thread_id = self.thread_id_from_url(response.urljoin(link)) if link else None
            ids = [m.group(1) or m.group(2) for h in row.css("a.go-to-last-post::attr(href)").getall()
                   if (m := LAST_POST_RE.search(h))]
            if thread_id and ids:
                found[thread_id] = LastPost(post_id=ids[-1])
        return found
