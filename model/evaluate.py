"""Stage `evaluate`: the LSTM's test loss beside honest baselines, and the novelty of its samples.

Reads ``models/lstm/`` (load_trained), ``data/split/{train,val,test}.parquet`` (``text`` column) and
``reports/samples.jsonl``. Writes ``metrics/eval.json`` (a DVC metric) and
``reports/novelty.jsonl`` (one line per sample: its longest verbatim copy and novel-word share).

What is measured (the same symbols for every model): the test split, each document encoded with
the model's vocabulary (characters outside it are UNK) as ``[END, c1..cn, END]``; the n + 1 targets
``c1..cn, END`` per document. The LSTM runs on these sequences itself (not through data/batches:
this keeps the stage self-contained and independent of batching params), in windows of ``max_len``
targets; with ``carry_state`` (whatever training's ``batches.carry_state``: measured better either way) each window
starts from the state the previous window of its document ended with, which is exactly one pass
over the whole document; without it every window starts from zero (the contract's chunk rule). The
loss is the masked mean over real targets, in nats per character, bits per character and perplexity.
Baselines (model/baselines.py) are fitted on the train split and score the same targets. The LSTM
scores each document from a zero state (no context from other test documents); so do unigram,
Kneser-Ney (each document left-padded with END) and PPMd (each document coded alone from the state
reading the train text left; its order chosen on the val split). gzip, bzip2 and xz read the test
split as one stream, so they also see the test documents before each one: an advantage, stated.

``comparison`` names the best baseline and the LSTM's margin over it; ``by_length`` splits the test
documents by length (``length_buckets``: upper bounds in characters) and gives the LSTM's and the
Kneser-Ney model's bits per character in each, so the report can show where the LSTM wins and loses.

Params (``evaluate`` section): ``ngram_order`` (Kneser-Ney order, default 5), ``unigram_alpha``
(add-alpha smoothing), ``batch_size`` and ``max_len`` (LSTM evaluation batches), ``max_test_chars``
(0 = the whole test split; else the first documents up to that many characters, for every model
alike), ``compressors`` (any of gzip_9, bzip2_9, xz_9), ``carry_state``, ``length_buckets``,
``ppmd_orders`` (tried on val; [] = no PPMd), ``ppmd_memory_mb``, ``ppmd_context_chars``. Reads
``data/split/val.parquet`` too when PPMd is on.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from contracts.schemas import check_columns
from model import baselines, novelty
from pipeline.common import load_params, read_jsonl, setup_logging, write_json_atomic, write_jsonl_atomic
from pipeline.config import section, setting
from pipeline.vocab import END_ID, UNK_ID, Vocab

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` section of params.yaml (meanings there)."""

    ngram_order: int = setting(ge=1)
    unigram_alpha: float = setting(gt=0)
    batch_size: int = setting(ge=1)
    max_len: int = setting(ge=1)
    max_test_chars: int = setting(ge=0)
    compressors: list[str] = setting(choices=baselines.COMPRESSORS)
    ppmd_orders: list[int] = setting(ge=2, le=baselines.PPMD_MAX_ORDER)  # tried on val, best scored on test; [] = off
    ppmd_memory_mb: int = setting(ge=1, le=4000)  # PPMd model memory (its restart point when full)
    ppmd_context_chars: int = setting(ge=0)  # train text PPMd reads first: the last whole documents up to this
    carry_state: bool  # a window of a long document starts from the state the previous one ended with
    length_buckets: list[int] = setting(ge=1)  # by_length: upper bounds (characters) of the document groups


