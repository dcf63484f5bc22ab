"""Shared data-stage helpers: keep-or-drop rules, column checks, first-seen ids, JSON lines."""

from __future__ import annotations

import pyarrow as pa
import pytest

from contracts.schemas import CLEAN_SCHEMA, check_columns, missing_columns
from pipeline import filters
from pipeline.common import SeenIds, iter_jsonl, read_jsonl, write_jsonl_atomic


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


def test_check_columns_names_origin_missing_and_found():
    schema = pa.schema([("doc_id", pa.string()), ("text", pa.string())])
    assert missing_columns(schema, ["text", "source", "posted_at"]) == ["source", "posted_at"]
    with pytest.raises(KeyError, match=r"posts\.parquet: missing column\(s\) source, posted_at; expected X; "
                                       r"columns found: doc_id, text"):
        check_columns(schema, ["doc_id", "source", "posted_at"], origin="posts.parquet", expected="X", error=KeyError)
    check_columns(pa.schema(list(CLEAN_SCHEMA)), CLEAN_SCHEMA, origin="ok", expected="CLEAN_SCHEMA")


def test_seen_ids_first_occurrence_wins_across_calls():
    seen = SeenIds()
    assert seen.repeats(["a", "b", "a"]) == [2]
    assert seen.repeats(["c", "b", "d", "c"]) == [1, 3]
    assert seen.first("e") and not seen.first("e") and not seen.first("a")
    seen.add(["f"])
    assert "f" in seen and "g" not in seen and len(seen) == 6


def test_jsonl_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "out" / "rows.jsonl"
    rows = [{"b": 1, "a": "é"}, [1, 2], "x"]
    write_jsonl_atomic(path, rows)
    assert path.read_text(encoding="utf-8").splitlines()[0] == '{"a": "é", "b": 1}'
    assert read_jsonl(path) == rows
    path.write_text('{"a": 1}\n\n{not json\n', encoding="utf-8")
    it = iter_jsonl(path)
    assert next(it) == (1, {"a": 1})
    with pytest.raises(ValueError, match=r"rows\.jsonl:3: not JSON"):
        next(it)
    errors = []
    assert list(iter_jsonl(path, on_error=lambda n, msg: errors.append(n))) == [(1, {"a": 1})]
    assert errors == [3]
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary files left
