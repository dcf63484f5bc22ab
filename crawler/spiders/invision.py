"""Spider ``invision``: Invision Community 4 and 5 (IPS) forums and topics.

A ``ForumSpider`` subclass: the base class owns the crawl (limits, items, counting); this module
only knows IPS's markup and URLs. Markup it relies on (the ``forums/front/topics`` and
``forums/front/forums`` templates of 4.x and their 5.x successors, matched by id prefixes, class
tokens and the ``data-role`` hooks IPS's own JavaScript uses):

- posts: ``article[id^=elComment_]`` (the id is the comment id); author ``.cAuthorPane_author``
  (4.x) or ``.ipsEntry__username`` (5.x); time ``<time datetime>`` (ISO, UTC) in the comment's
  meta; body the inner HTML of ``[data-role=commentContent]``. The signature
  (``[data-role=memberSignature]``, beside the content) is left out of the body: IPS marks it by
  ``data-role``, not by a class the clean stage could be told, so it never reaches the raw file;
- positions: IPS prints no post numbers: page ``N`` of ``data-ipsPagination-perPage`` comments
  (25 by default) holds positions ``(N - 1) * perPage + index``;
- quotes: ``MARKUP`` below; ``blockquote.ipsQuote`` names the quoted comment in
  ``data-ipsquote-contentcommentid`` (and its topic in ``data-ipsquote-contentid``);
- URLs: friendly (``/forum/N-slug/``, ``/topic/N-slug/``, pages ``/page/N/``), with or without
  ``index.php?``, or the old ``?showtopic=N``; topic ids also from ``link[rel=canonical]``;
- board: topic rows ``li[data-rowid]`` with ``.ipsDataItem_title`` (4.x) / ``.ipsData__title``
  (5.x) links, next page ``link[rel=next]`` or ``.ipsPagination_next``; last post times in the
  row's ``time[datetime]`` (incremental re-crawls); index: ``li[data-forumid]`` board links.

Usage: ``scrapy crawl invision -a start_url=https://community.example.com/forum/2-general/ -O out.parquet``
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from parsel import Selector
from scrapy.http import Response

from contracts.markup import EngineMarkup
from contracts.timestamps import to_utc
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import ForumSpider, PostData, ThreadInfo

TOPIC_URL_RES = (re.compile(r"/topic/(\d+)(?:-|/|$|\?|#)"), re.compile(r"[?&]showtopic=(\d+)"))
PAGE_RES = (re.compile(r"/page/(\d+)"), re.compile(r"[?&]page=(\d+)"))
COMMENT_ID_RE = re.compile(r"^elComment_(\d+)$")
TITLES = ".ipsDataItem_title a::attr(href), .ipsData__title a::attr(href)"

# IPS's stored post HTML: quotes are <blockquote class="ipsQuote"> naming the quoted comment in
# data-ipsquote-contentcommentid (the "X said:" citation div is drawn into it by IPS's script);
# mentions are links with data-mentionid; emoticons are <img alt=":)"> (no class: alt text kept).
MARKUP = EngineMarkup(
    name="invision",
    quote=("ipsQuote",),
    quote_title=("ipsQuote_citation",),
    quote_attrs=("data-ipsquote-contentcommentid",),
    quote_source_ids=(r"^(\d+)$",),
    quote_link_ids=(r"[?&]comment=(\d+)",),  # the citation's link: ?do=findComment&comment=N
    mention_attrs=("data-mentionid",),
)

MARKUP_SIGNALS = {
    "html: article[id^=elComment_]": "article[id^='elComment_']",
    "html: [data-role=commentContent]": "[data-role='commentContent']",
    "html: blockquote.ipsQuote": "blockquote.ipsQuote",
    "html: li[data-rowid] topic rows": "li[data-rowid] .ipsDataItem_title, li[data-rowid] .ipsData__title",
    "html: li[data-forumid] forum rows": "li[data-forumid] .ipsDataItem_title, li[data-forumid] .ipsData__title",
    "html: body.ipsApp": "body.ipsApp",
}
TEXT_SIGNALS = {"text: Powered by Invision Community": re.compile(r"Powered by Invision Community", re.I)}
URL_SIGNALS = {"url: /topic/N-slug/": re.compile(r"/topic/\d+-"), "url: /forum/N-slug/": re.compile(r"/forum/\d+-")}


def _text(sel: Selector | list | None) -> str | None:
    if not sel:
        return None
    text = " ".join(" ".join(sel.css("::text").getall()).replace("\xa0", " ").split())
    return text or None


class InvisionSpider(ForumSpider):
    name = "invision"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The IPS signals on ``response`` (comment articles, content hooks, ipsQuote, topic rows,
        the app's body class, the footer; routes only add to them), or None."""
        markup = rx.css_signals(response, MARKUP_SIGNALS) + rx.text_signals(response, TEXT_SIGNALS)
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    # ---- what the page is --------------------------------------------------------------------
    def page_kind(self, response: Response) -> str | None:
        if response.css("article[id^='elComment_']"):
            return "thread"
        if response.css("li[data-rowid]").css(TITLES).re(r"/topic/\d+"):
            return "board"
        if response.css("li[data-forumid]"):
            return "index"
        return None

    def board_links(self, response: Response) -> list[str]:
        links = response.css("li[data-forumid]").css(TITLES).getall()
        return list(dict.fromkeys(self.strip_session(response.urljoin(h)) for h in links if "/forum/" in h))

    def thread_id_from_url(self, url: str) -> str | None:
        for pattern in TOPIC_URL_RES:
            if match := pattern.search(url):
                return match.group(1)
        return None

    def canonical_thread_url(self, url: str) -> str:
        """A topic link without its query (``?do=getNewComment``) when the route is in the path."""
        return url.split("?", 1)[0] if "/topic/" in url.split("?", 1)[0] else self.strip_session(url)

    def page_from_url(self, url: str) -> int | None:
        for pattern in PAGE_RES:
            if match := pattern.search(url):
                return int(match.group(1))
        return None

    def per_page(self, response: Response) -> int:
        value = response.css("[data-ipspagination-perpage]::attr(data-ipspagination-perpage)").re_first(r"^\d+$")
        return int(value) if value and int(value) > 0 else self.posts_per_page

    def thread_info(self, response: Response) -> ThreadInfo:
        thread_id = (self.thread_id_from_url(response.css("link[rel='canonical']::attr(href)").get() or "")
                     or self.thread_id_from_url(response.url))
        title = _text(response.css("h1.ipsType_pageTitle, h1.ipsPageHeader__title")[:1]) \
            or _text(response.css("h1")[:1])
        crumbs = [t for a in response.css(".ipsBreadcrumb a") if "/forum/" in a.attrib.get("href", "")
                  and (t := _text(a))]
        current = response.css(".ipsPagination_active a::attr(data-page), "
                               ".ipsPagination__page--active a::attr(data-page)").re_first(r"^\d+$")
        page = int(current) if current else (self.page_from_url(response.url) or 1)
        return ThreadInfo(thread_id=thread_id, title=title, board=crumbs[-1] if crumbs else None, page=page)

    # ---- posts -------------------------------------------------------------------------------
    def posts(self, response: Response) -> list[PostData]:
        first = (self.thread_info(response).page - 1) * self.per_page(response)
        articles = [a for a in response.css("article[id^='elComment_']") if COMMENT_ID_RE.match(a.attrib.get("id", ""))]
        return [self.post(response, article, first + index) for index, article in enumerate(articles)]

    def post(self, response: Response, article: Selector, position: int) -> PostData:
        post_id = COMMENT_ID_RE.match(article.attrib.get("id", "")).group(1)
        author = _text(article.css(".cAuthorPane_author, .ipsEntry__username")[:1])
        content = article.css("[data-role='commentContent']")[:1]
        link = article.css("a[href*='comment=']::attr(href), a[href*='#findComment-']::attr(href)").get()
        return PostData(
            post_id=post_id, author=author, posted_at=self.posted_at(article),
            body="".join(content.xpath("node()").getall()) if content else None,
            url=response.urljoin(link) if link else None, position=position,
            quoted_post_ids=self.quoted_ids(content, post_id) if content else [])

    def posted_at(self, article: Selector) -> datetime | None:
        stamp = article.css(".ipsComment_meta time::attr(datetime), .ipsEntry__meta time::attr(datetime), "
                            "time::attr(datetime)").get()
        if not stamp:
            return None
        try:
            return to_utc(stamp, "time@datetime")
        except ValueError:
            self.inc("errors/bad_time")
            self.logger.warning("unreadable <time datetime=%r>", stamp)
            return None

    @staticmethod
    def quoted_ids(content: Selector, own_id: str) -> list[str]:
        """Comment ids the top-level quotes cite (``data-ipsquote-contentcommentid``, else the citation link)."""
        ids: list[str] = []
        for quote in content.xpath(".//blockquote[not(ancestor::blockquote)]"):
            links = [a.attrib for a in quote.css(".ipsQuote_citation a")]
            cited = MARKUP.quote_ids(quote.attrib, links)
            ids += [i for i in cited if i != own_id and i not in ids]
        return ids

    # ---- links -------------------------------------------------------------------------------
    def thread_links(self, response: Response) -> list[str]:
        """Each topic row's title link (its first: the mini pagination beside it links later pages)."""
        links = [row.css(TITLES).get() for row in response.css("li[data-rowid]")]
        return list(dict.fromkeys(response.urljoin(h) for h in links if h and self.thread_id_from_url(h)))

    def thread_page_links(self, response: Response) -> list[str]:
        thread_id = self.thread_info(response).thread_id
        links = self.links_by_css(response, ".ipsPagination a::attr(href), link[rel='next']::attr(href)")
        here = self.page_from_url(response.url) or 1
        return [u for u in links if self.thread_id_from_url(u) == thread_id and (self.page_from_url(u) or 1) != here]

    def board_next_page(self, response: Response) -> str | None:
        links = self.links_by_css(response, "link[rel='next']::attr(href), "
                                            ".ipsPagination_next:not(.ipsPagination_inactive) a::attr(href)")
        return links[0] if links else None

    def thread_last_posts(self, response: Response) -> dict[str, LastPost]:
        """Each listed topic's last post time (the row's last ``time[datetime]``)."""
        found: dict[str, LastPost] = {}
        for row in response.css("li[data-rowid]"):
            topic = self.thread_id_from_url(row.css(TITLES).get() or "")
            stamps = row.css("time::attr(datetime)").getall()
            if topic and stamps:
                try:
                    found[topic] = LastPost(posted_at=to_utc(stamps[-1], "last post"))
                except ValueError:
                    self.inc("errors/bad_time")
        return found

    # ---- contracts ---------------------------------------------------------------------------
    def parse(self, response: Response, **kwargs: Any):
        """A start URL: an index (forums), a forum (topic links, next page) or a topic (posts, pages).
        The contract's fixture links its next page absolutely, as IPS does: off the file:// host, not followed.

        @url tests/fixtures/invision/ips4_topic_p1.html
        @returns items 3 3
        @returns requests 0 0
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        yield from super().parse(response, **kwargs)
