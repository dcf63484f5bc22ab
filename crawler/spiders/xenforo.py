"""Spider ``xenforo``: XenForo 2 and 1 boards and threads (HardwareZone's forums, the demo forum).

XenForo 1 pages (``html#XenForo``) are read by the ``Xenforo1Markup`` mixin (crawler/spiders/xenforo1.py,
its markup listed there); everything below is XenForo 2's, tried first.

Markup it relies on (XenForo 2's default style, matched by CSS class tokens and ``contains``,
never by exact class strings, so themed sites such as HardwareZone parse too):

- posts: ``.message--post`` with ``data-author`` and ``id="js-post-N"`` / ``data-content="post-N"``;
  number ``#N`` in ``.message-attribution-opposite``; time ``time.u-dt`` (``data-time`` epoch
  seconds, else ``datetime`` with its offset, e.g. +0800);
- body: the inner HTML of ``.message-body .bbWrapper``, followed by the post's signature
  (``aside.message-signature``, outer HTML) when it has one, so the clean stage can drop it;
- quotes, signatures, "Click to expand", smilies, @mentions: ``MARKUP`` below, the one record of
  XenForo's body markup (the clean stage reads it from the raw file); the quoted post ids of the
  top-level quotes from ``data-source="post: N"`` and the title link ``a.bbCodeBlock-sourceJump``
  (``data-content-selector="#post-N"`` or ``href="/goto/post?id=N"``), as on HardwareZone;
- URLs: friendly (``/threads/slug.N/``, ``/forums/slug.N/``) or not (``/index.php?threads/slug.N/``),
  at the site root or in a sub-folder (``/forums/index.php?threads/...``); pages add ``page-N``;
- thread: id from ``html[data-content-key="thread-N"]`` or the URL (``threads/slug.N/``), title in
  ``h1.p-title-value``, board = last breadcrumb; pages in ``.pageNav`` (``/page-N``);
- index (``/``): board links in ``.node-title a`` (a start URL may be the forum's index);
- board: thread links in ``.structItem--thread .structItem-title``, next page
  ``.pageNav-jump--next`` (or ``link[rel=next]``), each thread's last post time in
  ``.structItem-cell--latest time.u-dt`` (for incremental re-crawls).

Usage: ``scrapy crawl xenforo -a start_url=https://forums.example.com/forums/x.16/ -O out.parquet``
"""

from __future__ import annotations

import re

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from contracts.timestamps import to_utc
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import ForumSpider, PostData, ThreadInfo
from crawler.spiders.xenforo1 import Xenforo1Markup

# ``/threads/slug.N/`` with friendly URLs, ``/index.php?threads/slug.N/`` without them (the route
# is then the query string), in either case possibly below a sub-folder (``/forums/index.php?...``).
THREAD_URL_RE = re.compile(r"^(?P<base>.*?[/?]threads/(?:[^/?#&]*\.)?(?P<id>\d+))(?:/|$|\?|#|&)")
PAGE_RE = re.compile(r"/page-(\d+)(?:[/?#]|$)")
POST_ID_RE = re.compile(r"(\d+)\s*$")
NUMBER_RE = re.compile(r"#\s*([\d,]+)")

# XPath class-token test: tolerant of extra classes and any order.
def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# XenForo 2 (and 1) post body markup: what the clean stage removes, and where quoted post ids are.
MARKUP = EngineMarkup(
    name="xenforo",
    quote=("bbCodeBlock--quote", "bbCodeQuote", "quoteContainer"),  # XF2 blockquote; XF1 div / blockquote
    not_quote=("message-body", "messageText"),  # XF themes' post wrappers, not quotes
    quote_title=("bbCodeBlock-title", "attribution"),  # "X said:" with the jump link (XF2; XF1)
    quote_attrs=("data-source",),
    quote_source_ids=(r"post:\s*(\d+)",),  # data-source="post: N"
    quote_link_ids=(r"[?&]id=(\d+)", r"#?post-(\d+)", r"/posts/(\d+)"),  # /goto/post?id=N, #post-N, /posts/N/
    signature=("message-signature",),
    expander=("bbCodeBlock-expandLink", "bbCodeBlock-shrinkLink"),
    expander_text=(r"Click to (?:expand|shrink)\.\.\.",),
    smilie=("smilie",),
    mention=("username",),  # a.username, data-user-id: @mentions
    mention_attrs=("data-user-id",),
)
_ANY_QUOTE = " or ".join(_has_class(c) for c in MARKUP.quote)
TOP_QUOTES = f".//*[{_ANY_QUOTE}][not(ancestor::*[{_ANY_QUOTE}])]"
_TITLE = " or ".join(_has_class(c) for c in MARKUP.quote_title)


