"""Local-time post dates in an engine's own default format, read without dateparser.

``ForumSpider.local_date`` (dateparser) reads any date text but takes 5-15 ms a call; a board
prints every post's date in one format, and an engine's default one (MyBB's ``m-d-Y, h:i A``,
SMF's ``%B %d, %Y, %I:%M:%S %p``) reads with ``datetime.strptime`` in microseconds. Spiders try
their engine's formats here first and fall back to ``local_date`` for anything else (relative
days, a board's own format, a zone given as an offset).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def strptime_local(text: str, formats: Iterable[str], zone: str) -> datetime | None:
    """``text`` read with the first of ``formats`` that matches it whole, as a time in the IANA zone
    ``zone``, returned as aware UTC; None when no format matches or ``zone`` is no IANA name."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    for fmt in formats:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=tz).astimezone(UTC)
    return None
