"""Spider ``nodebb``: NodeBB forums, through the read API its own client renders from.

Every page of a NodeBB forum has a JSON twin under ``/api`` (the same route, the data the page is
rendered from): reading it is faster than the HTML and holds exact times. A ``JsonForumSpider``:
``ForumSpider``'s arguments, limits, stats and markup record, its own ``start`` and ``parse``.
What it relies on (NodeBB 1.x-3.x API answers):

- start URLs: a topic (``/topic/{tid}[/{slug}[/{index}]]``), a category (``/category/{cid}[/{slug}]``),
  ``/categories`` or the site root (every category), each fetched as its ``/api`` route; a forum
  installed below a path (``/forum/topic/...``) keeps it;
- categories: ``categories[]`` (``cid``, ``slug`` = ``"{cid}/{name}"``, ``name``, sub-categories in
  ``children``); a category page: ``topics[]`` (``tid``, ``slug``, ``lastposttime`` in epoch ms,
  ``deleted``), next page from ``pagination.next`` (``?page=N``); ``since`` and incremental
  re-crawls skip topics by ``lastposttime``;
- topics: ``/api/topic/{tid}/{slug}?page=N`` gives ``posts[]`` (``pid``, ``index`` = 0-based
  position, ``timestamp`` epoch ms, ``content`` HTML, ``user.username``, ``deleted``) and
  ``pagination.pageCount``; page 1 asks for the other pages at once (``max_pages`` applies). Each
  page's posts are yielded as it comes (a quote names the quoted post by its id, no mapping to wait
  for), so a failed page loses only its own posts;
- quotes: NodeBB's composer writes ``@user said in [title](/post/{pid}):`` and then the quote as
  a ``<blockquote>``: the quoted pid is the ``/post/N`` link of the paragraph before the quote;
  ``MARKUP`` below removes the quote and that attribution line;
- deleted posts (``deleted``: no content for guests) are skipped and counted;
- rate limits: NodeBB answers 429 with ``Retry-After`` when a client is too fast; the project's
  ``RetryAfterMiddleware`` (crawler/settings.py) waits that long and retries.

Usage: ``scrapy crawl nodebb -a start_url=https://community.example.org/category/2/general -O out.parquet``
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import scrapy
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.spiders.forum import PostData, ThreadInfo
from crawler.spiders.jsonforum import JsonForumSpider, obj, rows

TOPIC_PATH_RE = re.compile(r"^(?P<base>.*?)/(?:api/)?topic/(?P<id>\d+)(?:/(?P<slug>[^/?#]+))?(?:/\d+)?/?$")
CATEGORY_PATH_RE = re.compile(r"^(?P<base>.*?)/(?:api/)?category/(?P<id>\d+)(?:/(?P<slug>[^/?#]+))?/?$")
CATEGORIES_PATH_RE = re.compile(r"^(?P<base>.*?)(?:/api)?/categories/?$|^(?P<root>/?)$")
POST_LINK_RE = re.compile(r"/post/(\d+)")

# NodeBB's post HTML (Markdown rendered): quotes are <blockquote>; before one, the composer's
# attribution line "@user said in <a href="/post/N">title</a>:" ("@user said:" without a title)
# is neither the poster's text nor inside the quote: removed as a whole line (after the @mention
# became the mention placeholder, or nothing). Mentions a.plugin-mentions-user; emoji img.emoji.
MARKUP = EngineMarkup(
    name="nodebb",
    quote_tags=("blockquote",),
    quote_link_ids=(r"/post/(\d+)",),
    expander_text=(r"(?:@\S+ )?said in .{1,300}:", r"@\S+ said:"),
    mention=("plugin-mentions-user", "plugin-mentions-a"),
    smilie=("emoji",),
)

MARKUP_SIGNALS = {"html: [component=post]": "[component='post']",
                  "html: [component=category/topic]": "[component='category/topic']",
                  "html: script#ajaxify-data": "script#ajaxify-data"}
URL_SIGNALS = {"url: /topic/N/slug": re.compile(r"/topic/\d+(?:/|$)"),
               "url: /category/N/slug": re.compile(r"/category/\d+(?:/|$)")}


def api_url(url: str) -> str | None:
    """The ``/api`` route of a NodeBB page URL (``?page=`` kept), or None when it is none of ours."""
    parts = urlparse(url)
    query = {k: v for k, v in parse_qs(parts.query).items() if k == "page"}
    if match := TOPIC_PATH_RE.match(parts.path):
        path = f"{match['base']}/api/topic/{match['id']}" + (f"/{match['slug']}" if match["slug"] else "")
    elif match := CATEGORY_PATH_RE.match(parts.path):
        path = f"{match['base']}/api/category/{match['id']}" + (f"/{match['slug']}" if match["slug"] else "")
    elif match := CATEGORIES_PATH_RE.match(parts.path):
        path, query = f"{match['base'] or ''}/api/categories", {}
    else:
        return None
    return urlunparse(parts._replace(path=path, query=urlencode(query, doseq=True), fragment=""))


def json_shape(data: Any) -> str | None:
    """Which NodeBB API answer ``data`` is: ``"categories"``, ``"category"``, ``"topic"`` or None."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("posts"), list) and "tid" in data:
        return "topic"
    if isinstance(data.get("topics"), list) and "cid" in data:
        return "category"
    if isinstance(data.get("categories"), list):
        return "categories"
    return None


