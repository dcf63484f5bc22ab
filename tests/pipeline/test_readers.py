"""Local-dataset readers (pipeline/readers.py): Parquet, JSONL, plain lines and the baby names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from pipeline.readers import ReaderError, babynames_path, write_source


def _run(tmp_path: Path, source: str, args: dict) -> tuple[pa.Table, dict]:
    out, metrics = tmp_path / "raw" / f"{source}.parquet", tmp_path / "metrics" / f"{source}.json"
    stats = write_source(source, args, out, metrics, root=tmp_path)
    table = pq.read_table(out)
    assert table.schema.equals(RAW_SCHEMA)
    assert json.loads(metrics.read_text())["posts"] == table.num_rows == stats["posts"]
    return table, stats


@pytest.mark.slow
def test_babynames_one_document_per_distinct_name(tmp_path):
    table, stats = _run(tmp_path, "babynames", {"reader": "babynames"})
    source = pq.read_table(babynames_path(), columns=["name"])
    distinct = set(pc.unique(source["name"]).to_pylist())
    assert table.num_rows == len(distinct) > 90_000
    assert set(table["body"].to_pylist()) == distinct
    assert table["post_id"].to_pylist() == table["body"].to_pylist()  # the name is its own id
    assert len(set(table["post_id"].to_pylist())) == table.num_rows
    assert set(table["body_format"].to_pylist()) == {"text"}
    assert set(table["source"].to_pylist()) == {"babynames"}
    # most births first, deterministic: the SSA data's top name overall is James
    assert table["body"][0].as_py() == "James"
    mary = table.filter(pc.equal(table["body"], "Mary")).to_pylist()[0]
    assert mary["posted_at"].year == 1880


def test_babynames_limit_and_determinism(tmp_path):
    a, _ = _run(tmp_path / "a", "bn", {"reader": "babynames", "limit": 1234})
    b, _ = _run(tmp_path / "b", "bn", {"reader": "babynames", "limit": 1234})
    assert a.num_rows == 1234
    assert a["body"].to_pylist() == b["body"].to_pylist()


def test_jsonl_mapping_bad_lines_and_empty_bodies_are_counted(tmp_path, caplog):
    data = tmp_path / "in" / "essays.jsonl"
    data.parent.mkdir()
    lines = [
        json.dumps({"id": 7, "text": "First essay.", "title": "One", "when": "2020-01-02T03:04:05Z"}),
        "{not json",
        json.dumps({"id": 8, "text": "   "}),  # blank body
        json.dumps([1, 2]),  # not an object
        "",
        json.dumps({"id": 9, "text": "Second essay.\nTwo lines.", "book": "b1"}),
    ]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = {"reader": "jsonl", "path": "in/*.jsonl",
            "columns": {"body": "text", "post_id": "id", "thread_title": "title",
                        "posted_at": "when", "thread_id": "book"}}
    table, stats = _run(tmp_path, "essays", args)
    rows = table.to_pylist()
    assert [r["post_id"] for r in rows] == ["7", "9"]
    assert rows[0]["thread_title"] == "One" and rows[0]["thread_id"] == "7"  # own thread when unmapped
    assert rows[0]["posted_at"].isoformat() == "2020-01-02T03:04:05+00:00"
    assert rows[1]["thread_id"] == "b1" and rows[1]["body"] == "Second essay.\nTwo lines."
    assert stats["skipped"] == {"bad_json": 2, "empty": 1}
    assert "essays.jsonl:2" in caplog.text  # the bad line is named


def test_lines_one_document_per_line_and_bad_encoding(tmp_path):
    data = tmp_path / "names.txt"
    data.write_bytes("Ana\nBj\u00f6rn\n\n".encode() + b"bad \xff byte\n" + "Zo\u00eb\n".encode())
    table, stats = _run(tmp_path, "names", {"reader": "lines", "path": "names.txt"})
    assert table["body"].to_pylist() == ["Ana", "Bj\u00f6rn", "Zo\u00eb"]
    assert table["post_id"].to_pylist() == ["names:1", "names:2", "names:5"]
    assert stats["skipped"] == {"bad_encoding": 1}


def test_parquet_reader_and_missing_body_column(tmp_path):
    pq.write_table(pa.table({"content": ["a b c", None, "d e"], "uid": ["x", "y", "z"]}), tmp_path / "d.parquet")
    table, stats = _run(tmp_path, "pq", {"reader": "parquet", "path": "d.parquet",
                                         "columns": {"body": "content", "post_id": "uid"}})
    assert table["post_id"].to_pylist() == ["x", "z"]
    assert stats["skipped"] == {"empty": 1}
    with pytest.raises(ReaderError, match=r"d\.parquet: missing column\(s\) body; .*columns found: content"):
        write_source("pq", {"reader": "parquet", "path": "d.parquet"}, tmp_path / "o.parquet", root=tmp_path)
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written


@pytest.mark.parametrize("args, message", [
    ({"reader": "csv", "path": "x"}, "unknown format 'csv'"),
    ({"reader": "lines"}, "needs a 'path'"),
    ({"reader": "lines", "path": "nothing/*.txt"}, "no input files match path 'nothing/\\*.txt'"),
    ({"reader": "jsonl", "path": "x", "colums": {}}, "unknown reader argument\\(s\\) colums"),
    ({"reader": "jsonl", "path": "x", "columns": {"bdy": "t"}}, "unknown raw field\\(s\\) bdy"),
])
def test_bad_entries_name_the_problem(tmp_path, args, message):
    (tmp_path / "x").write_text("{}\n")
    with pytest.raises(ReaderError, match=message):
        write_source("s", args, tmp_path / "o.parquet", root=tmp_path)


def test_crawl_stage_runs_a_reader_source(tmp_path):
    from pipeline.common import ParamsError
    from pipeline.crawl import crawl_source
    from tests.helpers.params import REPO_PARAMS, repo_params

    params = repo_params({"crawl": {"sources": ["names"], "jobs_dir": str(tmp_path / "jobs")}},
                         sources={"names": {"reader": "babynames", "args": {"limit": 100}},
                                  "bad": {"reader": "csv", "args": {"path": "x"}}})
    metrics = crawl_source("names", params, raw_dir=tmp_path / "raw", metrics_dir=tmp_path / "m")
    table = pq.read_table(tmp_path / "raw" / "names.parquet")
    assert table.num_rows == metrics["raw_rows"] == 100 and metrics["kind"] == "reader"
    assert json.loads((tmp_path / "m" / "names.json").read_text())["posts"] == 100
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(REPO_PARAMS))}: sources\.bad\.reader: "
                                          r"unknown format 'csv'; known: parquet, jsonl, lines, babynames"):
        crawl_source("bad", params, raw_dir=tmp_path / "raw", metrics_dir=tmp_path / "m")


def _raw_like_rows() -> list[dict]:
    return [
        {"post_id": "p1", "author": "ah beng", "posted_at": "2011-04-30T09:10:00+00:00", "thread_id": "t9",
         "thread_title": "Kopi or teh?", "page": 1, "position": 0, "quoted_post_ids": [],
         "body": "<p>Kopi <b>O</b> kosong</p>", "body_format": "html", "url": "https://f.example/t9#p1"},
        {"post_id": "p2", "author": "ah lian", "posted_at": "2011-04-30T10:00:00+00:00", "thread_id": "t9",
         "thread_title": "Kopi or teh?", "page": 1, "position": 1, "quoted_post_ids": ["p1"],
         "body": "Teh tarik lah", "body_format": "text", "url": "https://f.example/t9#p2"},
    ]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_raw_named_columns_map_to_themselves(tmp_path, fmt):
    rows = _raw_like_rows()
    path = tmp_path / f"dump.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    table, _ = _run(tmp_path, "dump", {"reader": fmt, "path": path.name})
    got = table.to_pylist()
    assert [r["post_id"] for r in got] == ["p1", "p2"]
    assert [r["author"] for r in got] == ["ah beng", "ah lian"]
    assert [r["thread_id"] for r in got] == ["t9", "t9"]
    assert got[0]["posted_at"].isoformat() == "2011-04-30T09:10:00+00:00"
    assert got[1]["quoted_post_ids"] == ["p1"] and got[1]["position"] == 1
    assert [r["body_format"] for r in got] == ["html", "text"]
    assert got[0]["url"] == "https://f.example/t9#p1"
    # an explicit mapping still wins over the same-named column
    table, _ = _run(tmp_path / "explicit", "dump", {"reader": fmt, "path": str(path),
                                                     "columns": {"author": "thread_title"}})
    assert table["author"].to_pylist() == ["Kopi or teh?"] * 2


@pytest.mark.parametrize("column, value", [("posted_at", "30th Apr 2011"), ("page", "two"),
                                            ("quoted_post_ids", "p1")])
def test_unconvertible_column_names_file_and_column(tmp_path, column, value):
    rows = _raw_like_rows()
    rows[1][column] = value
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ReaderError, match=rf"bad\.jsonl:2: column '{column}'"):
        write_source("bad", {"reader": "jsonl", "path": "bad.jsonl"}, tmp_path / "o.parquet", root=tmp_path)


def test_relative_path_without_url_column(tmp_path, monkeypatch):
    """As the docs show (``path: data/external/*.jsonl``), run from the repository root."""
    folder = tmp_path / "data" / "external"
    folder.mkdir(parents=True)
    (folder / "notes.jsonl").write_text(json.dumps({"text": "hello"}) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = Path("data/raw/notes.parquet")
    stats = write_source("notes", {"reader": "jsonl", "path": "data/external/*.jsonl",
                                   "columns": {"body": "text"}}, out)
    assert stats["posts"] == 1
    assert pq.read_table(out)["url"].to_pylist() == ["data/external/notes.jsonl#1"]
