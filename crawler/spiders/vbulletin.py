"""Spider ``vbulletin``: vBulletin 3 and 4 boards and threads (the old EDMW archive ran vBulletin).

A ``ForumSpider`` subclass: the base class owns the crawl (pagination, limits, positions, items);
this module only knows the markup. Markup it relies on, common to vB 3.x and 4.x default styles
and the themes built on them (matched by id prefixes and class tokens, never exact class strings):

- posts: every ``div[id^=post_message_]`` inside ``ol#posts`` (vB4, ``li.postcontainer``) or
  ``div#posts`` (vB3, one ``table#postN`` per post); the page-wide set when neither exists.
  ``^=`` is deliberate: themes wrap the body in a decoy ``div#ppost_message_N`` that ``*=`` would
  also match. The body is the ``post_message_N`` div's inner HTML as served (scripts, styles and
  ads included: the clean stage removes them).
- post container: the nearest ``li[id^=post_]`` / ``table[id^=post]`` / ``div[id^=edit]`` ancestor;
  author ``.username`` / ``a.bigusername``; number ``a[id^=postcount]@name`` or ``a.postcounter``
  (``#661``); permalink ``a.postcounter`` / ``a[id^=postcount]``.
- time: the first date-like text of ``.postdate``/``.date``/``.userstats dd``/``td.thead`` (vB3
  puts it in the post table's header cell: ``05-06-2008, 11:42 PM``, ``30th Apr 2011, 17:10``,
  ``Today, 17:10``), read by ``ForumSpider.local_date`` in the forum's time zone (argument
  ``timezone``, default UTC) and ``date_order`` (``MDY`` default, vBulletin's own).
- quotes: ``MARKUP`` below, the one record of vBulletin's body markup (the clean stage reads it
  from the raw file): ``.bbcode_quote`` (vB4) with its ``.bbcode_postedby`` link to ``#postN``;
  the spider also reads quoted ids from vB3 quote tables (``MARKUP.quote_ids`` on their links).
- thread: id from ``input[name=t]``, else the URL (``showthread.php?t=N``, ``showthread.php?N-``,
  ``/N-slug(-page).html``); title ``.threadtitle``/``h1``/vB3 ``td.navbar strong``/``<title>``;
  board = the last breadcrumb link (``.navbit a``, vB3 ``.navbar a``); pages in ``div.pagination``
  (vB3 ``div.pagenav``).
- board: thread links ``a[id^=thread_title_]``, next page ``a[rel=next]``/``link[rel=next]``; each
  thread's last post (incremental re-crawls) from the ``#postN`` link in its row.

vBulletin appends a session id (``s=...``) to every link; ``SESSION_PARAMS`` makes the base
class's ``strip_session`` remove it, so a page has one URL.

Usage: ``scrapy crawl vbulletin -a start_url=https://forum.example.com/forumdisplay.php?f=16
-a timezone=Asia/Singapore -a date_order=DMY -O out.parquet``
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler.incremental import LastPost
from crawler.spiders.forum import DATE_LIKE_RE, ForumSpider, PostData, ThreadInfo

THREAD_URL_RES = (
    re.compile(r"showthread\.php\?(?:.*&)?t=(\d+)"),
    re.compile(r"showthread\.php[/?](\d+)(?:-|$|/|&)"),
    re.compile(r"/threads/(\d+)"),
    re.compile(r"/(\d+)-[^/?#]*\.html"),
)
PAGE_RES = (re.compile(r"[?&]page=(\d+)"), re.compile(r"/page(\d+)(?:[/?#&]|$)"),
            re.compile(r"/\d+-[^/?#]*-(\d+)\.html"))
POST_LINK_RE = re.compile(r"(?:#post|[?&]p=|-post)(\d+)")  # a link to a post (board rows' "last post")
# vBulletin 4 post body markup (vB3 quotes are plain tables: no class to tell them by).
MARKUP = EngineMarkup(
    name="vbulletin",
    quote=("bbcode_quote",),  # its .bbcode_container also wraps code blocks: the inner div is the quote
    not_quote=("postcontent",),  # themes wrap the whole post in blockquote.postcontent
    quote_title=("bbcode_postedby",),  # "Originally Posted by X" with a link to the quoted post
    quote_link_ids=(r"#post(\d+)$", r"[?&]p=(\d+)", r"-post(\d+)"),  # showthread.php?p=N#postN, SEO -postN
    signature=("signature",),
)
POST_MESSAGE_ID_RE = re.compile(r"^post_message_(\d+)$")
PAGE_SUFFIX_RE = re.compile(r"\s+[-|]\s+(?:page|seite|pagina|página)\s+\d+\s*$", re.I)

CONTAINER_XPATH = ("ancestor::li[starts-with(@id, 'post_')][1] | ancestor::table[starts-with(@id, 'post')][1]"
                   " | ancestor::div[starts-with(@id, 'edit')][1]")


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class VbulletinSpider(ForumSpider):
    name = "vbulletin"
    markup = MARKUP
    SESSION_PARAMS = ("s",)  # vBulletin appends its session id to every link

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("div[id^='post_message_']"):
            return "thread"
        if response.css("a[id^='thread_title_']"):
            return "board"
        return None

    def thread_id_from_url(self, url: str) -> str | None:
        for pattern in THREAD_URL_RES:
            if match := pattern.search(url):
                return match.group(1)
        return None

    def page_from_url(self, url: str) -> int | None:
        for pattern in PAGE_RES:
            if match := pattern.search(url):
                return int(match.group(1))
        return None

    def thread_info(self, response: Response) -> ThreadInfo:
        thread_id = (response.css("input[name='t']::attr(value)").re_first(r"^\d+$")
                     or self.thread_id_from_url(response.url))
        title = (_text(response.css(".threadtitle")[:1]) or _text(response.css("h1")[:1])
                 or _text(response.css("td.navbar strong")[:1]))
        if not title:
            title = _text(response.css("title"))
            title = PAGE_SUFFIX_RE.sub("", title) if title else None
        crumbs = [t for t in (_text(a) for a in response.css(".navbit a, .navbar a")) if t]
        current = (response.css(".pagination .selected ::text, .pagenav .alt2 strong::text")
                   .re_first(r"\d+"))
        page = int(current) if current else (self.page_from_url(response.url) or 1)
        return ThreadInfo(thread_id=thread_id, title=title, board=crumbs[-1] if crumbs else None, page=page)

    # ---- posts -------------------------------------------------------------------------------
    def posts(self, response: Response) -> list[PostData]:
        scope = response.css("ol#posts, div#posts") or [response]
        bodies = scope[0].css("div[id^='post_message_']")
        return [self.post(response, body) for body in bodies]

    def post(self, response: Response, body: Selector) -> PostData:
        match = POST_MESSAGE_ID_RE.match(body.attrib.get("id", ""))
        post_id = match.group(1) if match else None
        containers = body.xpath(CONTAINER_XPATH)
        box = containers[-1] if containers else body
        author = _text(box.css(".username_container .username, a.username, .username, a.bigusername")[:1])
        if author is None:
            author = _text(box.css("div[id^='postmenu_']")[:1])
        counter = box.css("a[id^='postcount']")
        number = counter.attrib.get("name") if counter else None
        if not (number and number.isdigit()):
            number = box.css("a.postcounter::text").re_first(r"#?\s*(\d+)")
        link = box.css("a.postcounter::attr(href)").get() or (counter.attrib.get("href") if counter else None)
        return PostData(
            post_id=post_id, author=author, posted_at=self.posted_at(box), body="".join(body.xpath("node()").getall()),
            url=self.strip_session(response.urljoin(link)) if link else None,
            position=int(number) - 1 if number and number.isdigit() else None,
            quoted_post_ids=self.quoted_ids(body, post_id))

    def posted_at(self, box: Selector) -> datetime | None:
        for sel in box.css(".postdate, .posthead .date, span.date, .userstats dd, td.thead"):
            text = _text(sel)
            if text and DATE_LIKE_RE.search(text):
                when = self.local_date(text)
                if when is not None:
                    return when
                self.inc("errors/bad_time")
                self.logger.warning("unreadable post date %r", text)
                return None
        return None

    @staticmethod
    def quoted_ids(body: Selector, own_id: str | None) -> list[str]:
        """Ids of the posts the body's top-level quotes cite: their back-links to ``#postN``, not
        those of the quotes nested inside them (the quoted post's own quotes)."""
        root = body.root

        def is_quote(el: Any) -> bool:
            classes = set((el.get("class") or "").split()) if isinstance(el.tag, str) else set()
            return ("bbcode_quote" in classes or el.tag == "table"
                    or (el.tag == "blockquote" and "postcontent" not in classes))

        def outermost(el: Any, top: Any) -> bool:  # no quote between el and top
            return not any(is_quote(a) for a in el.iterancestors() if a is not top and top in a.iterancestors())

        ids: list[str] = []
        for quote in (el for el in root.iter() if el is not root and is_quote(el) and outermost(el, root)):
            links = [dict(a.attrib) for a in quote.iter("a") if outermost(a, quote)]
            ids += [i for i in MARKUP.quote_ids({}, links) if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a[id^='thread_title_']::attr(href)")

    def thread_page_links(self, response: Response) -> list[str]:
        thread_id = self.thread_info(response).thread_id
        links = self.links_by_css(response, ".pagination a::attr(href), .pagenav a::attr(href), "
                                            "link[rel='next']::attr(href)")
        return [u for u in links if self.thread_id_from_url(u) == thread_id and u != self.strip_session(response.url)]

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Each listed thread's last post id, from its row's "go to last post" link (``#postN``)."""
        found: dict[str, LastPost] = {}
        for title in response.css("a[id^='thread_title_']"):
            thread_id = (title.attrib.get("id") or "").rsplit("_", 1)[-1]
            rows = title.xpath("ancestor::li[starts-with(@id, 'thread_')][1] | ancestor::tr[1]")
            if not thread_id.isdigit() or not rows:
                continue
            ids = [m.group(1) for href in rows[-1].css("a::attr(href)").getall()
                   if "#post" in href and (m := POST_LINK_RE.search(href))]
            if ids:
                found[thread_id] = LastPost(post_id=ids[-1])
        return found

    def board_next_page(self, response: Response) -> str | None:
        links = self.links_by_css(response, ".pagination a[rel='next']::attr(href), "
                                            ".pagenav a[rel='next']::attr(href), link[rel='next']::attr(href)")
        return links[0] if links else None

    # ---- contracts ---------------------------------------------------------------------------
    def parse(self, response: Response, **kwargs: Any):
        """A start URL: a board (thread links, next page) or a thread (posts, other pages).

        @url tests/fixtures/vbulletin/vb4_thread_p1.html
        @returns items 3 3
        @returns requests 1 1
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
