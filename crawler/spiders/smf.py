"""Spider ``smf``: Simple Machines Forum 2.0 and 2.1 boards and topics (Curve and the 2.1 default).

A ``ForumSpider`` subclass: the base class owns the crawl (limits, items, counting); this module
only knows SMF's markup and its offset URLs. Markup it relies on (``Display.template.php``,
``MessageIndex.template.php`` and ``BoardIndex.template.php`` of both versions):

- posts: every body ``div.inner[id^=msg_]`` (``msg_N``: N is the message id) in a ``div[id^=msg]``
  (2.1: ``div.windowbg#msgN``) or ``.post_wrapper`` (2.0); author ``.poster h4`` (a profile link,
  or plain text for guests); body the inner HTML of ``div.inner``, followed by the signature
  (``div.signature#msg_N_signature``, outer HTML) so the clean stage can drop it;
- time: local-time text in ``.keyinfo`` (2.1: the ``a.smalltext`` permalink, ``January 15, 2024,
  10:32:00 AM`` or ``Today at 10:32:00 AM``; 2.0: ``« Reply #1 on: January 15, 2024, ... »``),
  read in the forum's ``timezone`` (argument): SMF's default format by ``crawler.datefmt``, any other
  text by ``ForumSpider.local_date``; position from
  ``Reply #N`` (the first post has none), else the page's offset plus the post's index;
- quotes: ``MARKUP`` below; ``blockquote.bbc_standard_quote`` (nested ones alternate with
  ``bbc_alternate_quote``), the quoted message in the attribution link (``topic=T.msgN#msgN``):
  a ``<cite>`` inside the quote (2.1) or the ``div.quoteheader`` just before it (2.0);
- URLs: ``index.php?board=N.OFFSET``, ``index.php?topic=N.OFFSET`` (offset pagination: ``.15``,
  ``.30``; also the path style ``index.php/topic,N.OFFSET.html``); the session id ``PHPSESSID=``
  SMF writes into every link for cookieless guests is stripped; thread links become
  ``topic=N.0``;
- topic: id from the URL, else ``link[rel=canonical]``, else ``input[name=topic]``; title
  ``#top_subject`` (its "Topic: X (Read N times)" form trimmed), else the linktree's topic link;
  board the last ``board=`` link of the linktree; page ``.current_page`` (2.1) / ``.pagelinks
  strong`` (2.0), else the offset over the page size (the step between pagination offsets;
  ``posts_per_page`` when there is one page);
- board: topic links ``span[id^=msg_] a`` (the first message of each row), next page the
  pagination link with the next offset, each topic's last message id from its row's ``msgN``
  link; index: board links ``a.subject[href*=board]``.

Usage: ``scrapy crawl smf -a start_url=https://forum.example.com/index.php?board=2.0
-a timezone=America/New_York -O out.parquet``
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from typing import Any

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.datefmt import strptime_local
from crawler.incremental import LastPost
from crawler.spiders.forum import DATE_LIKE_RE, ForumSpider, PostData, ThreadInfo

TOPIC_RE = re.compile(r"topic[=,](\d+)")
BOARD_RE = re.compile(r"board[=,](\d+)")
OFFSET_RE = re.compile(r"(?:topic|board)[=,]\d+\.(\d+)")
QUERY_TOPIC_RE = re.compile(r"^(?P<script>[^?#]*?)\?(?:[^#]*?[&;])?topic=(?P<id>\d+)")
PATH_TOPIC_RE = re.compile(r"^(?P<script>[^?#]*?)/topic,(?P<id>\d+)(?:\.[^/?#]*)?")
INNER_ID_RE = re.compile(r"^msg_(\d+)$")
FORMATS = ("%B %d, %Y, %I:%M:%S %p", "%B %d, %Y, %H:%M:%S")  # SMF's default time format; others: dateparser
DATE_TEXT_RE = re.compile(r"(?:Reply #\d+ )?on: ")
REPLY_RE = re.compile(r"Reply\s*#\s*(\d+)")
CONTAINER = "ancestor::div[starts-with(@id, 'msg') and not(starts-with(@id, 'msg_'))][1] | " \
            "ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' post_wrapper ')][1]"

# SMF's BBC output: quotes are blockquote.bbc_standard_quote / bbc_alternate_quote with the
# quoted message in the attribution link (topic=T.msgN#msgN); 2.0 writes the attribution
# ("Quote from: X on DATE") in a div.quoteheader before the blockquote and a div.quotefooter
# after it: both are removed with the quote (as expander-like chrome: not counted again).
# Signatures div.signature; smileys <img class="smiley" alt=":)">.
MARKUP = EngineMarkup(
    name="smf",
    quote=("bbc_standard_quote", "bbc_alternate_quote"),
    quote_link_ids=(r"[.;?&]msg=?(\d+)", r"#msg(\d+)$"),
    signature=("signature",),
    expander=("quoteheader", "quotefooter"),
    smilie=("smiley",),
)

MARKUP_SIGNALS = {
    "html: div.inner[id^=msg_]": "div.inner[id^='msg_']",
    "html: blockquote.bbc_standard_quote": "blockquote.bbc_standard_quote",
    "html: span[id^=msg_] topic links (message index)": "span[id^='msg_'] a[href*='topic']",
    "html: a.subject board links (board index)": "a.subject[href*='board']",
}
TEXT_SIGNALS = {"text: Simple Machines footer": re.compile(r"Simple Machines|Powered by SMF", re.I),
                "text: smf_scripturl": re.compile(r"var smf_(?:scripturl|theme_url)")}
URL_SIGNALS = {"url: index.php?topic=N.O": re.compile(r"index\.php\?(?:[^#]*[&;])?topic=\d+\."),
               "url: index.php?board=N.O": re.compile(r"index\.php\?(?:[^#]*[&;])?board=\d+\.")}


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


def offset(url: str) -> int:
    """The ``.OFFSET`` of a ``topic=N.OFFSET`` / ``board=N.OFFSET`` URL (0 when none, e.g. ``.msg12``)."""
    match = OFFSET_RE.search(url)
    return int(match.group(1)) if match else 0


class SmfSpider(ForumSpider):
    name = "smf"
    markup = MARKUP
    SESSION_PARAMS = ("PHPSESSID",)  # SMF's session id in every link for guests without cookies

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The SMF signals on ``response`` (message bodies, BBC quotes, message and board index
        rows, the footer, the scripts' globals; routes only add to them), or None."""
        markup = rx.css_signals(response, MARKUP_SIGNALS) + rx.text_signals(response, TEXT_SIGNALS)
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("div.inner[id^='msg_']"):
            return "thread"
        if response.css("span[id^='msg_'] a[href*='topic']"):
            return "board"
        if response.css("a.subject[href*='board']"):
            return "index"
        return None

    def board_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a.subject[href*='board']::attr(href)")

    def thread_id_from_url(self, url: str) -> str | None:
        match = TOPIC_RE.search(url)
        return match.group(1) if match else None

    def canonical_thread_url(self, url: str) -> str:
        """``index.php?topic=N.0`` (or ``index.php/topic,N.0.html``): a topic's first page, one URL."""
        url = self.strip_session(url)
        if match := QUERY_TOPIC_RE.match(url):
            return f"{match['script']}?topic={match['id']}.0"
        if match := PATH_TOPIC_RE.match(url):
            return f"{match['script']}/topic,{match['id']}.0.html"
        return url

    def page_size(self, response: Response) -> int:
        """Posts (or topics) per page: the step between the pagination links' offsets."""
        starts = sorted({offset(h) for h in response.css(".pagelinks a::attr(href)").getall()} | {offset(response.url)})
        steps = [b - a for a, b in pairwise(starts) if b > a]
        if steps:
            self._page_size = min(steps)
        return min(steps) if steps else getattr(self, "_page_size", None) or self.posts_per_page

    def page_from_url(self, url: str) -> int | None:
        start = offset(url)
        return start // (getattr(self, "_page_size", None) or self.posts_per_page) + 1 if start else None

    def strip_session(self, url: str) -> str:
        """``url`` without ``PHPSESSID`` (joined with ``&`` or ``;``) and the fragment."""
        return re.sub(r"(?<=[?&;])PHPSESSID=[^&;#]*[&;]?", "", url.split("#", 1)[0]).rstrip("?&;")

    def thread_info(self, response: Response) -> ThreadInfo:
        thread_id = self.thread_id_from_url(response.url) \
            or self.thread_id_from_url(response.css("link[rel='canonical']::attr(href)").get() or "") \
            or response.css("input[name='topic']::attr(value)").re_first(r"^\d+$")
        links = response.css(".navigate_section a, .linktree a")
        crumbs = [t for a in links if BOARD_RE.search(a.attrib.get("href", "")) and (t := _text(a))]
        topics = [t for a in links if TOPIC_RE.search(a.attrib.get("href", "")) and (t := _text(a))]
        title = _text(response.css("#top_subject")[:1]) or (topics[-1] if topics else None)
        if title:
            title = re.sub(r"\s*\(\s*Read \d[\d,]* times\s*\)\s*$", "", title.removeprefix("Topic: ")) or None
        current = response.css(".pagelinks .current_page::text, .pagelinks strong::text").re_first(r"^\s*(\d+)\s*$")
        size = self.page_size(response)
        page = int(current) if current else offset(response.url) // size + 1
        return ThreadInfo(thread_id=thread_id, title=title, board=crumbs[-1] if crumbs else None, page=page)

    # ---- posts -------------------------------------------------------------------------------
    def posts(self, response: Response) -> list[PostData]:
        first = offset(response.url)
        inners = [d for d in response.css("div.inner[id^='msg_']") if INNER_ID_RE.match(d.attrib.get("id", ""))]
        return [self.post(response, inner, first + index) for index, inner in enumerate(inners)]

    def post(self, response: Response, inner: Selector, position: int) -> PostData:
        post_id = INNER_ID_RE.match(inner.attrib.get("id", "")).group(1)
        boxes = inner.xpath(CONTAINER)
        box = boxes[0] if boxes else inner
        keyinfo = box.css(".keyinfo")[:1]
        reply = REPLY_RE.search(" ".join(keyinfo.css("a::attr(title)").getall() + keyinfo.css("::text").getall()))
        body = "".join(inner.xpath("node()").getall())
        signature = box.css(f"div.signature[id='msg_{post_id}_signature'], div.signature")[:1]
        if signature:
            body += signature.get()
        link = keyinfo.css("a[href*='msg']::attr(href)").get() if keyinfo else None
        return PostData(
            post_id=post_id, author=_text(box.css(".poster h4")[:1]), posted_at=self.posted_at(keyinfo),
            body=body, url=self.strip_session(response.urljoin(link)) if link else None,
            position=int(reply.group(1)) if reply else position, quoted_post_ids=self.quoted_ids(inner, post_id))

    def posted_at(self, keyinfo: Selector | list) -> datetime | None:
        if not keyinfo:
            return None
        text = _text(keyinfo.css(".postinfo a.smalltext, a.smalltext, div.smalltext")[:1]) or ""
        text = DATE_TEXT_RE.sub("", text.replace("«", "").replace("»", "")).strip()
        if not DATE_LIKE_RE.search(text):
            return None
        when = strptime_local(text, FORMATS, self.timezone) or self.local_date(text)
        if when is None:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable post date %r", text)
        return when

    @staticmethod
    def quoted_ids(inner: Selector, own_id: str) -> list[str]:
        """Message ids the top-level quotes cite: the link in their ``<cite>`` (2.1) or in the
        ``div.quoteheader`` right before them (2.0)."""
        ids: list[str] = []
        for quote in inner.xpath(".//blockquote[not(ancestor::blockquote)]"):
            header = quote.xpath("preceding-sibling::*[1][contains(concat(' ', normalize-space(@class), ' '),"
                                 " ' quoteheader ')]//a")
            links = [a.attrib for a in quote.xpath("./cite//a") + header]
            ids += [i for i in MARKUP.quote_ids({}, links) if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        links = self.links_by_css(response, "span[id^='msg_'] a::attr(href)")
        return list(dict.fromkeys(self.canonical_thread_url(u) for u in links if self.thread_id_from_url(u)))

    def thread_page_links(self, response: Response) -> list[str]:
        thread_id = self.thread_info(response).thread_id
        here = offset(response.url)
        links = self.links_by_css(response, ".pagelinks a::attr(href)")
        return [u for u in links if self.thread_id_from_url(u) == thread_id and OFFSET_RE.search(u)
                and offset(u) != here]

    def board_next_page(self, response: Response) -> str | None:
        here = offset(response.url)
        later = sorted((offset(u), u) for u in self.links_by_css(response, ".pagelinks a::attr(href)")
                       if BOARD_RE.search(u) and OFFSET_RE.search(u) and offset(u) > here)
        return later[0][1] if later else None

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Each listed topic's last message id, from the ``msgN`` link in its row's last-post cell."""
        found: dict[str, LastPost] = {}
        for span in response.css("span[id^='msg_']"):
            topic = self.thread_id_from_url(span.css("a::attr(href)").get() or "")
            rows = span.xpath("ancestor::tr[1] | ancestor::div[contains(@class, 'windowbg')][1]")
            ids = rows[-1].css(".lastpost a::attr(href)").re(r"msg(\d+)") if rows else []
            if topic and ids:
                found[topic] = LastPost(post_id=ids[0])
        return found

    # ---- contracts ---------------------------------------------------------------------------
    def parse(self, response: Response, **kwargs: Any):
        """A start URL: a board index (boards), a board (topic links, next page) or a topic (posts, pages).
        The contract's fixture links its next page absolutely, as SMF does: off the file:// host, not followed.

        @url tests/fixtures/smf/smf21_topic_p1.html
        @returns items 3 3
        @returns requests 0 0
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
