"""model/splits.py: the model-side stages read the corpus files in bounded passes; the baselines'
train sample is seeded, deterministic, bounded, and the whole file when it fits."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model import splits


def _write(path, texts, row_group_size=None, **extra):
    table = pa.table({"text": pa.array(texts, pa.string()),
                      "n_chars": pa.array([len(t) if t is not None else None for t in texts], pa.int32()), **extra})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return ["x" * int(k) for k in rng.integers(1, 60, n)]


def _reference_sample(texts, max_chars, seed):
    """The documented rule, in memory: documents in order of their seeded key, taken while they fit."""
    keys = np.random.default_rng(seed).random(len(texts))
    taken, total = [], 0
    for i in np.argsort(keys, kind="stable"):
        if len(texts[i]) > max_chars:
            continue
        if total + len(texts[i]) > max_chars:
            break
        taken.append(i)
        total += len(texts[i])
    return [texts[i] for i in sorted(taken)]


def test_sample_is_the_whole_file_in_order_when_it_fits(tmp_path):
    texts = [f"doc {i} " + "y" * i for i in range(50)]
    path = _write(tmp_path / "train.parquet", texts)
    total = sum(map(len, texts))
    for bound in (total, total + 1, 0):  # 0: no bound
        got, seen = splits.sample_texts(path, bound, seed=3)
        assert got == texts and seen.whole and not seen.as_dict()["sampled"]
        assert (seen.documents, seen.characters, seen.split_documents, seen.split_characters) == (50, total, 50, total)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sample_is_bounded_seeded_and_the_documented_rule(tmp_path, seed):
    texts = _texts(3000, seed=11)
    path = _write(tmp_path / "train.parquet", texts, row_group_size=700)
    bound = sum(map(len, texts)) // 5
    got, seen = splits.sample_texts(path, bound, seed=seed, batch_rows=256)
    assert got == _reference_sample(texts, bound, seed)  # in file order, as the reference returns it
    assert seen.characters == sum(map(len, got)) <= bound and seen.characters > bound - 60  # full to one document
    assert seen.as_dict()["sampled"] and seen.split_documents == 3000 and seen.max_chars == bound
    again, _ = splits.sample_texts(path, bound, seed=seed, batch_rows=1000)  # batching does not matter
    assert again == got
    other, _ = splits.sample_texts(path, bound, seed=seed + 100)
    assert other != got


def test_sample_skips_documents_longer_than_the_bound(tmp_path):
    path = _write(tmp_path / "train.parquet", ["a" * 50, "bb", "c" * 30, "dd"])
    got, seen = splits.sample_texts(path, 10, seed=0)
    assert set(got) <= {"bb", "dd"} and seen.characters <= 10 and got == _reference_sample(
        ["a" * 50, "bb", "c" * 30, "dd"], 10, 0)


def test_sample_reads_null_texts_as_empty_documents(tmp_path, caplog):
    path = _write(tmp_path / "train.parquet", ["ab", None, "cd"])
    with caplog.at_level(logging.WARNING):
        got, seen = splits.sample_texts(path, 100, seed=0)
    assert got == ["ab", "", "cd"] and seen.split_documents == 3
    assert "1 documents with a null text" in caplog.text


def test_text_chunks_stream_whole_documents_and_apply_the_max_chars_rule(tmp_path):
    texts = ["aaa", "bb", "c", "dddd", "ee"]
    path = _write(tmp_path / "test.parquet", texts)
    assert list(splits.text_chunks(path, 4, batch_rows=2)) == [["aaa", "bb"], ["c", "dddd"], ["ee"]]
    assert [t for c in splits.text_chunks(path, 1_000_000) for t in c] == texts
    assert list(splits.text_chunks(path, 100, max_chars=5)) == [["aaa", "bb"]]  # the first documents that fit
    assert list(splits.text_chunks(path, 100, max_chars=2)) == [["aaa"]]  # at least one document
    assert list(splits.text_chunks(path, 1, max_chars=6)) == [["aaa"], ["bb"], ["c"]]


def test_missing_file_and_column_are_named(tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "test.parquet")
    with pytest.raises(ValueError, match=r"test.parquet: missing column\(s\) text; expected CLEAN_SCHEMA"):
        list(splits.iter_texts(tmp_path / "test.parquet"))
    with pytest.raises(FileNotFoundError, match="dvc repro split"):
        splits.sample_texts(tmp_path / "missing.parquet", 10, 0)


def test_column_statistics_in_one_pass(tmp_path):
    texts = _texts(1000, seed=2)
    path = _write(tmp_path / "x.parquet", texts, row_group_size=128,
                  reason=pa.array([["b", "a", "c"][i % 3] if i % 7 else None for i in range(1000)]))
    lengths = [len(t) for t in texts]
    assert splits.column_totals(path) == (1000, sum(lengths))
    assert splits.column_max(path) == max(lengths)
    edges = [0.5, 3, 10, 30, 59.5]
    assert splits.histogram(path, edges).tolist() == np.histogram(lengths, bins=edges)[0].tolist()
    counts = splits.value_counts(path, "reason")
    want = {}
    for i in range(1000):
        key = ["b", "a", "c"][i % 3] if i % 7 else None
        want[key] = want.get(key, 0) + 1
    assert counts == want and list(counts)[:3] == [None, "a", "c"]  # first-seen order
