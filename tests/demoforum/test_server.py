"""The demo forum over HTTP (demoforum/server.py): routes, redirects and injected failures."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from demoforum.server import DemoForumServer
from demoforum.site import DemoForum


@pytest.fixture(scope="module")
def forum() -> DemoForum:
    return DemoForum(plays=["a-midsummer-night-s-dream"], threads_per_page=4)


def get(url: str):
    """(status, headers, body) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode("utf-8")


def test_server_routes_and_failure_injection(forum):
    thread = forum.crawlable_threads()[0]
    with DemoForumServer(forum, fail_once=[thread.path + "page-2"], broken=[thread.path]) as server:
        base = server.base_url
        status, _, robots = get(base + "/robots.txt")
        assert status == 200 and "Disallow: /threads/backstage-" in robots
        assert get(base + "/nope")[0] == 404
        assert get(base + f"/threads/wrong-slug.{thread.thread_id}/")[1]["Location"] == thread.path
        post = thread.posts[25]
        status, headers, _ = get(base + f"/goto/post?id={post.post_id}")
        assert status == 302 and headers["Location"] == f"{thread.path}page-2#post-{post.post_id}"
        status, headers, _ = get(base + thread.path + "page-2")
        assert status == 503 and headers["Retry-After"] == "1"
        status, _, html = get(base + thread.path + "page-2")
        assert status == 200 and f'id="js-post-{post.post_id}"' in html
        status, _, html = get(base + thread.path)
        assert status == 200 and f'id="js-post-{thread.posts[0].post_id}"' not in html
        assert server.requests.count(thread.path + "page-2") == 2
