"""Spider ``xenforo`` (crawler/spiders/xenforo.py) on boards without friendly URLs (``/index.php?...``).

The boards sit at the root or in a sub-folder. The demo forum's pages are served with every board/thread
link rewritten to the non-friendly form, so the crawl must follow board pagination, thread links and thread
pages under that style."""

from __future__ import annotations

import pytest

from crawler.spiders.xenforo import XenforoSpider
from demoforum import pages
from demoforum.site import DemoForum
from tests.helpers.spider_server import FixtureServer, Page, run_spider


def unfriendly(html: str, prefix: str) -> str:
    """Rewrite friendly links (``/forums/x.1/``, ``/threads/y.2/``) to ``<prefix>/index.php?...``."""
    for route in ("forums/", "threads/"):
        html = html.replace(f'href="/{route}', f'href="{prefix}/index.php?{route}')
    return html


def routes(forum: DemoForum, prefix: str) -> dict[str, Page]:
    served: dict[str, Page] = {}
    for board in forum.boards:
        for n in range(1, forum.board_pages(board) + 1):
            path = unfriendly(f'href="{pages.page_path(board.path, n)}"', prefix)[6:-1]
            served[path] = Page(unfriendly(pages.board_page(forum, board, n), prefix))
        for thread in board.threads:
            for n in range(1, forum.thread_pages(thread) + 1):
                path = unfriendly(f'href="{pages.page_path(thread.path, n)}"', prefix)[6:-1]
                served[path] = Page(unfriendly(pages.thread_page(forum, thread, n), prefix))
    return served


@pytest.mark.parametrize("url, thread_id", [
    ("https://example.com/index.php?threads/notice-community-rules.6/", "6"),
    ("https://example.com/index.php?threads/notice-community-rules.6/page-2", "6"),
    ("https://example.com/forums/index.php?threads/notice-community-rules.6/", "6"),
    ("https://example.com/forums/threads/notice-community-rules.6/", "6"),
    ("https://example.com/index.php?threads/6/", "6"),
    ("https://example.com/index.php?forums/news-notice-and-events.7/", None),
])
def test_thread_id_under_both_url_styles(url, thread_id):
    spider = XenforoSpider(start_url="https://example.com/")
    assert spider.thread_id_from_url(url) == thread_id
    if thread_id:
        assert spider.canonical_thread_url(url).endswith(f"threads/notice-community-rules.{thread_id}/") \
            or spider.canonical_thread_url(url).endswith(f"threads/{thread_id}/")
    assert spider.page_from_url(url) == (2 if url.endswith("page-2") else None)


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["", "/forums"])
def test_crawl_board_without_friendly_urls(tmp_path, prefix):
    forum = DemoForum(plays=["a-midsummer-night-s-dream"], threads_per_page=4, posts_per_page=20)
    board = forum.boards[0]
    served = routes(forum, prefix)
    start = f"{prefix}/index.php?forums/{board.slug}.{board.node_id}/"
    assert start in served
    expected = {str(p.post_id) for t in board.threads if not t.backstage for p in t.posts}
    robots = "User-agent: *\nDisallow: /threads/backstage-\nDisallow: /index.php?threads/backstage-\n" \
             "Disallow: /forums/index.php?threads/backstage-\n"
    served["/robots.txt"] = Page(robots, "text/plain")
    with FixtureServer(served) as server:
        result = run_spider("xenforo", {"start_url": server.url(start)}, tmp_path)
        fetched = server.paths()
    assert "no thread id in link" not in result.log
    assert {item["post_id"] for item in result.items} == expected
    assert any("page-2" in p and "threads/" in p for p in fetched), "thread pagination not followed"
    assert any("page-2" in p and "forums/" in p for p in fetched), "board pagination not followed"
    assert all(p.startswith(f"{prefix}/index.php?") for p in fetched)
