"""crawler/datefmt.py: an engine's default date format read by strptime, in the forum's zone (the
offset in force on that day), and nothing read where the text or the zone does not fit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.datefmt import strptime_local
from crawler.spiders.forum import parse_local_date

MYBB = ("%m-%d-%Y, %I:%M %p", "%m-%d-%Y, %H:%M")


@pytest.mark.parametrize("text, zone, expected", [
    ("03-02-2024, 09:15 AM", "Asia/Singapore", datetime(2024, 3, 2, 1, 15, tzinfo=UTC)),
    ("03-02-2024, 21:15", "UTC", datetime(2024, 3, 2, 21, 15, tzinfo=UTC)),
    ("04-30-2011, 05:10 PM", "Europe/Berlin", datetime(2011, 4, 30, 15, 10, tzinfo=UTC)),  # summer time: UTC+2
    ("12-13-2011, 08:05 AM", "Europe/Berlin", datetime(2011, 12, 13, 7, 5, tzinfo=UTC)),  # winter time: UTC+1
])
def test_default_formats_in_the_forums_zone(text, zone, expected):
    assert strptime_local(text, MYBB, zone) == expected == parse_local_date(text, zone)  # as dateparser reads it


@pytest.mark.parametrize("text, zone", [
    ("Yesterday, 09:15 AM", "Asia/Singapore"),  # relative: left to dateparser
    ("03-02-2024", "Asia/Singapore"),  # no time: not this format
    ("03-02-2024, 09:15 AM", "+08:00"),  # an offset, not an IANA zone: left to dateparser
    ("03-02-2024, 09:15 AM", "Mars/Olympus"),
])
def test_other_texts_and_zones_are_left_to_dateparser(text, zone):
    assert strptime_local(text, MYBB, zone) is None
