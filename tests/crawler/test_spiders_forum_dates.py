"""Relative post dates ("1 minute ago", "Yesterday at 10:02 PM", "Today, 17:10", "A moment ago")
resolve against the fetch time in the forum's time zone, daylight saving included; exact times in
the markup win over the shown text (see also the engine tests: XenForo 1 ``data-time``, vBulletin 5
``<time datetime>``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.spiders.forum import DATE_TEXT_MAX, parse_local_date

NOW = datetime(2025, 3, 10, 1, 30, tzinfo=UTC)  # 09:30 on Monday 10 March in Singapore
SUMMER = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST in Berlin


@pytest.mark.parametrize("text, zone, now, expected", [
    ("1 minute ago", "Asia/Singapore", NOW, datetime(2025, 3, 10, 1, 29, tzinfo=UTC)),
    ("3 hours ago", "UTC", NOW, datetime(2025, 3, 9, 22, 30, tzinfo=UTC)),
    ("A moment ago", "Asia/Singapore", NOW, NOW),
    ("Just now", "UTC", NOW, NOW),
    ("Yesterday at 10:02 PM", "Asia/Singapore", NOW, datetime(2025, 3, 9, 14, 2, tzinfo=UTC)),
    ("Today, 17:10", "Asia/Singapore", NOW, datetime(2025, 3, 10, 9, 10, tzinfo=UTC)),
    ("#12 Today, 08:15 AM", "+08:00", NOW, datetime(2025, 3, 10, 0, 15, tzinfo=UTC)),  # text before the date skipped
    ("Yesterday, 09:05", "Europe/Berlin", SUMMER, datetime(2025, 6, 30, 7, 5, tzinfo=UTC)),  # CEST, +2
    ("Heute, 09:05", "Europe/Berlin", NOW, datetime(2025, 3, 10, 8, 5, tzinfo=UTC)),  # CET, +1
    ("vor 5 Minuten", "Europe/Berlin", NOW, datetime(2025, 3, 10, 1, 25, tzinfo=UTC)),
    ("2 days ago", "UTC", NOW, datetime(2025, 3, 8, 1, 30, tzinfo=UTC)),
])
def test_relative_dates_against_the_fetch_time(text, zone, now, expected):
    assert parse_local_date(text, zone, now=now) == expected


def test_late_evening_yesterday_across_the_date_line():
    """At 01:30 UTC it is already Monday in Singapore but still Sunday in UTC: "Yesterday" differs."""
    assert parse_local_date("Yesterday at 10:02 PM", "Asia/Singapore", now=NOW).day == 9
    assert parse_local_date("Yesterday at 10:02 PM", "UTC", now=NOW) == datetime(2025, 3, 9, 22, 2, tzinfo=UTC)


def test_absolute_dates_ignore_the_clock():
    assert parse_local_date("Mar 13, 2011 at 6:46 AM", "Asia/Singapore", now=NOW) == datetime(2011, 3, 12, 22, 46,
                                                                                              tzinfo=UTC)
    assert parse_local_date("no date in here at all", "UTC", now=NOW) is None


def test_a_damaged_page_does_not_feed_a_whole_post_to_the_date_reader():
    """Closing tags lost: the date cell runs on into the post. Only DATE_TEXT_MAX characters are read."""
    tail = " and then the whole post text follows because the closing tag was lost" * 200
    assert parse_local_date("Yesterday at 10:02 PM" + tail, "UTC", now=NOW) is None  # unreadable, and quickly
    assert parse_local_date("Yesterday at 10:02 PM", "UTC", now=NOW) is not None
    assert len("Yesterday at 10:02 PM" + tail) > 100 * DATE_TEXT_MAX
