"""Spider ``text``: plain-text books and dumps (Project Gutenberg style) -> one item per chapter or
paragraph block, ``body_format = "text"``.

Usage::

    scrapy crawl text -a start_url=https://www.gutenberg.org/cache/epub/1342/pg1342.txt -O out.jsonl
    scrapy crawl text -a start_url=file:///data/books/dump.txt -a split=paragraph -a paragraphs=5

Arguments: ``start_url`` (comma-separated http(s):// or file:// URLs, or local paths), ``split``
(``chapter``: one document per chapter heading, falling back to paragraph blocks when a text has
none; ``paragraph``: blocks of ``paragraphs`` paragraphs), ``paragraphs`` (default 1),
``min_chars`` (shorter documents are counted under ``kopitiam/text/skipped_short`` and skipped:
a table of contents yields many heading-only "chapters"), ``chapter_pattern`` (a regex for
heading lines), ``encoding`` (force one), ``source``.

The header's Title, Author and Release date (dateparser) fill thread_title, author and posted_at.
Gutenberg's licence header and footer are cut at the ``*** START OF ... ***`` and
``*** END OF ... ***`` marker lines (older files: ``*END*THE SMALL PRINT``). The stripping is a
few module-level regexes rather than a library: the Gutenberg helper packages on PyPI are
unmaintained and pull heavy dependencies (a metadata database) for what is two marker lines.

Encoding: a server that declares ISO-8859-1/cp1252 for bytes that are valid UTF-8 (common for
static text dumps) is overridden to UTF-8, logged and counted (``kopitiam/text/encoding_fixed``).

@contracts: see ``parse``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import urlparse

import dateparser
import scrapy
from scrapy.http import Response

from crawler.items import PostItem

START_RE = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.I | re.M)
END_RE = re.compile(r"^(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*"
                    r"|End of (?:the )?Project Gutenberg'?s? .*)$", re.I | re.M)
OLD_START_RE = re.compile(r"^\*END\*THE SMALL PRINT!.*$", re.M)
META_RE = re.compile(r"^(Title|Author|Release [Dd]ate|Language|Character set encoding):\s*(.+?)\s*$", re.M)
EBOOK_NO_RE = re.compile(r"\[E(?:Book|Text) #(\d+)\]", re.I)
CHAPTER_RE = (r"^[ \t]*(?:CHAPTER|Chapter|BOOK|Book|PART|Part|LETTER|Letter|ACT|Act|SCENE|Scene|"
              r"STAVE|Stave)[ \t]+(?:[IVXLCDM]+|\d+|[A-Z][a-z]+)\b.*$")
PARAGRAPH_SPLIT_RE = re.compile(r"\n[ \t]*\n+")
LATIN1_NAMES = {"iso-8859-1", "latin-1", "latin1", "cp1252", "windows-1252", "iso8859-1", "ascii", "us-ascii"}


def decode_text(body: bytes, declared: str | None, forced: str | None = None) -> tuple[str, str, bool]:
    """(text, encoding used, whether the declared encoding was overridden).

    UTF-8 (with or without BOM) wins over a declared Latin-1 family when the bytes are valid UTF-8
    and not pure ASCII: Latin-1 text is almost never valid UTF-8 by accident.
    """
    if forced:
        return body.decode(forced, errors="replace"), forced, False
    declared_norm = (declared or "").lower().replace("_", "-")
    try:
        text = body.decode("utf-8-sig")
        utf8_ok = True
    except UnicodeDecodeError:
        utf8_ok = False
    if utf8_ok and (not declared_norm or declared_norm in LATIN1_NAMES):
        overridden = bool(declared_norm) and not body.isascii() and declared_norm not in ("utf-8", "utf8")
        return text, "utf-8", overridden
    encoding = declared or "cp1252"
    return body.decode(encoding, errors="replace"), encoding, False


def strip_gutenberg(text: str) -> tuple[str, dict[str, str], bool]:
    """(body between the licence markers, header metadata, whether markers were found)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta = {m.group(1).lower().replace(" ", "_"): m.group(2) for m in META_RE.finditer(text[:20_000])}
    if number := EBOOK_NO_RE.search(text[:20_000]):
        meta["ebook"] = number.group(1)
    start = START_RE.search(text) or OLD_START_RE.search(text)
    if start is None:
        return text.strip("\n"), meta, False
    body = text[start.end():]
    end = END_RE.search(body)
    if end is not None:
        body = body[:end.start()]
    return body.strip("\n"), meta, True


