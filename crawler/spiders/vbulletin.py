"""Spider ``vbulletin``: vBulletin 3, 4 and 5 boards and threads (the old EDMW archive ran vBulletin).

vBulletin 5 pages are read by the ``Vbulletin5Markup`` mixin (crawler/spiders/vbulletin5.py, its
markup listed there); everything below is vB 3/4's, tried first.

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
  from the raw file): ``.bbcode_quote`` (vB4, vB5) with its ``.bbcode_postedby`` link to ``#postN``;
  vB3's default style has no quote class: a quote is a ``div.smallfont`` "Quote:" label followed
  by a table whose cell ``td.alt2`` starts with "Originally Posted by X" and its link to the quoted
  post (``quote_cell``, ``quote_label``: told by structure; nested quotes alike).
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
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import DATE_LIKE_RE, ForumSpider, PostData, ThreadInfo
from crawler.spiders.vbulletin5 import Vbulletin5Markup

THREAD_URL_RES = (
    re.compile(r"showthread\.php\?(?:.*&)?t=(\d+)"),
    re.compile(r"showthread\.php[/?](\d+)(?:-|$|/|&)"),
    re.compile(r"/threads/(\d+)"),
    re.compile(r"/(\d+)-[^/?#]*\.html"),
    re.compile(r"/forum/(?:[^/?#]+/)+(\d+)-[^/?#]*"),  # vB5 friendly: /forum/<channel>/<id>-<slug>
    re.compile(r"/node/(\d+)(?:[/?#]|$)"),  # vB5
)
PAGE_RES = (re.compile(r"[?&]page=(\d+)"), re.compile(r"/page(\d+)(?:[/?#&]|$)"),
            re.compile(r"/\d+-[^/?#]*-(\d+)\.html"))
POST_LINK_RE = re.compile(r"(?:#post|[?&]p=|-post)(\d+)")  # a link to a post (board rows' "last post")
# vBulletin 3, 4 and 5 post body markup.
MARKUP = EngineMarkup(
    name="vbulletin",
    quote=("bbcode_quote",),  # its .bbcode_container also wraps code blocks: the inner div is the quote
    not_quote=("postcontent",),  # themes wrap the whole post in blockquote.postcontent
    quote_title=("bbcode_postedby",),  # "Originally Posted by X" with a link to the quoted post
    quote_link_ids=(r"#post(\d+)$", r"[?&]p=(\d+)", r"-post(\d+)"),  # showthread.php?p=N#postN, SEO -postN
    quote_cell=("alt2",),  # vB3: <table><tr><td class="alt2">Originally Posted by ... (code blocks are <pre>)
    quote_label=("smallfont",),  # vB3: <div class="smallfont">Quote:</div> right before that table
    signature=("signature", "post-signature"),  # vB4, vB5
)
MARKUP_SIGNALS = {  # label -> CSS: posts and thread lists of vB 3/4 and of vB5, vB5's page body
    "html: div[id^=post_message_] (vBulletin 3/4)": "div[id^='post_message_']",
    "html: a[id^=thread_title_] (vBulletin 3/4)": "a[id^='thread_title_']",
    "html: li.b-post[data-node-id] (vBulletin 5)": "li.b-post[data-node-id]",
    "html: .topic-item a.topic-title (vBulletin 5)": ".topic-item a.topic-title",
    "html: body#vb-page-body (vBulletin 5)": "body#vb-page-body",
}
URL_SIGNALS = {"url: showthread.php, forumdisplay.php, showpost.php":
               re.compile(r"(?:showthread|forumdisplay|showpost)\.php"),
               "url: /forum/..., /node/N (vBulletin 5)": re.compile(r"/forum/[^/?#]+|/node/\d+")}
POST_MESSAGE_ID_RE = re.compile(r"^post_message_(\d+)$")
PAGE_SUFFIX_RE = re.compile(r"\s+[-|]\s+(?:page|seite|pagina|página)\s+\d+\s*$", re.I)

CONTAINER_XPATH = ("ancestor::li[starts-with(@id, 'post_')][1] | ancestor::table[starts-with(@id, 'post')][1]"
                   " | ancestor::div[starts-with(@id, 'edit')][1]")


def _classes(el: Any) -> set[str]:
    return set((el.get("class") or "").split()) if isinstance(el.tag, str) else set()


def quote_cell(table: Any) -> Any:
    """A vB3 quote table's quote cell (one of its own cells with a ``MARKUP.quote_cell`` class), or None."""
    rows = [c for c in table if c.tag == "tr"] + [r for g in table if g.tag in ("tbody", "thead", "tfoot")
                                                  for r in g if r.tag == "tr"]
    return next((cell for row in rows for cell in row
                 if cell.tag in ("td", "th") and _classes(cell) & set(MARKUP.quote_cell)), None)


def is_quote(el: Any) -> bool:
    """An lxml element that is a quote block under ``MARKUP`` (class, blockquote, or vB3 table)."""
    classes = _classes(el)
    return bool(classes & set(MARKUP.quote) or (el.tag == "table" and quote_cell(el) is not None)
                or (el.tag == "blockquote" and not classes & set(MARKUP.not_quote)))


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class VbulletinSpider(ForumSpider, Vbulletin5Markup):
    name = "vbulletin"
    markup = MARKUP
    SESSION_PARAMS = ("s",)  # vBulletin appends its session id to every link

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """``<meta name="generator" content="vBulletin ...">``, vB3/4 ``post_message_N`` and
        ``thread_title_N`` ids, vB5 ``li.b-post`` / ``.topic-item`` markup and ``body#vb-page-body``;
        (supporting) ``showthread.php`` / ``/forum/...`` / ``/node/N`` routes."""
        markup = rx.generator_signals(response, "vBulletin") + rx.css_signals(response, MARKUP_SIGNALS)
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("div[id^='post_message_']"):
            return "thread"
        if response.css("a[id^='thread_title_']"):
            return "board"
        return self.vb5_page_kind(response) if self.is_vb5(response) else None

    def board_links(self, response: Response) -> list[str]:
        return self.vb5_board_links(response)

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
        if not response.css("div[id^='post_message_']") and self.is_vb5(response):
            return ThreadInfo(thread_id=self.vb5_thread_id(response), title=_text(response.css("h1.main-title")[:1]),
                              board=self.vb5_board(response), page=self.vb5_page(response))
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
        if not bodies and self.is_vb5(response):
            return self.vb5_posts(response)
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
        those of the quotes nested inside them (the quoted post's own quotes). A vB3 quote table's
        back-link is in its attribution, the quote cell's first element."""
        root = body.root

        def outermost(el: Any, top: Any) -> bool:  # no quote between el and top
            return not any(is_quote(a) for a in el.iterancestors() if a is not top and top in a.iterancestors())

        ids: list[str] = []
        for quote in (el for el in root.iter() if el is not root and is_quote(el) and outermost(el, root)):
            cell = quote_cell(quote) if quote.tag == "table" else None
            scope = next((c for c in cell if isinstance(c.tag, str)), None) if cell is not None else quote
            links = [dict(a.attrib) for a in (scope.iter("a") if scope is not None else ()) if outermost(a, quote)]
            ids += [i for i in MARKUP.quote_ids({}, links) if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a[id^='thread_title_']::attr(href)") or self.vb5_thread_links(response)

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
        return found or self.vb5_last_posts(response)

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
