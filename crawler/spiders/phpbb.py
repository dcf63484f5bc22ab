"""Spider ``phpbb``: phpBB 3.0 to 3.3 boards and topics (prosilver and the styles built on it).

A ``ForumSpider`` subclass: the base class owns the crawl (limits, items, counting); this module
only knows phpBB's markup and its offset pagination. Markup it relies on (prosilver's templates,
matched by id prefixes and class tokens so that derived styles parse too):

- posts: ``div.post`` with ``id="pN"`` (N is the post id); author ``.author strong`` /
  ``.postprofile .username``; body the inner HTML of ``.content``, followed by the post's
  signature (``div.signature``, outer HTML) so the clean stage can drop it;
- time: ``<time datetime="...">`` in ``p.author`` (3.2+: ISO with offset), else the local-time
  text after the author (3.0/3.1: ``Mon Mar 01, 2010 2:17 pm``), read by ``ForumSpider.local_date``
  in the forum's ``timezone`` and ``date_order`` (the board's display zone is a user setting:
  pass the zone guests see);
- quotes: ``MARKUP`` below; 3.3 writes ``<blockquote cite="./viewtopic.php?p=N#pN">`` with a
  ``<cite>`` whose jump link carries ``data-post-id``; 3.0's quotes are a bare
  ``<blockquote><div><cite>X wrote:</cite>`` (no id: removed by clean, nothing to cite);
- URLs: ``viewforum.php?f=N``, ``viewtopic.php?f=N&t=N``, pages by ``start=OFFSET``; the
  session id ``sid=`` phpBB appends for guests without cookies is stripped from every link;
- topic: id from the title link (``h2 a[href*=t=]``), else the URL, else the search form's
  ``input[name=t]``; title ``h2``; board the last ``viewforum.php`` breadcrumb; positions are
  ``start`` + the post's index on the page, page numbers ``start`` / the board's page size (the
  step between the pagination links' offsets; ``posts_per_page`` when the topic has one page);
- board: topic links ``a.topictitle``, next page ``a[rel=next]`` (3.2+) or the pagination link
  with the next offset (3.0); each topic's last post from its row's ``#pN`` link (incremental
  re-crawls); index: board links ``a.forumtitle``.

Usage: ``scrapy crawl phpbb -a start_url=https://forum.example.com/viewforum.php?f=2
-a timezone=Europe/Berlin -a date_order=DMY -O out.parquet``
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from typing import Any

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from contracts.timestamps import to_utc
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import DATE_LIKE_RE, ForumSpider, PostData, ThreadInfo

TOPIC_RE = re.compile(r"viewtopic\.php\?(?:[^#]*&)?t=(\d+)")
START_RE = re.compile(r"[?&]start=(\d+)")
POST_DIV_ID_RE = re.compile(r"^p(\d+)$")
POST_LINK_RE = re.compile(r"[?&]p=(\d+)|#p(\d+)$")
MARKUP_SIGNALS = {"html: body#phpbb": "body#phpbb",  # prosilver's; posts, topic lists, forum lists
                  "html: div.post[id^=p] .postbody": "div.post[id^='p'] .postbody",
                  "html: a.topictitle": "a.topictitle", "html: a.forumtitle": "a.forumtitle"}
URL_SIGNALS = {"url: viewtopic.php, viewforum.php, index.php": re.compile(r"(?:viewtopic|viewforum|index)\.php")}

# phpBB's body markup: quotes are <blockquote> (HTML's own rule), signatures div.signature.
MARKUP = EngineMarkup(
    name="phpbb",
    quote_tags=("blockquote",),
    quote_attrs=("cite",),  # 3.2+: cite="./viewtopic.php?p=N#pN"
    quote_source_ids=(r"[?&]p=(\d+)",),
    quote_link_ids=(r"[?&]p=(\d+)", r"#p(\d+)$"),  # the <cite>'s jump link (3.1+)
    signature=("signature",),
    smilie=("smilies",),  # <img class="smilies" alt=":)">
)


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


def _start(url: str) -> int:
    match = START_RE.search(url)
    return int(match.group(1)) if match else 0


class PhpbbSpider(ForumSpider):
    name = "phpbb"
    markup = MARKUP
    SESSION_PARAMS = ("sid",)  # phpBB's session id, added to every link for cookieless guests

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """prosilver's ``body#phpbb``, its post / topic-list / forum-list markup, a phpBB generator
        (some styles print one); (supporting) the ``viewtopic.php`` / ``viewforum.php`` routes."""
        markup = rx.css_signals(response, MARKUP_SIGNALS) + rx.generator_signals(response, "phpBB")
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("div.post[id^='p']"):
            return "thread"
        if response.css("a.topictitle"):
            return "board"
        if response.css("a.forumtitle"):
            return "index"
        return None

    def board_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a.forumtitle::attr(href)")

    def thread_id_from_url(self, url: str) -> str | None:
        match = TOPIC_RE.search(url)
        return match.group(1) if match else None

    def canonical_thread_url(self, url: str) -> str:
        """``viewtopic.php?t=N`` links as listed (``f=`` kept: phpBB needs no more), without ``sid``."""
        return self.strip_session(url)

    def page_size(self, response: Response) -> int:
        """Posts (or topics) per page: the step between the pagination links' offsets."""
        starts = sorted({_start(h) for h in response.css(".pagination a::attr(href)").getall()
                         if ".php" in h} | {_start(response.url)})  # not the "jump to page" link
        steps = [b - a for a, b in pairwise(starts) if b > a]
        if steps:
            self._page_size = min(steps)  # for page_from_url on the links of this topic
        return min(steps) if steps else getattr(self, "_page_size", None) or self.posts_per_page

    def page_from_url(self, url: str) -> int | None:
        """The page a ``start=`` link leads to (for ``max_pages``), in the page size last seen."""
        start = _start(url)
        return start // (getattr(self, "_page_size", None) or self.posts_per_page) + 1 if start else None

    def thread_info(self, response: Response) -> ThreadInfo:
        title_link = response.css("h2.topic-title a, h2 a")
        thread_id = (self.thread_id_from_url(title_link.attrib.get("href", "")) if title_link else None) \
            or self.thread_id_from_url(response.url) \
            or response.css("input[name='t']::attr(value)").re_first(r"^\d+$")
        title = _text(title_link[:1]) or _text(response.css("h2")[:1])
        crumbs = [t for a in response.css("#nav-breadcrumbs a, .navbar a, .breadcrumbs a")
                  if "viewforum.php" in (a.attrib.get("href") or "") and (t := _text(a))]
        page = _start(response.url) // self.page_size(response) + 1
        return ThreadInfo(thread_id=thread_id, title=title, board=crumbs[-1] if crumbs else None, page=page)

    # ---- posts -------------------------------------------------------------------------------
    def posts(self, response: Response) -> list[PostData]:
        start = _start(response.url)
        return [self.post(response, div, start + index)
                for index, div in enumerate(response.css("div.post[id^='p']"))
                if POST_DIV_ID_RE.match(div.attrib.get("id", ""))]

    def post(self, response: Response, div: Selector, position: int) -> PostData:
        post_id = POST_DIV_ID_RE.match(div.attrib["id"]).group(1)
        author = _text(div.css("p.author strong, .author .username")[:1]) \
            or _text(div.css(".postprofile .username, .postprofile dt a")[:1])
        content = div.css("div.content")[:1]
        body = None
        if content:
            body = "".join(content.xpath("node()").getall())
            signature = div.css("div.signature")[:1]
            if signature:
                body += signature.get()
        return PostData(
            post_id=post_id, author=author, posted_at=self.posted_at(div), body=body,
            url=f"{response.urljoin('viewtopic.php')}?p={post_id}#p{post_id}", position=position,
            quoted_post_ids=self.quoted_ids(content, post_id) if content else [])

    def posted_at(self, div: Selector) -> datetime | None:
        stamp = div.css("p.author time::attr(datetime), time::attr(datetime)").get()
        if stamp:
            try:
                return to_utc(stamp, "time@datetime")
            except ValueError:
                self.inc("errors/bad_time")
                self.logger.warning("unreadable <time datetime=%r>", stamp)
                return None
        # 3.0/3.1: "by <strong>X</strong> » Mon Mar 01, 2010 2:17 pm": the text after the author
        text = " ".join(div.css("p.author").xpath("text()").getall())
        text = " ".join(text.replace("\xa0", " ").replace("»", " ").split())
        if not DATE_LIKE_RE.search(text):
            return None
        when = self.local_date(text)
        if when is None:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable post date %r", text)
        return when

    @staticmethod
    def quoted_ids(content: Selector, own_id: str) -> list[str]:
        """Post ids the top-level quotes cite: ``cite`` attribute, then the ``<cite>`` jump links."""
        ids: list[str] = []
        for quote in content.xpath("./blockquote | ./*[not(self::blockquote)]//blockquote[not(ancestor::blockquote)]"):
            links = [a.attrib for a in quote.xpath("./cite//a | ./div/cite//a")]
            ids += [i for i in MARKUP.quote_ids(quote.attrib, links) if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        return self.links_by_css(response, "a.topictitle::attr(href)")

    def thread_page_links(self, response: Response) -> list[str]:
        thread_id = self.thread_info(response).thread_id
        here = self.strip_session(response.url)
        return [u for u in self.links_by_css(response, ".pagination a::attr(href)")
                if self.thread_id_from_url(u) == thread_id and u != here and _start(u) != _start(here)]

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Each listed topic's last post id, from its row's "Go to last post" link (``#pN``)."""
        found: dict[str, LastPost] = {}
        for title in response.css("a.topictitle"):
            thread_id = self.thread_id_from_url(title.attrib.get("href", ""))
            rows = title.xpath("ancestor::li[contains(@class, 'row')][1] | ancestor::tr[1]")
            if not thread_id or not rows:
                continue
            ids = [m.group(1) or m.group(2) for href in rows[-1].css("a::attr(href)").getall()
                   if "#p" in href and (m := POST_LINK_RE.search(href))]
            if ids:
                found[thread_id] = LastPost(post_id=ids[-1])
        return found

    def board_next_page(self, response: Response) -> str | None:
        nexts = [u for u in self.links_by_css(response, ".pagination a[rel='next']::attr(href), "
                                                  "link[rel='next']::attr(href)") if "viewforum.php" in u]
        if nexts:
            return nexts[0]
        here = _start(response.url)  # 3.0: no rel=next; the link with the smallest larger offset
        later = sorted((_start(u), u) for u in self.links_by_css(response, ".pagination a::attr(href)")
                       if "viewforum.php" in u and START_RE.search(u) and _start(u) > here)
        return later[0][1] if later else None

    # ---- contracts ---------------------------------------------------------------------------
    def parse(self, response: Response, **kwargs: Any):
        """A start URL: an index (boards), a board (topic links, next page) or a topic (posts, pages).

        @url tests/fixtures/phpbb/phpbb33_topic_p1.html
        @returns items 3 3
        @returns requests 1 1
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
