"""A tiny, complete pipeline output tree for the evaluate and report tests.

Builds, under a folder: data/split/{train,val,test}.parquet (CLEAN_SCHEMA), data/clean and
data/dedup files, data/raw, data/vocab.json, a small LSTM trained for a few seeded steps (helpers.tiny_model) and
saved with save_trained, the metrics JSON files, plots/train.csv, reports/{samples,evolution}.jsonl and a
params.yaml. Untrusted text with <script> and <img onerror> is planted in a post and a sample.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA, DUPLICATES_SCHEMA, RAW_SCHEMA
from pipeline.vocab import Vocab
from tests.helpers.params import write_params
from tests.helpers.tiny_model import train_tiny

XSS_POST = 'Nice deal lah <script>alert("pwned")</script> and <img src=x onerror="alert(1)"> ok'
XSS_SAMPLE = '<img src=x onerror="document.title=1"><script>alert(2)</script>'
COPIED = "the quick brown fox jumps over the lazy dog while kopi"  # planted verbatim in a sample

WORDS = ["kopi", "teh", "uncle", "auntie", "makan", "shiok", "the", "price", "very", "(cheap)", '"ok"', "lah", "can"]


def _docs(rng: np.random.Generator, n: int) -> list[str]:
    docs = []
    for _ in range(n):
        lines = [" ".join(rng.choice(WORDS, rng.integers(3, 9))) for _ in range(rng.integers(1, 4))]
        docs.append("\n".join(lines))
    return docs


def _clean_table(texts: list[str], split: str) -> pa.Table:
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [{"doc_id": hashlib.sha256(f"demo\x1f{split}{i}".encode()).hexdigest()[:16], "source": "demo",
             "board": "edmw", "thread_id": f"{split}{i // 3}", "thread_title": "t", "post_id": f"{split}{i}",
             "position": i % 3, "author_hash": "h", "posted_at": t0, "text": t, "n_chars": len(t),
             "quoted_post_ids": []} for i, t in enumerate(texts)]
    return pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def build_project(root: Path) -> dict:
    """Write the whole tree under ``root``; return a few facts the tests check against."""
    from model.artifacts import save_trained

    rng = np.random.default_rng(7)
    train, val, test = _docs(rng, 120) + [COPIED + " lah"], [XSS_POST] + _docs(rng, 20), _docs(rng, 20)
    for name, texts in (("train", train), ("val", val), ("test", test)):
        (root / "data/split").mkdir(parents=True, exist_ok=True)
        pq.write_table(_clean_table(texts, name), root / f"data/split/{name}.parquet")
    (root / "data/clean").mkdir(parents=True, exist_ok=True)
    (root / "data/dedup").mkdir(parents=True, exist_ok=True)
    (root / "data/raw").mkdir(parents=True, exist_ok=True)
    pq.write_table(_clean_table(train + val + test + ["dup"], "all"), root / "data/clean/posts.parquet")
    pq.write_table(_clean_table(train + val + test, "all"), root / "data/dedup/corpus.parquet")
    pq.write_table(pa.Table.from_pylist([
        {"doc_id": "a1", "source": "demo", "reason": "too_short", "detail": "<b>2 chars</b>"},
        {"doc_id": "a2", "source": "demo", "reason": "too_short", "detail": None},
        {"doc_id": "a3", "source": "demo", "reason": "low_letters", "detail": "0.1"}], schema=DROPPED_SCHEMA),
        root / "data/clean/dropped.parquet")
    pq.write_table(pa.Table.from_pylist([{"doc_id": "d1", "kept_doc_id": "k1", "source": "demo", "kind": "exact",
                                          "similarity": 1.0}], schema=DUPLICATES_SCHEMA),
                   root / "data/dedup/duplicates.parquet")
    pq.write_table(RAW_SCHEMA.empty_table(), root / "data/raw/demo.parquet")

    vocab = Vocab.from_counts(Counter("".join(train)), n_docs=len(train))
    vocab.save(root / "data/vocab.json")
    model, cfg = train_tiny(train, vocab, steps=30)
    save_trained(root / "models/lstm", model, vocab, {"network": cfg.to_dict(), "params": {}, "epochs": 1})

    metrics = root / "metrics"
    (metrics / "crawl").mkdir(parents=True, exist_ok=True)
    for name, data in {"crawl/demo": {"pages": 3, "posts": 165, "note": "<script>x</script>"},
                       "clean": {"kept": 162, "dropped": {"too_short": 2, "low_letters": 1}},
                       "dedupe": {"exact": 1, "near": 0}, "split": {"train": len(train), "val": 20, "test": 21},
                       "vocab": {"size": len(vocab), "coverage": {"val": 1.0}}, "batches": {"efficiency": 0.97},
                       "train": {"val_bpc": 3.1, "epochs": 2, "tokens_per_s": 1234.5}}.items():
        (metrics / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    (root / "plots").mkdir(exist_ok=True)
    (root / "plots/train.csv").write_text("epoch,train_loss,val_loss,val_bpc,lr,tokens_per_s\n"
                                          "1,2.9,2.7,3.9,0.002,1000\n2,2.2,2.1,3.03,0.001,1100\n", encoding="utf-8")
    _jsonl(root / "reports/evolution.jsonl", [
        {"epoch": e, "temperature": 0.7, "prime": p, "text": f" epoch {e} text"}
        for e in (1, 2) for p in ("kopi", "<b>")])
    _jsonl(root / "reports/samples.jsonl", [
        {"prime": "kopi", "method": "sample", "temperature": 0.5, "seed": 1, "text": " zzqx " + COPIED + " qqzz",
         "mean_logprob": -1.2},
        {"prime": "", "method": "sample", "temperature": 1.0, "seed": 2, "text": XSS_SAMPLE,
         "mean_logprob": -2.5},
        {"prime": "teh", "method": "greedy", "temperature": None, "seed": None, "text": " kopi kopi",
         "mean_logprob": -0.9, "ended": True},
        {"prime": "teh", "method": "beam", "temperature": None, "seed": None, "text": " lah lah",
         "mean_logprob": -0.8}])
    write_params(root / "params.yaml", {"evaluate": {"ngram_order": 4},
                                        "report": {"snippet_chars": 60, "analysis_chars": 800}})
    return {"train": train, "val": val, "test": test, "vocab": vocab}


def run_stages(root: Path) -> None:
    """Run the evaluate and report stages on the tree, with every path explicit."""
    from model import evaluate, report

    evaluate.main(["--model", str(root / "models/lstm"), "--split-dir", str(root / "data/split"),
                   "--samples", str(root / "reports/samples.jsonl"), "--out", str(root / "metrics/eval.json"),
                   "--novelty-out", str(root / "reports/novelty.jsonl"), "--params", str(root / "params.yaml")])
    report.main(["--root", str(root), "--out", str(root / "reports/index.html"),
                 "--summary", str(root / "reports/summary.md"), "--params", str(root / "params.yaml")])


_BUILT: dict[str, tuple[Path, dict]] = {}


def shared_project(tmp_path_factory) -> tuple[Path, dict]:
    """Build and run once per test session; the evaluate and report tests share the tree (read only)."""
    if "tree" not in _BUILT:
        root = tmp_path_factory.mktemp("evalproj")
        facts = build_project(root)
        run_stages(root)
        _BUILT["tree"] = (root, facts)
    return _BUILT["tree"]
