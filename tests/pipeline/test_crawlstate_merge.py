"""Crawl state in bounded memory: the out-of-core merge of store and run parts gives the rows of the
in-memory merge (the last fetch of a post wins, sorted by thread), and the thread index streamed
from the merged file equals the in-memory one."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts import markup
from contracts.schemas import RAW_SCHEMA
from pipeline import crawlstate

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def raw_file(path, rows, record=None):
    schema = RAW_SCHEMA.with_metadata(markup.to_metadata([record])) if record else RAW_SCHEMA
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=37)
    return path


def posts(rng: random.Random, n: int, fetch: int) -> list[dict]:
    rows = []
    for _ in range(n):
        thread = rng.randrange(40)
        position = rng.randrange(30)
        post = f"{thread * 100 + position}" if rng.random() < 0.9 else f"moved-{rng.randrange(50)}"
        rows.append({"source": "s", "url": f"u/{post}", "board": "b", "thread_id": f"t{thread}", "thread_title": "x",
                     "page": position // 10 + 1, "position": position, "post_id": post, "author": "a",
                     "posted_at": T0 + dt.timedelta(minutes=rng.randrange(10_000)) if rng.random() < 0.9 else None,
                     "body": f"fetch {fetch} " + "x" * rng.randrange(200), "body_format": "html",
                     "quoted_post_ids": [], "fetched_at": T0 + dt.timedelta(days=fetch)})
    return rows


@pytest.fixture()
def files(tmp_path):
    rng = random.Random(0)
    return [raw_file(tmp_path / "store.parquet", posts(rng, 900, 0), markup.GENERIC),
            raw_file(tmp_path / "run-0001.parquet", posts(rng, 400, 1)),
            raw_file(tmp_path / "run-0002.parquet", posts(rng, 300, 2), markup.HTML)]


def test_out_of_core_merge_gives_the_in_memory_rows(files, tmp_path, monkeypatch):
    want = crawlstate.merge_posts([pq.read_table(p) for p in files])
    monkeypatch.setattr(crawlstate, "MERGE_BYTES", 20_000)  # several partitions
    monkeypatch.setattr(crawlstate, "MERGE_ROWS", 64)  # many batches per run, many output chunks
    rows = crawlstate.merge_files(files, tmp_path / "out.parquet", tmp_path / "work")
    got = pq.read_table(tmp_path / "out.parquet")
    assert rows == got.num_rows == want.num_rows < 1600
    assert got.to_pylist() == want.to_pylist()
    assert got.schema.metadata == want.schema.metadata  # both files' markup records kept
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups > 1
    assert not list((tmp_path / "work").iterdir())
    assert crawlstate.thread_index_of_file(tmp_path / "out.parquet") == crawlstate.thread_index(want)


def test_small_stores_merge_in_memory(files, tmp_path):
    rows = crawlstate.merge_files(files, tmp_path / "out.parquet", tmp_path / "work")
    assert pq.read_table(tmp_path / "out.parquet").equals(crawlstate.merge_posts([pq.read_table(p) for p in files]))
    assert rows > 0 and not (tmp_path / "work").exists()
