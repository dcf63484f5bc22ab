# Downloader middleware: repair a wrongly declared character encoding before a spider sees the page.
"""``EncodingRepairMiddleware``: trust the bytes over a wrong ``Content-Type`` charset.

Old forums (vBulletin 3 boards in particular) often send ``charset=UTF-8`` in the HTTP header for
pages stored as ISO-8859-1 / windows-1252, or the reverse; Scrapy lets the header win, which turns
every accented letter into U+FFFD or mojibake. Rules, applied to text responses only:

- header says UTF-8, bytes are not valid UTF-8: re-decode with the page's own ``<meta charset>``
  when it names another encoding, else windows-1252 (a superset of ISO-8859-1 in practice);
- header says a Latin-1 family encoding, bytes are valid UTF-8 and not pure ASCII: re-decode as
  UTF-8 (Latin-1 text is almost never valid UTF-8 by accident).

Each repair is logged once per URL and counted (``kopitiam/encoding_fixed/<from>-><to>``).
w3lib (Scrapy's own encoding library) does the header and ``<meta>`` parsing.
"""

from __future__ import annotations

import logging

from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

logger = logging.getLogger(__name__)

LATIN1_FAMILY = {"cp1252", "iso8859-1", "latin-1", "latin1", "iso-8859-1", "windows-1252", "ascii"}


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def repaired_encoding(body: bytes, header_encoding: str | None, meta_encoding: str | None) -> str | None:
    """The encoding to use instead of the header's, or None when the header is right (or absent)."""
    if not header_encoding:
        return None
    header = header_encoding.lower()
    if header in ("utf-8", "utf8") and not _is_utf8(body):
        if meta_encoding and meta_encoding.lower() not in ("utf-8", "utf8"):
            return meta_encoding
        return "cp1252"
    if header in LATIN1_FAMILY and not body.isascii() and _is_utf8(body):
        return "utf-8"
    return None


class EncodingRepairMiddleware:
    def __init__(self, stats) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("ENCODING_REPAIR_ENABLED", True):
            raise NotConfigured
        return cls(crawler.stats)

    def process_response(self, request, response, spider=None):
        if not isinstance(response, TextResponse):
            return response
        header = http_content_type_encoding(response.headers.get("Content-Type", b"").decode("latin-1"))
        meta = html_body_declared_encoding(response.body[:4096])
        fixed = repaired_encoding(response.body, header, meta)
        if fixed is None:
            return response
        logger.warning("%s: declared %s, but the bytes are %s; decoding as %s", response.url, header, fixed, fixed)
        self.stats.inc_value(f"kopitiam/encoding_fixed/{header}->{fixed}")
        return response.replace(encoding=fixed)
