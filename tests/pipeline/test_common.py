"""Shared stage helpers (pipeline/common.py): first-seen ids and JSON lines."""

from __future__ import annotations

import pytest

from pipeline.common import SeenIds, iter_jsonl, read_jsonl, write_jsonl_atomic


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
