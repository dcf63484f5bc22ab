"""The demo forum as an Invision Community 4 site (the ``forums/front/topics`` and ``forums`` templates):
the same boards, topics and posts as the XenForo pages, with IPS's own noise: ``article#elComment_N``
posts, ``blockquote.ipsQuote`` quotes naming the quoted comment in ``data-ipsquote-contentcommentid``,
the editor's ``<p>`` paragraphs, emoticons as ``<img alt=":)" data-emoticon>``, signatures in a
``[data-role=memberSignature]`` block beside the content, ``<time datetime>`` (UTC), friendly URLs
with ``/page/N/`` pagination and ``data-ipsPagination-perPage``.

Routes: ``/`` (forums), ``/forum/{id}-{slug}/[page/N/]``, ``/topic/{id}-{slug}/[page/N/]``,
``/robots.txt``; links are root-relative (the server does not know its host). Backstage threads are
not listed. Pure functions of the forum.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from demoforum.site import Board, DemoForum, Post, Thread, esc

ROBOTS_TXT = "User-agent: *\nDisallow: /profile/\nDisallow: /search/\nDisallow: /login/\nDisallow: /register/\n"
FORUM_RE = re.compile(r"^/forum/(?P<id>\d+)-[^/]*/(?:page/(?P<page>\d+)/)?$")
TOPIC_RE = re.compile(r"^/topic/(?P<id>\d+)-[^/]*/(?:page/(?P<page>\d+)/)?$")
EMOTICONS = {":)": "smile", ":(": "sad", ":D": "biggrin", ";)": "wink", ":p": "tongue", ":o": "ohmy",
             ":cool:": "cool", ":rolleyes:": "rolleyes"}


def _time(epoch: int) -> str:
    when = datetime.fromtimestamp(epoch, tz=UTC)
    return (f"<time datetime='{when:%Y-%m-%dT%H:%M:%SZ}' title='{when:%m/%d/%Y %I:%M  %p}' data-short='1 yr'>"
            f"{when:%B} {when.day}, {when.year}</time>")


def forum_path(board: Board) -> str:
    return f"/forum/{board.node_id}-{board.slug}/"


def topic_path(thread: Thread, page: int = 1) -> str:
    return f"/topic/{thread.thread_id}-{thread.slug}/" + (f"page/{page}/" if page > 1 else "")


def content(forum: DemoForum, post: Post, with_quote: bool = True) -> str:
    """The post's stored HTML (the inner HTML of ``[data-role=commentContent]``)."""
    html = ""
    if with_quote and post.quoted_post_ids:
        target = forum.posts[post.quoted_post_ids[0]]
        html = (f'<blockquote class="ipsQuote" data-ipsquote="" data-ipsquote-contentapp="forums" data-ipsquote-contentclass="forums_Topic" '
                f'data-ipsquote-contentcommentid="{target.post_id}" data-ipsquote-contentid="{target.thread_id}" data-ipsquote-contenttype="forums" '
                f'data-ipsquote-timestamp="{target.epoch}" data-ipsquote-userid="{target.user_id}" data-ipsquote-username="{esc(target.author)}">\n'
                f'\t<div class="ipsQuote_contents ipsClearfix">\n{content(forum, target, post.quote_nested)}\n\t</div>\n</blockquote>\n\n')
    lines = "<br>\n\t".join(f"<em>{esc(t)}</em>" if stage else esc(t) for t, stage in post.lines)
    if post.tail and post.tail[0] == "smilie":
        code = esc(post.tail[1])
        name = EMOTICONS.get(post.tail[1], "smile")
        lines += (f' <img alt="{code}" data-emoticon="" height="20" src="/uploads/emoticons/{name}.png" '
                  f'srcset="/uploads/emoticons/{name}@2x.png 2x" title="{code}" width="20">')
    html += f"<p>\n\t{lines}\n</p>\n"
    if post.tail and post.tail[0] == "link":
        url = esc(post.tail[1])
        html += f'\n<p>\n\tMore here: <a href="{url}" rel="external nofollow">{url}</a>\n</p>\n'
    return html