class NodebbSpider(JsonForumSpider):
    name = "nodebb"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """The NodeBB signals on ``response`` (its ``X-Powered-By`` header, the ``component``
        hooks of its templates, the API's JSON shape; routes only add to them), or None."""
        data = rx.json_body(response)
        shape = json_shape(data)
        markup = rx.header_signals(response, "X-Powered-By", re.compile(r"NodeBB", re.I)) \
            + rx.css_signals(response, MARKUP_SIGNALS) \
            + ([f"json: NodeBB {shape} answer (tid/cid/pid, pagination)"] if shape and _nodebb_json(data) else [])
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    def thread_id_from_url(self, url: str) -> str | None:
        match = TOPIC_PATH_RE.match(urlparse(url).path)
        return match.group("id") if match else None

    async def start(self):
        if not self.start_urls:
            raise ValueError(f"spider {self.name!r}: start_url is required "
                             f"(-a start_url=URL[,URL...], a topic, a category, /categories or the site root)")
        for url in self.start_urls:
            target = api_url(url)
            if target is None:
                raise ValueError(f"spider {self.name!r}: start_url {url!r} is not a NodeBB topic (/topic/ID/slug), "
                                 f"category (/category/ID/slug), /categories or site root URL")
            yield self.api_request(target)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """A category list, a category's topic list or a topic page, by the JSON document's shape.

        @url tests/fixtures/nodebb/topic_17.json
        @returns items 3 3
        @returns requests 1 1
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        data = self.load_json(response)
        if data is not None:
            yield from self.guarded(response, self.dispatch(response, data))

    def dispatch(self, response: Response, data: dict[str, Any]) -> Iterator[Any]:
        shape = json_shape(data)
        if shape == "categories":
            yield from self.parse_categories(response, data["categories"])
        elif shape == "category":
            yield from self.parse_category(response, data)
        elif shape == "topic":
            yield from self.parse_topic(response, data)
        else:
            self.inc("errors/unknown_page")
            self.logger.error("%s is neither a NodeBB category list, category nor topic (keys: %s): skipped",
                              response.url, ", ".join(sorted(data)[:10]))

    def _base(self, response: Response) -> str:
        """Site and install path: ``https://host/forum`` for ``https://host/forum/api/...``."""
        return self.site(response) + urlparse(response.url).path.split("/api/", 1)[0]

    # ---- listings ----------------------------------------------------------------------------
    def parse_categories(self, response: Response, categories: list[Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/index")
        stack = list(reversed(rows(categories)))
        while stack:
            cat = stack.pop()
            if cat.get("cid") is None:
                self.inc("errors/category_without_id")
                continue
            stack.extend(reversed(rows(cat.get("children"))))
            if cat.get("link"):  # a category that only links elsewhere holds no topics
                continue
            url = f"{self._base(response)}/api/category/{cat['cid']}/{str(cat.get('slug') or '').split('/')[-1]}"
            yield self.api_request(url.rstrip("/"), meta={"board": cat.get("name")})

    def parse_category(self, response: Response, data: dict[str, Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/board")
        board = response.meta.get("board") or data.get("name")
        topics = [t for t in rows(data["topics"]) if t.get("tid") is not None]
        if not topics:
            self.inc("errors/board_without_threads")
            self.logger.warning("category %s lists no topics", response.url)
        stale = 0
        for topic in topics:
            if topic.get("deleted"):
                self.inc("skipped/deleted_topic")
                continue
            tid = str(topic["tid"])
            verdict = self.wanted_thread(tid, LastPost(posted_at=self.utc(topic.get("lastposttime"), f"topic {tid}")))
            stale += verdict == "stale"
            if verdict == "fetch":
                slug = str(topic.get("slug") or "").split("/")[-1]
                yield self.api_request(f"{self._base(response)}/api/topic/{tid}/{slug}".rstrip("/"),
                                       meta={"board": board})
        if self.since and topics and stale == len(topics):  # newest activity first: the rest is older
            self.inc("skipped/board_pages_before_since")
            return
        following = obj(obj(data.get("pagination")).get("next"))
        if following.get("active") and following.get("page") and not self.thread_limit_hit:
            url = urlunparse(urlparse(response.url)._replace(query=urlencode({"page": following["page"]})))
            yield self.api_request(url, meta={"board": board})

    # ---- topics ------------------------------------------------------------------------------
    def parse_topic(self, response: Response, data: dict[str, Any]) -> Iterator[Any]:
        self.inc("pages/thread")
        tid = str(data["tid"])
        self.threads_seen.add(tid)  # a topic start URL is a claim too
        pagination = obj(data.get("pagination"))
        page = pagination.get("currentPage") if isinstance(pagination.get("currentPage"), int) else 1
        board = response.meta.get("board") or obj(data.get("category")).get("name")
        info = ThreadInfo(thread_id=tid, title=data.get("title"), board=board, page=page)
        posts = [self.post(response, p) for p in data["posts"] if self._readable(p, tid)]
        if not posts and page == 1:
            self.inc("errors/page_without_posts")
            self.logger.error("topic %s: no posts in %s", tid, response.url)
        yield from self._post_items(response, info, posts)
        if page == 1:
            yield from self._topic_pages(response, pagination, board)

    def _readable(self, post: Any, tid: str) -> bool:
        if not (isinstance(post, dict) and "pid" in post):
            self.inc("errors/post_without_id")
            self.logger.error("topic %s: a post without a pid", tid)
            return False
        if post.get("deleted"):
            self.inc("skipped/deleted")
            return False
        return True

    def post(self, response: Response, post: dict[str, Any]) -> PostData:
        pid = str(post["pid"])
        body = post.get("content") if isinstance(post.get("content"), str) else None
        index = post.get("index")
        return PostData(
            post_id=pid, author=obj(post.get("user")).get("username"),
            posted_at=self.utc(post.get("timestamp"), f"post {pid}"), body=body,
            url=f"{self._base(response)}/post/{pid}", position=index if isinstance(index, int) else None,
            quoted_post_ids=self.quote_lead_ids(body or "", POST_LINK_RE, pid))

    def _topic_pages(self, response: Response, pagination: dict[str, Any], board: str | None) -> Iterator[Any]:
        count = pagination.get("pageCount") if isinstance(pagination.get("pageCount"), int) else 1
        if self.max_pages and count > self.max_pages:
            self.inc("skipped/max_pages", count - self.max_pages)
            count = self.max_pages
        for number in range(2, count + 1):
            url = urlunparse(urlparse(response.url)._replace(query=urlencode({"page": number})))
            yield self.api_request(url, meta={"board": board})


def _nodebb_json(data: dict[str, Any]) -> bool:
    """A NodeBB answer beside its shape: topics and posts carry NodeBB's own fields."""
    listed = rows(data.get("posts")) or rows(data.get("topics")) or rows(data.get("categories"))
    first = listed[0] if listed else {}
    return bool({"pid", "tid", "cid", "uid", "slug"} & set(first)) or "pagination" in data
