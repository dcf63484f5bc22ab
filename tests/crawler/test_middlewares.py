"""Downloader middlewares (crawler/middlewares.py): Retry-After values."""

from __future__ import annotations

from datetime import datetime, timezone

from crawler.middlewares import retry_after_seconds


def test_retry_after_values():
    now = datetime(2025, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Wed, 01 Jan 2025 00:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Tue, 31 Dec 2024 00:00:30 GMT", now=now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds(b"soon") is None