def read_texts(path: str | Path) -> list[str]:
    """The ``text`` column of a split file, in file order; None becomes '' (and is counted)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro split` first")
    check_columns(pq.read_schema(path), ["text"], origin=str(path), expected="CLEAN_SCHEMA (a split file)")
    texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    nulls = sum(t is None for t in texts)
    if nulls:
        log.warning("%s: %d documents with a null text, measured as empty documents", path, nulls)
    return [t or "" for t in texts]


def limit_chars(texts: list[str], max_chars: int) -> list[str]:
    """The first documents holding at most ``max_chars`` characters (at least one); 0 = all."""
    if max_chars <= 0:
        return texts
    out, total = [], 0
    for t in texts:
        if out and total + len(t) > max_chars:
            break
        out.append(t)
        total += len(t)
    return out


def lstm_doc_nats(model, docs: Sequence[np.ndarray], *, batch_size: int, max_len: int,
                  carry_state: bool = True) -> np.ndarray:
    """Negative log-likelihood (nats) of each document's n + 1 targets under ``model``, scored in
    windows of ``max_len`` targets that carry the LSTM state from one to the next (``carry_state``)
    or start from zero each."""
    import tensorflow as tf

    from model.network import with_state

    if max_len < 1:
        raise ValueError(f"evaluate.max_len must be >= 1, got {max_len}")
    stepper = with_state(model)
    units = [int(s.shape[-1]) for s in stepper.inputs[1:]]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2 +
                 [[tf.TensorSpec([None, u], tf.float32) for u in units]])
    def window_nll(inputs, targets, states):  # one graph for every batch shape (eager Keras LSTMs are slow)
        logits, *final = stepper([inputs, *states], training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
        return nll, [tf.cast(f, tf.float32) for f in final]

    order = sorted(range(len(docs)), key=lambda i: (len(docs[i]), i))
    out = np.zeros(len(docs), dtype=np.float64)
    for b in tqdm(range(0, len(order), batch_size), desc="lstm test", unit="batch", leave=False):
        group = order[b:b + batch_size]
        width = max(len(docs[i]) for i in group) + 1
        seqs = np.full((len(group), width + 1), END_ID, dtype=np.int32)
        mask = np.zeros((len(group), width), dtype=np.float64)
        for row, i in enumerate(group):
            seqs[row, 1:len(docs[i]) + 1] = docs[i]
            mask[row, :len(docs[i]) + 1] = 1.0
        zero = [tf.zeros((len(group), u)) for u in units]
        states = zero
        for start in range(0, width, max_len):
            stop = min(start + max_len, width)
            nll, states = window_nll(tf.constant(seqs[:, start:stop]), tf.constant(seqs[:, start + 1:stop + 1]),
                                     states if carry_state else zero)
            out[group] += (nll.numpy().astype(np.float64) * mask[:, start:stop]).sum(axis=1)
    return out


def lstm_nats(model, docs: Sequence[np.ndarray], *, batch_size: int, max_len: int,
              carry_state: bool = True) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of every target of ``docs`` under ``model``, and the count."""
    per_doc = lstm_doc_nats(model, docs, batch_size=batch_size, max_len=max_len, carry_state=carry_state)
    return float(per_doc.sum()), baselines.count_targets(docs)


def by_length(docs: Sequence[np.ndarray], bits: dict[str, np.ndarray], bounds: Sequence[int]) -> list[dict[str, Any]]:
    """Per group of documents by length (characters up to each bound, then the rest): documents,
    targets and each model's bits per character (``bits``: per-document total bits by model)."""
    lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    edges = sorted(set(int(b) for b in bounds))
    groups, low = [], 0
    for high in [*edges, None]:
        sel = (lengths >= low) & (lengths < high) if high is not None else lengths >= low
        if sel.any():
            targets = int((lengths[sel] + 1).sum())
            row: dict[str, Any] = {"chars": f"{low}-{high - 1}" if high is not None else f"{low}+",
                                   "documents": int(sel.sum()), "targets": targets}
            row.update({f"{name}_bpc": round(float(b[sel].sum()) / targets, 4) for name, b in bits.items()})
            groups.append(row)
        low = high or low
    return groups


