"""The demo forum as a vBulletin 5 site (its default style's markup): the same boards (channels),
threads and posts as the XenForo pages, with vBulletin 5's own markup and noise: friendly URLs
``/forum/<channel>/<id>-<slug>`` with ``/pageN`` pages (and ``/node/<id>``, redirected there),
``li.b-post[data-node-id]`` posts, ``bbcode_quote`` blocks with an "Originally posted by" link to
``?p=N#postN``, image smilies with an empty ``alt``, ``.post-signature`` signatures, a
``<meta name="generator">``, and ``<time datetime>`` in the forum's local time without an offset
(+0800: crawl with ``timezone=Asia/Singapore``).

Routes: ``/`` and ``/forum`` (channels), ``/forum/<channel>[/pageN]``,
``/forum/<channel>/<id>-<slug>[/pageN]``, ``/node/<id>`` (301 to the thread), ``/robots.txt``.
Backstage threads are not listed. Pure functions of the forum.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from demoforum.site import SGT, Board, DemoForum, Post, Thread, esc, slugify

VERSION = "5.6.9"
SMILIE_FILES = {":)": "smile", ":(": "frown", ":D": "biggrin", ";)": "wink", ":p": "tongue", ":o": "eek",
                ":cool:": "cool", ":rolleyes:": "rolleyes"}
ROBOTS_TXT = "User-agent: *\nDisallow: /member/\nDisallow: /search\nDisallow: /new-content/\n"
CHANNEL_RE = re.compile(r"^/forum/(?P<channel>[a-z0-9-]+)(?:/page(?P<page>\d+))?/?$")
THREAD_RE = re.compile(r"^/forum/(?P<channel>[a-z0-9-]+)/(?P<id>\d+)-(?P<slug>[^/]*)(?:/page(?P<page>\d+))?/?$")
NODE_RE = re.compile(r"^/node/(?P<id>\d+)/?$")


def channel_path(board: Board) -> str:
    return f"/forum/{board.slug}"


def thread_path(thread: Thread) -> str:
    return f"{channel_path(thread.board)}/{thread.thread_id}-{thread.slug}"


def paged(base: str, page: int) -> str:
    return base if page == 1 else f"{base}/page{page}"


def _time(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch, tz=UTC).astimezone(SGT)
    return (f'<time itemprop="dateCreated" datetime="{local:%Y-%m-%dT%H:%M:%S}">'
            f'{local:%m-%d-%Y}, {local:%I:%M %p}</time>')


def body(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    """The post's ``.js-post__content-text`` content."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        link = f"{thread_path(forum.threads[target.thread_id])}?p={target.post_id}#post{target.post_id}"
        html = (f'<div class="bbcode_container">\n<div class="bbcode_quote">\n<div class="quote_container">\n'
                f'<div class="bbcode_quote_container b-icon b-icon__ldquo-l--gray"></div>\n'
                f'<div class="bbcode_postedby">\n<label>Originally posted by</label> <strong>{esc(target.author)}</strong>\n'
                f'<a href="{link}" rel="nofollow"><span class="b-icon b-icon__arrow-right--gray"></span></a>\n</div>\n'
                f'<div class="message">{body(forum, target, post.quote_nested)}</div>\n</div>\n</div>\n</div>')
    html += "<br />\n".join(f"<i>{esc(t)}</i>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        name = SMILIE_FILES.get(post.tail[1], "smile")
        html += f' <img src="core/images/smilies/{name}.png" border="0" alt="" title="{name.title()}" class="inlineimg" />'
    elif post.tail:
        html += f'<br />\n<br />\nMore here: <a href="{esc(post.tail[1])}" target="_blank">{esc(post.tail[1])}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    first = " b-post--first" if post.position == 0 else ""
    signature = f'\n<div class="post-signature restore">{post.signature}</div>' if post.signature else ""
    return f"""<li class="b-post js-post js-comment-entry__parent h-restore--on-preview b-post--text{first} js-slideshow__gallery-node" data-node-id="{post.post_id}" itemscope="" itemtype="http://schema.org/Article" itemprop="hasPart">
<div class="b-post__grid">
<div class="b-post__arrow"></div>
<div class="b-post__body">
<div class="b-post__content js-post__content b-post__hide-when-deleted">
<hr class="b-divider--section" />
<div class="b-media h-hide--on-preview">
<div class="b-media__img--rev"><a class="b-post__count" href="{thread_path(thread)}?p={post.post_id}#post{post.post_id}">#{post.position + 1}</a></div>
<div class="b-media__body"><div class="b-post__timestamp OLD__post-date">{_time(post.epoch)}</div></div>
</div>
<div class="OLD__post-content h-padding-vert-xl">
<div class="js-post__content-text OLD__post-content-text restore h-wordwrap" itemprop="text">{body(forum, post)}</div>
</div>{signature}
</div>
</div>
<div class="b-userinfo b-post__hide-when-deleted" itemprop="author" itemscope="" itemtype="http://schema.org/Person">
<div class="b-userinfo__details"><div class="author h-text-size--14"><strong><a href="/member/{post.user_id}-{slugify(post.author)}" itemprop="url"><span itemprop="name">{esc(post.author)}</span></a></strong></div>
<div class="usertitle">Player</div></div>
</div>
</div>
</li>
"""


def pagenav(base: str, page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    links = [f'<a class="js-pagenav-button b-button b-button--{"primary" if n == page else "secondary"} h-left" '
             f'data-page="{n}" href="{paged(base, n)}">{n}</a>' for n in range(1, pages + 1)]
    if page < pages:
        links.append(f'<a class="js-pagenav-button js-pagenav-next-button b-button b-button--secondary h-left" '
                     f'data-page="{page + 1}" href="{paged(base, page + 1)}" title="Next Page" rel="next">&gt;</a>')
    return (f'<div class="pagenav-container h-clearfix noselect"><div class="pagenav-controls">'
            f'<form class="pagenav-form h-left" action="{base}"><label>Page</label> '
            f'<input type="text" name="page" value="{page}" class="js-pagenum textbox h-left"/> '
            f'<label>of <span class="pagetotal">{pages}</span></label></form></div>\n'
            f'<div class="js-pagenav pagenav h-right">{"".join(links)}</div></div>')


def layout(title: str, canonical: str, crumbs: list[tuple[str, str]], content: str) -> str:
    links = "".join(f'<li class="crumb ellipsis"><a class="crumb-link h-flex-valign-center" href="{href}">{esc(name)}</a></li>'
                    for name, href in [("Forum", "/forum"), *crumbs])
    return f"""<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:vb="urn:vb" dir="ltr" data-cookie-prefix="bb" lang="en-US">
<head>
<meta charset="utf-8" />
<title>{esc(title)} - Kopitiam Demo Forum</title>
<meta name="generator" content="vBulletin {VERSION}" />
<link rel="canonical" href="{canonical}" />
</head>
<body id="vb-page-body" class="l-desktop vb-page view-mode logged-out" itemscope="" itemtype="http://schema.org/WebPage" data-usergroupid="1" data-styleid="1">
<div id="outer-wrapper"><div id="wrapper">
<div id="breadcrumbs" class="breadcrumbs"><ul class="h-clearfix">{links}</ul></div>
<div id="content"><div class="canvas-layout-container js-canvas-layout-container">
<h1 class="main-title js-main-title hide-on-editmode">{esc(title)}</h1>
{content}
</div></div>
</div></div>
<div id="footer"><div id="footer-copyright">Powered by vBulletin&reg; Version {VERSION} (markup imitated for an offline demo)</div></div>
</body>
</html>
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    per, base = forum.posts_per_page, thread_path(thread)
    nav = pagenav(base, page, forum.thread_pages(thread))
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[(page - 1) * per:page * per])
    content = (f'{nav}\n<div id="thread-view-tab" class="conversation-view">\n<div class="conversation-content widget-content">\n'
               f'<ul class="conversation-list list-container h-clearfix thread-view">\n{posts}</ul>\n</div>\n</div>\n{nav}')
    return layout(thread.title, paged(base, page), [(thread.board.title, channel_path(thread.board))], content)


def channel_page(forum: DemoForum, board: Board, page: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    rows = []
    for t in threads[(page - 1) * per:page * per]:
        last = t.posts[-1]
        rows.append(f'<tr class="topic-item " id="topic-{t.thread_id}" data-node-id="{t.thread_id}">'
                    f'<td class="cell-topic js-cell-topic"><div class="topic-wrapper"><div class="topic-info h-clearfix h-left">'
                    f'<a href="{thread_path(t)}" class="topic-title js-topic-title" id="topic-{t.thread_id}-title">{esc(t.title)}</a>'
                    f'</div></div></td><td class="cell-count"><div class="posts-count">{len(t.posts) - 1} replies</div></td>'
                    f'<td class="cell-lastpost"><div class="lastpost-by">by <a href="/member/{last.user_id}-{slugify(last.author)}">'
                    f'{esc(last.author)}</a></div><span class="post-date">{_time(last.epoch)}</span> '
                    f'<a href="{thread_path(t)}?p={last.post_id}#post{last.post_id}" class="go-to-last-post">'
                    f'<span class="b-icon b-icon__arrow-to-right"></span></a></td></tr>')
    nav = pagenav(channel_path(board), page, max(1, -(-len(threads) // per)))
    content = (f'{nav}\n<div class="channel-content-widget"><table class="topic-list-wrapper">'
               f'<tbody class="topic-list ">\n' + "\n".join(rows) + f"\n</tbody></table></div>\n{nav}")
    return layout(board.title, paged(channel_path(board), page), [(board.title, channel_path(board))], content)


def index_page(forum: DemoForum) -> str:
    rows = "\n".join(f'<tr class="forum-item main-forum" data-channel-id="{b.node_id}"><td class="cell-forum">'
                     f'<div class="forum-info"><a href="{channel_path(b)}" class="forum-title">{esc(b.title)}</a></div>'
                     f'</td><td class="topics-count">{len(board_threads(b))}</td></tr>' for b in forum.boards)
    return layout("Forum", "/forum", [], f'<table class="forum-list-container"><tbody>\n{rows}\n</tbody></table>')


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the vBulletin-5-speaking demo forum."""
    path = urlsplit(target).path
    if path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if path in ("/", "/forum", "/forum/"):
        return 200, {}, index_page(forum)
    if m := NODE_RE.match(path):
        thread = forum.threads.get(int(m["id"]))
        if thread is not None and not thread.backstage:
            return 301, {"Location": thread_path(thread)}, ""
    if m := THREAD_RE.match(path):
        thread, page = forum.threads.get(int(m["id"])), int(m["page"] or 1)
        if thread is not None and not thread.backstage and 1 <= page <= forum.thread_pages(thread):
            return 200, {}, thread_page(forum, thread, page)
    elif m := CHANNEL_RE.match(path):
        board, page = next((b for b in forum.boards if b.slug == m["channel"]), None), int(m["page"] or 1)
        if board is not None and 1 <= page <= max(1, -(-len(board_threads(board)) // forum.threads_per_page)):
            return 200, {}, channel_page(forum, board, page)
    return 404, {}, "<html><body><h1>Page not found</h1></body></html>"
