"""The demo forum as a NodeBB site, through the read API its client renders from: the same boards
(as categories), topics and posts as the XenForo pages, with NodeBB's own noise in each post's
``content`` HTML (Markdown rendered): the composer's ``@user said in [title](/post/N):`` line
before each ``<blockquote>`` quote, ``a.plugin-mentions-user`` mentions, emoji images whose ``alt``
is the emoji, ``<p>`` paragraphs, and no signatures in the post (NodeBB keeps them apart).

Routes: ``/api/categories``, ``/api/category/{cid}/{slug}[?page=N]``, ``/api/topic/{tid}/{slug}[?page=N]``
(``posts_per_page`` posts a page, ``index`` the 0-based position, times in epoch ms), ``/`` and
``/categories`` (a small HTML page, for recognition), ``/robots.txt``. Every answer carries
``X-Powered-By: NodeBB``, as NodeBB's do. Backstage threads are not listed. Pure functions of the
forum; JSON with sorted keys, so answers are byte-identical.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from demoforum.site import Board, DemoForum, Post, Thread, esc, slugify

EMOJI = {":)": ("slightly_smiling_face", "🙂"), ":(": ("frowning", "😦"), ":D": ("smiley", "😃"), ";)": ("wink", "😉"),
         ":p": ("stuck_out_tongue", "😛"), ":o": ("open_mouth", "😮"), ":cool:": ("sunglasses", "😎"),
         ":rolleyes:": ("roll_eyes", "🙄")}
ROBOTS_TXT = "User-agent: *\nDisallow: /admin/\nDisallow: /compose\nDisallow: /login\nDisallow: /register\n"
HEADERS = {"X-Powered-By": "NodeBB"}
JSON_HEADERS = {**HEADERS, "Content-Type": "application/json; charset=utf-8"}
CATEGORY_RE = re.compile(r"^/api/category/(?P<id>\d+)(?:/[^/]*)?/?$")
TOPIC_RE = re.compile(r"^/api/topic/(?P<id>\d+)(?:/[^/]*)?/?$")


def username(post: Post) -> str:
    return slugify(post.author, 20).replace("-", "_")


def mention(post: Post) -> str:
    return f'<a class="plugin-mentions-user plugin-mentions-a" href="/uid/{post.user_id}">@{username(post)}</a>'


def content(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        title = esc(forum.threads[target.thread_id].title)
        html = (f'<p>{mention(target)} said in <a href="/post/{target.post_id}">{title}</a>:</p>\n'
                f"<blockquote>\n{content(forum, target, post.quote_nested)}</blockquote>\n")
    speech = "<br />\n".join(f"<em>{esc(t)}</em>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        name, char = EMOJI.get(post.tail[1], EMOJI[":)"])
        speech += (f' <img src="/assets/plugins/nodebb-plugin-emoji/emoji/android/{name}.png?v=demo" '
                   f'class="not-responsive emoji emoji-android emoji--{name}" style="height:23px;width:auto;vertical-align:middle" '
                   f'title="{esc(post.tail[1])}" alt="{char}" />')
    html += f"<p>{speech}</p>\n"
    if post.tail and post.tail[0] == "link":
        url = esc(post.tail[1])
        html += f'<p>More here: <a href="{url}" rel="nofollow ugc">{url}</a></p>\n'
    return html


def user(post: Post) -> dict:
    return {"uid": post.user_id, "username": username(post), "userslug": username(post).replace("_", "-"),
            "displayname": post.author, "picture": None, "status": "offline", "postcount": post.user_id % 997,
            "reputation": 0, "signature": "", "banned": False, "icon:text": post.author[:1].upper(), "icon:bgColor": "#e65100"}


def post_json(forum: DemoForum, post: Post) -> dict:
    return {"pid": post.post_id, "tid": post.thread_id, "uid": post.user_id, "index": post.position,
            "timestamp": post.epoch * 1000, "content": content(forum, post), "deleted": False, "upvotes": 0,
            "downvotes": 0, "votes": 0, "edited": 0, "replies": {"count": 0}, "user": user(post)}


def pagination(page: int, pages: int) -> dict:
    return {"currentPage": page, "pageCount": pages, "prev": {"page": max(1, page - 1), "active": page > 1},
            "next": {"page": min(pages, page + 1), "active": page < pages}, "rel": [],
            "pages": [{"page": n, "active": n == page, "qs": f"page={n}"} for n in range(1, pages + 1)]}


def category_ref(board: Board) -> dict:
    return {"cid": board.node_id, "name": board.title, "slug": f"{board.node_id}/{board.slug}", "parentCid": 0,
            "link": "", "disabled": 0, "icon": "fa-book", "bgColor": "#3f51b5", "color": "#ffffff"}


def topic_ref(thread: Thread) -> dict:
    return {"tid": thread.thread_id, "cid": thread.board.node_id, "title": thread.title,
            "slug": f"{thread.thread_id}/{thread.slug}", "postcount": len(thread.posts), "deleted": 0, "locked": 0,
            "pinned": 0, "timestamp": thread.posts[0].epoch * 1000, "lastposttime": thread.posts[-1].epoch * 1000,
            "uid": thread.posts[0].user_id, "user": user(thread.posts[0])}


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def category_json(forum: DemoForum, board: Board, page: int) -> dict | None:
    threads, per = board_threads(board), forum.threads_per_page
    pages = max(1, -(-len(threads) // per))
    if not 1 <= page <= pages:
        return None
    return {**category_ref(board), "topic_count": len(threads), "loggedIn": False, "relative_path": "",
            "topics": [topic_ref(t) for t in threads[(page - 1) * per:page * per]], "pagination": pagination(page, pages),
            "url": f"/category/{board.node_id}/{board.slug}"}


def topic_json(forum: DemoForum, thread: Thread, page: int) -> dict | None:
    pages, per = forum.thread_pages(thread), forum.posts_per_page
    if thread.backstage or not 1 <= page <= pages:
        return None
    return {**topic_ref(thread), "mainPid": thread.posts[0].post_id, "category": category_ref(thread.board),
            "posts": [post_json(forum, p) for p in thread.posts[(page - 1) * per:page * per]],
            "pagination": pagination(page, pages), "loggedIn": False, "relative_path": "",
            "url": f"/topic/{thread.thread_id}/{thread.slug}"}


def home_page(forum: DemoForum) -> str:
    rows = "\n".join(f'<li component="categories/category" data-cid="{b.node_id}" class="row clearfix">'
                     f'<h2 class="title"><a href="/category/{b.node_id}/{b.slug}">{esc(b.title)}</a></h2></li>' for b in forum.boards)
    return (f'<!DOCTYPE html>\n<html lang="en-GB" data-dir="ltr">\n<head><meta charset="utf-8"><title>Categories | Kopitiam Demo Forum</title></head>\n'
            f'<body class="page-categories skin-noskin"><main id="panel"><div class="categories" itemscope itemtype="http://www.schema.org/ItemList">'
            f'<ul class="categories" itemscope>\n{rows}\n</ul></div></main>\n<script id="ajaxify-data" type="application/json">{{"title": "Categories"}}</script>\n'
            f"</body>\n</html>\n")


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the NodeBB-speaking demo forum."""
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    page = int(query["page"][0]) if query.get("page", [""])[0].isdigit() else 1
    if parts.path == "/robots.txt":
        return 200, {**HEADERS, "Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if parts.path in ("/", "/categories"):
        return 200, dict(HEADERS), home_page(forum)
    data = None
    if parts.path == "/api/categories":
        data = {"title": "[[pages:categories]]", "loggedIn": False, "relative_path": "", "url": "/categories",
                "categories": [{**category_ref(b), "children": [], "topic_count": len(board_threads(b))} for b in forum.boards]}
    elif m := CATEGORY_RE.match(parts.path):
        board = next((b for b in forum.boards if b.node_id == int(m["id"])), None)
        data = category_json(forum, board, page) if board is not None else None
    elif m := TOPIC_RE.match(parts.path):
        thread = forum.threads.get(int(m["id"]))
        data = topic_json(forum, thread, page) if thread is not None else None
    if data is None:
        return 404, JSON_HEADERS, json.dumps({"status": {"code": "not-found", "message": "[[error:no-topic]]"}, "response": {}})
    return 200, JSON_HEADERS, json.dumps(data, sort_keys=True, ensure_ascii=False)
