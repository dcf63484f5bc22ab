"""The demo forum as a Flarum site, through its JSON:API: the same boards (as tags), topics (as
discussions) and posts as the XenForo pages, with Flarum's own noise in ``contentHtml``: quotes as
``<blockquote>`` opening with the quoted post's ``a.PostMention[data-id]`` (what the mentions
extension writes for ``@"name"#pN``), emoji images whose ``alt`` is the emoji, ``<p>`` paragraphs,
and no signatures (Flarum has none).

Routes: ``/api/tags``, ``/api/discussions[?filter[tag]=slug&page[offset]=N]`` (``threads_per_page``
a page, ``links.next``), ``/api/discussions/{id}`` (title, tag, every post id),
``/api/posts?filter[discussion]=N&page[offset]=K&page[limit]=L&sort=number`` (limit up to 50, 20 by
default), the frontend routes ``/``, ``/tags``, ``/t/{slug}`` and ``/d/{id}[-slug]`` (Flarum's boot
page, which its JavaScript renders from the API: what the ``forum`` spider recognises), ``/robots.txt``. Backstage threads are not
listed. Pure functions of the forum; JSON with sorted keys, so answers are byte-identical.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from demoforum.site import Board, DemoForum, Post, Thread, esc, slugify

EMOJI = {":)": ("1f642", "🙂"), ":(": ("1f626", "😦"), ":D": ("1f603", "😃"), ";)": ("1f609", "😉"), ":p": ("1f61b", "😛"),
         ":o": ("1f62e", "😮"), ":cool:": ("1f60e", "😎"), ":rolleyes:": ("1f644", "🙄")}
ROBOTS_TXT = "User-agent: *\nDisallow: /settings\nDisallow: /notifications\nDisallow: /logout\nDisallow: /reset\nDisallow: /confirm\n"
JSON_TYPE = {"Content-Type": "application/vnd.api+json; charset=utf-8"}
DISCUSSION_RE = re.compile(r"^/api/discussions/(?P<id>\d+)$")
FRONTEND_RE = re.compile(r"^/(?:|tags|all|t/(?P<tag>[^/]+)|d/(?P<id>\d+)(?:-[^/]*)?(?:/\d+)?)/?$")
MAX_LIMIT = 50


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def username(post: Post) -> str:
    return slugify(post.author, 30).replace("-", "_")


def content_html(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        thread = forum.threads[target.thread_id]
        html = (f'<blockquote><p><a href="/d/{thread.thread_id}-{thread.slug}/{target.position + 1}" class="PostMention" '
                f'data-id="{target.post_id}">{esc(target.author)}</a></p>{content_html(forum, target, post.quote_nested)}</blockquote>')
    speech = "<br>\n".join(f"<em>{esc(t)}</em>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        code, char = EMOJI.get(post.tail[1], EMOJI[":)"])
        speech += (f' <img class="emoji" draggable="false" loading="lazy" alt="{char}" '
                   f'src="https://cdn.jsdelivr.net/gh/twitter/twemoji@14/assets/72x72/{code}.png">')
    html += f"<p>{speech}</p>"
    if post.tail and post.tail[0] == "link":
        url = esc(post.tail[1])
        html += f'<p>More here: <a href="{url}" rel="ugc nofollow">{url}</a></p>'
    return html


def tag(board: Board) -> dict:
    return {"type": "tags", "id": str(board.node_id),
            "attributes": {"name": board.title, "slug": board.slug, "description": "", "color": "#3f51b5",
                           "discussionCount": len(board_threads(board)), "isChild": False, "isHidden": False, "position": board.node_id}}


def user(post: Post) -> dict:
    return {"type": "users", "id": str(post.user_id),
            "attributes": {"username": username(post), "displayName": post.author, "avatarUrl": None, "slug": username(post)}}


def post_json(forum: DemoForum, post: Post) -> dict:
    return {"type": "posts", "id": str(post.post_id),
            "attributes": {"number": post.position + 1, "createdAt": iso(post.epoch), "contentType": "comment",
                           "contentHtml": content_html(forum, post), "renderFailed": False, "mentionedByCount": 0,
                           "editedAt": None, "canEdit": False, "canDelete": False, "canHide": False, "isApproved": True},
            "relationships": {"discussion": {"data": {"type": "discussions", "id": str(post.thread_id)}},
                              "user": {"data": {"type": "users", "id": str(post.user_id)}}}}


def discussion(thread: Thread, with_posts: bool = False) -> dict:
    last = thread.posts[-1]
    relations: dict = {"tags": {"data": [{"type": "tags", "id": str(thread.board.node_id)}]},
                       "user": {"data": {"type": "users", "id": str(thread.posts[0].user_id)}}}
    if with_posts:
        relations["posts"] = {"data": [{"type": "posts", "id": str(p.post_id)} for p in thread.posts]}
    return {"type": "discussions", "id": str(thread.thread_id),
            "attributes": {"title": thread.title, "slug": f"{thread.thread_id}-{thread.slug}", "commentCount": len(thread.posts),
                           "participantCount": len({p.author for p in thread.posts}), "createdAt": iso(thread.posts[0].epoch),
                           "lastPostedAt": iso(last.epoch), "lastPostNumber": last.position + 1, "isSticky": False, "isLocked": False},
            "relationships": relations}


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def listing(forum: DemoForum, threads: list[Thread], offset: int, query: dict[str, str]) -> dict:
    per = forum.threads_per_page
    links = {"first": "/api/discussions?" + urlencode(query)}
    if offset + per < len(threads):
        links["next"] = "/api/discussions?" + urlencode({**query, "page[offset]": offset + per})
    return {"links": links, "data": [discussion(t) for t in threads[offset:offset + per]]}


def posts_page(forum: DemoForum, thread: Thread, offset: int, limit: int) -> dict:
    posts = thread.posts[offset:offset + limit]
    users = {p.user_id: user(p) for p in posts}
    return {"links": {"first": "/api/posts?" + urlencode({"filter[discussion]": thread.thread_id, "page[limit]": limit})},
            "data": [post_json(forum, p) for p in posts], "included": [users[k] for k in sorted(users)]}


def home_page() -> str:
    return ('<!doctype html>\n<html dir="ltr" lang="en">\n<head><meta charset="utf-8"><title>Kopitiam Demo Forum</title></head>\n'
            '<body>\n<div id="app" class="App">\n<div id="flarum-loading" style="display: none">Loading...</div>\n'
            '<noscript><div class="Alert"><div class="container">This site is best viewed in a modern browser with JavaScript enabled.</div></div></noscript>\n'
            '<main class="App-content"><div id="content"></div></main>\n</div>\n'
            '<script id="flarum-json-payload" type="application/json">{"resources":[],"session":{"userId":0}}</script>\n'
            "<script>document.getElementById('flarum-loading').style.display = 'block'; var flarum = {extensions: {}};</script>\n"
            "<script>flarum.core.app.load(JSON.parse(document.getElementById('flarum-json-payload').textContent));</script>\n"
            "</body>\n</html>\n")


def frontend_exists(forum: DemoForum, page: re.Match[str]) -> bool:
    """Whether a frontend route names a tag or discussion the forum has (else it answers 404)."""
    if page["tag"] is not None:
        return any(b.slug == page["tag"] for b in forum.boards)
    if page["id"] is not None:
        thread = forum.threads.get(int(page["id"]))
        return thread is not None and not thread.backstage
    return True


def number(query: dict[str, str], key: str, default: int) -> int:
    value = query.get(key, "")
    return int(value) if value.isdigit() else default


def route_json(forum: DemoForum, path: str, query: dict[str, str]) -> dict | None:
    """The JSON:API document a Flarum route answers with, or None for an unknown one."""
    if path == "/api/tags":
        return {"data": [tag(b) for b in forum.boards]}
    if path == "/api/discussions":
        slug = query.get("filter[tag]")
        boards = [b for b in forum.boards if slug is None or b.slug == slug]
        threads = sorted((t for b in boards for t in board_threads(b)), key=lambda t: (-t.posts[-1].epoch, t.thread_id))
        return listing(forum, threads, number(query, "page[offset]", 0), {k: v for k, v in query.items() if k == "filter[tag]"}) \
            if boards else None
    if m := DISCUSSION_RE.match(path):
        thread = forum.threads.get(int(m["id"]))
        if thread is None or thread.backstage:
            return None
        return {"data": discussion(thread, with_posts=True), "included": [tag(thread.board)]}
    if path == "/api/posts":
        thread = forum.threads.get(number(query, "filter[discussion]", -1))
        if thread is None or thread.backstage:
            return None
        return posts_page(forum, thread, number(query, "page[offset]", 0), min(MAX_LIMIT, number(query, "page[limit]", 20)) or 20)
    return None


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the Flarum-speaking demo forum."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if (page := FRONTEND_RE.match(parts.path)) and frontend_exists(forum, page):
        return 200, {}, home_page()
    data = route_json(forum, parts.path, query)
    if data is None:
        return 404, dict(JSON_TYPE), json.dumps({"errors": [{"status": "404", "code": "not_found"}]})
    return 200, dict(JSON_TYPE), json.dumps(data, sort_keys=True, ensure_ascii=False)
