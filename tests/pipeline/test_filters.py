"""Keep-or-drop rules with their reasons (pipeline/filters.py)."""

from __future__ import annotations

import pytest

from pipeline import filters


@pytest.mark.parametrize("post_id, expected", [(None, "missing_post_id"), ("", "missing_post_id"), ("7", None)])
def test_post_id_filter(post_id, expected):
    verdict = filters.post_id_filter(post_id, "demo row 3")
    assert (verdict and verdict[0]) == expected
    if verdict:
        assert verdict[1] == "demo row 3"


def test_raw_body_and_format_filters_give_reasons():
    assert filters.raw_body_filter(None, 10) == ("null_body", "body is null")
    assert filters.raw_body_filter("x" * 11, 10) == ("too_long_raw", "raw body 11 chars > max_raw_chars 10")
    assert filters.raw_body_filter("x" * 10, 10) is None
    assert filters.body_format_filter("markdown")[0] == "unknown_body_format"
    assert "markdown" in filters.body_format_filter("markdown")[1]
    assert filters.body_format_filter("text") is None