def _text(sel: Selector | None) -> str | None:
    if sel is None:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).split())
    return text or None


def inner_html(sel: Selector) -> str:
    """The element's children serialised (text and tags), i.e. its inner HTML.

    Cut from the element's own serialisation: one string, not a Selector per child node (3x faster
    on post bodies, which are mostly text and ``<br>``)."""
    outer = sel.get()
    start, end = outer.find(">") + 1, outer.rfind("</")
    return outer[start:end] if end >= start else ""


MARKUP_SIGNALS = {  # label -> CSS: the root element, posts, thread lists, node (board) lists
    "html: html#XF (XenForo 2)": "html#XF", "html: .message--post (XenForo 2)": ".message--post",
    "html: .structItem--thread (XenForo 2)": ".structItem--thread", "html: .node-title (XenForo 2)": ".node-title",
    "html: html#XenForo (XenForo 1)": "html#XenForo",
    "html: #messageList > li.message (XenForo 1)": "#messageList > li.message",
    "html: .discussionListItem (XenForo 1)": ".discussionListItem", "html: .nodeTitle (XenForo 1)": ".nodeTitle",
}
URL_SIGNALS = {"url: threads/<slug>.<id>/ or forums/<slug>.<id>/":
               re.compile(r"[/?](?:threads|forums)/(?:[^/?#&]*\.)?\d+(?:/|$)")}


