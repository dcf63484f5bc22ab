"""Spider ``flarum``: Flarum forums, through their JSON:API (``/api``), which the forum's own client reads.

A ``JsonForumSpider``: ``ForumSpider``'s arguments, limits, stats and markup record, its own
``start`` and ``parse``. What it relies on (Flarum 1.x JSON:API documents: ``data``, ``included``,
``links``):

- start URLs: a discussion (``/d/{id}[-slug][/{number}]``), a tag (``/t/{slug}``), ``/tags`` (every
  tag) or the site root (every discussion), each fetched from its API route;
- tags: ``/api/tags``: each tag's discussions, with the tag's name as the board;
- listings: ``/api/discussions?filter[tag]={slug}&page[offset]=N``: ``data`` of type
  ``discussions`` (``lastPostedAt`` for ``since`` and incremental re-crawls), next page
  ``links.next``;
- discussions: ``/api/discussions/{id}``: title, tags and the ids of every post
  (``relationships.posts``); its posts are then read in pages of 20 from
  ``/api/posts?filter[discussion]={id}&page[offset]=K&page[limit]=20&sort=number`` (``max_pages``
  applies), each page's posts yielded as it comes (a quote names the quoted post by its id);
- posts: ``number`` (position = number - 1), ``createdAt`` (ISO, UTC), ``contentHtml``, the author's
  ``username`` from ``included`` users; posts that are not comments (``contentType``
  ``discussionRenamed``, ``discussionTagged``...: events without text) and hidden ones are skipped
  and counted;
- quotes: a ``<blockquote>`` whose ``a.PostMention[data-id]`` names the quoted post (the mentions
  extension writes ``@"name"#pN`` into the quote); ``MARKUP`` below. A ``PostMention`` outside a
  quote is a reply, not a quote: it becomes the mention placeholder.

Usage: ``scrapy crawl flarum -a start_url=https://discuss.example.org/t/general -O out.parquet``
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlparse

import scrapy
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import PostData, ThreadInfo
from crawler.spiders.jsonforum import JsonForumSpider, obj, rows

PAGE = 20  # posts per /api/posts request (Flarum's default page[limit])
DISCUSSION_PATH_RE = re.compile(r"^(?P<base>.*?)/(?:api/discussions|d)/(?P<id>\d+)(?:-[^/]*)?(?:/\d+)?/?$")
TAG_PATH_RE = re.compile(r"^(?P<base>.*?)/t/(?P<slug>[^/?#]+)/?$")
TAGS_PATH_RE = re.compile(r"^(?P<base>.*?)/(?:api/)?tags/?$")
POST_ID_RE = re.compile(r"^(\d+)$")
# a quote's own post mentions (not those of the quotes nested in it)
OWN_MENTIONS = (".//a[contains(concat(' ', normalize-space(@class), ' '), ' PostMention ')]"
                "[count(ancestor::blockquote) = 1]")

# Flarum's rendered posts (s9e TextFormatter): quotes are <blockquote> (HTML's own rule), the
# quoted post an a.PostMention[data-id] inside; mentions a.PostMention / a.UserMention; emoji
# <img class="emoji" alt="🙂">.
MARKUP = EngineMarkup(
    name="flarum",
    quote_tags=("blockquote",),
    mention=("PostMention", "UserMention"),
    smilie=("emoji",),
)

MARKUP_SIGNALS = {"html: #flarum-loading": "#flarum-loading",
                  "html: script#flarum-json-payload": "script#flarum-json-payload"}
TEXT_SIGNALS = {"text: flarum.core": re.compile(r"flarum\.core\b")}
URL_SIGNALS = {"url: /d/N-slug": re.compile(r"/d/\d+(?:-|/|$)"), "url: /t/slug": re.compile(r"/t/[^/]+/?$"),
               "url: /tags": re.compile(r"/tags/?(?:[?#]|$)"),
               "url: /api/discussions, /api/posts, /api/tags": re.compile(r"/api/(?:discussions|posts|tags)\b")}


def json_type(data: Any) -> tuple[str, bool] | None:
    """(JSON:API resource type, is a list) of a document's primary data, or None."""
    if not isinstance(data, dict):
        return None
    primary = data.get("data")
    first = primary[0] if isinstance(primary, list) and primary else primary
    if isinstance(first, dict) and isinstance(first.get("type"), str):
        return first["type"], isinstance(primary, list)
    return ("empty", True) if primary == [] else None


