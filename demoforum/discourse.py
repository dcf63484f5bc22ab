"""The demo forum as a Discourse site, through the JSON API its apps use: the same boards (as
categories), topics and posts as the XenForo pages, with Discourse's own noise in ``cooked`` HTML:
``aside.quote`` quotes naming the quoted post by its *number* (``data-post``), emoji images,
link previews (``aside.onebox``) instead of bare links, and no signatures (Discourse has none).

Routes: ``/``, ``/latest``, ``/categories``, ``/c/{slug}/{id}`` and ``/t/[{slug}/]{id}`` answer the
HTML shell Discourse serves before its JavaScript app starts (``<meta name="generator">``, the
setup ``<meta>``: how the ``forum`` spider recognises the site); ``/categories.json`` (the boards), ``/c/{slug}/{id}.json[?page=N]`` (0-based pages,
``more_topics_url`` to the next), ``/latest.json[?page=N]``, ``/t/[{slug}/]{id}.json`` (the post
stream and its first ``posts_per_page`` posts, Discourse's ``chunk_size``),
``/t/{id}/posts.json?post_ids[]=...``, ``/robots.txt``. Backstage threads are not listed. Pure
functions of the forum; JSON with sorted keys, so answers are byte-identical.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from demoforum.site import Board, DemoForum, Post, Thread, esc, slugify

EMOJI = {":)": "slight_smile", ":(": "frowning", ":D": "smiley", ";)": "wink", ":p": "stuck_out_tongue",
         ":o": "open_mouth", ":cool:": "sunglasses", ":rolleyes:": "roll_eyes"}
ROBOTS_TXT = "User-agent: *\nDisallow: /admin/\nDisallow: /auth/\nDisallow: /u/\nDisallow: /search\nDisallow: /session\n"
CATEGORY_RE = re.compile(r"^/c/(?P<slug>[^/]+)/(?P<id>\d+)\.json$")
TOPIC_RE = re.compile(r"^/t/(?:[^/]+/)?(?P<id>\d+)\.json$")
POSTS_RE = re.compile(r"^/t/(?P<id>\d+)/posts\.json$")
HTML_RE = re.compile(r"^/(?:latest|categories|c/[^/]+/\d+|t/(?:[^/]+/)?\d+(?:/\d+)?)?/?$")
VERSION = "3.2.1"
JSON_TYPE = {"Content-Type": "application/json; charset=utf-8"}


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def username(post: Post) -> str:
    return slugify(post.author, 20).replace("-", "_")


def cooked(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        html = (f'<aside class="quote no-group" data-username="{username(target)}" data-post="{target.position + 1}" '
                f'data-topic="{target.thread_id}">\n<div class="title">\n<div class="quote-controls"></div>\n'
                f'<img loading="lazy" alt="" width="24" height="24" src="/letter_avatar_proxy/v4/letter/'
                f'{username(target)[:1] or "x"}/e47c2d/48.png" class="avatar"> {username(target)}:</div>\n'
                f"<blockquote>\n{cooked(forum, target, post.quote_nested)}\n</blockquote>\n</aside>\n")
    speech = "<br>\n".join(f"<em>{esc(t)}</em>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        name = EMOJI.get(post.tail[1], "slight_smile")
        speech += (f' <img src="/images/emoji/twitter/{name}.png?v=12" title=":{name}:" class="emoji" '
                   f'alt=":{name}:" loading="lazy" width="20" height="20">')
    html += f"<p>{speech}</p>"
    if post.tail and post.tail[0] == "link":
        url = esc(post.tail[1])
        html += (f'\n<aside class="onebox allowlistedgeneric" data-onebox-src="{url}">\n<header class="source">\n'
                 f'<a href="{url}" target="_blank" rel="noopener nofollow ugc">{esc(urlsplit(post.tail[1]).netloc)}</a>\n'
                 f'</header>\n<article class="onebox-body">\n<h3><a href="{url}" target="_blank" '
                 f'rel="noopener nofollow ugc">Shakespeare, the works and the folios</a></h3>\n'
                 f"<p>Everything about the plays: texts, performances and the First Folio.</p>\n</article>\n"
                 f'<div style="clear: both"></div>\n</aside>')
    return html


def post_json(forum: DemoForum, thread: Thread, post: Post) -> dict:
    return {"id": post.post_id, "username": username(post), "name": post.author, "created_at": iso(post.epoch),
            "cooked": cooked(forum, post), "post_number": post.position + 1, "post_type": 1,
            "topic_id": thread.thread_id, "topic_slug": thread.slug, "user_id": post.user_id,
            "reply_to_post_number": forum.posts[post.quoted_post_ids[0]].position + 1 if post.quoted_post_ids else None,
            "avatar_template": f"/letter_avatar_proxy/v4/letter/{username(post)[:1] or 'x'}/e47c2d/{{size}}.png",
            "reads": 1, "version": 1, "hidden": False, "deleted_at": None, "action_code": None}


def topic_json(forum: DemoForum, thread: Thread) -> dict:
    last = thread.posts[-1].epoch
    return {"id": thread.thread_id, "title": thread.title, "fancy_title": esc(thread.title), "slug": thread.slug,
            "category_id": thread.board.node_id, "posts_count": len(thread.posts), "chunk_size": forum.posts_per_page,
            "created_at": iso(thread.posts[0].epoch), "last_posted_at": iso(last), "bumped_at": iso(last),
            "archetype": "regular", "visible": True, "closed": False, "archived": False,
            "post_stream": {"stream": [p.post_id for p in thread.posts],
                            "posts": [post_json(forum, thread, p) for p in thread.posts[:forum.posts_per_page]]}}


def listing(forum: DemoForum, threads: list[Thread], page: int, base: str) -> dict:
    per = forum.threads_per_page
    shown = threads[page * per:(page + 1) * per]
    topics = [{"id": t.thread_id, "title": t.title, "fancy_title": esc(t.title), "slug": t.slug,
               "posts_count": len(t.posts), "category_id": t.board.node_id, "created_at": iso(t.posts[0].epoch),
               "last_posted_at": iso(t.posts[-1].epoch), "bumped_at": iso(t.posts[-1].epoch)} for t in shown]
    body: dict = {"per_page": per, "topics": topics}
    if (page + 1) * per < len(threads):
        body["more_topics_url"] = f"{base}?page={page + 1}"
    return {"users": [], "topic_list": body}


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the Discourse-speaking demo forum."""
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    page = int(query["page"][0]) if query.get("page", [""])[0].isdigit() else 0
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if HTML_RE.match(parts.path):
        return 200, {}, html_shell(parts.path)
    data = route_json(forum, parts.path, query, page)
    if data is None:
        return 404, JSON_TYPE, json.dumps({"errors": ["The requested URL or resource could not be found."],
                                           "error_type": "not_found"})
    return 200, JSON_TYPE, json.dumps(data, sort_keys=True)


