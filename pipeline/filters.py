"""Keep-or-drop rules of the clean stage. Each rule returns None (keep) or (reason, detail).

Reasons (the ``reason`` column of ``data/clean/dropped.parquet``), in the order they are tried:
``missing_post_id``, ``null_body``, ``too_long_raw`` (raw body above ``max_raw_chars``, not parsed),
``unknown_body_format`` (raw-record rules, before any parsing); ``error`` (an exception while
cleaning that post: its type and message are the detail); ``only_links``, ``only_smilies``,
``only_quotes`` (nothing left once quotes, links or smilies are removed; HTML only), ``empty``,
``too_short`` / ``too_long`` (``min_chars`` / ``max_chars``), ``low_letters`` (letters / non-space
characters below ``min_letter_ratio``; placeholders do not count as letters); and, across batches,
``duplicate_post_id`` (pipeline.cleaning.drop_repeated_posts).
"""

from __future__ import annotations

import re
from typing import Optional

from pipeline.htmltext import HtmlText
from pipeline.pii import PLACEHOLDERS

Verdict = Optional[tuple[str, str]]
BODY_FORMATS = ("html", "text")
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))
_SPACE_RE = re.compile(r"\s")
_NON_LETTER_RE = re.compile(r"[\W\d_]+")  # deleting these leaves the letters (str.isalpha)
# ASCII text (most of it) is counted with bytes.translate; the byte sets come from the regexes above,
# so both paths count the same characters
_ASCII_SPACES = bytes(c for c in range(128) if _SPACE_RE.match(chr(c)))
_ASCII_NON_LETTERS = bytes(c for c in range(128) if _NON_LETTER_RE.match(chr(c)))


def post_id_filter(post_id: str | None, where: str) -> Verdict:
    """Records without a post id cannot be told apart from their neighbours: ``where`` names the row."""
    if post_id is None or post_id == "":
        return "missing_post_id", where
    return None


def raw_body_filter(body: str | None, max_raw_chars: int) -> Verdict:
    """A null body, or one too long to parse safely (checked before any HTML parsing)."""
    if body is None:
        return "null_body", "body is null"
    if len(body) > max_raw_chars:
        return "too_long_raw", f"raw body {len(body)} chars > max_raw_chars {max_raw_chars}"
    return None


def body_format_filter(body_format: str) -> Verdict:
    if body_format not in BODY_FORMATS:
        return "unknown_body_format", f"body_format {body_format!r}, expected one of {BODY_FORMATS}"
    return None


def content_filter(stats: HtmlText | None) -> Verdict:
    """Posts whose only content was quotes, links or smilies (HTML sources only)."""
    if stats is None or stats.chars_text > 0:
        return None
    if stats.chars_link > 0:
        return "only_links", f"{stats.chars_link} link chars, no own text"
    if stats.chars_image > 0:
        return "only_smilies", f"{stats.chars_image} smilie/image chars, no own text"
    if stats.n_quotes > 0:
        return "only_quotes", f"{stats.n_quotes} quote block(s), no reply text"
    return None


def length_filter(text: str, min_chars: int, max_chars: int) -> Verdict:
    n = len(text)
    if n == 0:
        return "empty", "no text after cleaning"
    if n < min_chars:
        return "too_short", f"{n} chars < min_chars {min_chars}"
    if n > max_chars:
        return "too_long", f"{n} chars > max_chars {max_chars}"
    return None


def letter_filter(text: str, min_ratio: float) -> Verdict:
    stripped = _PLACEHOLDER_RE.sub("", text) if "[" in text else text
    if stripped.isascii():
        raw = stripped.encode("ascii")
        visible, letters = len(raw.translate(None, _ASCII_SPACES)), len(raw.translate(None, _ASCII_NON_LETTERS))
    else:
        visible = len(stripped) - len(_SPACE_RE.findall(stripped))
        letters = len(_NON_LETTER_RE.sub("", stripped))
    ratio = letters / visible if visible else 0.0
    if ratio < min_ratio:
        return "low_letters", f"letter ratio {ratio:.2f} < min_letter_ratio {min_ratio}"
    return None
