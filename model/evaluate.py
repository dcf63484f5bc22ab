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
documents by length (``length_buckets``: upper bounds in characters) and gives the LSTM's, the
Kneser-Ney model's and PPMd's bits per character in each, so the report can show where the LSTM
wins and loses.

Memory does not grow with the corpus (model/splits.py reads every file a record batch at a time):

- the baselines read a bounded, seeded sample of the train split: whole documents holding at most
  ``baseline_train_chars`` characters (``model.splits.sample_texts``; the whole split, in file
  order, when it fits, as the demo's does). Unigram, Kneser-Ney (about 64 bytes per character while
  fitting), the compressors and PPMd all start from that same text; ``baseline_train`` in
  eval.json says how much of the split it was;
- the test split (all of it, or its first documents up to ``max_test_chars``) is streamed in
  pieces of about ``STREAM_CHARS`` characters: every model scores a piece, totals and the
  ``by_length`` groups are added up, and nothing per document outlives its piece. PPMd's test
  documents go to a temporary file its worker reads (``baselines.DocStore``);
- the compressors, PPMd and novelty run in two spawned worker processes beside the LSTM (each
  reads the split files itself: xz -9's 0.7 GB stays out of the process holding TensorFlow);
- PPMd's order is chosen on the val split's first documents up to ``ppmd_val_chars`` characters;
- novelty streams the whole train split once (model/novelty.py: the samples' words and automaton
  are all it holds).

Params (``evaluate`` section): ``ngram_order`` (Kneser-Ney order), ``unigram_alpha`` (add-alpha
smoothing), ``batch_size`` and ``max_len`` (LSTM evaluation batches), ``max_test_chars`` (0 = the
whole test split; else the first documents up to that many characters, for every model alike),
``baseline_train_chars`` and ``baseline_seed`` (the baselines' train sample), ``compressors`` (any
of gzip_9, bzip2_9, xz_9), ``ppmd_orders``, ``ppmd_memory_mb``, ``ppmd_val_chars``,
``carry_state``, ``length_buckets``.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from model import baselines, kernels, novelty
from model.splits import iter_texts, sample_texts, text_chunks
from pipeline.common import load_params, read_jsonl, setup_logging, write_json_atomic, write_jsonl_atomic
from pipeline.config import section, setting
from pipeline.vocab import END_ID, UNK_ID, Vocab

log = logging.getLogger(__name__)
STREAM_CHARS = 1_000_000  # test characters every model scores at a time (the demo's test split is one piece)


@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` section of params.yaml (meanings there)."""

    ngram_order: int = setting(ge=1)
    unigram_alpha: float = setting(gt=0)
    batch_size: int = setting(ge=1)
    max_len: int = setting(ge=1)
    max_test_chars: int = setting(ge=0)
    baseline_train_chars: int = setting(ge=0)  # every baseline's train text: a seeded sample of whole documents
    baseline_seed: int = setting(ge=0)
    compressors: list[str] = setting(choices=baselines.COMPRESSORS)
    ppmd_orders: list[int] = setting(ge=2, le=baselines.PPMD_MAX_ORDER)  # tried on val, best scored on test; [] = off
    ppmd_memory_mb: int = setting(ge=1, le=4000)  # PPMd model memory (its restart point when full)
    ppmd_val_chars: int = setting(ge=0)  # val text PPMd's order is chosen on: the first whole documents (0 = all)
    carry_state: bool  # a window of a long document starts from the state the previous one ended with
    length_buckets: list[int] = setting(ge=1)  # by_length: upper bounds (characters) of the document groups


def read_texts(path: str | Path) -> list[str]:
    """The ``text`` column of a split file, in file order; None becomes '' (and is counted). Holds
    the whole file: for small files (the stage itself streams them)."""
    return list(iter_texts(path))


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


class LengthTally:
    """``by_length`` added up piece by piece: per group of documents by length (characters up to
    each bound, then the rest), documents, targets and each model's bits."""

    def __init__(self, bounds: Sequence[int]) -> None:
        self.edges = np.asarray(sorted(set(int(b) for b in bounds)), dtype=np.int64)
        self.documents = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.targets = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.bits: dict[str, list[float]] = {}

    @property
    def groups(self) -> int:
        return len(self.edges) + 1

    def group_of(self, lengths: np.ndarray) -> np.ndarray:
        """Each length's group index."""
        return np.searchsorted(self.edges, lengths, side="right")

    def add(self, lengths: np.ndarray, bits: Mapping[str, np.ndarray]) -> None:
        """Documents of ``lengths`` characters, with each model's per-document total bits."""
        group = self.group_of(lengths)
        for g in np.unique(group).tolist():
            sel = group == g
            self.documents[g] += int(sel.sum())
            self.targets[g] += int((lengths[sel] + 1).sum())
            for name, b in bits.items():
                self.add_group(name, g, float(b[sel].sum()))

    def add_group(self, name: str, group: int, bits: float) -> None:
        self.bits.setdefault(name, [0.0] * self.groups)[group] += bits

    def rows(self) -> list[dict[str, Any]]:
        out, low = [], 0
        for g, high in enumerate([*self.edges.tolist(), None]):
            if self.documents[g]:
                targets = int(self.targets[g])
                row: dict[str, Any] = {"chars": f"{low}-{high - 1}" if high is not None else f"{low}+",
                                       "documents": int(self.documents[g]), "targets": targets}
                row.update({f"{name}_bpc": round(b[g] / targets, 4) for name, b in self.bits.items()})
                out.append(row)
            low = high or low
        return out


def by_length(docs: Sequence[np.ndarray], bits: dict[str, np.ndarray], bounds: Sequence[int]) -> list[dict[str, Any]]:
    """Per group of documents by length (characters up to each bound, then the rest): documents,
    targets and each model's bits per character (``bits``: per-document total bits by model)."""
    tally = LengthTally(bounds)
    tally.add(np.asarray([len(d) for d in docs], dtype=np.int64), bits)
    return tally.rows()


def per_document_bits(log2probs: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-document total bits from per-target log2 probabilities (n + 1 targets per document, in order)."""
    starts = np.concatenate([[0], np.cumsum([len(d) + 1 for d in docs])[:-1]]).astype(np.int64)
    return -np.add.reduceat(log2probs, starts) if len(docs) else np.zeros(0)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``(fn(*args), seconds)``: a worker process's job, timed where it runs."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


class Ppmd:
    """PPMd's part of the stage, in the pool's worker processes: every order of ``ppmd_orders``
    scored on the val split's first ``ppmd_val_chars`` characters (started at once), the best (the
    lowest order on a tie) on the test documents the stage streams into ``test_store``, each
    document on its own after the train sample (model/baselines.py); the test split as one stream
    beside it."""

    def __init__(self, pool: Executor, train: Sequence[np.ndarray], vocab: Vocab, val_path: Path,
                 cfg: Mapping[str, Any], folder: Path, groups: int) -> None:
        self.started, self.seconds = time.perf_counter(), 0.0
        self.pool, self.memory = pool, int(cfg["ppmd_memory_mb"])
        self.prime = baselines.render_docs(train, vocab)
        states = baselines.ppmd_states(len(self.prime))
        self.n_val = 0
        with baselines.DocStore(folder / "val", states) as val:
            for texts in text_chunks(val_path, STREAM_CHARS, int(cfg["ppmd_val_chars"])):
                for doc in baselines.render_docs([vocab.encode(t) for t in texts], vocab):
                    val.add(doc)
                    self.n_val += len(doc)
        if not val.documents:
            raise ValueError("the val split is empty: PPMd's order is chosen on it (or set evaluate.ppmd_orders: [])")
        self.orders = sorted(set(int(o) for o in cfg["ppmd_orders"]))
        self.val = baselines.ppmd_scores(self.prime, [("val", o) for o in self.orders], {"val": val}, self.memory,
                                         pool)
        self.test_store = baselines.DocStore(folder / "test", states, groups)

    def finish(self, n_test: int) -> tuple[dict[str, Any], np.ndarray]:
        """PPMd's entry in ``models`` and its test bits per length group (``seconds``: since it started,
        beside the other models)."""
        self.test_store.close()
        val_bpc = {o: float(self.val[("val", o)].result()[0].sum()) / self.n_val for o in self.orders}
        best = min(self.orders, key=lambda o: (val_bpc[o], o))
        bits, stream = baselines.ppmd_scores(self.prime, [("test", best)], {"test": self.test_store}, self.memory,
                                             self.pool)[("test", best)].result()
        log.info("ppmd: order %d chosen on val (%s); test %.4f bits/char per document, %.4f as one stream", best,
                 ", ".join(f"{o}: {b:.4f}" for o, b in val_bpc.items()), bits.sum() / n_test, stream / n_test)
        entry = {**baselines.bits_summary(float(bits.sum()), n_test), "order": best,
                 "val_bpc_by_order": {str(o): round(b, 6) for o, b in val_bpc.items()},
                 "stream_bpc": stream / n_test, "memory_mb": self.memory,
                 "context_chars": sum(len(d) for d in self.prime), "val_targets": self.n_val}
        self.seconds = time.perf_counter() - self.started
        return entry, bits


@dataclass
class TestScores:
    """What the pass over the test split adds up: documents, targets, UNKs; total bits and seconds by
    model; Kneser-Ney's discounts by order."""

    documents: int = 0
    targets: int = 0
    unknown: int = 0
    bits: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    discounts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, bits: float, since: float, clock: str | None = None) -> None:
        """``bits`` more for ``name``, and the seconds since ``since`` (on ``clock``: default ``name``)."""
        self.bits[name] = self.bits.get(name, 0.0) + bits
        clock = clock or name
        self.seconds[clock] = self.seconds.get(clock, 0.0) + time.perf_counter() - since


def score_test(model, vocab: Vocab, train: Sequence[np.ndarray], test_path: Path, cfg: Mapping[str, Any],
               tally: LengthTally, store: baselines.DocStore | None = None,
               chunk_chars: int = STREAM_CHARS) -> TestScores:
    """One pass over the test documents (the first up to ``max_test_chars``), a piece at a time: the
    LSTM (when ``model``), unigram and Kneser-Ney totals, ``tally``'s groups, and each document
    rendered into ``store`` (PPMd's) with its length group."""
    out = TestScores()
    t0 = time.perf_counter()
    probs = baselines.unigram_probs(train, len(vocab), float(cfg["unigram_alpha"]))
    out.add("unigram", 0.0, t0)
    t0 = time.perf_counter()
    kn_name = f"kneser_ney_{int(cfg['ngram_order'])}"
    kn = baselines.KneserNey(len(vocab), int(cfg["ngram_order"])).fit(train)
    out.discounts = {f"order_{k}": round(d, 6) for k, d in enumerate(kn.discounts, 1)}
    out.add(kn_name, 0.0, t0, "kneser_ney")
    for texts in text_chunks(test_path, chunk_chars, int(cfg["max_test_chars"])):
        docs = [vocab.encode(t) for t in texts]
        lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
        doc_bits: dict[str, np.ndarray] = {}
        if model is not None:
            t0 = time.perf_counter()
            doc_bits["lstm"] = lstm_doc_nats(model, docs, batch_size=int(cfg["batch_size"]),
                                             max_len=int(cfg["max_len"]),
                                             carry_state=bool(cfg["carry_state"])) / math.log(2)
            out.add("lstm", float(doc_bits["lstm"].sum()), t0)
        t0 = time.perf_counter()
        out.add("unigram", float(-np.log2(probs[baselines.targets_of(docs)]).sum()), t0)
        t0 = time.perf_counter()
        lp = kn.log2probs(docs)
        doc_bits[kn_name] = per_document_bits(lp, docs)
        out.add(kn_name, float(-lp.sum()), t0, "kneser_ney")
        tally.add(lengths, doc_bits)
        if store is not None:
            for doc, group in zip(baselines.render_docs(docs, vocab), tally.group_of(lengths).tolist()):
                store.add(doc, group)
        out.documents += len(docs)
        out.targets += baselines.count_targets(docs)
        out.unknown += int(sum(int(np.count_nonzero(d == UNK_ID)) for d in docs))
    return out


def evaluate(model, vocab: Vocab, split_dir: str | Path, samples: list[dict], cfg: Mapping[str, Any], *,
             chunk_chars: int = STREAM_CHARS) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All measurements as the ``metrics/eval.json`` dict, plus per-sample novelty rows, from the
    split files in ``split_dir`` (read in bounded passes: module docstring)."""
    split = Path(split_dir)
    texts, seen = sample_texts(split / "train.parquet", int(cfg["baseline_train_chars"]), int(cfg["baseline_seed"]))
    train = [vocab.encode(t) for t in texts]
    del texts
    log.info("baselines read %d of the %d train documents (%d of %d characters)", seen.documents,
             seen.split_documents, seen.characters, seen.split_characters)
    test = baselines.RenderedSplit(str(split / "test.parquet"), vocab, int(cfg["max_test_chars"]), chunk_chars)
    tally = LengthTally(cfg["length_buckets"])
    with baselines.spawn_pool(2) as pool, tempfile.TemporaryDirectory(prefix="kopitiam-evaluate-") as tmp:
        # PPMd's val orders first: its test job, the longest, can start only once they are done
        ppmd = Ppmd(pool, train, vocab, split / "val.parquet", cfg, Path(tmp), tally.groups) \
            if cfg["ppmd_orders"] else None
        jobs: dict[str, Future] = {"novelty": pool.submit(_timed, novelty_summary, samples,
                                                          str(split / "train.parquet"))}
        prime = baselines.render_text(train, vocab)
        jobs.update({name: pool.submit(_timed, baselines.compressor_cost, name, prime, test)
                     for name in cfg["compressors"]})
        del prime
        scores = score_test(model, vocab, train, split / "test.parquet", cfg, tally,
                            ppmd.test_store if ppmd else None, chunk_chars)
        del train
        models = {name: baselines.bits_summary(bits, scores.targets) for name, bits in scores.bits.items()}
        seconds = dict(scores.seconds)
        if "lstm" in models:
            models["lstm"]["carry_state"] = bool(cfg["carry_state"])
        models[f"kneser_ney_{int(cfg['ngram_order'])}"]["discounts"] = scores.discounts
        if ppmd is not None:
            models["ppmd"], group_bits = ppmd.finish(scores.targets)
            for g, b in enumerate(group_bits.tolist()):
                tally.add_group("ppmd", g, b)
            seconds["ppmd"] = ppmd.seconds
        for name in cfg["compressors"]:
            bits, seconds[name] = jobs[name].result()
            models[name] = baselines.bits_summary(bits, scores.targets)
            log.info("%s: %.4f bits/char", name, models[name]["bpc"])
        (summary, rows), seconds["novelty"] = jobs["novelty"].result()
    result: dict[str, Any] = {
        "test": {"documents": scores.documents, "characters": scores.targets - scores.documents,
                 "targets": scores.targets, "unknown_characters": scores.unknown},
        "baseline_train": seen.as_dict(),
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
    result["by_length"] = tally.rows()
    result["novelty"] = summary
    result["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return result, rows


def generated_part(sample: dict) -> str:
    """The text the model generated: ``text`` is the continuation, the prime excluded."""
    return str(sample.get("text") or "")


def novelty_summary(samples: list[dict], train_path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Novelty of the samples against the train split at ``train_path`` (streamed once)."""
    if not samples:
        return {"samples": 0, "note": "no samples to measure (reports/samples.jsonl missing or empty)"}, []
    texts = [generated_part(s) for s in samples]
    vocab, copies = novelty.scan_train(texts, iter_texts(train_path))
    share, novel, total = novelty.novel_word_share(texts, vocab)
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
    """Every params value the stage reads: the ``evaluate`` section, and ``kernels`` under ``kernels``."""
    return {**section("evaluate", EvaluateConfig, params), "kernels": kernels.load_config(params)}


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
    kernels.pin(cfg["kernels"], "model.evaluate")
    from model.artifacts import load_trained

    model, vocab, _ = load_trained(args.model)
    split = Path(args.split_dir)
    samples_path = Path(args.samples)
    samples = read_jsonl(samples_path) if samples_path.exists() else []
    if not samples:
        log.warning("%s missing or empty: novelty is not measured", samples_path)
    result, rows = evaluate(model, vocab, split, samples, cfg)
    write_json_atomic(args.out, result)
    write_jsonl_atomic(args.novelty_out, rows, sort_keys=False)
    m = result["models"]
    log.info("evaluated %d test documents (%d targets): %s; novelty over %d samples",
             result["test"]["documents"], result["test"]["targets"],
             ", ".join(f"{k} {v['bpc']:.3f}" for k, v in m.items()), result["novelty"]["samples"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
