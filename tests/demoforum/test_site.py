"""The demo forum (demoforum/site.py, demoforum/pages.py): deterministic, noisy pages and enough text."""

from __future__ import annotations

import pytest
import yaml

from demoforum import pages
from demoforum.site import DemoForum

PLAY = "a-midsummer-night-s-dream"


@pytest.fixture(scope="module")
def forum() -> DemoForum:
    return DemoForum(plays=[PLAY], threads_per_page=4)


def test_forum_is_deterministic_and_noisy(forum):
    again = DemoForum(plays=[PLAY], threads_per_page=4)
    thread = forum.crawlable_threads()[0]
    assert pages.thread_page(forum, thread, 1) == pages.thread_page(again, again.threads[thread.thread_id], 1)
    assert pages.board_page(forum, forum.boards[0], 2) == pages.board_page(again, again.boards[0], 2)
    posts = [p for t in forum.crawlable_threads() for p in t.posts]
    assert len(posts) == 500  # one post per speech
    assert sum(bool(p.quoted_post_ids) for p in posts) > 20
    assert any(p.signature for p in posts) and any('class="smilie"' in p.body for p in posts)
    assert any("&#039;" in p.body for p in posts) and any("<br />" in p.body for p in posts)
    assert any('class="link link--external"' in p.body for p in posts)
    for post in posts:
        for quoted in post.quoted_post_ids:  # quotes point to earlier posts of the same thread
            assert forum.posts[quoted].thread_id == post.thread_id and quoted < post.post_id
    assert "Click to expand..." in next(p.body for p in posts if p.quoted_post_ids)


def test_default_source_has_enough_text(repo_root):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    options = params["sources"]["demo"]["demo_forum"]
    assert DemoForum(**options).post_text_chars() >= 2_000_000
