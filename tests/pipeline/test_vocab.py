"""Stage vocab (pipeline/vocab.py): train only, frequency order, min_count/max_size, UNK counted, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.schemas import CLEAN_SCHEMA
from pipeline import vocab as V
from pipeline.common import ParamsError
from tests.helpers.corpus import make_corpus
from tests.helpers.params import write_params


def test_specials_and_frequency_order():
    vocab = V.build_vocab(["aaab", "bba", "c", "  a"], min_count=1)
    assert vocab.tokens[V.END_ID] == V.END_TOKEN and vocab.tokens[V.UNK_ID] == V.UNK_TOKEN
    assert vocab.tokens[2:] == ("a", "b", " ", "c")  # a:5, b:3, space:2, c:1
    assert vocab.counts == (4, 0, 5, 3, 2, 1)  # END counts documents
    assert vocab.extra["train_documents"] == 4 and vocab.extra["train_characters"] == 11


def test_min_count_and_max_size():
    texts = ["aaaa", "bbb", "cc", "d"]
    assert V.build_vocab(texts, min_count=2).tokens[2:] == ("a", "b", "c")
    assert V.build_vocab(texts, min_count=1, max_size=4).tokens[2:] == ("a", "b")
    assert len(V.build_vocab(texts, max_size=4)) == 4


def test_round_trip_for_in_vocabulary_text():
    texts = make_corpus(10).column("text").to_pylist()
    vocab = V.build_vocab(texts)
    for text in texts[:50]:
        ids = vocab.encode(text)
        assert ids.dtype == np.int32 and V.UNK_ID not in ids and V.END_ID not in ids
        assert vocab.decode(ids) == text


def test_unknown_characters_become_unk_and_are_counted():
    vocab = V.build_vocab(["hello world"])
    ids = vocab.encode("hello 😂 wörld")
    assert list(ids == V.UNK_ID).count(True) == 2 and vocab.count_unknown("hello 😂 wörld") == 2
    assert vocab.decode(ids, unk="?") == "hello ? w?rld"
    counts, _, _ = V.count_chars(["hello 😂 wörld", "öö"])
    cov = V.coverage(vocab, counts)
    assert cov["characters"] == 15 and cov["unknown"] == 4 and cov["distinct_unknown"] == 2
    assert cov["coverage"] == pytest.approx(11 / 15, abs=1e-7)
    assert cov["top_unknown"][0] == ["U+00F6", "ö", 3]


def test_count_chars_handles_many_chunks(monkeypatch):
    monkeypatch.setattr(V, "_COUNT_CHUNK", 5)
    counts, n_docs, n_chars = V.count_chars(["abc", "aé", "", "ccccc", "a"])
    assert counts == {"a": 3, "b": 1, "c": 6, "é": 1} and n_docs == 5 and n_chars == 11


def test_save_load_keeps_tokens_hash_and_build_record(tmp_path: Path):
    vocab = V.build_vocab(["abcabc x"], min_count=1, max_size=10)
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert data["specials"] == {"END": 0, "UNK": 1} and data["hash"] == vocab.hash and data["max_size"] == 10
    again = V.Vocab.load(tmp_path / "vocab.json")
    assert again == vocab and again.hash == vocab.hash and again.extra["train_characters"] == 8


def _write_splits(root: Path, val_extra: str) -> None:
    corpus = make_corpus(30, sources=("forum",))
    (root / "data/split").mkdir(parents=True)
    n = corpus.num_rows
    pq.write_table(corpus.slice(0, n - 10), root / "data/split/train.parquet")
    val = corpus.slice(n - 10).to_pylist()
    val[0]["text"] += val_extra
    val[0]["n_chars"] = len(val[0]["text"])
    pq.write_table(pa.Table.from_pylist(val, schema=CLEAN_SCHEMA), root / "data/split/val.parquet")


def test_main_builds_from_train_only_and_reports_coverage(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_splits(tmp_path, "ŁŁŁ ≠")  # characters that exist only in val
    write_params("params.yaml", {"vocab": {"min_count": 1, "max_size": 100}})
    V.main([])
    vocab = V.Vocab.load("data/vocab.json")
    assert "Ł" not in vocab.tokens and "≠" not in vocab.tokens
    metrics = json.loads(Path("metrics/vocab.json").read_text(encoding="utf-8"))
    assert metrics["size"] == len(vocab) and metrics["hash"] == vocab.hash
    assert metrics["train"]["coverage"] == 1.0 and metrics["train"]["unknown"] == 0
    assert metrics["val"]["unknown"] == 4 and metrics["val"]["coverage"] < 1.0
    assert [row[1] for row in metrics["val"]["top_unknown"]] == ["Ł", "≠"]


@pytest.mark.parametrize("vocab, message", [
    ({"min_count": 0}, "params.yaml: vocab.min_count = 0: expected an integer >= 1"),
    ({"max_size": 2}, "params.yaml: vocab.max_size = 2: expected an integer >= 3"),
    ({"max_size": "big"}, "vocab.max_size = 'big': expected an integer or null"),
    ({"size": 10}, "unknown key(s) vocab.size"),
])
def test_bad_params_are_clear_errors(tmp_path: Path, monkeypatch, vocab, message):
    monkeypatch.chdir(tmp_path)
    _write_splits(tmp_path, "")
    write_params("params.yaml", {"vocab": vocab})
    with pytest.raises(ParamsError) as err:
        V.main([])
    assert message in str(err.value)


def test_empty_train_split_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_splits(tmp_path, "")
    pq.write_table(pq.read_table("data/split/train.parquet").slice(0, 0), "data/split/train.parquet")
    write_params("params.yaml")
    with pytest.raises(ValueError, match="empty train split"):
        V.main([])