def render_post(forum: DemoForum, thread: Thread, post: Post) -> str:
    profile = f"/profile/{post.user_id}-{esc(post.author.lower().replace(' ', '-'))}/"
    link = f"{topic_path(thread)}?do=findComment&amp;comment={post.post_id}"
    signature = (f'\n\t<div data-role="memberSignature" class="ipsResponsive_hidePhone">\n\t\t<hr class="ipsHr ipsResponsive_hidePhone">\n'
                 f'\t\t<div data-ipsLazyLoad class="ipsType_richText ipsType_medium ipsContained">{post.signature}</div>\n\t</div>'
                 if post.signature else "")
    return f"""<a id="comment-{post.post_id}"></a>
<article id="elComment_{post.post_id}" class="cPost ipsBox ipsResponsive_pull ipsComment ipsComment_parent ipsClearfix ipsClear ipsColumns ipsColumns_noSpacing ipsColumns_collapsePhone">
	<aside class="ipsComment_author cAuthorPane ipsColumn ipsColumn_medium ipsResponsive_hidePhone">
		<h3 class="ipsType_sectionHead cAuthorPane_author ipsType_blendLinks ipsType_break"><strong><a href="{profile}" data-ipsHover class="ipsType_break">{esc(post.author)}</a></strong></h3>
		<ul class="cAuthorPane_info ipsList_reset"><li data-role="group">Players</li></ul>
	</aside>
	<div class="ipsColumn ipsColumn_fluid ipsMargin:none">
<div id="comment-{post.post_id}_wrap" data-controller="core.front.core.comment" data-commentApp="forums" data-commentType="forums" data-commentID="{post.post_id}" class="ipsComment_content ipsType_medium">
	<div class="ipsComment_meta ipsType_light ipsFlex ipsFlex-ai:center ipsFlex-jc:between ipsFlex-fd:row-reverse">
		<div class="ipsType_reset ipsResponsive_hidePhone">
			<a href="{link}" rel="nofollow" class="ipsType_blendLinks">Posted {_time(post.epoch)}</a>
		</div>
	</div>
	<div class="cPost_contentWrap">
		<div data-role="commentContent" class="ipsType_normal ipsType_richText ipsPadding_bottom ipsContained" data-controller="core.front.core.lightboxedImages">
{content(forum, post)}
		</div>
	</div>{signature}
</div>
	</div>
</article>
"""


def pagination(path_of, page: int, pages: int, per: int) -> str:
    if pages <= 1:
        return ""
    items = [f'<li class="ipsPagination_page{" ipsPagination_active" if n == page else ""}"><a href="{path_of(n)}" data-page="{n}">{n}</a></li>'
             for n in range(1, pages + 1)]
    if page < pages:
        items.append(f'<li class="ipsPagination_next"><a href="{path_of(page + 1)}" rel="next" data-page="{page + 1}">Next</a></li>')
    return (f'<ul class="ipsPagination" data-ipsPagination data-ipsPagination-pages="{pages}" data-ipsPagination-perPage="{per}">\n'
            + "\n".join(items) + "\n</ul>")


def layout(title: str, canonical: str, crumbs: list[tuple[str, str]], body: str, next_url: str | None = None) -> str:
    items = "".join(f'<li><a href="{href}"><span>{esc(name)} <i class="fa fa-angle-right"></i></span></a></li>'
                    for name, href in [("Home", "/"), *crumbs])
    next_link = f'\n\t\t<link rel="next" href="{next_url}" />' if next_url else ""
    return f"""<!DOCTYPE html>
<html lang="en-US" dir="ltr">
	<head>
		<meta charset="utf-8">
		<title>{esc(title)} - Kopitiam Demo Forum</title>
		<link rel="canonical" href="{canonical}" />{next_link}
	</head>
	<body class="ipsApp ipsApp_front ipsJS_none ipsClearfix" data-controller="core.front.core.app" data-pageapp="forums" data-pagelocation="front" data-pagemodule="forums">
		<main id="ipsLayout_body" class="ipsLayout_container">
			<nav class="ipsBreadcrumb ipsBreadcrumb_top ipsFaded_withHover"><ul data-role="breadcrumbList">{items}<li>{esc(title)}</li></ul></nav>
			<div class="ipsPageHeader ipsBox ipsPadding"><h1 class="ipsType_pageTitle ipsContained_container"><span class="ipsType_break ipsContained"><span>{esc(title)}</span></span></h1></div>
{body}
		</main>
		<footer id="ipsLayout_footer" class="ipsClearfix"><p id="elCopyright"><a rel="nofollow" title="Invision Community" href="https://www.invisioncommunity.com/">Powered by Invision Community</a> (markup imitated for an offline demo)</p></footer>
	</body>
</html>
"""