def html_shell(path: str) -> str:
    """The page Discourse serves to a browser before its app loads the JSON (no posts in it)."""
    return f"""<!DOCTYPE html>
<html lang="en" class="desktop-view not-mobile-device text-size-normal anon">
<head>
<meta charset="utf-8">
<title>Kopitiam Demo Forum</title>
<meta name="generator" content="Discourse {VERSION} - https://github.com/discourse/discourse version 0000000000000000000000000000000000000000">
<meta name="discourse_theme_id" content="2">
<meta name="discourse_current_homepage" content="latest">
<link rel="canonical" href="{esc(path)}">
<meta id="data-discourse-setup" data-cdn="" data-base-url="" data-base-uri="" data-environment="production">
</head>
<body class="crawler">
<header><a href="/">Kopitiam Demo Forum</a></header>
<div id="main-outlet" class="wrap" role="main"><noscript>This site's app needs JavaScript; its JSON API serves the topics.</noscript></div>
</body>
</html>
"""


def route_json(forum: DemoForum, path: str, query: dict[str, list[str]], page: int) -> dict | None:
    """The JSON document a Discourse route answers with, or None for an unknown route."""
    if path == "/categories.json":
        return {"category_list": {"categories": [
            {"id": b.node_id, "name": b.title, "slug": b.slug, "topic_count": len(board_threads(b))}
            for b in forum.boards]}}
    if path == "/latest.json":
        threads = sorted((t for b in forum.boards for t in board_threads(b)),
                         key=lambda t: (-t.posts[-1].epoch, t.thread_id))
        return listing(forum, threads, page, "/latest")
    if m := CATEGORY_RE.match(path):
        board = next((b for b in forum.boards if b.node_id == int(m["id"]) and b.slug == m["slug"]), None)
        return None if board is None else listing(forum, board_threads(board), page,
                                                  f"/c/{board.slug}/{board.node_id}")
    if m := TOPIC_RE.match(path):
        thread = forum.threads.get(int(m["id"]))
        return topic_json(forum, thread) if thread is not None and not thread.backstage else None
    if m := POSTS_RE.match(path):
        thread = forum.threads.get(int(m["id"]))
        ids = {int(i) for i in query.get("post_ids[]", []) if i.isdigit()}
        if thread is not None and not thread.backstage:
            return {"id": thread.thread_id, "post_stream": {
                "posts": [post_json(forum, thread, p) for p in thread.posts if p.post_id in ids]}}
    return None
