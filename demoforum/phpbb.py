"""The demo forum as a phpBB 3.3 board (prosilver markup): the same boards, topics and posts as the
XenForo pages, with phpBB's own noise: ``<blockquote cite>`` quotes with a ``<cite>`` jump link,
``div.signature``, ``img.smilies``, ``a.postlink`` links, ``<time datetime>`` dates, offset
pagination (``start=N``) and the guest session id ``sid=`` on every link.

Routes: ``/`` and ``/index.php`` (boards), ``/viewforum.php?f=N[&start=K]``,
``/viewtopic.php?[f=N&]t=N[&start=K]``, ``/robots.txt``. The robots-disallowed backstage threads
are not listed (a phpBB board would hide them by permissions). Pure functions of the forum.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from demoforum.site import SGT, Board, DemoForum, Post, Thread, esc

SID = "5f1d0c9b8a7e6d5c4b3a291807f6e5d4"  # a fixed guest session id: the crawler must strip it
SMILIE_FILES = {":)": "icon_e_smile", ":(": "icon_e_sad", ":D": "icon_e_biggrin", ";)": "icon_e_wink",
                ":p": "icon_razz", ":o": "icon_e_surprised", ":cool:": "icon_cool", ":rolleyes:": "icon_rolleyes"}
ROBOTS_TXT = "User-agent: *\nDisallow: /memberlist.php\nDisallow: /posting.php\nDisallow: /search.php\nDisallow: /ucp.php\n"


def _link(path: str, **query: object) -> str:
    args = "&amp;".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return f"./{path}?{args}&amp;sid={SID}"


def _time(epoch: int) -> str:
    utc = datetime.fromtimestamp(epoch, tz=UTC)
    local = utc.astimezone(SGT)
    shown = f"{local:%a %b %d, %Y} {local.hour % 12 or 12}:{local:%M} {'am' if local.hour < 12 else 'pm'}"
    return f'<time datetime="{utc.isoformat()}">{shown}</time>'


def body(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    """The post's ``div.content`` inner HTML."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        jump = f"./viewtopic.php?p={target.post_id}#p{target.post_id}"
        html = (f'<blockquote cite="{jump}"><div><cite><a href="{_link("memberlist.php", mode="viewprofile", u=target.user_id)}">'
                f'{esc(target.author)}</a> wrote: <a href="{jump}" data-post-id="{target.post_id}" '
                f'onclick="if(document.getElementById(hash.substr(1)))href=hash">↑</a>'
                f'<span class="responsive-hide">{_time(target.epoch)}</span></cite>'
                f"{body(forum, target, post.quote_nested)}</div></blockquote>")
    html += "<br>\n".join(f'<em class="text-italics">{esc(t)}</em>' if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        code = post.tail[1]
        html += (f' <img class="smilies" src="./images/smilies/{SMILIE_FILES.get(code, "icon_e_smile")}.gif" '
                 f'width="15" height="17" alt="{esc(code)}" title="{esc(code)}">')
    elif post.tail:
        html += f'<br>\n<br>\nMore here: <a href="{esc(post.tail[1])}" class="postlink">{esc(post.tail[1])}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post, index: int) -> str:
    member = _link("memberlist.php", mode="viewprofile", u=post.user_id)
    signature = f'\n<div id="sig{post.post_id}" class="signature">{post.signature}</div>' if post.signature else ""
    return f"""<div id="p{post.post_id}" class="post has-profile bg{2 - index % 2}">
<div class="inner">
<dl class="postprofile" id="profile{post.post_id}"><dt class="no-profile-rank no-avatar"><a href="{member}" class="username">{esc(post.author)}</a></dt>
<dd class="profile-posts"><strong>Posts:</strong> {post.user_id % 997}</dd></dl>
<div class="postbody"><div id="post_content{post.post_id}">
<h3><a href="./viewtopic.php?p={post.post_id}&amp;sid={SID}#p{post.post_id}">Re: {esc(thread.title)}</a></h3>
<ul class="post-buttons"><li><a href="{_link("posting.php", mode="quote", p=post.post_id)}" title="Reply with quote" class="button button-icon-only"><span>Quote</span></a></li></ul>
<p class="author"><a class="unread" href="./viewtopic.php?p={post.post_id}&amp;sid={SID}#p{post.post_id}" title="Post"><span class="sr-only">Post</span></a><span class="responsive-hide">by <strong><a href="{member}" class="username">{esc(post.author)}</a></strong> &raquo; </span>{_time(post.epoch)}</p>
<div class="content">{body(forum, post)}</div>{signature}
</div></div>
<div class="back2top"><a href="#top" class="top" title="Top"><span class="sr-only">Top</span></a></div>
</div>
</div>
<hr class="divider" />
"""


def pagination(path: str, f: int, t: int | None, start: int, per_page: int, total: int, noun: str) -> str:
    pages = max(1, -(-total // per_page))
    current = start // per_page + 1
    items = []
    for n in range(1, pages + 1):
        offset = (n - 1) * per_page or None
        items.append(f'<li class="active"><span>{n}</span></li>' if n == current else
                     f'<li><a class="button" href="{_link(path, f=f, t=t, start=offset)}" role="button">{n}</a></li>')
    if current < pages:
        items.append(f'<li class="arrow next"><a class="button button-icon-only" '
                     f'href="{_link(path, f=f, t=t, start=current * per_page)}" rel="next" role="button">'
                     f'<span class="sr-only">Next</span></a></li>')
    return f'<div class="pagination">\n{total} {noun}\n<ul>\n' + "\n".join(items) + "\n</ul>\n</div>"


def layout(title: str, crumbs: list[tuple[str, str]], body_html: str, section: str) -> str:
    links = "\n".join(f'<span class="crumb"><a href="{href}"><span itemprop="name">{esc(name)}</span></a></span>'
                      for name, href in [("Board index", f"./index.php?sid={SID}"), *crumbs])
    return f"""<!DOCTYPE html>
<html dir="ltr" lang="en-gb">
<head><meta charset="utf-8" /><title>{esc(title)} - Kopitiam Demo Forum</title></head>
<body id="phpbb" class="nojs notouch section-{section} ltr ">
<div id="wrap" class="wrap">
<div class="navbar" role="navigation"><ul id="nav-breadcrumbs" class="nav-breadcrumbs linklist navlinks" role="menubar">
<li class="breadcrumbs">
{links}
</li></ul></div>
<div id="page-body" class="page-body" role="main">
{body_html}
</div>
<div class="copyright">Powered by phpBB&reg; Forum Software (markup imitated for an offline demo)</div>
</div>
</body>
</html>
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def topic_page(forum: DemoForum, thread: Thread, start: int) -> str:
    board, per = thread.board, forum.posts_per_page
    posts = thread.posts[start:start + per]
    nav = pagination("viewtopic.php", board.node_id, thread.thread_id, start, per, len(thread.posts), "posts")
    html = (f'<h2 class="topic-title"><a href="{_link("viewtopic.php", f=board.node_id, t=thread.thread_id)}">'
            f'{esc(thread.title)}</a></h2>\n<div class="action-bar bar-top">{nav}</div>\n'
            + "".join(render_post(forum, thread, p, i) for i, p in enumerate(posts))
            + f'<div class="action-bar bar-bottom">{nav}</div>')
    return layout(thread.title, [(board.title, _link("viewforum.php", f=board.node_id))], html, "viewtopic")


def forum_page(forum: DemoForum, board: Board, start: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    rows = []
    for i, t in enumerate(threads[start:start + per]):
        first, last = t.posts[0], t.posts[-1]
        rows.append(f"""<li class="row bg{1 + i % 2}"><dl class="row-item topic_read"><dt><div class="list-inner">
<a href="{_link("viewtopic.php", f=board.node_id, t=t.thread_id)}" class="topictitle">{esc(t.title)}</a>
<div class="topic-poster responsive-hide left-box">by <a href="{_link("memberlist.php", mode="viewprofile", u=first.user_id)}" class="username">{esc(first.author)}</a> &raquo; {_time(first.epoch)}</div>
</div></dt>
<dd class="posts">{len(t.posts) - 1} <dfn>Replies</dfn></dd>
<dd class="lastpost"><span><dfn>Last post </dfn>by <a href="{_link("memberlist.php", mode="viewprofile", u=last.user_id)}" class="username">{esc(last.author)}</a>
<a href="./viewtopic.php?p={last.post_id}&amp;sid={SID}#p{last.post_id}" title="Go to last post"><span class="sr-only"></span></a><br />{_time(last.epoch)}</span></dd>
</dl></li>""")
    nav = pagination("viewforum.php", board.node_id, None, start, per, len(threads), "topics")
    html = (f'<h2 class="forum-title"><a href="{_link("viewforum.php", f=board.node_id)}">{esc(board.title)}</a></h2>\n'
            f'<div class="action-bar bar-top">{nav}</div>\n<div class="forumbg"><div class="inner">\n'
            f'<ul class="topiclist topics">\n' + "\n".join(rows) + "\n</ul>\n</div></div>")
    return layout(board.title, [(board.title, _link("viewforum.php", f=board.node_id))], html, "viewforum")


def index_page(forum: DemoForum) -> str:
    rows = "\n".join(f'<li class="row"><dl class="row-item forum_read"><dt><div class="list-inner">'
                     f'<a href="{_link("viewforum.php", f=b.node_id)}" class="forumtitle">{esc(b.title)}</a>'
                     f'</div></dt><dd class="topics">{len(board_threads(b))} <dfn>Topics</dfn></dd></dl></li>'
                     for b in forum.boards)
    return layout("Index page", [], f'<div class="forabg"><div class="inner"><ul class="topiclist forums">\n{rows}\n'
                                   f'</ul></div></div>', "index")


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the phpBB-speaking demo forum."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    number = {k: int(v) for k, v in query.items() if k in ("f", "t", "start") and v.isdigit()}
    start = number.get("start", 0)
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if parts.path in ("/", "/index.php"):
        return 200, {}, index_page(forum)
    if parts.path == "/viewforum.php":
        board = next((b for b in forum.boards if b.node_id == number.get("f")), None)
        if board is not None and 0 <= start < max(1, len(board_threads(board))) and start % forum.threads_per_page == 0:
            return 200, {}, forum_page(forum, board, start)
    if parts.path == "/viewtopic.php":
        thread = forum.threads.get(number.get("t", -1))
        if thread is not None and not thread.backstage and 0 <= start < len(thread.posts) \
                and start % forum.posts_per_page == 0:
            return 200, {}, topic_page(forum, thread, start)
    return 404, {}, "<html><body><h2>Information</h2><p>The requested topic does not exist.</p></body></html>"
