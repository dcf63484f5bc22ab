"""Stage clean (pipeline/clean.py) on bad raw input: repaired, dropped with a reason, or a clear error.

It never crashes: a row is repaired, or dropped with a reason, or (a missing column) the stage stops with
an error naming the file and the column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from pipeline.clean import CleanConfig, RawInputError, doc_id_for, main, run_clean
from tests.helpers.params import stage_config, write_params
from tests.helpers.raw_posts import raw_row, write_raw, xf_quote

CFG = stage_config("clean", CleanConfig, workers=1)


def clean(tmp_path, paths, **overrides):
    metrics = run_clean(paths, tmp_path / "out" / "posts.parquet", tmp_path / "out" / "dropped.parquet",
                        {**CFG, **overrides})
    return (pq.read_table(tmp_path / "out" / "posts.parquet").to_pylist(),
            pq.read_table(tmp_path / "out" / "dropped.parquet").to_pylist(), metrics)


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    table = pa.Table.from_pylist([raw_row("1", "placeholder body text here")], schema=RAW_SCHEMA)
    bad = b"Good words \xff\xfe then more good words"
    offsets = pa.array([0, len(bad)], pa.int32()).buffers()[1]
    body = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(bad)])
    table = table.set_column(table.schema.get_field_index("body"), "body", body)
    path = tmp_path / "raw" / "bad.parquet"
    path.parent.mkdir()
    pq.write_table(table, path)
    kept, _, metrics = clean(tmp_path, [path])
    assert metrics["invalid_utf8"] == 1
    assert kept[0]["text"].startswith("Good words") and kept[0]["text"].endswith("more good words")


def test_null_fields_and_empty_bodies(tmp_path):
    row = raw_row("1", "A fine reply with words.", author=None)
    row.update(board=None, thread_title=None, posted_at=None, quoted_post_ids=None)
    path = write_raw(tmp_path / "raw" / "demo.parquet", [row, raw_row("2", ""), raw_row("3", None)])
    kept, dropped, _ = clean(tmp_path, [path])
    assert kept[0]["author_hash"] is None and kept[0]["posted_at"] is None and kept[0]["quoted_post_ids"] == []
    assert sorted(d["reason"] for d in dropped) == ["empty", "null_body"]


def test_five_megabyte_post_is_dropped_with_reason(tmp_path):
    huge = "<p>" + ("All the world's a stage. " * 210_000) + "</p>"  # ~5.25 MB
    path = write_raw(tmp_path / "raw" / "demo.parquet", [raw_row("1", huge), raw_row("2", "Short and sweet.")])
    kept, dropped, metrics = clean(tmp_path, [path], max_raw_chars=10_000_000)  # parsed, then too long
    assert [d["reason"] for d in dropped] == ["too_long"] and [k["post_id"] for k in kept] == ["2"]
    kept, dropped, _ = clean(tmp_path, [path])  # default max_raw_chars: dropped unparsed
    assert [d["reason"] for d in dropped] == ["too_long_raw"]


def test_html_that_is_not_html(tmp_path):
    bodies = ["<<<>>> </div></div> <p <b>unclosed & broken &#xZZ; <a href=", "plain words, no tags at all",
              "<![CDATA[ x ]]><?php echo 1 ?><!-- c --> text after",
              xf_quote("1", "a", "q") * 3 + "</blockquote>ok reply"]
    path = write_raw(tmp_path / "raw" / "demo.parquet", [raw_row(str(i), b) for i, b in enumerate(bodies)])
    kept, dropped, metrics = clean(tmp_path, [path])
    assert metrics["raw"] == 4 == len(kept) + len(dropped)
    texts = {k["post_id"]: k["text"] for k in kept}
    assert texts["1"] == "plain words, no tags at all"
    assert texts["3"] == "ok reply"
    assert all("<!--" not in t and "<?php" not in t for t in texts.values())


def test_missing_column_stops_with_clear_error(tmp_path, monkeypatch, caplog):
    table = pa.Table.from_pylist([raw_row("1", "hello there")], schema=RAW_SCHEMA).drop_columns(["body_format"])
    path = tmp_path / "data" / "raw" / "broken.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    with pytest.raises(RawInputError, match=r"broken\.parquet.*body_format"):
        clean(tmp_path, [path])
    write_params(tmp_path / "params.yaml", {"clean": {"workers": 1}, "crawl": {"sources": ["broken"]}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"broken\.parquet.*missing column\(s\) body_format"):
        main([])
    assert not (tmp_path / "data" / "clean" / "posts.parquet").exists()


def test_empty_raw_files(tmp_path):
    zero_rows = write_raw(tmp_path / "raw" / "a.parquet", [])
    zero_bytes = tmp_path / "raw" / "b.parquet"
    zero_bytes.write_bytes(b"")
    good = write_raw(tmp_path / "raw" / "c.parquet", [raw_row("1", "Some words here.", source="c")])
    kept, dropped, metrics = clean(tmp_path, [zero_rows, zero_bytes, good])
    assert len(kept) == 1 and not dropped and metrics["raw"] == 1


def test_missing_post_id_is_dropped_and_counted(tmp_path):
    rows = [raw_row("1", "Some words here."), raw_row("", "Other words here.")]
    path = write_raw(tmp_path / "raw" / "demo.parquet", rows)
    kept, dropped, metrics = clean(tmp_path, [path])
    assert [d["reason"] for d in dropped] == ["missing_post_id"]
    assert kept[0]["doc_id"] == doc_id_for("demo", "1")
    assert metrics["per_source"]["demo"]["raw"] == 2


def test_pathological_nesting_and_unknown_format_never_crash(tmp_path):
    deep = "<div>" * 5000 + "deep words here" + "</div>" * 5000
    rows = [raw_row("1", deep), raw_row("2", "Fine words.", body_format="markdown"), raw_row("3", "Fine words.")]
    path = write_raw(tmp_path / "raw" / "demo.parquet", rows)
    kept, dropped, metrics = clean(tmp_path, [path])
    assert "3" in [k["post_id"] for k in kept]
    assert {d["reason"] for d in dropped} <= {"unknown_body_format", "error"}
    assert "unknown_body_format" in {d["reason"] for d in dropped}
    assert metrics["raw"] == 3 == len(kept) + len(dropped)


def test_a_post_that_raises_is_dropped_as_error_and_the_stage_goes_on(tmp_path, monkeypatch):
    from pipeline import cleaning
    real = cleaning.html_to_text

    def fragile(body, **kw):  # stands in for an input no rule foresaw
        if "TRIGGER" in body:
            raise RecursionError("maximum recursion depth exceeded")
        return real(body, **kw)

    monkeypatch.setattr(cleaning, "html_to_text", fragile)
    path = write_raw(tmp_path / "raw" / "demo.parquet", [raw_row("1", "<p>TRIGGER</p>"), raw_row("2", "Fine words.")])
    kept, dropped, metrics = clean(tmp_path, [path])
    assert [k["post_id"] for k in kept] == ["2"]
    assert dropped[0]["reason"] == "error" and dropped[0]["detail"].startswith("RecursionError")
