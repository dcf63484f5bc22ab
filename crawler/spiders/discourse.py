"""Spider ``discourse``: Discourse forums through their public JSON API.

Why the JSON API and not the HTML: it is what Discourse's own web and mobile apps read, it is
the same whatever theme a site runs, and the HTML a crawler without JavaScript gets is a reduced
"crawler view". A ``JsonForumSpider`` (crawler/spiders/jsonforum.py, as NodeBB's and Flarum's):
``ForumSpider``'s arguments, limits, stats and markup record, JSON read defensively (a member of the
wrong type reads as missing; what still fails is counted ``errors/parse_failed``), its own ``start``
and ``parse``:

- start URLs: a topic (``/t/{slug}/{id}``, ``/t/{id}``, with or without a post number), a category
  (``/c/{slug}/{id}``, sub-categories too; the board is its slug), ``/categories`` (every category,
  named), ``/latest`` or the site root (= ``/latest``); each is fetched as ``.json``;
- listings: ``topic_list.topics`` (id, slug, ``last_posted_at``), next page ``more_topics_url``;
  topics whose ``last_posted_at`` is before ``since`` are skipped, and so are unchanged topics on
  incremental re-crawls (``last_posted_at`` against the previous crawl's);
- topics: ``/t/{id}.json`` gives ``post_stream.stream`` (every post id, in order) and the first
  posts (not necessarily from post 1: Discourse answers around the post a URL names); the other
  ids are fetched from ``/t/{id}/posts.json?post_ids[]=...`` in chunks of the topic's ``chunk_size``
  (Discourse's page size, 20). A topic's posts are yielded once all of them are in, because a quote names the
  quoted post by its *number* in the topic (``aside.quote[data-post]``), which only the topic's
  posts map to the post *id* that ``quoted_post_ids`` holds everywhere. A chunk that fails (an HTTP
  error after the retries, a network error) costs only its own posts: it is counted
  (``forum/errors/chunk_failed``, the URL logged; its posts in ``forum/errors/post_missing``) and
  the topic goes on with the other chunks and is yielded with the posts it has (quotes of missing
  posts counted in ``forum/quotes/unmapped``);
- posts: ``id``, ``username``, ``created_at`` (ISO, UTC), ``post_number`` (position = number - 1,
  page = the chunk of the stream it is in), ``cooked`` HTML as the body; moderator "small action"
  posts (``post_type`` 3: "closed the topic", no text) are skipped and counted;
- quotes and link previews: ``MARKUP`` below. Quotes of another topic's posts cannot be mapped
  without fetching that topic: they are counted (``forum/quotes/other_topic``), still removed.
- rate limits: Discourse answers 429 with ``Retry-After``; the project's ``RetryAfterMiddleware``
  (crawler/settings.py) waits that long.

Usage: ``scrapy crawl discourse -a start_url=https://meta.example.org/c/support/6 -O out.parquet``
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlparse, urlunparse

import scrapy
from scrapy.http import Response

from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.incremental import LastPost
from crawler.items import PostItem
from crawler.spiders.forum import fragment
from crawler.spiders.jsonforum import JsonForumSpider, obj, rows

CHUNK = 20  # posts per /posts.json request and per topic page, unless the topic says (chunk_size)
TOPIC_PATH_RE = re.compile(r"^/t/(?:(?P<slug>[^/]+)/)?(?P<id>\d+)(?:/\d+)?(?:\.json)?/?$")
CATEGORY_PATH_RE = re.compile(r"^/c/(?P<path>(?:[^/]+/)*?)(?P<id>\d+)(?:/l/[a-z]+)?(?:\.json)?/?$")
SMALL_ACTION = 3  # post_type of "closed the topic"-style entries (no text of their own)
JSON_SHAPES = ("post_stream", "topic_list", "category_list")  # the top-level keys of the answers it reads
MARKUP_SIGNALS = {"html: meta#data-discourse-setup": "meta#data-discourse-setup",  # the HTML pages' app setup
                "html: #data-preloaded": "#data-preloaded", "html: meta[name^=discourse]": "meta[name^='discourse']"}
URL_SIGNALS = {"url: /t/<slug>/<id>, /c/<slug>/<id>": re.compile(r"/(?:t|c)/[^?#]*\d+"),
               "url: /latest, /categories": re.compile(r"/(?:latest|categories)(?:\.json)?(?:[?#]|$)")}

# Discourse's cooked HTML: quotes are <aside class="quote" data-post="N" data-topic="T"> (N is a post
# *number*: the spider maps it to an id, so no id patterns here), link previews <aside class="onebox">
# (someone else's text: removed and counted like quotes), emoji <img class="emoji">, @mentions
# <a class="mention">.
MARKUP = EngineMarkup(
    name="discourse",
    quote=("quote", "onebox"),
    smilie=("emoji",),
    mention=("mention",),
)


def json_url(url: str) -> str:
    """``url`` with ``.json`` added to its path (``/latest?page=1`` -> ``/latest.json?page=1``)."""
    parts = urlparse(url)
    path = parts.path.rstrip("/") or "/latest"
    if not path.endswith(".json"):
        path += ".json"
    return urlunparse(parts._replace(path=path, fragment=""))


class DiscourseSpider(JsonForumSpider):
    name = "discourse"
    markup = MARKUP

    @classmethod
    def recognise(cls, response: Response) -> list[str] | None:
        """A Discourse JSON answer (``post_stream``, ``topic_list``, ``category_list``), or an HTML page
        with ``<meta name="generator" content="Discourse ...">`` and Discourse's setup markup;
        (supporting) ``/t/``, ``/c/``, ``/latest``, ``/categories`` routes."""
        keys = rx.json_keys(response)
        markup = [f"json: Discourse {key}" for key in JSON_SHAPES if key in keys]
        markup += rx.generator_signals(response, "Discourse") + rx.css_signals(response, MARKUP_SIGNALS)
        return rx.recognised(markup, rx.url_signals(response.url, URL_SIGNALS))

    def thread_id_from_url(self, url: str) -> str | None:
        match = TOPIC_PATH_RE.match(urlparse(url).path)
        return match.group("id") if match else None

    async def start(self):
        if not self.start_urls:
            raise ValueError(f"spider {self.name!r}: start_url is required "
                             f"(-a start_url=URL[,URL...], a topic, a category or /latest)")
        for url in self.start_urls:
            path = urlparse(url).path
            if topic := TOPIC_PATH_RE.match(path):
                url = urlunparse(urlparse(url)._replace(path=f"/t/{topic.group('id')}", query=""))
            elif path.rstrip("/") in ("/categories", "/categories.json"):
                pass
            elif not (CATEGORY_PATH_RE.match(path) or path.rstrip("/") in ("", "/latest", "/latest.json")):
                raise ValueError(f"spider {self.name!r}: start_url {url!r} is not a Discourse topic "
                                 f"(/t/slug/ID), category (/c/slug/ID), /categories or /latest URL")
            yield self.api_request(json_url(url))

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """A listing (``topic_list``: topics, next page) or a topic (``post_stream``: its posts).

        @url tests/fixtures/discourse/topic_17.json
        @returns items 3 3
        @returns requests 0 0
        @scrapes source url thread_id thread_title page position post_id author posted_at body body_format fetched_at
        """
        data = self.load_json(response)
        if data is not None:
            yield from self.guarded(response, self.dispatch(response, data))

    def dispatch(self, response: Response, data: dict[str, Any]) -> Iterator[Any]:
        if isinstance(data.get("category_list"), dict):
            yield from self.parse_categories(response, data["category_list"])
        elif isinstance(data.get("topic_list"), dict):
            yield from self.parse_listing(response, data["topic_list"])
        elif isinstance(data.get("post_stream"), dict) and isinstance(data.get("id"), (int, str)):
            topic_id = str(data["id"])
            if topic_id in self.threads_seen or self._claim_thread(topic_id):
                yield from self.parse_topic(response, data)
        else:
            self.inc("errors/unknown_page")
            self.logger.error("%s is neither a Discourse topic list nor a topic (keys: %s): skipped",
                              response.url, ", ".join(sorted(data)[:10]))

    # ---- listings ----------------------------------------------------------------------------
    def parse_categories(self, response: Response, categories: dict[str, Any]) -> Iterator[scrapy.Request]:
        """``/categories.json``: each category's topic list, with its name as the board."""
        self.inc("pages/index")
        for cat in rows(categories.get("categories")):
            if not (isinstance(cat.get("id"), int) and isinstance(cat.get("slug"), str) and cat["slug"]):
                self.inc("errors/category_without_id")
                continue
            url = f"{self.site(response)}/c/{cat['slug']}/{cat['id']}.json"
            name = cat.get("name")
            yield self.api_request(url, meta={"board": name if isinstance(name, str) and name else cat["slug"]})

    def parse_listing(self, response: Response, listing: dict[str, Any]) -> Iterator[scrapy.Request]:
        self.inc("pages/board")
        category = CATEGORY_PATH_RE.match(urlparse(response.url).path)
        board = response.meta.get("board") or (category.group("path").strip("/").split("/")[-1] if category else None)
        topics = [t for t in rows(listing.get("topics")) if isinstance(t.get("id"), int)]
        if not topics:
            self.inc("errors/board_without_threads")
            self.logger.warning("topic list %s lists no topics", response.url)
        stale = 0
        for topic in topics:
            topic_id = str(topic["id"])
            last = LastPost(posted_at=self.utc(topic.get("last_posted_at") or topic.get("bumped_at"), response.url))
            wanted = self.wanted_thread(topic_id, last)
            stale += wanted == "stale"
            if wanted == "fetch":
                yield self.api_request(f"{self.site(response)}/t/{topic_id}.json", meta={"board": board})
        more = listing.get("more_topics_url") if isinstance(listing.get("more_topics_url"), str) else None
        if more and self.since and topics and stale == len(topics):  # listings are newest first
            self.inc("skipped/board_pages_before_since")
            more = None
        if more and not self.thread_limit_hit:
            url = json_url(response.urljoin(more))
            if self._allowed(url):
                yield self.api_request(url, meta={"board": board})

    # ---- topics ------------------------------------------------------------------------------
    def parse_topic(self, response: Response, data: dict[str, Any]) -> Iterator[Any]:
        self.inc("pages/thread")
        ids = data["post_stream"].get("stream")
        stream = [str(i) for i in ids if type(i) is int] if isinstance(ids, list) else []  # ids: ints, not bools
        chunk = data.get("chunk_size") if isinstance(data.get("chunk_size"), int) and data["chunk_size"] > 0 else CHUNK
        if self.max_pages and len(stream) > self.max_pages * chunk:
            self.inc("skipped/max_pages", (len(stream) - 1) // chunk + 1 - self.max_pages)
            stream = stream[:self.max_pages * chunk]
        state = {"topic": {k: data.get(k) for k in ("id", "title", "slug", "category_id")}, "chunk": chunk,
                 "board": response.meta.get("board"), "stream": stream, "posts": {}, "site": self.site(response)}
        yield from self._collect(state, rows(data["post_stream"].get("posts")))

    def parse_chunk(self, response: Response) -> Iterator[Any]:
        self.inc("pages/thread")
        data = self.load_json(response)
        posts = obj(data.get("post_stream")).get("posts") if data else None
        if not isinstance(posts, list):
            self.inc("errors/page_without_posts")
            self.logger.error("%s: no post_stream.posts; the topic's posts in it are missing", response.url)
        yield from self.guarded(response, self._collect(response.meta["state"], rows(posts), response.meta["asked"]))

    def chunk_failed(self, failure: Any) -> Iterator[Any]:
        """Errback of a chunk request: count it, go on with the topic's other chunks (or yield it)."""
        request = failure.request
        response = getattr(failure.value, "response", None)
        reason = f"HTTP {response.status}" if response is not None else f"{failure.type.__name__}: {failure.value}"
        self.inc("errors/chunk_failed")
        self.logger.error("%s: %s; topic %s goes on without these %d posts", request.url, reason,
                          request.meta["state"]["topic"]["id"], len(request.meta["asked"]))
        yield from self._collect(request.meta["state"], [], request.meta["asked"])

    def _collect(self, state: dict[str, Any], posts: list[dict[str, Any]], asked: list[str] = ()) -> Iterator[Any]:
        """Add ``posts`` to the topic's; ask for the next chunk of missing ids, or yield the topic."""
        wanted = set(state["stream"])
        for post in posts:
            if isinstance(post.get("id"), int) and str(post["id"]) in wanted:
                state["posts"][str(post["id"])] = post
        lost = [i for i in asked if i not in state["posts"]]
        if lost:  # asked for, not answered (deleted meanwhile, or hidden from guests)
            self.inc("errors/post_missing", len(lost))
            state["stream"] = [i for i in state["stream"] if i not in lost]
        missing = [i for i in state["stream"] if i not in state["posts"]]
        if missing:
            chunk = missing[:state["chunk"]]
            query = urlencode([("post_ids[]", i) for i in chunk])
            url = f"{state['site']}/t/{state['topic']['id']}/posts.json?{query}"
            yield scrapy.Request(url, callback=self.parse_chunk, errback=self.chunk_failed,
                                 meta={"state": state, "asked": chunk})
            return
        yield from self._items(state)

    def _items(self, state: dict[str, Any]) -> Iterator[PostItem]:
        topic, site = state["topic"], state["site"]
        topic_id = str(topic["id"])
        posts = [state["posts"][i] for i in state["stream"]]
        by_number = {p["post_number"]: str(p["id"]) for p in posts if isinstance(p.get("post_number"), int)}
        category = topic.get("category_id")
        board = state["board"] or (f"category {category}" if isinstance(category, int) else None)
        slug, title = (topic.get(k) if isinstance(topic.get(k), str) else None for k in ("slug", "title"))
        fetched_at = datetime.now(UTC)
        for index, post in enumerate(posts):
            post_id = str(post["id"])
            if post.get("post_type") == SMALL_ACTION:
                self.inc("skipped/small_action")
                continue
            posted_at = self.utc(post.get("created_at"), f"post {post_id}")
            if self.since and posted_at and posted_at < self.since:
                self.inc("skipped/before_since")
                continue
            number = post.get("post_number") if isinstance(post.get("post_number"), int) else None
            author = post.get("username") if isinstance(post.get("username"), str) else None
            body = post.get("cooked")
            if not isinstance(body, str):
                self.inc("errors/post_without_body")
                self.logger.warning("post %s of topic %s: no cooked HTML", post_id, topic_id)
                body = None
            self.inc("posts")
            yield PostItem(
                source=self.source, url=f"{site}/t/{slug or 'topic'}/{topic_id}/{number or index + 1}",
                board=board, thread_id=topic_id, thread_title=title, page=index // state["chunk"] + 1,
                position=number - 1 if number is not None else index, post_id=post_id,
                author=author, posted_at=posted_at, body=body, body_format="html",
                quoted_post_ids=self.quoted_ids(body or "", topic_id, by_number, post_id),
                fetched_at=fetched_at)

    def quoted_ids(self, cooked: str, topic_id: str, by_number: dict[Any, str], own_id: str) -> list[str]:
        """Ids of the posts the top-level quotes cite: ``data-post`` numbers mapped through the topic."""
        if not cooked:
            return []
        html = fragment(cooked)
        self.inc("oneboxes", len(html.css("aside.onebox")))
        ids: list[str] = []
        quote_class = "contains(concat(' ', normalize-space(@class), ' '), ' quote ')"
        for quote in html.xpath(f"//aside[{quote_class}][not(ancestor::aside[{quote_class}])]"):
            number, topic = quote.attrib.get("data-post"), quote.attrib.get("data-topic", topic_id)
            if topic != topic_id:
                self.inc("quotes/other_topic")
                continue
            post_id = by_number.get(int(number)) if number and number.isdigit() else None
            if post_id is None:
                self.inc("quotes/unmapped")
                continue
            if post_id != own_id and post_id not in ids:
                ids.append(post_id)
        return ids
