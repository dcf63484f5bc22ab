"""Spider ``mybb``: MyBB 1.8 boards and threads (the default theme and the themes built on it).

A ``ForumSpider`` subclass: the base class owns the crawl (limits, items, counting); this module
only knows MyBB's markup and URLs. Markup it relies on (the 1.8 ``postbit``, ``forumdisplay_thread``
and ``forumbit`` templates, matched by id prefixes and class tokens):

- posts: ``div.post`` with ``id="post_N"`` (N is the pid); author ``.post_author .largetext``
  (a profile link, or plain text for guests); number ``#N`` in the ``.post_head`` permalink
  (``showthread.php?tid=T&pid=N#pidN``); body the inner HTML of ``.post_body``, followed by the
  post's signature (``div.signature``, outer HTML) so the clean stage can drop it;
- time: ``span.post_date``: absolute local-time text (``01-15-2024, 10:32 AM``), or a relative one
  whose exact time is in a ``<span title>`` (``<span title="01-15-2024, 10:32 AM">5 minutes ago</span>``;
  ``<span title="01-15-2024">Yesterday</span>, 10:32 AM``): read by ``ForumSpider.local_date`` in
  the forum's ``timezone`` (argument) and ``date_order`` (``MDY``, MyBB's default ``m-d-Y``);
- quotes: ``MARKUP`` below; ``<blockquote class="mycode_quote"><cite>X Wrote: <a class="quick_jump"
  href="showthread.php?pid=N#pidN">`` names the quoted pid in its jump link;
- URLs: ``forumdisplay.php?fid=N``, ``showthread.php?tid=N``, pages ``page=N``, and the SEO routes
  (``/Thread-slug``, ``/thread-N.html``, ``/thread-N-page-P.html``, ``/Forum-slug``, ``/forum-N.html``).
  A slug route holds no id: thread links are rewritten to ``showthread.php?tid=N`` from the board
  row's ``span#tid_N`` (MyBB always serves the plain scripts), and a thread's pages to
  ``showthread.php?tid=N&page=P``, so every page has one URL whichever style the site links with;
- thread: id from the URL, else the page's own ``tid=`` links (printable version, reply);
  title ``.navigation .active``; board the last ``.navigation`` link; page ``.pagination_current``;
- board: thread rows ``span[id^=tid_]``, next page ``a.pagination_next``, each thread's last post
  time in ``span.lastpost`` (incremental re-crawls); index: the board links of ``forumbit`` rows
  (``.forum_status`` beside a ``forumdisplay.php`` / ``Forum-`` link).

Usage: ``scrapy crawl mybb -a start_url=https://forum.example.com/forumdisplay.php?fid=2
-a timezone=Europe/London -O out.parquet``
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.datefmt import strptime_local
from crawler.incremental import LastPost
from crawler.spiders.forum import DATE_LIKE_RE, ForumSpider, PostData, ThreadInfo

THREAD_URL_RES = (re.compile(r"showthread\.php\?(?:[^#]*&)?tid=(\d+)"),
                  re.compile(r"/thread-(\d+)(?:-[a-z]+(?:-\d+)?)?\.html"))
PAGE_RES = (re.compile(r"[?&]page=(\d+)"), re.compile(r"-page-(\d+)\.html"))
POST_DIV_ID_RE = re.compile(r"^post_(\d+)$")
NUMBER_RE = re.compile(r"#\s*([\d,]+)")
TIME_RE = re.compile(r"\d{1,2}:\d{2}")
# MyBB's default date and time formats (m-d-Y, h:i A), by date order; other texts go to dateparser
FORMATS = {"MDY": ("%m-%d-%Y, %I:%M %p", "%m-%d-%Y, %H:%M"), "DMY": ("%d-%m-%Y, %I:%M %p", "%d-%m-%Y, %H:%M"),
           "YMD": ("%Y-%m-%d, %I:%M %p", "%Y-%m-%d, %H:%M")}

# MyBB 1.8's MyCode output: quotes are <blockquote class="mycode_quote"> (a <blockquote> anyway),
# with the quoted pid in the <cite>'s jump link; signatures div.signature; smilies img.smilie.
MARKUP = EngineMarkup(
    name="mybb",
    quote=("mycode_quote",),
    quote_link_ids=(r"[?&]pid=(\d+)", r"#pid(\d+)$", r"/post-(\d+)\.html"),
    signature=("signature",),
    smilie=("smilie",),  # <img class="smilie smilie_1" alt="Smile">: MyBB's alt is the smilie's name
)

MARKUP_SIGNALS = {
    "html: div.post[id^=post_] .post_body": "div.post[id^='post_'] div.post_body",
    "html: blockquote.mycode_quote": "blockquote.mycode_quote",
    "html: span[id^=tid_] (forumdisplay rows)": "span[id^='tid_']",
    "html: .forum_status (forumbit rows)": "span.forum_status",
}
TEXT_SIGNALS = {"text: Powered By MyBB": re.compile(r"Powered\s+By\s+<a[^>]*>\s*MyBB", re.I),
                "text: MyBB template comments": re.compile(r"<!-- start: (?:showthread|forumdisplay|index) -->")}
URL_SIGNALS = {"url: showthread.php?tid=": re.compile(r"showthread\.php\?(?:[^#]*&)?tid=\d"),
               "url: forumdisplay.php?fid=": re.compile(r"forumdisplay\.php\?(?:[^#]*&)?fid=\d"),
               "url: MyBB SEO route": re.compile(r"/(?:Thread|Forum)-[^/]+$|/(?:thread|forum)-\d+(?:-page-\d+)?\.html")}


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class MybbSpider(ForumSpider):
    name = "mybb"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The MyBB signals on ``response`` (postbit, forumdisplay or forumbit markup, the footer,
        template comments; routes only add to them), or None."""
        markup = rx.css_signals(response, MARKUP_SIGNALS) + rx.text_signals(response, TEXT_SIGNALS)
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("div.post[id^='post_'] div.post_body"):
            return "thread"
        if response.css("span[id^='tid_'] a"):
            return "board"
        if response.css("span.forum_status"):
            return "index"
        return None

    def board_links(self, response: Response) -> list[str]:
        links = response.xpath("//span[contains(@class, 'forum_status')]/ancestor::tr[1]//strong/a/@href").getall()
        return [self.strip_session(response.urljoin(h)) for h in dict.fromkeys(links)]

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
        thread_id = self.thread_id_from_url(response.url) or response.css(
            "a[href*='printthread.php?tid=']::attr(href), a[href*='newreply.php?tid=']::attr(href), "
            "link[rel='canonical']::attr(href)").re_first(r"[?&]tid=(\d+)") \
            or response.css("input[name='tid']::attr(value)").re_first(r"^\d+$")
        crumbs = [t for a in response.css(".navigation a") if (t := _text(a))]
        current = response.css(".pagination .pagination_current::text").re_first(r"\d+")
        page = int(current) if current else (self.page_from_url(response.url) or 1)
        return ThreadInfo(thread_id=thread_id, title=_text(response.css(".navigation .active")[:1]),
                          board=crumbs[-1] if len(crumbs) > 1 else None, page=page)

    # ---- posts -------------------------------------------------------------------------------
    def posts(self, response: Response) -> list[PostData]:
        return [self.post(response, div) for div in response.css("div.post[id^='post_']")
                if POST_DIV_ID_RE.match(div.attrib.get("id", ""))]

    def post(self, response: Response, div: Selector) -> PostData:
        post_id = POST_DIV_ID_RE.match(div.attrib.get("id", "")).group(1)
        permalink = div.css(".post_head a[href*='pid']")[:1]
        number = NUMBER_RE.search(_text(permalink) or "")
        content = div.css("div.post_body")[:1]
        body = None
        if content:
            body = "".join(content.xpath("node()").getall())
            signature = div.css("div.signature")[:1]
            if signature:
                body += signature.get()
        href = permalink[0].attrib.get("href", "") if permalink else None
        return PostData(
            post_id=post_id, author=_text(div.css(".post_author .largetext")[:1]), posted_at=self.posted_at(div),
            body=body, url=self.strip_session(response.urljoin(href)) if href else None,
            position=int(number.group(1).replace(",", "")) - 1 if number else None,
            quoted_post_ids=self.quoted_ids(content, post_id) if content else [])

    def posted_at(self, div: Selector) -> datetime | None:
        return self.date_of(div.css("span.post_date")[:1])

    def date_of(self, sel: Selector | list) -> datetime | None:
        """A MyBB date: the ``title`` of a relative date's span (plus the time after it when the
        title holds only the day), else the element's first own text (before ``<br>``, links, edits)."""
        if not sel:
            return None
        own = next((" ".join(t.split()) for t in sel[0].xpath("text()").getall() if t.strip()), "")
        titled = sel[0].css("span[title]")
        text = own
        if titled:
            title = titled[0].attrib.get("title", "")
            text = title if TIME_RE.search(title) else f"{title} {own}"
        text = text.strip(" ,")
        if not DATE_LIKE_RE.search(text):
            return None
        when = strptime_local(text, FORMATS[self.date_order], self.timezone) or self.local_date(text)
        if when is None:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable post date %r", text)
        return when

    @staticmethod
    def quoted_ids(content: Selector, own_id: str) -> list[str]:
        """Pids the top-level quotes cite, from the jump links in their ``<cite>``."""
        ids: list[str] = []
        for quote in content.xpath(".//blockquote[not(ancestor::blockquote)]"):
            links = [a.attrib for a in quote.xpath("./cite//a")]
            ids += [i for i in MARKUP.quote_ids({}, links) if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        """Each row's thread as ``showthread.php?tid=N`` (the row's ``span#tid_N``), whatever URL
        style the site links with, so a thread's first page has the URL its other pages link to."""
        links = []
        for span in response.css("span[id^='tid_']"):
            href = span.css("a::attr(href)").get()
            tid = span.attrib.get("id", "").removeprefix("tid_")
            if not href:
                continue
            links.append(response.urljoin(f"showthread.php?tid={tid}") if tid.isdigit()
                         else self.strip_session(response.urljoin(href)))
        return list(dict.fromkeys(links))

    def thread_page_links(self, response: Response) -> list[str]:
        """The thread's other pages as ``showthread.php?tid=N&page=P``, each page once per crawl (a
        start URL in the slug style is the same page as the ``tid=`` link back to it)."""
        info = self.thread_info(response)
        if not info.thread_id:
            return []
        seen = self.__dict__.setdefault("_pages_seen", set())
        seen.add((info.thread_id, info.page))
        links = response.css(".pagination a::attr(href)").getall()
        pages = {self.page_from_url(response.urljoin(h)) or 1 for h in links}
        wanted = [p for p in sorted(pages) if (info.thread_id, p) not in seen]
        seen.update((info.thread_id, p) for p in wanted)
        return [response.urljoin(f"showthread.php?tid={info.thread_id}" + (f"&page={p}" if p > 1 else ""))
                for p in wanted]

    def board_next_page(self, response: Response) -> str | None:
        links = self.links_by_css(response, ".pagination a.pagination_next::attr(href)")
        return links[0] if links else None

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Each listed thread's last post time (``span.lastpost``, relative dates by their title)."""
        found: dict[str, LastPost] = {}
        for span in response.css("span[id^='tid_']"):
            tid = span.attrib.get("id", "").removeprefix("tid_")
            row = span.xpath("ancestor::tr[1]")
            when = self.date_of(row.css("span.lastpost")[:1]) if row else None
            if tid.isdigit() and when:
                found[tid] = LastPost(posted_at=when)
        return found

    # ---- contracts ---------------------------------------------------------------------------
    def parse(self, response: Response, **kwargs: Any):
        """A start URL: an index (boards), a board (thread links, next page) or a thread (posts, pages).

        @url tests/fixtures/mybb/mybb18_thread_p1.html
        @returns items 3 3
        @returns requests 1 1
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