def board_threads(board: Board) -> list[Thread]:
    return [t for t in board.threads if not t.backstage]


def topic_page(forum: DemoForum, thread: Thread, page: int) -> str:
    per, pages = forum.posts_per_page, forum.thread_pages(thread)
    nav = pagination(lambda n: topic_path(thread, n), page, pages, per)
    posts = "".join(render_post(forum, thread, p) for p in thread.posts[(page - 1) * per:page * per])
    body = (f'<div class="ipsClearfix">{nav}</div>\n<div id="comments" data-controller="core.front.core.commentFeed,forums.front.topic.view" '
            f'data-feedid="topic-{thread.thread_id}" class="cTopic ipsClear ipsSpacer_top">\n<div data-role="commentFeed">\n{posts}</div>\n</div>\n'
            f'<div class="ipsClearfix">{nav}</div>')
    return layout(thread.title, topic_path(thread, page), [(thread.board.title, forum_path(thread.board))], body,
                  topic_path(thread, page + 1) if page < pages else None)


def forum_page(forum: DemoForum, board: Board, page: int) -> str:
    threads, per = board_threads(board), forum.threads_per_page
    pages = max(1, -(-len(threads) // per))
    rows = "\n".join(f"""<li class="ipsDataItem ipsDataItem_responsivePhoto" data-rowID="{t.thread_id}" data-location="" data-controller="forums.front.forum.topicRow">
	<div class="ipsDataItem_main">
		<h4 class="ipsDataItem_title ipsContained_container"><span class="ipsType_break ipsContained"><a href="{topic_path(t)}" title="{esc(t.title)}" data-ipsHover><span>{esc(t.title)}</span></a></span></h4>
		<div class="ipsDataItem_meta ipsType_reset ipsType_light ipsType_blendLinks"><span>By {esc(t.posts[0].author)}, </span>{_time(t.posts[0].epoch)}</div>
	</div>
	<ul class="ipsDataItem_lastPoster ipsDataItem_withPhoto ipsType_blendLinks">
		<li>{esc(t.posts[-1].author)}</li>
		<li class="ipsType_light"><a href="{topic_path(t)}?do=getLastComment" title="Go to last post" class="ipsType_blendLinks">{_time(t.posts[-1].epoch)}</a></li>
	</ul>
</li>""" for t in threads[(page - 1) * per:page * per])
    path_of = lambda n: forum_path(board) + (f"page/{n}/" if n > 1 else "")  # noqa: E731
    body = (f'<div class="ipsBox"><ol class="ipsClear ipsDataList cForumTopicTable cTopicList" data-role="tableRows">\n{rows}\n</ol></div>\n'
            f'{pagination(path_of, page, pages, per)}')
    return layout(board.title, path_of(page), [], body, path_of(page + 1) if page < pages else None)


def index_page(forum: DemoForum) -> str:
    rows = "\n".join(f'<li class="cForumRow ipsDataItem ipsDataItem_responsivePhoto ipsClearfix" data-forumID="{b.node_id}">'
                     f'<div class="ipsDataItem_main"><h4 class="ipsDataItem_title ipsType_large ipsType_break">'
                     f'<a href="{forum_path(b)}">{esc(b.title)}</a></h4></div></li>' for b in forum.boards)
    return layout("Forums", "/", [], f'<section class="cForumList"><ol class="ipsDataList ipsDataList_large ipsDataList_zebra">\n{rows}\n</ol></section>')


def respond(forum: DemoForum, target: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a request target on the IPS-speaking demo forum."""
    path = urlsplit(target).path
    if path == "/robots.txt":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, ROBOTS_TXT
    if path == "/":
        return 200, {}, index_page(forum)
    if match := FORUM_RE.match(path):
        board = next((b for b in forum.boards if b.node_id == int(match["id"])), None)
        page = int(match["page"] or 1)
        if board is not None and 1 <= page <= max(1, -(-len(board_threads(board)) // forum.threads_per_page)):
            return 200, {}, forum_page(forum, board, page)
    if match := TOPIC_RE.match(path):
        thread = forum.threads.get(int(match["id"]))
        page = int(match["page"] or 1)
        if thread is not None and not thread.backstage and 1 <= page <= forum.thread_pages(thread):
            return 200, {}, topic_page(forum, thread, page)
    return 404, {}, "<html><body><h1>Sorry, we could not find that!</h1><p>[2S136/1]</p></body></html>"
