"""The demo forum as a MyBB 1.8 board (the default theme's ``postbit``, ``forumdisplay`` and
``index`` templates): the same boards, threads and posts as the XenForo pages, with MyBB's own
noise: ``blockquote.mycode_quote`` quotes whose ``<cite>`` jump link names the quoted pid, MyCode
spans (``mycode_i``, ``mycode_url``), smilies whose ``alt`` is the smilie's name, ``div.signature``,
local-time date text (``03-02-2024, 09:15 AM`` in +0800: crawl with ``timezone=Asia/Singapore``),
post numbers ``#N``, ``page=N`` pagination and template comments.

Routes: ``/`` and ``/index.php`` (boards), ``/forumdisplay.php?fid=N[&page=P]``,
``/showthread.php?tid=N[&page=P]``, ``/robots.txt``. Backstage threads are not listed (a MyBB
board would hide them by permissions). Pure functions of the forum.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from demoforum.site import SGT, Board, DemoForum, Post, Thread, esc

SMILIES = {":)": ("smile", "Smile"), ":(": ("sad", "Sad"), ":D": ("biggrin", "Big Grin"), ";)": ("wink", "Wink"),
           ":p": ("tongue", "Tongue"), ":o": ("huh", "Huh"), ":cool:": ("cool", "Cool"), ":rolleyes:": ("rolleyes", "Rolleyes")}
ROBOTS_TXT = "User-agent: *\nDisallow: /member.php\nDisallow: /newreply.php\nDisallow: /private.php\nDisallow: /search.php\n"


def _date(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch, tz=UTC).astimezone(SGT)
    return f"{local:%m-%d-%Y, %I:%M %p}"


def body(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    """The post's ``div.post_body`` inner HTML."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        html = (f'<blockquote class="mycode_quote"><cite><span> ({_date(target.epoch)})</span>{esc(target.author)} Wrote:  '
                f'<a href="showthread.php?pid={target.post_id}#pid{target.post_id}" class="quick_jump" rel="nofollow"></a></cite><br />\n'
                f"{body(forum, target, post.quote_nested)}</blockquote><br />\n")
    html += "<br />\n".join(f'<span style="font-style: italic;" class="mycode_i">{esc(t)}</span>' if stage else esc(t)
                            for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        name, title = SMILIES.get(post.tail[1], ("smile", "Smile"))
        html += f' <img src="images/smilies/{name}.png" alt="{title}" title="{title}" class="smilie smilie_{len(name)}" />'
    elif post.tail:
        url = esc(post.tail[1])
        html += f'<br />\n<br />\nMore here: <a href="{url}" target="_blank" rel="noopener" class="mycode_url">{url}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    member = f"member.php?action=profile&amp;uid={post.user_id}"
    signature = (f'\n<!-- start: postbit_signature -->\n<div class="signature scaleimages">\n{post.signature}\n</div>\n'
                 f'<!-- end: postbit_signature -->' if post.signature else "")
    return f"""<!-- start: postbit -->
<a name="pid{post.post_id}" id="pid{post.post_id}"></a>
<div class="post " style="" id="post_{post.post_id}">
<div class="post_author">
	<div class="author_avatar"><a href="{member}"><img src="images/default_avatar.png" alt="" width="55" height="55" /></a></div>
	<div class="author_information">
			<strong><span class="largetext"><a href="{member}">{esc(post.author)}</a></span></strong> <img src="images/buddy_offline.png" title="Offline" alt="Offline" class="buddy_status" /><br />
			<span class="smalltext">Player<br /></span>
	</div>
	<div class="author_statistics">Posts: {post.user_id % 997}<br /></div>
</div>
<div class="post_content">
	<div class="post_head">
		<div class="float_right" style="vertical-align: top"><strong><a href="showthread.php?tid={thread.thread_id}&amp;pid={post.post_id}#pid{post.post_id}" title="RE: {esc(thread.title)}">#{post.position + 1}</a></strong></div>
		<span class="post_date">{_date(post.epoch)} <span class="post_edit" id="edited_by_{post.post_id}"></span></span>
	</div>
	<div class="post_body scaleimages" id="pid_{post.post_id}">
		{body(forum, post)}
	</div>
	<div class="post_meta" id="post_meta_{post.post_id}"></div>{signature}
</div>
<div class="post_controls"><div class="postbit_buttons author_buttons float_left"><a href="private.php?action=send&amp;uid={post.user_id}" class="postbit_pm"><span>PM</span></a></div></div>
</div>
<!-- end: postbit -->
"""


def multipage(path: str, key: str, ident: int, page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    items = [f'<span class="pagination_current">{n}</span>' if n == page else
             f'<a href="{path}?{key}={ident}{f"&amp;page={n}" if n > 1 else ""}" class="pagination_page">{n}</a>'
             for n in range(1, pages + 1)]
    if page < pages:
        items.append(f'<a href="{path}?{key}={ident}&amp;page={page + 1}" class="pagination_next">Next &raquo;</a>')
    return f'<!-- start: multipage -->\n<div class="pagination">\n<span class="pages">Pages ({pages}):</span>\n{" ".join(items)}\n</div>\n<!-- end: multipage -->'


def layout(template: str, title: str, crumbs: list[tuple[str, str]], content: str) -> str:
    links = "".join(f'<a href="{href}">{esc(name)}</a> &rsaquo; ' for name, href in [("Kopitiam Demo Forum", "index.php"), *crumbs])
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"><!-- start: {template} -->
<html xml:lang="en" lang="en" xmlns="http://www.w3.org/1999/xhtml">
<head>
<title>{esc(title)}</title>
<!-- start: headerinclude -->
<script type="text/javascript" src="jscripts/general.js?ver=1836"></script>
<!-- end: headerinclude -->
</head>
<body>
<div id="container">
<div id="content"><div class="wrapper">
<!-- start: nav -->
<div class="navigation">
{links.removesuffix(" &rsaquo; ")}<br /><img src="images/nav_bit.png" alt="" /><span class="active">{esc(title)}</span>
</div>
<!-- end: nav -->
{content}
</div></div>
<div id="footer"><div class="lower"><div class="wrapper"><span id="copyright">Powered By <a href="https://mybb.com" target="_blank" rel="noopener">MyBB</a>, &copy; 2002-2024 <a href="https://mybb.com" target="_blank" rel="noopener">MyBB Group</a> (markup imitated for an offline demo).</span></div></div></div>
</div>
</body>
</html>
<!-- end: {template} -->
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    per, pages = forum.posts_per_page, forum.thread_pages(thread)
    nav = multipage("showthread.php", "tid", thread.thread_id, page, pages)
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[(page - 1) * per:page * per])
    content = (f'<div class="float_left">\n{nav}\n</div>\n<table border="0" cellspacing="0" cellpadding="5" class="tborder tfixed clear">\n'
               f'<tr><td class="thead"><div class="float_left"><strong>{esc(thread.title)}</strong></div></td></tr>\n'
               f'<tr><td id="posts_container"><div id="posts">\n{posts}</div></td></tr>\n</table>\n<div class="float_left">\n{nav}\n</div>\n'
               f'<ul class="thread_tools"><li class="printable"><a href="printthread.php?tid={thread.thread_id}">View a Printable Version</a></li></ul>')
    board = thread.board
    return layout("showthread", thread.title, [(board.title, f"forumdisplay.php?fid={board.node_id}")], content)


def board_page(forum: DemoForum, board: Board, page: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    rows = []
    for i, t in enumerate(threads[(page - 1) * per:page * per]):
        alt, last = f"trow{1 + i % 2}", t.posts[-1]
        rows.append(f"""<!-- start: forumdisplay_thread -->
<tr class="inline_row">
	<td align="center" class="{alt} forumdisplay_regular" width="2%"><span class="thread_status folder" title="No new posts.">&nbsp;</span></td>
	<td class="{alt} forumdisplay_regular">
		<div><span> <span class=" subject_old" id="tid_{t.thread_id}"><a href="showthread.php?tid={t.thread_id}">{esc(t.title)}</a></span></span>
		<div class="author smalltext"><a href="member.php?action=profile&amp;uid={t.posts[0].user_id}">{esc(t.posts[0].author)}</a></div></div>
	</td>
	<td align="center" class="{alt} forumdisplay_regular">{len(t.posts) - 1}</td>
	<td class="{alt} forumdisplay_regular" style="white-space: nowrap; text-align: right;">
		<span class="lastpost smalltext">{_date(last.epoch)}<br />
		<a href="showthread.php?tid={t.thread_id}&amp;action=lastpost">Last Post</a>: <a href="member.php?action=profile&amp;uid={last.user_id}">{esc(last.author)}</a></span>
	</td>
</tr>
<!-- end: forumdisplay_thread -->""")
    pages = max(1, -(-len(threads) // per))
    nav = multipage("forumdisplay.php", "fid", board.node_id, page, pages)
    content = (f'<div class="float_left">\n{nav}\n</div>\n<table border="0" cellspacing="0" cellpadding="5" class="tborder clear">\n'
               f'<tr><td class="thead" colspan="4"><div><strong>{esc(board.title)}</strong></div></td></tr>\n' + "\n".join(rows) + "\n</table>")
    return layout("forumdisplay", board.title, [], content)


def index_page(forum: DemoForum) -> str:
    rows = "\n".join(f"""<!-- start: forumbit_depth2_forum -->
<tr>
<td class="trow1" align="center" valign="top" width="1"><span class="forum_status forum_off" title="Forum Contains No New Posts" id="mark_read_{b.node_id}"></span></td>
<td class="trow1" valign="top"><strong><a href="forumdisplay.php?fid={b.node_id}">{esc(b.title)}</a></strong><div class="smalltext"></div></td>
<td class="trow1" valign="top" align="center" style="white-space: nowrap">{len(board_threads(b))}</td>
</tr>
<!-- end: forumbit_depth2_forum -->""" for b in forum.boards)
    content = (f'<table border="0" cellspacing="0" cellpadding="5" class="tborder">\n<thead><tr><td class="thead" colspan="3">'
               f'<div><strong>The plays</strong></div></td></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>')
    return layout("index", "Kopitiam Demo Forum", [], content).replace(
        '<a href="index.php">Kopitiam Demo Forum</a><br /><img src="images/nav_bit.png" alt="" />', "")


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the MyBB-speaking demo forum."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    number = {k: int(v) for k, v in query.items() if k in ("fid", "tid", "page") and v.isdigit()}
    page = number.get("page", 1)
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if parts.path in ("/", "/index.php"):
        return 200, {}, index_page(forum)
    if parts.path == "/forumdisplay.php":
        board = next((b for b in forum.boards if b.node_id == number.get("fid")), None)
        if board is not None and 1 <= page <= max(1, -(-len(board_threads(board)) // forum.threads_per_page)):
            return 200, {}, board_page(forum, board, page)
    if parts.path == "/showthread.php":
        thread = forum.threads.get(number.get("tid", -1))
        if thread is not None and not thread.backstage and 1 <= page <= forum.thread_pages(thread):
            return 200, {}, thread_page(forum, thread, page)
    return 404, {}, "<html><body><div class=\"error\">The specified thread does not exist.</div></body></html>"