class XenforoSpider(ForumSpider, Xenforo1Markup):
    name = "xenforo"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """``html#XF`` (XenForo 2) or ``html#XenForo`` (XenForo 1), their post / thread-list / node
        markup; (supporting) a ``threads/slug.N/`` route."""
        return rx.recognised(rx.css_signals(response, MARKUP_SIGNALS), rx.url_signals(response.url, URL_SIGNALS))

    def page_kind(self, response: Response) -> str | None:
        if response.css(".message--post"):
            return "thread"
        if response.css(".structItem--thread"):
            return "board"
        template = response.xpath("/html/@data-template").get() or ""
        if template.startswith("thread_view"):
            return "thread"
        if template.startswith("forum_view"):
            return "board"
        if self.is_xf1(response):
            return self.xf1_page_kind(response)
        if self.board_links(response):
            return "index"
        return None

    def board_links(self, response: Response) -> list[str]:
        links = [link for link in response.css(".node-title a::attr(href)").getall() if "forums/" in link]
        return links or self.xf1_board_links(response)

    def thread_id_from_url(self, url: str) -> str | None:
        match = THREAD_URL_RE.match(url)
        return match.group("id") if match else None

    def canonical_thread_url(self, url: str) -> str:
        match = THREAD_URL_RE.match(url)
        return match.group("base") + "/" if match else url

    def page_from_url(self, url: str) -> int | None:
        match = PAGE_RE.search(url)
        return int(match.group(1)) if match else None

    def thread_info(self, response: Response) -> ThreadInfo:
        if self.is_xf1(response):
            title = " ".join(" ".join(response.css(".titleBar h1").xpath(
                ".//text()[not(ancestor::*[contains(@class, 'prefix')])]").getall()).split())
            return ThreadInfo(thread_id=self.xf1_thread_id(response), title=title or None,
                              board=self.xf1_board(response), page=self.xf1_page(response))
        key = response.xpath("/html/@data-content-key").get() or ""
        thread_id = key.split("-", 1)[1] if key.startswith("thread-") else None
        thread_id = thread_id or self.thread_id_from_url(response.url)
        names = [n.strip() for n in response.css(".p-breadcrumbs [itemprop='name']::text").getall()
                 if n.strip()]
        page = self.page_from_url(response.url)
        if page is None:
            current = response.css(".pageNav-page--current ::text").re_first(r"\d+")
            page = int(current) if current else 1
        title = " ".join(" ".join(response.css("h1.p-title-value").xpath(
            ".//text()[not(ancestor::*[contains(@class, 'label')])]").getall()).split())
        return ThreadInfo(thread_id=thread_id, title=title or None,
                          board=names[-1] if names else None, page=page)

    def posts(self, response: Response) -> list[PostData]:
        articles = response.css(".message--post")
        if not articles and self.is_xf1(response):
            return self.xf1_posts(response)
        return [self.post(response, article) for article in articles]

    def post(self, response: Response, article: Selector) -> PostData:
        raw_id = article.attrib.get("data-content") or article.attrib.get("id") or ""
        match = POST_ID_RE.search(raw_id)
        post_id = match.group(1) if match else None
        author = article.attrib.get("data-author") or _text(article.css(".message-name .username"))

        time = article.css(".message-attribution-main time.u-dt") or article.css("time.u-dt")
        posted_at = None
        if time:
            epoch = time[0].attrib.get("data-time")
            stamp = time[0].attrib.get("datetime")
            if epoch and epoch.isdigit():
                posted_at = to_utc(int(epoch), "posted_at")
            elif stamp:
                try:
                    posted_at = to_utc(stamp, "posted_at")
                except ValueError:
                    self.inc("errors/bad_time")

        href = article.css(".message-attribution-main a[href*='post']::attr(href), "
                           ".message-attribution-opposite a[href*='post']::attr(href)").get()
        number = NUMBER_RE.search(" ".join(article.css(".message-attribution-opposite ::text").getall()))

        body = None
        wrapper = article.css(".message-body .bbWrapper")
        if wrapper:
            body = inner_html(wrapper[0])
            signature = article.css("aside.message-signature")
            if signature:
                body += signature[0].get()
        quotes = self.quoted_ids(wrapper[0]) if wrapper else []
        return PostData(post_id=post_id, author=author, posted_at=posted_at, body=body,
                        url=response.urljoin(href) if href else None,
                        position=int(number.group(1).replace(",", "")) - 1 if number else None,
                        quoted_post_ids=quotes)

    @staticmethod
    def quoted_ids(body: Selector) -> list[str]:
        """Ids of the posts quoted at the top level of a body (nested quotes belong to them), read
        by ``MARKUP.quote_ids`` from each quote's data-source and its own title's links."""
        ids: list[str] = []
        for quote in body.xpath(TOP_QUOTES):
            title = quote.xpath(f".//*[{_TITLE}]")
            links = [a.attrib for a in title[0].xpath(".//a")] if title else []
            ids += [i for i in MARKUP.quote_ids(quote.attrib, links) if i not in ids]
        return ids

    def thread_links(self, response: Response) -> list[str]:
        links = response.css(".structItem--thread .structItem-title a::attr(href)").getall()
        return [link for link in links if "threads/" in link] or self.xf1_thread_links(response)

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Board page: each listed thread's last post time (``.structItem-cell--latest time.u-dt``);
        XenForo's board rows link to ``/latest``, not to a post id."""
        found: dict[str, LastPost] = {}
        for row in response.css(".structItem--thread"):
            link = next((h for h in row.css(".structItem-title a::attr(href)").getall() if "threads/" in h), None)
            thread_id = self.thread_id_from_url(response.urljoin(link)) if link else None
            epoch = row.css(".structItem-cell--latest time.u-dt::attr(data-time)").get()
            if thread_id and epoch and epoch.isdigit():
                found[thread_id] = LastPost(posted_at=to_utc(int(epoch), "last_post"))
        return found or self.xf1_last_posts(response)

    def thread_page_links(self, response: Response) -> list[str]:
        if self.is_xf1(response):
            return self.xf1_page_links(response)
        links = response.css(".pageNav .pageNav-page a::attr(href)").getall()
        links += response.css(".pageNav .pageNav-jump--next::attr(href), "
                              "link[rel='next']::attr(href)").getall()
        return list(dict.fromkeys(links))

    def board_next_page(self, response: Response) -> str | None:
        if self.is_xf1(response):
            return self.xf1_next_page(response)
        return (response.css(".pageNav .pageNav-jump--next::attr(href)").get()
                or response.css("link[rel='next']::attr(href)").get())

    def parse(self, response: Response, **kwargs):
        """A start URL (board, thread or forum index); contract for ``scrapy check`` (offline).

        @url tests/fixtures/xenforo/thread_p1.html
        @returns items 20 20
        @returns requests 1
        @scrapes source url board thread_id thread_title page position post_id
        @scrapes author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
