"""The demo forum as a vBulletin 4 board (its default style's markup): the same boards, threads and
posts as the XenForo pages, with vBulletin's own noise: ``.bbcode_quote`` blocks with an
"Originally Posted by" link to ``#postN``, image smilies with an empty ``alt``, local-time date
text (``03-02-2011, 09:15 AM`` in +0800: crawl with ``timezone=Asia/Singapore``), ``page=N``
pagination and the session id ``s=`` on every link.

Routes: ``/forumdisplay.php?f=N[&page=P]``, ``/showthread.php?t=N[&page=P]``, ``/robots.txt``. No
index page (the vbulletin spider starts from boards or threads). Backstage threads are not listed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from demoforum.site import SGT, Board, DemoForum, Post, Thread, esc

SESSION = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # vBulletin's guest session id: the crawler strips it
SMILIE_FILES = {":)": "smile", ":(": "frown", ":D": "biggrin", ";)": "wink", ":p": "tongue", ":o": "eek",
                ":cool:": "cool", ":rolleyes:": "rolleyes"}
ROBOTS_TXT = "User-agent: *\nDisallow: /member.php\nDisallow: /newreply.php\nDisallow: /search.php\n"


def _url(path: str, **query: object) -> str:
    args = "&amp;".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return f"{path}?s={SESSION}&amp;{args}"


def _date(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch, tz=timezone.utc).astimezone(SGT)
    return f'{local:%m-%d-%Y}, <span class="time">{local:%I:%M %p}</span>'


def body(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        html = (f'<div class="bbcode_container">\n<div class="bbcode_quote">\n<div class="quote_container">\n'
                f'<div class="bbcode_quote_container"></div>\n<div class="bbcode_postedby">\n'
                f'<img src="images/misc/quote_icon.png" alt="Quote" /> Originally Posted by <strong>{esc(target.author)}</strong>\n'
                f'<a href="showthread.php?p={target.post_id}#post{target.post_id}" rel="nofollow">'
                f'<img class="inlineimg" src="images/buttons/viewpost-right.png" alt="View Post" /></a>\n</div>\n'
                f'<div class="message">{body(forum, target, post.quote_nested)}</div>\n</div>\n</div>\n</div>')
    html += "<br />\n".join(f"<i>{esc(t)}</i>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        name = SMILIE_FILES.get(post.tail[1], "smile")
        html += f' <img src="images/smilies/{name}.png" border="0" alt="" title="{name.title()}" class="inlineimg" />'
    elif post.tail:
        html += f'<br />\n<br />\nMore here: <a href="{esc(post.tail[1])}" target="_blank">{esc(post.tail[1])}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    return f"""<li class="postbit postbitim postcontainer old" id="post_{post.post_id}">
<div class="posthead"><span class="postdate old"><span class="date">{_date(post.epoch)}</span></span>
<span class="nodecontrols"><a name="post{post.post_id}" href="{_url("showthread.php", t=thread.thread_id, p=post.post_id)}#post{post.post_id}" class="postcounter">#{post.position + 1}</a><a id="postcount{post.post_id}" name="{post.position + 1}"></a></span></div>
<div class="postdetails"><div class="userinfo"><div class="username_container">
<a class="username offline popupctrl" href="{_url("member.php", u=post.user_id)}"><strong>{esc(post.author)}</strong></a>
</div></div>
<div class="postbody"><div class="postrow"><h2 class="title icon">{esc(thread.title)}</h2>
<div class="content"><div id="post_message_{post.post_id}"><blockquote class="postcontent restore ">{body(forum, post)}</blockquote></div></div>
</div></div></div>
</li>
"""


def pagination(path: str, key: str, ident: int, page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    links = [f'<span class="selected"><a href="javascript://">{n}</a></span>' if n == page else
             f'<span><a href="{_url(path, **{key: ident, "page": n if n > 1 else None})}">{n}</a></span>'
             for n in range(1, pages + 1)]
    if page < pages:
        links.append(f'<span class="prev_next"><a rel="next" href="{_url(path, **{key: ident, "page": page + 1})}">&gt;</a></span>')
    return f'<div class="pagination_top"><form class="pagination popupmenu nohovermenu">{"".join(links)}</form></div>'


def layout(title: str, board: Board | None, content: str) -> str:
    crumb = (f'<li class="navbit"><a href="{_url("forumdisplay.php", f=board.node_id)}">{esc(board.title)}</a></li>'
             if board else "")
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" dir="ltr" lang="en">
<head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8" /><title>{esc(title)}</title></head>
<body>
<div id="breadcrumb" class="breadcrumb"><ul class="floatcontainer">
<li class="navbithome"><a href="index.php?s={SESSION}" accesskey="1">Home</a></li>
<li class="navbit"><a href="forum.php?s={SESSION}">Forum</a></li>
{crumb}
</ul></div>
{content}
<div id="footer_copyright" class="shade footer_copyright">Powered by vBulletin&reg; (markup imitated for an offline demo)</div>
</body>
</html>
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    per = forum.posts_per_page
    nav = pagination("showthread.php", "t", thread.thread_id, page, forum.thread_pages(thread))
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[(page - 1) * per:page * per])
    content = (f'<div id="pagetitle"><h1>Thread: <span class="threadtitle"><a href="{_url("showthread.php", t=thread.thread_id)}">'
               f'{esc(thread.title)}</a></span></h1></div>\n{nav}\n<div id="postlist" class="postlist restrain">\n'
               f'<ol id="posts" class="posts" start="1">\n{posts}</ol>\n</div>\n'
               f'<form action="newreply.php" method="post"><input type="hidden" name="t" value="{thread.thread_id}" /></form>')
    return layout(thread.title, thread.board, content)


def board_page(forum: DemoForum, board: Board, page: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    rows = []
    for t in threads[(page - 1) * per:page * per]:
        last = t.posts[-1]
        rows.append(f'<li class="threadbit" id="thread_{t.thread_id}"><div class="rating0 nonsticky"><div class="threadinfo">'
                    f'<h3 class="threadtitle"><a class="title" href="{_url("showthread.php", t=t.thread_id)}" '
                    f'id="thread_title_{t.thread_id}">{esc(t.title)}</a></h3></div>'
                    f'<dl class="threadlastpost td"><dd><a href="{_url("showthread.php", t=t.thread_id, p=last.post_id)}#post{last.post_id}">'
                    f'<img class="inlineimg" src="images/buttons/lastpost-right.png" alt="Go to last post" /></a></dd></dl>'
                    f'</div></li>')
    pages = max(1, -(-len(threads) // per))
    content = (f'{pagination("forumdisplay.php", "f", board.node_id, page, pages)}\n<div id="threadlist" class="threadlist">'
               f'<ol id="threads" class="threads">\n' + "\n".join(rows) + "\n</ol></div>")
    return layout(board.title, board, content)


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the vBulletin-speaking demo forum."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    number = {k: int(v) for k, v in query.items() if k in ("f", "t", "page") and v.isdigit()}
    page = number.get("page", 1)
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if parts.path == "/forumdisplay.php":
        board = next((b for b in forum.boards if b.node_id == number.get("f")), None)
        if board is not None and 1 <= page <= max(1, -(-len(board_threads(board)) // forum.threads_per_page)):
            return 200, {}, board_page(forum, board, page)
    if parts.path == "/showthread.php":
        thread = forum.threads.get(number.get("t", -1))
        if thread is not None and not thread.backstage and 1 <= page <= forum.thread_pages(thread):
            return 200, {}, thread_page(forum, thread, page)
    return 404, {}, "<html><body>Invalid Thread specified.</body></html>"
