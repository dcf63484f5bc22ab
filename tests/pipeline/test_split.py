"""Stage split (pipeline/split.py): threads never straddle splits, fractions are validated, empty splits are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.schemas import CLEAN_SCHEMA
from pipeline import split as S
from pipeline.common import ParamsError
from tests.helpers.corpus import make_corpus

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def thread_keys(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table.column("source").to_pylist(), table.column("thread_id").to_pylist()))


def test_no_thread_straddles_splits_and_no_document_is_lost():
    corpus = make_corpus(120)
    parts = S.split_table(corpus, FRACTIONS, "s")
    keys = {name: thread_keys(t) for name, t in parts.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    ids = [i for t in parts.values() for i in t.column("doc_id").to_pylist()]
    assert sorted(ids) == sorted(corpus.column("doc_id").to_pylist())  # every document exactly once
    # rows keep corpus order within each split
    order = {d: i for i, d in enumerate(corpus.column("doc_id").to_pylist())}
    for t in parts.values():
        pos = [order[d] for d in t.column("doc_id").to_pylist()]
        assert pos == sorted(pos)
        assert t.schema.equals(CLEAN_SCHEMA)


def test_split_is_deterministic_salted_and_stable_when_threads_are_added():
    small, big = make_corpus(100, seed=1), make_corpus(300, seed=1)
    a = S.split_table(small, FRACTIONS, "s")
    assert all(a[n].equals(S.split_table(small, FRACTIONS, "s")[n]) for n in S.SPLITS)
    b = S.split_table(small, FRACTIONS, "other salt")
    assert any(thread_keys(a[n]) != thread_keys(b[n]) for n in S.SPLITS)
    grown = S.split_table(big, FRACTIONS, "s")  # threads 0..99 are the same threads in both corpora
    for n in S.SPLITS:
        assert thread_keys(a[n]) <= thread_keys(grown[n])


def test_realised_shares_follow_the_fractions():
    parts = S.split_table(make_corpus(1500, sources=("forum",), max_posts=1),
                          {"train": 0.7, "val": 0.2, "test": 0.1}, "s")
    shares = {n: len(thread_keys(t)) / 1500 for n, t in parts.items()}
    assert abs(shares["train"] - 0.7) < 0.04 and abs(shares["val"] - 0.2) < 0.04 and abs(shares["test"] - 0.1) < 0.03


@pytest.mark.parametrize("fractions, message", [
    ({"train": 0.9, "val": 0.1, "test": 0.1}, "sum to 1, got 1.1"),
    ({"train": 0.5, "val": 0.1, "test": 0.1}, "would be lost"),
    ({"train": 1.2, "val": -0.1, "test": -0.1}, "split.fractions.train must be a number in [0, 1]"),
    ({"train": 0.9, "val": 0.1}, "missing ['test']"),
    ({"train": 0.8, "val": 0.1, "test": 0.1, "dev": 0.0}, "unknown ['dev']"),
    ({"train": "most", "val": 0.1, "test": 0.1}, "split.fractions.train"),
])
def test_bad_fractions_are_clear_errors(fractions, message):
    with pytest.raises(ParamsError) as err:
        S.check_fractions(fractions)
    assert message in str(err.value)


def test_empty_split_is_a_clear_error():
    corpus = make_corpus(2, sources=("forum",))
    with pytest.raises(S.SplitError, match=r"would be empty .* threads"):
        S.split_table(corpus, FRACTIONS, "s")
    with pytest.raises(S.SplitError, match="would be empty"):
        S.split_table(make_corpus(50), {"train": 1.0, "val": 0.0, "test": 0.0}, "s")
    with pytest.raises(S.SplitError, match="corpus is empty"):
        S.split_table(corpus.slice(0, 0), FRACTIONS, "s")


def test_missing_column_names_the_column():
    corpus = make_corpus(20).drop_columns(["thread_id"])
    with pytest.raises(S.SplitError, match="missing column.*thread_id"):
        S.split_table(corpus, FRACTIONS, "s", origin="data/dedup/corpus.parquet")


def test_main_writes_splits_and_metrics(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = make_corpus(80)
    Path("data/dedup").mkdir(parents=True)
    pq.write_table(corpus, "data/dedup/corpus.parquet")
    Path("params.yaml").write_text("split:\n  fractions: {train: 0.8, val: 0.1, test: 0.1}\n  salt: t\n")
    S.main([])
    metrics = json.loads(Path("metrics/split.json").read_text())
    assert metrics["documents"] == corpus.num_rows
    for name in S.SPLITS:
        t = pq.read_table(f"data/split/{name}.parquet")
        assert metrics["splits"][name]["documents"] == t.num_rows > 0
        assert metrics["splits"][name]["characters"] == sum(t.column("n_chars").to_pylist())
        assert sum(s["documents"] for s in metrics["splits"][name]["sources"].values()) == t.num_rows
    Path("params.yaml").write_text("split:\n  fractions: {train: 0.8, val: 0.1, test: 0.1}\n  seed: 1\n")
    with pytest.raises(ParamsError, match="unknown key.*split.seed"):
        S.main([])
