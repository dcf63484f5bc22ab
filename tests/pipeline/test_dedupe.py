"""Stage dedupe (pipeline/dedupe.py): exact and near duplicates, survivor rule, accounting, MinHash estimates."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow.parquet as pq

from contracts.schemas import CLEAN_SCHEMA, DUPLICATES_SCHEMA
from pipeline import dedupe, dedupe_core, minhash
from pipeline.clean import CleanConfig, doc_id_for, run_clean
from tests.helpers.params import stage_config, write_params
from tests.helpers.raw_posts import raw_row, write_raw, xf_quote

LONG_POST = ("Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him. "
             "The evil that men do lives after them; the good is oft interred with their bones; so let it "
             "be with Caesar. The noble Brutus hath told you Caesar was ambitious: if it were so, it was a "
             "grievous fault, and grievously hath Caesar answered it.")
WORDS = ("when shall we three meet again in thunder lightning or rain hurly burly done battle lost won "
         "ere set sun where place upon heath there to meet with macbeth fair foul hover through fog filthy air").split()


def essay(rng: random.Random, n: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def pipeline_run(tmp_path, rows, **cfg):
    raw = write_raw(tmp_path / "raw" / "demo.parquet", rows)
    clean_dir = tmp_path / "clean"
    run_clean([raw], clean_dir / "posts.parquet", clean_dir / "dropped.parquet",
              stage_config("clean", CleanConfig, workers=1))
    metrics = dedupe.run_dedupe(clean_dir / "posts.parquet", tmp_path / "dedup" / "corpus.parquet",
                                tmp_path / "dedup" / "duplicates.parquet",
                                stage_config("dedupe", dedupe.DedupeConfig, workers=1, **cfg),
                                clean_dir / "dropped.parquet")
    corpus = pq.read_table(tmp_path / "dedup" / "corpus.parquet")
    dups = pq.read_table(tmp_path / "dedup" / "duplicates.parquet")
    assert corpus.schema.equals(CLEAN_SCHEMA) and dups.schema.equals(DUPLICATES_SCHEMA)
    return corpus.to_pylist(), dups.to_pylist(), metrics


def test_near_copy_found_and_earlier_kept(tmp_path):
    rng = random.Random(1)
    original = essay(rng, 80)
    copy = original.replace("thunder", "thunders", 1).replace("rain", "rains", 1)[:-1] + "!!"
    assert copy != original
    rows = [raw_row("later", copy, minutes=30), raw_row("orig", original, minutes=5),
            raw_row("other", essay(rng, 80), minutes=10)]
    corpus, dups, metrics = pipeline_run(tmp_path, rows)
    assert sorted(c["post_id"] for c in corpus) == ["orig", "other"]
    assert len(dups) == 1
    assert dups[0]["doc_id"] == doc_id_for("demo", "later") and dups[0]["kept_doc_id"] == doc_id_for("demo", "orig")
    assert dups[0]["kind"] == "near" and 0.8 <= dups[0]["similarity"] < 1.0
    assert metrics["near_duplicates"] == 1 and metrics["duplicate_clusters"] == 1


def test_exact_duplicates_ignore_case_and_spacing_tie_broken_by_doc_id(tmp_path):
    rows = [raw_row("a", "Out, damned spot!  Out, I say!", minutes=1),
            raw_row("b", "out, damned spot! out, i say!", minutes=1),
            raw_row("c", "Out, damned spot! Out, I say!", minutes=0)]
    corpus, dups, _ = pipeline_run(tmp_path, rows)
    assert [c["post_id"] for c in corpus] == ["c"]
    assert {d["kind"] for d in dups} == {"exact"} and {d["similarity"] for d in dups} == {1.0}
    assert {d["kept_doc_id"] for d in dups} == {doc_id_for("demo", "c")}


def test_replies_quoting_the_same_long_post_are_not_merged(tmp_path):
    rows = [raw_row("1", LONG_POST, minutes=0),
            raw_row("2", xf_quote("1", "ANTONY", LONG_POST) + "A fine speech, though I doubt the crowd was listening.",
                    minutes=1),
            raw_row("3", xf_quote("1", "ANTONY", LONG_POST) + "Brutus will not like this; expect trouble at the forum.",
                    minutes=2)]
    corpus, dups, _ = pipeline_run(tmp_path, rows)
    assert [c["post_id"] for c in corpus] == ["1", "2", "3"] and dups == []


def test_accounting_per_source_and_main(tmp_path, monkeypatch):
    rng = random.Random(2)
    base = [essay(rng) for _ in range(5)]
    rows = [raw_row(f"p{i}", t, minutes=i) for i, t in enumerate(base)]
    rows += [raw_row("dup0", base[0], minutes=50), raw_row("near1", base[1][:-1] + "?", minutes=51),
             raw_row("empty", "", minutes=52), raw_row("x1", base[2], source="other", minutes=53)]
    write_raw(tmp_path / "data" / "raw" / "demo.parquet", [r for r in rows if r["source"] == "demo"])
    write_raw(tmp_path / "data" / "raw" / "other.parquet", [r for r in rows if r["source"] == "other"])
    write_params(tmp_path / "params.yaml", {"clean": {"workers": 1}, "dedupe": {"workers": 2, "batch_rows": 3},
                                           "crawl": {"sources": ["demo", "other"]}})
    monkeypatch.chdir(tmp_path)
    from pipeline import clean
    clean.main([])
    dedupe.main([])
    cm = json.loads((tmp_path / "metrics" / "clean.json").read_text())
    dm = json.loads((tmp_path / "metrics" / "dedupe.json").read_text())
    for src, raw in {"demo": 8, "other": 1}.items():
        p = dm["per_source"][src]
        assert cm["per_source"][src]["raw"] == raw == p["raw"]
        assert raw == p["kept"] + cm["per_source"][src]["dropped_total"] + p["exact"] + p["near"]
    assert dm["per_source"]["demo"]["exact"] == 1 and dm["per_source"]["demo"]["near"] == 1
    assert 0 < dm["bytes_out"] < dm["bytes_in"] and 0 < dm["chars_kept"] < cm["chars_kept"]
    # "x1" in source "other" copies an earlier demo post: the earlier one survives
    assert dm["per_source"]["other"]["kept"] == 0
    corpus = pq.read_table(tmp_path / "data" / "dedup" / "corpus.parquet")
    assert corpus.num_rows == 5 and len(set(corpus.column("doc_id").to_pylist())) == 5


def test_minhash_estimate_tracks_true_jaccard():
    rng = random.Random(3)
    errors = []
    for _ in range(40):
        a = essay(rng, 50)
        chars = list(a)
        for _ in range(rng.randint(1, 25)):
            chars[rng.randrange(len(chars))] = rng.choice("xyzq")
        b = "".join(chars)
        sa = {a[i:i + 5] for i in range(len(a) - 4)}
        sb = {b[i:i + 5] for i in range(len(b) - 4)}
        true = len(sa & sb) / len(sa | sb)
        sig = minhash.signatures([a, b], shingle=5, num_perm=128)
        errors.append(minhash.similarity(sig, np.array([0]), np.array([1]))[0] - true)
    assert abs(np.mean(errors)) < 0.03 and np.std(errors) < 0.06


def test_signatures_independent_of_batch_composition():
    texts = ["short", "", "a", "Now is the winter of our discontent made glorious summer"]
    together = minhash.signatures(texts)
    alone = np.vstack([minhash.signatures([t]) for t in texts])
    assert (together == alone).all()
    assert (together[1] == minhash.EMPTY).all() and (together[2] != minhash.EMPTY).all()


def test_empty_clean_corpus(tmp_path):
    corpus, dups, metrics = pipeline_run(tmp_path, [raw_row("1", ""), raw_row("2", "   ")])
    assert corpus == [] and dups == [] and metrics["docs_in"] == 0
    assert metrics["per_source"]["demo"] == {"in": 0, "kept": 0, "exact": 0, "near": 0, "dropped_clean": 2,
                                             "raw": 2, "duplicates": 0}


def test_candidate_pairs_min_shared_bands_and_rank_order():
    keys = np.array([[1, 5, 9], [1, 6, 9], [2, 6, 8], [1, 5, 9]], dtype=np.uint64)
    rank = np.array([3, 2, 1, 0])  # document 3 is the earliest
    pairs = minhash.candidate_pairs(keys, rank, window=8, min_bands=1)
    assert {tuple(p) for p in pairs.tolist()} == {(1, 0), (3, 0), (3, 1), (2, 1)}
    pairs = minhash.candidate_pairs(keys, rank, window=8, min_bands=2)
    assert {tuple(p) for p in pairs.tolist()} == {(3, 0), (1, 0), (3, 1)}
    assert {tuple(p) for p in minhash.candidate_pairs(keys, rank, min_bands=3).tolist()} == {(3, 0)}


def test_survivor_rule_has_no_chains():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32 - 1, 128, dtype=np.uint32)
    b = a.copy()
    b[:10] += 1  # J(a, b) ~ 0.92
    c = b.copy()
    c[100:120] += 1  # J(b, c) ~ 0.84, J(a, c) ~ 0.77
    d = a.copy()  # exact text duplicate of a, posted later
    docs = {"doc_id": np.array([b"c", b"a", b"b", b"d"], dtype="S16"), "posted": np.array([3, 1, 2, 4]),
            "exact": np.array([30, 10, 20, 10], dtype=np.uint64), "near": np.ones(4, dtype=bool),
            "sig": np.stack([c, a, b, d]), "source": np.array(["s"] * 4, dtype=object)}
    dup_of, kind, sim = dedupe_core.find_duplicates(docs, stage_config("dedupe", dedupe.DedupeConfig))
    assert kind.tolist() == [0, 0, 2, 1]  # c kept (its only match, b, was removed), a kept, b near, d exact
    assert dup_of.tolist() == [-1, -1, 1, 1]
    assert 0.9 < sim[2] < 1.0 and sim[3] == 1.0


def test_source_codes_number_names_in_order_of_first_appearance():
    from pipeline.dedupe import source_codes

    names: dict[str, int] = {}
    one = source_codes(np.array(["forum", "forum"], dtype=object), names)  # one source: the vectorised case
    mixed = source_codes(np.array(["wiki", "forum", "news"], dtype=object), names)
    assert one.tolist() == [0, 0] and mixed.tolist() == [1, 0, 2]
    assert names == {"forum": 0, "wiki": 1, "news": 2}
    assert source_codes(np.array([], dtype=object), names).tolist() == []
