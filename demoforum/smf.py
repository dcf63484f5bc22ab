"""The demo forum as a Simple Machines Forum 2.1 board (the default theme's ``Display``,
``MessageIndex`` and ``BoardIndex`` templates): the same boards, topics and posts as the XenForo
pages, with SMF's own noise: ``blockquote.bbc_standard_quote`` quotes (nested ones
``bbc_alternate_quote``) whose ``<cite>`` links ``topic=T.msgN#msgN``, ``img.smiley`` smileys,
``a.bbc_link`` links, ``div.signature``, local-time date text (``March 02, 2024, 09:15:00 AM`` in
+0800: crawl with ``timezone=Asia/Singapore``), ``Reply #N`` in the permalink's title, offset
pagination (``topic=N.20``) and the session id ``PHPSESSID=`` SMF writes into every link for
guests without cookies.

Routes: ``/`` and ``/index.php`` (the board index), ``/index.php?board=N.OFFSET``,
``/index.php?topic=N.OFFSET``, ``/robots.txt``. Backstage threads are not listed. Pure functions
of the forum.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from demoforum.site import SGT, Board, DemoForum, Post, Thread, esc

SID = "PHPSESSID=3d6f0a1b2c4e5f708192a3b4c5d6e7f8"  # a fixed guest session id: the crawler must strip it
SMILEYS = {":)": "smiley", ":(": "sad", ":D": "cheesy", ";)": "wink", ":p": "tongue", ":o": "shocked",
           ":cool:": "cool", ":rolleyes:": "rolleyes"}
ROBOTS_TXT = "User-agent: *\nDisallow: /index.php?action=profile\nDisallow: /index.php?action=search\n"
ID_RE = re.compile(r"^(\d+)\.(\d+)$")


def _url(**query: object) -> str:
    return "/index.php?" + "&amp;".join([SID] + [f"{k}={v}" for k, v in query.items()])


def _date(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch, tz=UTC).astimezone(SGT)
    return f"{local:%B %d, %Y, %I:%M:%S %p}"


def _entities(text: str) -> str:
    """A smiley's code as SMF writes it in ``alt``: every character as a numeric entity."""
    return "".join(f"&#{ord(c)};" for c in text)


def body(forum: DemoForum, post: Post, with_quote: bool = True, depth: int = 0) -> str:
    """The post's ``div.inner`` inner HTML."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        kind = "bbc_alternate_quote" if depth % 2 else "bbc_standard_quote"
        html = (f'<blockquote class="{kind}"><cite><a href="{_url(topic=f"{target.thread_id}.msg{target.post_id}")}#msg{target.post_id}">'
                f"Quote from: {esc(target.author)} on {_date(target.epoch)}</a></cite>"
                f"{body(forum, target, post.quote_nested, depth + 1)}<br></blockquote>")
    html += "<br>".join(f"<i>{esc(t)}</i>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        code = post.tail[1]
        name = SMILEYS.get(code, "smiley")
        html += f' <img src="/Smileys/fugue/{name}.png" alt="{_entities(code)}" title="{name.title()}" class="smiley">'
    elif post.tail:
        url = esc(post.tail[1])
        html += f'<br><br>More here: <a href="{url}" class="bbc_link" target="_blank" rel="noopener">{url}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    reply = f"Reply #{post.position} - Re: " if post.position else ""
    signature = (f'\n\t\t<div class="moderatorbar">\n\t\t\t<div class="signature" id="msg_{post.post_id}_signature">{post.signature}</div>\n\t\t</div>'
                 if post.signature else "")
    return f"""<div class="windowbg" id="msg{post.post_id}">
	<div class="post_wrapper">
		<div class="poster">
			<h4>
				<span class="off" title="Offline"></span>
				<a href="{_url(action=f"profile;u={post.user_id}")}" title="View the profile of {esc(post.author)}">{esc(post.author)}</a>
			</h4>
			<ul class="user_info"><li class="membergroup">Player</li></ul>
		</div>
		<div class="postarea">
			<div class="keyinfo">
				<div id="subject_{post.post_id}" class="subject_title subject_hidden"><a href="{_url(msg=post.post_id)}" rel="nofollow">{esc(thread.title)}</a></div>
				<span class="page_number floatright">#{post.position + 1}</span>
				<div class="postinfo">
					<span class="messageicon"  style="position: absolute; z-index: -1;"><img src="/Themes/default/images/post/xx.png" alt=""></span>
					<a href="{_url(msg=post.post_id)}" title="{reply}{esc(thread.title)}" class="smalltext">{_date(post.epoch)}</a>
					<span class="spacer"></span>
					<span class="smalltext modified floatright" id="modified_{post.post_id}"></span>
				</div>
				<div id="msg_{post.post_id}_quick_mod"></div>
			</div>
			<div class="post">
				<div class="inner" data-msgid="{post.post_id}" id="msg_{post.post_id}">{body(forum, post)}</div>
			</div>
		</div>{signature}
	</div>
