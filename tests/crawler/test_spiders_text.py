"""Spider ``text`` (crawler/spiders/text.py): Gutenberg stripping, chapters and paragraph blocks.

Also http and file:// URLs, a wrongly declared encoding and a 404 among the start URLs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crawler.spiders.text import TextSpider, decode_text, paragraph_blocks, split_chapters, strip_gutenberg
from tests.helpers.spider_server import FIXTURES, FixtureServer, Page, fixture_bytes, run_spider

BOOK = fixture_bytes("text", "gutenberg_book.txt")
DUMP = fixture_bytes("text", "plain_dump.txt")


def test_strip_gutenberg_keeps_only_the_book():
    body, meta, found = strip_gutenberg(BOOK.decode("utf-8"))
    assert found
    assert meta["title"] == "The Kopitiam Ledger" and meta["author"] == "Ah Seng Tan" and meta["ebook"] == "99901"
    assert "Project Gutenberg" not in body and "LICENSE" not in body
    assert body.startswith("THE KOPITIAM LEDGER") and body.rstrip().endswith("THE END")


def test_text_without_markers_is_kept_whole():
    body, meta, found = strip_gutenberg(DUMP.decode("utf-8"))
    assert not found and meta == {} and body == DUMP.decode("utf-8").strip("\n")


def test_chapters_and_paragraph_blocks():
    body, _, _ = strip_gutenberg(BOOK.decode("utf-8"))
    chapters = [(h, p) for h, p in split_chapters(body) if len(p) > 200]
    assert [h for h, _ in chapters] == ["CHAPTER I.", "CHAPTER II.", "CHAPTER III."]
    assert "thirty-one years" in chapters[1][1] and "kopi-c" in chapters[2][1]
    blocks = paragraph_blocks(DUMP.decode("utf-8"), 2)
    assert len(blocks) == 2 and blocks[1][1].startswith("At the drinks stall")


def test_decode_prefers_utf8_over_a_wrong_latin1_declaration():
    text, used, fixed = decode_text(DUMP, "iso-8859-1")
    assert used == "utf-8" and fixed and "Crème brûlée" in text
    latin1 = "Crème".encode("latin-1")
    assert decode_text(latin1, "iso-8859-1") == ("Crème", "iso-8859-1", False)
    assert decode_text(latin1, None)[0] == "Crème"  # undeclared, not UTF-8: cp1252


@pytest.mark.slow
def test_crawl_http_chapters_wrong_encoding_and_404(tmp_path):
    routes = {
        "/books/99901.txt": Page(BOOK, "text/plain; charset=utf-8"),
        "/dumps/notes.txt": Page(DUMP, "text/plain; charset=ISO-8859-1"),  # declared wrongly
    }
    with FixtureServer(routes) as server:
        urls = [server.url("/books/99901.txt"), server.url("/books/missing.txt"), server.url("/dumps/notes.txt")]
        run = run_spider("text", {"start_url": ",".join(urls), "min_chars": 100, "source": "books"}, tmp_path)
    book = [i for i in run.items if i["thread_id"] == "99901"]
    assert [i["body"].splitlines()[0] for i in book] == ["CHAPTER I.", "CHAPTER II.", "CHAPTER III."]
    assert [i["position"] for i in book] == [0, 1, 2]
    assert {i["thread_title"] for i in book} == {"The Kopitiam Ledger"}
    assert {i["author"] for i in book} == {"Ah Seng Tan"}
    assert {i["posted_at"] for i in book} == {datetime(2031, 3, 3, tzinfo=timezone.utc)}  # release date
    assert all("Gutenberg" not in i["body"] for i in run.items)
    notes = [i for i in run.items if i["thread_id"] == "notes"]
    # no chapter headings: one paragraph per document; a missing author stays null
    assert len(notes) == 4 and all(i["author"] is None for i in notes)
    assert notes[-1]["body"].startswith("Crème brûlée")  # decoded as UTF-8 despite the header
    assert {i["body_format"] for i in run.items} == {"text"} and {i["source"] for i in run.items} == {"books"}
    # repaired once, by the downloader middleware (crawler/encoding.py), before the spider decodes
    assert run.stats["kopitiam/encoding_fixed/cp1252->utf-8"] == 1
    assert run.stats["downloader/response_status_count/404"] == 1  # the 404 is counted, crawl goes on


@pytest.mark.slow
def test_crawl_file_url_in_paragraph_mode(tmp_path):
    url = (FIXTURES / "text" / "gutenberg_book.txt").as_uri()
    run = run_spider("text", {"start_url": url, "split": "paragraph", "paragraphs": 3, "min_chars": 1}, tmp_path)
    body, _, _ = strip_gutenberg(BOOK.decode("utf-8"))
    assert [i["body"] for i in run.items] == [b for _, b in paragraph_blocks(body, 3)]
    assert all(i["url"].startswith("file://") for i in run.items)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown argument\\(s\\) paragraph;"):
        TextSpider(start_url="http://x/a.txt", paragraph=3)
    with pytest.raises(ValueError, match="split must be 'chapter' or 'paragraph', got 'page'"):
        TextSpider(start_url="http://x/a.txt", split="page")
    with pytest.raises(ValueError, match="chapter_pattern='\\(' is not a regex"):
        TextSpider(start_url="http://x/a.txt", chapter_pattern="(")