def api_url(url: str) -> str | None:
    """The API route of a Flarum page URL, or None when it is none of ours."""
    parts = urlparse(url)
    site, path = f"{parts.scheme}://{parts.netloc}", parts.path
    if "/api/" in path:
        return url.split("#", 1)[0]
    if match := DISCUSSION_PATH_RE.match(path):
        return f"{site}{match['base']}/api/discussions/{match['id']}"
    if match := TAGS_PATH_RE.match(path):
        return f"{site}{match['base']}/api/tags"
    if match := TAG_PATH_RE.match(path):
        return f"{site}{match['base']}/api/discussions?" + urlencode({"filter[tag]": match["slug"]})
    if path in ("", "/"):
        return f"{site}/api/discussions"
    return None


class FlarumSpider(JsonForumSpider):
    name = "flarum"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The Flarum signals on ``response`` (its boot page's loader and JSON payload, the
        ``flarum.core`` script, a JSON:API document of discussions, posts or tags; routes only add
        to them), or None."""
        kind = json_type(rx.json_body(response))
        shape = [f"json: JSON:API {kind[0]}"] if kind and kind[0] in ("discussions", "posts", "tags") else []
        markup = rx.css_signals(response, MARKUP_SIGNALS) + rx.text_signals(response, TEXT_SIGNALS) + shape
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    def thread_id_from_url(self, url: str) -> str | None:
        match = DISCUSSION_PATH_RE.match(urlparse(url).path)
        return match.group("id") if match else None

    async def start(self):
        if not self.start_urls:
            raise ValueError(f"spider {self.name!r}: start_url is required "
                             f"(-a start_url=URL[,URL...], a discussion, a tag, /tags or the site root)")
        for url in self.start_urls:
            target = api_url(url)
            if target is None:
                raise ValueError(f"spider {self.name!r}: start_url {url!r} is not a Flarum discussion (/d/ID-slug), "
                                 f"tag (/t/slug), /tags or site root URL")
            yield self.api_request(target)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """A tag list, a discussion list, a discussion or a page of posts, by the document's type.

        @url tests/fixtures/flarum/posts_17.json
        @returns items 3 3
        @returns requests 0 0
        @scrapes source url thread_id page position post_id author posted_at body body_format fetched_at
        """
        data = self.load_json(response)
        if data is None:
            return
        kind = json_type(data)
        handlers = {("tags", True): self.parse_tags, ("discussions", True): self.parse_listing,
                    ("empty", True): self.parse_listing, ("discussions", False): self.parse_discussion,
                    ("posts", True): self.parse_posts}
        handler = handlers.get(kind) if kind else None
        if handler is None:
            self.inc("errors/unknown_page")
            self.logger.error("%s is not a Flarum tag list, discussion list, discussion or post list "
                              "(keys: %s): skipped", response.url, ", ".join(sorted(data)[:10]))
            return
        yield from self.guarded(response, handler(response, data))

    def _api(self, response: Response) -> str:
        """Site and install path up to ``/api``."""
        return self.site(response) + urlparse(response.url).path.split("/api/", 1)[0] + "/api"

    # ---- listings ----------------------------------------------------------------------------
    def parse_tags(self, response: Response, data: dict[str, Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/index")
        for tag in rows(data["data"]):
            attributes = obj(tag.get("attributes"))
            slug = attributes.get("slug")
            if not slug:
                self.inc("errors/category_without_id")
                continue
            url = f"{self._api(response)}/discussions?" + urlencode({"filter[tag]": slug})
            yield self.api_request(url, meta={"board": attributes.get("name") or slug})

    def parse_listing(self, response: Response, data: dict[str, Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/board")
        listed = [d for d in rows(data.get("data")) if POST_ID_RE.match(str(d.get("id")))]
        if not listed:
            self.inc("errors/board_without_threads")
            self.logger.warning("discussion list %s lists no discussions", response.url)
        stale = 0
        for row in listed:
            did = str(row["id"])
            last = LastPost(posted_at=self.utc(obj(row.get("attributes")).get("lastPostedAt"), f"discussion {did}"))
            verdict = self.wanted_thread(did, last)
            stale += verdict == "stale"
            if verdict == "fetch":
                yield self.api_request(f"{self._api(response)}/discussions/{did}",
                                       meta={"board": response.meta.get("board")})
        following = obj(data.get("links")).get("next")
        following = following if isinstance(following, str) else None
        if following and self.since and listed and stale == len(listed):
            self.inc("skipped/board_pages_before_since")
            following = None
        if following and not self.thread_limit_hit:
            yield self.api_request(response.urljoin(following), meta={"board": response.meta.get("board")})

    # ---- discussions -------------------------------------------------------------------------
    def parse_discussion(self, response: Response, data: dict[str, Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/thread")
        discussion = data["data"]
        did = str(discussion.get("id"))
        self.threads_seen.add(did)  # a discussion start URL is a claim too
        attributes, relations = obj(discussion.get("attributes")), obj(discussion.get("relationships"))
        ids = rows(obj(relations.get("posts")).get("data"))
        tags = {str(t.get("id")) for t in rows(obj(relations.get("tags")).get("data"))}
        names = [obj(i.get("attributes")).get("name") for i in rows(data.get("included"))
                 if i.get("type") == "tags" and str(i.get("id")) in tags]
        meta = {"board": response.meta.get("board") or next((n for n in names if n), None),
                "title": attributes.get("title"), "slug": attributes.get("slug")}
        comments = attributes.get("commentCount")
        count = len(ids) or (comments if isinstance(comments, int) and comments > 0 else 1)
        pages = max(1, math.ceil(count / PAGE))
        if self.max_pages and pages > self.max_pages:
            self.inc("skipped/max_pages", pages - self.max_pages)
            pages = self.max_pages
        for page in range(pages):
            query = urlencode({"filter[discussion]": did, "page[offset]": page * PAGE, "page[limit]": PAGE,
                               "sort": "number"})
            yield self.api_request(f"{self._api(response)}/posts?{query}", meta=meta)

    def parse_posts(self, response: Response, data: dict[str, Any]) -> Iterator[Any]:
        self.inc("pages/thread")
        users = {str(i.get("id")): obj(i.get("attributes")).get("username")
                 for i in rows(data.get("included")) if i.get("type") == "users"}
        posts = [p for p in data["data"] if self._readable(p)]
        if not posts:  # nothing but event or hidden posts (counted), or an empty page
            if not data["data"]:
                self.inc("errors/page_without_posts")
                self.logger.error("%s: no posts", response.url)
            return
        dids = {str(_related(p, "discussion").get("id")) for p in posts}
        if len(dids) != 1:
            self.inc("errors/posts_of_several_discussions")
            self.logger.error("%s: posts of %d discussions (%s): skipped", response.url, len(dids),
                              ", ".join(sorted(dids)))
            return
        did = dids.pop()
        offset = re.search(r"page%5Boffset%5D=(\d+)|page\[offset\]=(\d+)", response.url)
        page = int(next(g for g in offset.groups() if g)) // PAGE + 1 if offset else 1
        info = ThreadInfo(thread_id=did, title=response.meta.get("title"), board=response.meta.get("board"), page=page)
        yield from self._post_items(response, info, [self.post(response, p, did, users) for p in posts])

    def _readable(self, post: Any) -> bool:
        if not (isinstance(post, dict) and POST_ID_RE.match(str(post.get("id")))):
            self.inc("errors/post_without_id")
            return False
        attributes = obj(post.get("attributes"))
        if attributes.get("contentType", "comment") != "comment":
            self.inc("skipped/event_post")  # "renamed the discussion" and the like: no text
            return False
        if attributes.get("isHidden"):
            self.inc("skipped/hidden")
            return False
        return True

    def post(self, response: Response, post: dict[str, Any], did: str, users: dict[str, Any]) -> PostData:
        pid, attributes = str(post["id"]), obj(post.get("attributes"))
        number = attributes.get("number") if isinstance(attributes.get("number"), int) else None
        body = attributes.get("contentHtml") if isinstance(attributes.get("contentHtml"), str) else None
        return PostData(
            post_id=pid, author=users.get(str(_related(post, "user").get("id"))),
            posted_at=self.utc(attributes.get("createdAt"), f"post {pid}"), body=body,
            url=f"{self._api(response).removesuffix('/api')}/d/{did}/{number or ''}",
            position=number - 1 if number else None,
            quoted_post_ids=self.quote_lead_ids(body or "", POST_ID_RE, pid, inside=OWN_MENTIONS))


def _related(resource: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``{"type", "id"}`` of a resource's to-one relationship ``name`` ({} when absent)."""
    return obj(obj(obj(resource.get("relationships")).get(name)).get("data"))