</div>
<hr class="post_separator">
"""


def pagelinks(key: str, ident: int, start: int, per: int, total: int) -> str:
    pages = max(1, -(-total // per))
    if pages <= 1:
        return '<div class="pagelinks floatleft"><a href="#bot" class="button">Go Down</a></div>'
    current = start // per + 1
    items = [f'<span class="current_page">{n}</span>' if n == current else
             f'<a class="nav_page" href="{_url(**{key: f"{ident}.{(n - 1) * per}"})}">{n}</a>' for n in range(1, pages + 1)]
    if current < pages:
        items.append(f'<a class="nav_page" href="{_url(**{key: f"{ident}.{current * per}"})}"><span class="main_icons next_page"></span></a>')
    return f'<div class="pagelinks floatleft"><a href="#bot" class="button">Go Down</a> <span class="pages">Pages</span>{" ".join(items)}</div>'


def layout(title: str, crumbs: list[tuple[str, str]], content: str, action: str) -> str:
    links = "\n".join(f'<li><span class="dividers"> &#9658; </span><a href="{href}"><span>{esc(name)}</span></a></li>'
                      for name, href in [("Kopitiam Demo Forum", _url()), *crumbs])
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
	<meta charset="UTF-8">
	<script>
		var smf_theme_url = "/Themes/default";
		var smf_scripturl = "/index.php";
	</script>
	<title>{esc(title)}</title>
</head>
<body id="chrome" class="action_{action}">
<div id="footerfix"><div id="wrapper"><div id="content_section"><div id="main_content_section">
	<div class="navigate_section"><ul>
{links}
	</ul></div>
{content}
</div></div></div>
<div id="footer"><div class="inner_wrap"><ul><li class="copyright"><a href="https://www.simplemachines.org" title="Simple Machines" class="new_win">SMF 2.1 &copy; Simple Machines</a> (markup imitated for an offline demo)</li></ul></div></div>
</div>
</body>
</html>
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def topic_page(forum: DemoForum, thread: Thread, start: int) -> str:
    per = forum.posts_per_page
    nav = pagelinks("topic", thread.thread_id, start, per, len(thread.posts))
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[start:start + per])
    content = (f'<div id="display_head" class="information"><h2 class="display_title"><span id="top_subject">{esc(thread.title)}</span></h2></div>\n'
               f'<div class="pagesection top">{nav}</div>\n<div id="forumposts">\n<form action="{_url(action="quickmod2;topic=" + str(thread.thread_id) + "." + str(start))}" '
               f'method="post" accept-charset="UTF-8" name="quickModForm" id="quickModForm">\n{posts}</form>\n</div>\n<div class="pagesection">{nav}</div>')
    board = thread.board
    return layout(thread.title, [(board.title, _url(board=f"{board.node_id}.0")), (thread.title, _url(topic=f"{thread.thread_id}.0"))],
                  content, "display")


def board_page(forum: DemoForum, board: Board, start: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    rows = "\n".join(f"""<div class="windowbg">
	<div class="board_icon"><img src="/Themes/default/images/post/xx.png" alt=""></div>
	<div class="info info_block">
		<div class="message_index_title"><span class="preview" title=""><span id="msg_{t.posts[0].post_id}"><a href="{_url(topic=f"{t.thread_id}.0")}">{esc(t.title)}</a></span></span></div>
		<p class="floatleft">Started by <a href="{_url(action=f"profile;u={t.posts[0].user_id}")}">{esc(t.posts[0].author)}</a></p>
	</div>
	<div class="board_stats centertext"><p>Replies: {len(t.posts) - 1}</p></div>
	<div class="lastpost"><p><a href="{_url(topic=f"{t.thread_id}.{(len(t.posts) - 1) // forum.posts_per_page * forum.posts_per_page}")}#msg{t.posts[-1].post_id}">{_date(t.posts[-1].epoch)}</a><br>by {esc(t.posts[-1].author)}</p></div>
</div>""" for t in threads[start:start + per])
    nav = pagelinks("board", board.node_id, start, per, len(threads))
    content = f'<div class="pagesection">{nav}</div>\n<div id="messageindex"><div id="topic_container">\n{rows}\n</div></div>\n<div class="pagesection">{nav}</div>'
    return layout(board.title, [(board.title, _url(board=f"{board.node_id}.0"))], content, "messageindex")


def index_page(forum: DemoForum) -> str:
    rows = "\n".join(f'<div id="board_{b.node_id}" class="up_contain"><div class="info"><a class="subject mobile_subject" href="{_url(board=f"{b.node_id}.0")}" '
                     f'id="b{b.node_id}">{esc(b.title)}</a></div><div class="board_stats"><p>{len(board_threads(b))} Topics</p></div></div>'
                     for b in forum.boards)
    return layout("Kopitiam Demo Forum - Index", [], f'<div id="boardindex_table" class="boardindex_table">\n{rows}\n</div>', "boardindex")


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the SMF-speaking demo forum."""
    parts = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(parts.query.replace(";", "&")).items()}
    if parts.path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if parts.path not in ("/", "/index.php"):
        return 404, {}, "<html><body>An Error Has Occurred!</body></html>"
    if "board" in query and (m := ID_RE.match(query["board"])):
        board = next((b for b in forum.boards if b.node_id == int(m[1])), None)
        start = int(m[2])
        if board is not None and 0 <= start < max(1, len(board_threads(board))) and start % forum.threads_per_page == 0:
            return 200, {}, board_page(forum, board, start)
    elif "topic" in query and (m := ID_RE.match(query["topic"])):
        thread = forum.threads.get(int(m[1]))
        start = int(m[2])
        if thread is not None and not thread.backstage and 0 <= start < len(thread.posts) and start % forum.posts_per_page == 0:
            return 200, {}, topic_page(forum, thread, start)
    elif not query or set(query) == {"PHPSESSID"}:
        return 200, {}, index_page(forum)
    return 404, {}, "<html><body><div id=\"fatal_error\">The topic or board you are looking for appears to be either missing or off limits to you.</div></body></html>"