def per_document_bits(log2probs: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-document total bits from per-target log2 probabilities (n + 1 targets per document, in order)."""
    starts = np.concatenate([[0], np.cumsum([len(d) + 1 for d in docs])[:-1]]).astype(np.int64)
    return -np.add.reduceat(log2probs, starts) if len(docs) else np.zeros(0)


def ppmd_baseline(train: Sequence[np.ndarray], val: Sequence[np.ndarray], test: Sequence[np.ndarray], vocab: Vocab,
                  cfg: Mapping[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """PPMd's entry in ``models`` and its per-document test bits: every order of ``ppmd_orders`` scored
    on the val split, the best (the lowest order on a tie) on the test split, each document on its
    own after the train text (model/baselines.py); the test split as one stream beside it."""
    if not val:
        raise ValueError("the val split is empty: PPMd's order is chosen on it (or set evaluate.ppmd_orders: [])")
    prime = baselines.ppmd_prime(baselines.render_docs(train, vocab), int(cfg["ppmd_context_chars"]))
    memory = int(cfg["ppmd_memory_mb"])
    orders = sorted(set(int(o) for o in cfg["ppmd_orders"]))
    n_val = baselines.count_targets(val)
    tried = baselines.ppmd_scores(prime, [("val", o) for o in orders], {"val": baselines.render_docs(val, vocab)},
                                  memory)
    val_bpc = {o: float(tried[("val", o)][0].sum()) / n_val for o in orders}
    best = min(orders, key=lambda o: (val_bpc[o], o))
    bits, stream = baselines.ppmd_scores(prime, [("test", best)], {"test": baselines.render_docs(test, vocab)},
                                         memory)[("test", best)]
    n_test = baselines.count_targets(test)
    log.info("ppmd: order %d chosen on val (%s); test %.4f bits/char per document, %.4f as one stream", best,
             ", ".join(f"{o}: {b:.4f}" for o, b in val_bpc.items()), bits.sum() / n_test, stream / n_test)
    entry = {**baselines.bits_summary(float(bits.sum()), n_test), "order": best,
             "val_bpc_by_order": {str(o): round(b, 6) for o, b in val_bpc.items()},
             "stream_bpc": stream / n_test, "memory_mb": memory, "context_chars": sum(len(d) for d in prime)}
    return entry, bits


def evaluate(model, vocab: Vocab, train_texts: list[str], test_texts: list[str], samples: list[dict],
             cfg: dict[str, Any], val_texts: list[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All measurements as the ``metrics/eval.json`` dict, plus per-sample novelty rows (``val_texts``:
    where PPMd's order is chosen)."""
    train = [vocab.encode(t) for t in train_texts]
    test = [vocab.encode(t) for t in limit_chars(test_texts, int(cfg["max_test_chars"]))]
    n_targets = baselines.count_targets(test)
    models: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}

    doc_bits: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    if model is not None:
        doc_bits["lstm"] = lstm_doc_nats(model, test, batch_size=int(cfg["batch_size"]), max_len=int(cfg["max_len"]),
                                         carry_state=bool(cfg["carry_state"])) / math.log(2)
        models["lstm"] = {**baselines.bits_summary(float(doc_bits["lstm"].sum()), n_targets),
                          "carry_state": bool(cfg["carry_state"])}
    seconds["lstm"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lp = baselines.unigram_log2probs(train, test, len(vocab), float(cfg["unigram_alpha"]))
    models["unigram"] = baselines.bits_summary(-lp.sum(), n_targets)
    seconds["unigram"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    order = int(cfg["ngram_order"])
    kn = baselines.KneserNey(len(vocab), order).fit(train)
    kn_log2probs = kn.log2probs(test)
    doc_bits[f"kneser_ney_{order}"] = per_document_bits(kn_log2probs, test)
    models[f"kneser_ney_{order}"] = {**baselines.bits_summary(-kn_log2probs.sum(), n_targets),
                                     "discounts": {f"order_{k}": round(d, 6) for k, d in enumerate(kn.discounts, 1)}}
    seconds["kneser_ney"] = time.perf_counter() - t0

    if cfg["ppmd_orders"]:
        t0 = time.perf_counter()
        val = [vocab.encode(t) for t in val_texts or []]
        models["ppmd"], doc_bits["ppmd"] = ppmd_baseline(train, val, test, vocab, cfg)
        seconds["ppmd"] = time.perf_counter() - t0
    train_text, test_text = baselines.render_text(train, vocab), baselines.render_text(test, vocab)
    for name in cfg["compressors"]:
        t0 = time.perf_counter()
        models[name] = baselines.bits_summary(baselines.compressor_bits(name, train_text, test_text), n_targets)
        seconds[name] = time.perf_counter() - t0
        log.info("%s: %.4f bits/char", name, models[name]["bpc"])

    result: dict[str, Any] = {
        "test": {"documents": len(test), "characters": n_targets - len(test), "targets": n_targets,
                 "unknown_characters": int(sum(int(np.count_nonzero(d == UNK_ID)) for d in test)),
                 "train_documents": len(train), "train_characters": int(sum(len(d) for d in train))},
        "models": models,
    }
    if "lstm" in models:
        base = {k: v["bpc"] for k, v in models.items() if k != "lstm"}
        best = min(base, key=base.__getitem__)
        lstm_bpc = models["lstm"]["bpc"]
        result["comparison"] = {"best_baseline": best, "best_baseline_bpc": base[best], "lstm_bpc": lstm_bpc,
                                "lstm_beats_all": bool(lstm_bpc < base[best]),
                                "margin_bpc": round(base[best] - lstm_bpc, 6),  # > 0: the LSTM is better
                                "margin_percent": round(100.0 * (base[best] - lstm_bpc) / base[best], 3)}
    result["by_length"] = by_length(test, doc_bits, cfg["length_buckets"])
    t0 = time.perf_counter()
    result["novelty"], rows = novelty_summary(samples, train_texts)
    seconds["novelty"] = time.perf_counter() - t0
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return result, rows


def generated_part(sample: dict) -> str:
    """The text the model generated: ``text`` is the continuation, the prime excluded."""
    return str(sample.get("text") or "")


def novelty_summary(samples: list[dict], train_texts: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not samples:
        return {"samples": 0, "note": "no samples to measure (reports/samples.jsonl missing or empty)"}, []
    texts = [generated_part(s) for s in samples]
    vocab = novelty.train_vocabulary(train_texts)
    share, novel, total = novelty.novel_word_share(texts, vocab)
    copies = novelty.longest_copies(texts, train_texts)
    rows = []
    for s, text, c in zip(samples, texts, copies):
        s_share, s_novel, s_total = novelty.novel_word_share([text], vocab)
        rows.append({k: s.get(k) for k in ("prime", "method", "temperature", "seed")} |
                    {"chars": len(text), "words": s_total, "novel_words": s_novel, "novel_word_share": s_share,
                     "longest_copy": c.length, "longest_copy_text": c.text, "longest_copy_start": c.start})
    lengths = [c.length for c in copies]
    return {"samples": len(samples), "word_tokens": total, "novel_word_tokens": novel, "novel_word_share": share,
            "longest_copy_max": int(max(lengths)), "longest_copy_median": float(median(lengths)),
            "longest_copy_mean": sum(lengths) / len(lengths)}, rows


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``evaluate`` section."""
    return section("evaluate", EvaluateConfig, params)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/lstm")
    parser.add_argument("--split-dir", default="data/split")
    parser.add_argument("--samples", default="reports/samples.jsonl")
    parser.add_argument("--out", default="metrics/eval.json")
    parser.add_argument("--novelty-out", default="reports/novelty.jsonl")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(load_params(args.params))
    from model.artifacts import load_trained

    model, vocab, _ = load_trained(args.model)
    split = Path(args.split_dir)
    samples_path = Path(args.samples)
    samples = read_jsonl(samples_path) if samples_path.exists() else []
    if not samples:
        log.warning("%s missing or empty: novelty is not measured", samples_path)
    result, rows = evaluate(model, vocab, read_texts(split / "train.parquet"), read_texts(split / "test.parquet"),
                            samples, cfg, val_texts=read_texts(split / "val.parquet") if cfg["ppmd_orders"] else None)
    write_json_atomic(args.out, result)
    write_jsonl_atomic(args.novelty_out, rows, sort_keys=False)
    m = result["models"]
    log.info("evaluated %d test documents (%d targets): %s; novelty over %d samples",
             result["test"]["documents"], result["test"]["targets"],
             ", ".join(f"{k} {v['bpc']:.3f}" for k, v in m.items()), result["novelty"]["samples"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
