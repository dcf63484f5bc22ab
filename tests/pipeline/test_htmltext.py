"""HTML to text (pipeline/htmltext.py) on a real XenForo 2 page; skipped when ../shared is absent.

The page is a HardwareZone EDMW thread page saved in ../shared/data/forum-pages/."""

from __future__ import annotations

from bs4 import BeautifulSoup

from pipeline.htmltext import html_to_text, strip_app_signatures
from pipeline.textnorm import normalize_text


def test_hardwarezone_post_bodies(forum_pages):
    page = (forum_pages / "xf2_hardwarezone_edmw_thread_p2.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "lxml")
    posts = soup.select("article.message--post")
    assert len(posts) == 20
    results = {}
    for post in posts:
        wrapper = post.select_one(".message-body .bbWrapper")
        out = html_to_text(wrapper.decode_contents())
        text, _ = normalize_text(out.text)
        results[post["id"].removeprefix("js-post-")] = (text, out)
    first_text, first = results["155324874"]
    assert first_text == ("If we have sufficient solar electricity or nuclear power generator\u2026 we can have "
                          "endless supply of water\u2026\n\nWe are limited by energy\u2026")
    assert first.quoted_post_ids == ["155324854"]
    assert sum(1 for _, out in results.values() if out.n_quotes) == 11
    for text, _ in results.values():
        assert "Click to expand" not in text and " said:" not in text
        assert "<" not in text and "{" not in text and "document.write" not in text
        assert "Long island project" not in text  # the quoted post's words never survive


def test_vbulletin4_post_bodies(forum_pages):
    raw = (forum_pages / "vb4_pocketpc_showthread.html").read_bytes().decode("iso-8859-1")
    soup = BeautifulSoup(raw, "lxml")
    bodies = [d for d in soup.select("div[id^=post_message_]")]
    assert len(bodies) == 20
    texts = {}
    for div in bodies:
        out = html_to_text(div.decode_contents())
        text, _ = strip_app_signatures(out.text)
        texts[div["id"].removeprefix("post_message_")] = (normalize_text(text)[0], out)
    first, out = texts["949757"]
    assert out.n_quotes == 1 and out.quoted_post_ids == ["949745"]
    assert "Zitat von" not in first and "TheFreeman" not in first and len(first) > 20
    assert sum(1 for t, _ in texts.values() if t) >= 18  # the post-wide blockquote.postcontent is not a quote
    for text, _ in texts.values():
        assert "Zitat von" not in text and "$(document)" not in text and "{" not in text
        assert "App von meinem" not in text  # the app's plain-text signature line
