"""Stage evaluate (model/evaluate.py): the LSTM's masked test loss, counted on the baselines' targets.

The loss is over [END, chars..., END], counted on the same targets as every baseline; the stage runs end
to end on a tiny trained model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from model.evaluate import by_length, generated_part, lstm_doc_nats, lstm_nats, per_document_bits
from pipeline.vocab import END_ID
from tests.helpers.eval_project import COPIED, shared_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    from model import evaluate
    from pipeline.common import ParamsError
    from tests.helpers.params import write_params

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


def _stage_cfg(root, **changes):
    from model import evaluate
    from pipeline.common import load_params

    return {**evaluate.load_config(load_params(root / "params.yaml")), **changes}


def test_test_split_streamed_in_pieces_gives_the_in_memory_numbers(project):
    """The stage scores the test split a piece at a time; every model scored on all of it at once,
    in memory (the compressors in one call each), gives the same numbers."""
    import bz2
    import gzip
    import lzma

    from model import baselines, evaluate
    from model.artifacts import load_trained

    root, facts = project
    model, vocab, _ = load_trained(root / "models/lstm")
    cfg = _stage_cfg(root, ppmd_orders=[4])
    got, _ = evaluate.evaluate(model, vocab, root / "data/split", [], cfg, chunk_chars=40)
    train = [vocab.encode(t) for t in facts["train"]]
    test = [vocab.encode(t) for t in facts["test"]]
    n = baselines.count_targets(test)
    assert got["test"]["targets"] == n and got["test"]["documents"] == len(test) > 5  # many 40-char pieces
    assert got["baseline_train"] == {"documents": len(train), "characters": sum(map(len, facts["train"])),
                                     "split_documents": len(train), "split_characters": sum(map(len, facts["train"])),
                                     "max_chars": cfg["baseline_train_chars"], "seed": cfg["baseline_seed"],
                                     "sampled": False}
    m = got["models"]
    kn = baselines.KneserNey(len(vocab), 4).fit(train)
    kn_lp = kn.log2probs(test)
    assert m["kneser_ney_4"]["bpc"] == pytest.approx(-kn_lp.sum() / n, rel=1e-12)
    lp = baselines.unigram_log2probs(train, test, len(vocab), cfg["unigram_alpha"])
    assert m["unigram"]["bpc"] == pytest.approx(-lp.sum() / n, rel=1e-12)
    train_b = baselines.render_text(train, vocab).encode()
    test_b = baselines.render_text(test, vocab).encode()
    for name, compress in {"gzip_9": lambda b: gzip.compress(b, 9, mtime=0), "bzip2_9": lambda b: bz2.compress(b, 9),
                           "xz_9": lambda b: lzma.compress(b, preset=9)}.items():
        assert m[name]["bpc"] == 8.0 * (len(compress(train_b + test_b)) - len(compress(train_b))) / n, name
    ppmd_bits, stream = baselines.ppmd_doc_bits(baselines.render_docs(train, vocab),
                                                baselines.render_docs(test, vocab), 4, cfg["ppmd_memory_mb"])
    assert m["ppmd"]["bpc"] == ppmd_bits.sum() / n and m["ppmd"]["stream_bpc"] == stream / n
    lstm = evaluate.lstm_doc_nats(model, test, batch_size=cfg["batch_size"], max_len=cfg["max_len"],
                                  carry_state=cfg["carry_state"]) / math.log(2)
    assert m["lstm"]["bpc"] == pytest.approx(lstm.sum() / n, rel=1e-6)
    whole = by_length(test, {"lstm": lstm, "kneser_ney_4": evaluate.per_document_bits(kn_lp, test),
                             "ppmd": ppmd_bits}, cfg["length_buckets"])
    assert [{k: v for k, v in g.items() if k != "lstm_bpc"} for g in got["by_length"]] == \
        [{k: v for k, v in g.items() if k != "lstm_bpc"} for g in whole]
    assert [g["lstm_bpc"] for g in got["by_length"]] == pytest.approx([g["lstm_bpc"] for g in whole], abs=1e-4)
    stage = json.loads((root / "metrics/eval.json").read_text())  # the stage's own run: one piece, ppmd 4..8
    assert stage["models"]["lstm"]["bpc"] == pytest.approx(m["lstm"]["bpc"], rel=1e-6)
    assert {k: stage["models"][k]["bpc"] for k in ("unigram", "kneser_ney_4", "gzip_9", "bzip2_9", "xz_9")} == \
        {k: m[k]["bpc"] for k in ("unigram", "kneser_ney_4", "gzip_9", "bzip2_9", "xz_9")}


def test_baselines_fit_on_the_bounded_seeded_train_sample(project):
    from model import baselines, evaluate
    from model.splits import sample_texts
    from pipeline.vocab import Vocab

    root, facts = project
    cfg = _stage_cfg(root, baseline_train_chars=400, baseline_seed=5, ppmd_orders=[3], compressors=["gzip_9"])
    vocab = Vocab.load(root / "models/lstm/vocab.json")
    got, _ = evaluate.evaluate(None, vocab, root / "data/split", [], cfg)  # no LSTM: the baselines alone
    seen = got["baseline_train"]
    assert seen["sampled"] and 400 - 60 < seen["characters"] <= 400 and seen["seed"] == 5
    assert seen["split_documents"] == len(facts["train"]) > seen["documents"]
    texts, _ = sample_texts(root / "data/split/train.parquet", 400, 5)
    train = [vocab.encode(t) for t in texts]
    test = [vocab.encode(t) for t in facts["test"]]
    lp = baselines.unigram_log2probs(train, test, len(vocab), cfg["unigram_alpha"])
    assert got["models"]["unigram"]["bpc"] == pytest.approx(-lp.sum() / baselines.count_targets(test), rel=1e-12)
    assert got["models"]["ppmd"]["context_chars"] == seen["characters"] + seen["documents"]  # each with its END
    again, _ = evaluate.evaluate(None, vocab, root / "data/split", [], cfg)
    assert again["models"] == got["models"] and "comparison" not in got
