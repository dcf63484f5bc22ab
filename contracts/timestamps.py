"""The one UTC timestamp parser: every time the crawler or a reader writes to a raw file goes
through ``to_utc``, so ``posted_at`` and ``fetched_at`` mean the same instant whatever the source.

Accepted: a ``datetime`` (naive = UTC), a ``date`` (midnight UTC), epoch seconds (int or float, not
bool), an ISO 8601 string (``Z`` or an offset; none = UTC). ``None`` and ``""`` are no time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def to_utc(value: Any, field: str = "timestamp") -> dt.datetime | None:
    """A UTC-aware datetime from ``value``; a value that is not a time is a ``ValueError`` naming ``field``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        stamp = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"field {field!r}: cannot read {value!r} as an ISO 8601 time") from exc
    else:
        raise ValueError(f"field {field!r}: expected a datetime, ISO string or epoch seconds, "
                         f"got {type(value).__name__} {value!r}")
    return stamp.replace(tzinfo=dt.timezone.utc) if stamp.tzinfo is None else stamp.astimezone(dt.timezone.utc)