def release_date(meta: dict[str, str]) -> dt.datetime | None:
    """The header's "Release date" ("June, 1998 [eBook #1342]", "March 3, 2031") in UTC, if any."""
    value = meta.get("release_date", "").split("[")[0].strip()
    if not value:
        return None
    return dateparser.parse(value, settings={"TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True,
                                             "PREFER_DAY_OF_MONTH": "first", "REQUIRE_PARTS": ["year"]})


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, trailing spaces trimmed, empty ones dropped."""
    return [p.strip("\n").rstrip() for p in PARAGRAPH_SPLIT_RE.split(text) if p.strip()]


def split_chapters(text: str, pattern: str = CHAPTER_RE) -> list[tuple[str | None, str]]:
    """(heading, body) per chapter; text before the first heading comes first with heading None."""
    heads = list(re.finditer(pattern, text, re.M))
    if not heads:
        return []
    parts: list[tuple[str | None, str]] = []
    if text[:heads[0].start()].strip():
        parts.append((None, text[:heads[0].start()].strip("\n")))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        parts.append((head.group(0).strip(), text[head.start():end].strip("\n")))
    return parts


def paragraph_blocks(text: str, size: int) -> list[tuple[None, str]]:
    paras = paragraphs(text)
    return [(None, "\n\n".join(paras[i:i + size])) for i in range(0, len(paras), size)]


def as_url(value: str) -> str:
    """http(s)/file URLs unchanged; a local path becomes a file:// URL (relative to the cwd)."""
    if urlparse(value).scheme in ("http", "https", "file"):
        return value
    return Path(value).expanduser().resolve().as_uri()


class TextSpider(scrapy.Spider):
    name = "text"
    ARGUMENTS = {
        "start_url": "text file URL(s) (http(s)://, file://) or local paths, comma-separated",
        "split": "chapter (default; paragraph blocks when a text has no headings) or paragraph",
        "paragraphs": "paragraphs per document in paragraph mode (default 1)",
        "min_chars": "skip documents shorter than this (default 200)",
        "chapter_pattern": "regex of a chapter heading line",
        "encoding": "force this encoding (default: declared, else UTF-8 when valid, else cp1252)",
        "source": "value of the items' source field (default: spider name)",
    }

    def __init__(self, start_url: str = "", split: str = "chapter", paragraphs: int | str = 1,
                 min_chars: int | str = 200, chapter_pattern: str = CHAPTER_RE, encoding: str = "",
                 source: str = "", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {"name"})
        if unknown:
            raise ValueError(f"spider 'text': unknown argument(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(self.ARGUMENTS))}")
        super().__init__(**kwargs)
        if split not in ("chapter", "paragraph"):
            raise ValueError(f"text spider: split must be 'chapter' or 'paragraph', got {split!r}")
        self.start_urls_ = [as_url(u.strip()) for u in str(start_url).split(",") if u.strip()]
        self.split, self.paragraphs = split, int(paragraphs)
        self.min_chars, self.encoding = int(min_chars), encoding or None
        if self.paragraphs < 1:
            raise ValueError(f"text spider: paragraphs must be >= 1, got {paragraphs!r}")
        try:
            re.compile(chapter_pattern)
        except re.error as exc:
            raise ValueError(f"spider 'text': chapter_pattern={chapter_pattern!r} is not a regex: {exc}") from None
        self.chapter_pattern = chapter_pattern
        self.source = source or self.name

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not self.start_urls_:
            raise ValueError("text spider: give -a start_url=URL[,URL...] (http(s)://, file:// or a path)")
        for url in self.start_urls_:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[PostItem]:
        """One item per chapter (or paragraph block) of a plain-text book.

        @url tests/fixtures/text/gutenberg_book.txt
        @returns items 3 3
        @returns requests 0 0
        @scrapes source url thread_id thread_title position post_id author body body_format fetched_at
        """
        declared = getattr(response, "encoding", None) if "charset=" in response.headers.get(
            "Content-Type", b"").decode("latin-1").lower() else None
        text, used, fixed = decode_text(response.body, declared, self.encoding)
        if fixed:
            self.logger.warning("%s: declared %s but the bytes are UTF-8; decoded as UTF-8", response.url, declared)
            self.crawler.stats.inc_value("kopitiam/text/encoding_fixed")
        body, meta, had_markers = strip_gutenberg(text)
        if had_markers:
            self.crawler.stats.inc_value("kopitiam/text/gutenberg_stripped")
        parts = split_chapters(body, self.chapter_pattern) if self.split == "chapter" else []
        if self.split == "chapter" and not parts:
            self.logger.info("%s: no chapter headings; using blocks of %d paragraph(s)", response.url, self.paragraphs)
        if not parts:
            parts = paragraph_blocks(body, self.paragraphs)
        book_id = meta.get("ebook") or Path(urlparse(response.url).path).stem or \
            hashlib.sha256(response.url.encode()).hexdigest()[:12]
        fetched_at = dt.datetime.now(dt.timezone.utc)
        released = release_date(meta)
        position = 0
        for heading, part in parts:
            if len(part) < self.min_chars:
                self.crawler.stats.inc_value("kopitiam/text/skipped_short")
                continue
            yield PostItem(
                source=self.source, url=f"{response.url}#doc-{position}", board=None,
                thread_id=book_id, thread_title=meta.get("title") or heading, page=None,
                position=position, post_id=f"{book_id}:{position}", author=meta.get("author"),
                posted_at=released, body=part, body_format="text", quoted_post_ids=[],
                fetched_at=fetched_at)
            position += 1
        self.crawler.stats.inc_value("kopitiam/text/documents", position)
