"""Stage evaluate (issue 7): the LSTM's masked test loss over [END, chars..., END], counted on the
same targets as every baseline, and the stage end to end on a tiny trained model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from eval_project import COPIED, shared_project

from model.evaluate import by_length, generated_part, lstm_doc_nats, lstm_nats, per_document_bits
from pipeline.vocab import END_ID


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


def test_lstm_loss_equals_direct_softmax_per_document(project):
    from model.artifacts import load_trained

    root, facts = project
    model, vocab, _ = load_trained(root / "models/lstm")
    docs = [vocab.encode(t) for t in facts["test"][:3]]
    nats, count = lstm_nats(model, docs, batch_size=2, max_len=10_000)
    expected = 0.0
    for d in docs:
        seq = np.concatenate([[END_ID], d, [END_ID]]).astype(np.int32)
        logits = np.asarray(model(seq[None, :-1]), dtype=np.float64)[0]
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        expected += float((logz - logits[np.arange(len(seq) - 1), seq[1:]]).sum())
    assert count == sum(len(d) + 1 for d in docs)
    assert nats == pytest.approx(expected, rel=1e-5)
    # windows of 7 that carry the state are one pass over each document: the same loss
    carried, count_carried = lstm_nats(model, docs, batch_size=3, max_len=7, carry_state=True)
    assert count_carried == count and carried == pytest.approx(expected, rel=1e-5)
    # without carrying, every window starts from zero with the previous window's last target as input
    fresh = lstm_doc_nats(model, docs, batch_size=3, max_len=7, carry_state=False)
    for d, got in zip(docs, fresh):
        seq = np.concatenate([[END_ID], d, [END_ID]]).astype(np.int32)
        want = 0.0
        for start in range(0, len(seq) - 1, 7):
            x, y = seq[start:start + 7], seq[start + 1:start + 8]
            logits = np.asarray(model(x[None, :len(y)]), dtype=np.float64)[0]
            logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
            want += float((logz - logits[np.arange(len(y)), y]).sum())
        assert got == pytest.approx(want, rel=1e-5)
    assert any(len(d) + 1 > 7 for d in docs) and fresh.sum() != pytest.approx(expected, rel=1e-7)


def test_by_length_groups_documents_and_weights_characters():
    docs = [np.zeros(n, dtype=np.int32) for n in (3, 10, 70, 200)]
    bits = {"a": np.array([4.0, 11.0, 71.0, 201.0]), "b": np.array([8.0, 22.0, 142.0, 402.0])}
    groups = by_length(docs, bits, [64, 128])
    assert [g["chars"] for g in groups] == ["0-63", "64-127", "128+"]
    assert [g["documents"] for g in groups] == [2, 1, 1] and groups[0]["targets"] == 4 + 11
    assert [g["a_bpc"] for g in groups] == [1.0, 1.0, 1.0] and groups[2]["b_bpc"] == 2.0
    # per-target log2 probabilities summed back per document (n + 1 targets each)
    lp = -np.ones(sum(len(d) + 1 for d in docs))
    assert per_document_bits(lp, docs).tolist() == [4.0, 11.0, 71.0, 201.0]


def test_eval_json_has_lstm_beside_every_baseline(project):
    root, facts = project
    ev = json.loads((root / "metrics/eval.json").read_text())
    assert set(ev["models"]) == {"lstm", "unigram", "kneser_ney_4", "ppmd", "gzip_9", "bzip2_9", "xz_9"}
    targets = sum(len(t) + 1 for t in facts["test"])
    assert ev["test"]["targets"] == targets and ev["test"]["documents"] == len(facts["test"])
    for name, m in ev["models"].items():
        assert m["targets"] == targets, name
        assert m["nats_per_char"] == pytest.approx(m["bpc"] * math.log(2))
        assert m["perplexity"] == pytest.approx(2 ** m["bpc"])
        assert 0 < m["bpc"] < 10, name
    assert ev["comparison"]["best_baseline"] in ev["models"]
    others = {k: v["bpc"] for k, v in ev["models"].items() if k != "lstm"}
    assert ev["comparison"]["lstm_beats_all"] == (ev["models"]["lstm"]["bpc"] < min(others.values()))


def test_ppmd_order_is_chosen_on_val_and_scored_per_document_on_test(project):
    root, facts = project
    ev = json.loads((root / "metrics/eval.json").read_text())
    ppmd = ev["models"]["ppmd"]
    by_order = {int(k): v for k, v in ppmd["val_bpc_by_order"].items()}
    assert sorted(by_order) == [4, 5, 6, 7, 8]  # evaluate.ppmd_orders of the repository's params
    assert ppmd["order"] == min(by_order, key=lambda o: (by_order[o], o))
    assert ppmd["context_chars"] == sum(len(t) + 1 for t in facts["train"])  # all of it: under the bound
    assert 0 < ppmd["stream_bpc"] < 10 and ppmd["memory_mb"] == 256
    groups = ev["by_length"]  # per-document bits, so PPMd is split by length as the LSTM is
    assert all("ppmd_bpc" in g for g in groups)
    total = sum(g["ppmd_bpc"] * g["targets"] for g in groups) / sum(g["targets"] for g in groups)
    assert total == pytest.approx(ppmd["bpc"], abs=1e-3)  # group figures are rounded to 4 decimals


def test_novelty_finds_the_planted_copy(project):
    root, _ = project
    ev = json.loads((root / "metrics/eval.json").read_text())
    rows = [json.loads(line) for line in (root / "reports/novelty.jsonl").read_text().splitlines()]
    assert len(rows) == ev["novelty"]["samples"] == 4
    planted = rows[0]
    assert COPIED in planted["longest_copy_text"] and planted["longest_copy"] >= len(COPIED)
    assert ev["novelty"]["longest_copy_max"] == planted["longest_copy"]
    assert 0 < ev["novelty"]["novel_word_share"] < 1  # "zzqx", "qqzz" are new; "kopi" is not


def test_helpers():
    assert generated_part({"prime": "ab", "text": "abcd"}) == "abcd"  # text is the continuation already
    assert generated_part({"prime": "ab", "text": None}) == ""


def test_bad_params_are_clear_errors(tmp_path):
    from helpers.params import write_params

    from model import evaluate
    from pipeline.common import ParamsError

    params = write_params(tmp_path / "params.yaml", {"evaluate": {"compressors": ["gzip_9", "zstd_19"]}})
    with pytest.raises(ValueError, match="evaluate.compressors.*zstd_19"):
        evaluate.main(["--params", str(params), "--model", str(tmp_path / "none")])
    write_params(params, {"evaluate": {"ngram_ordr": 3}})
    with pytest.raises(ParamsError, match="evaluate.ngram_ordr"):
        evaluate.main(["--params", str(params), "--model", str(tmp_path / "none")])


def test_split_without_text_column_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from model.evaluate import read_texts

    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "test.parquet")
    with pytest.raises(ValueError,
                       match=r"test.parquet: missing column\(s\) text; expected CLEAN_SCHEMA .*columns found: body"):
        read_texts(tmp_path / "test.parquet")
    with pytest.raises(FileNotFoundError, match="dvc repro split"):
        read_texts(tmp_path / "missing.parquet")
