"""Benchmark the evaluate stage's two heavy parts against naive baselines in the same run.

1. Kneser-Ney 5-gram fit + score (model/baselines.py, NumPy int64 n-gram keys) versus counting the
   same n-grams with a Python Counter over string slices (the usual hand-rolled way; counting only,
   which flatters the baseline), in characters per second.
2. Longest verbatim copy of each sample in the training text (model/novelty.py: a suffix automaton
   over the samples, the training text streamed once) versus the naive matching-statistics scan
   (``sample[i:j] in train`` for growing j, as one would write it with str.find), in seconds.

Prints exactly one JSON object. Usage: python bench/evaluate.py [--mb 3] [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root before bench/ (bench/pipeline.py)

from model.baselines import KneserNey  # noqa: E402
from model.novelty import longest_copies  # noqa: E402
from pipeline.vocab import Vocab  # noqa: E402

CONFIG = {
    "seed": 0,
    "train_mb": 3.0,  # characters of synthetic forum-like text for the n-gram and the novelty runs
    "order": 5,
    "naive_ngram_mb": 0.5,  # the Counter baseline runs on this prefix (then scaled per character)
    "samples": 20,
    "sample_chars": 400,
    "naive_samples": 2,  # the naive copy scan runs on this many samples (then scaled per sample)
}
WORDS = ("kopi teh uncle auntie makan shiok the price very cheap lah can cannot why so expensive one "
         "wah really sian bro got no meh leh hor the and of to in is it that for you was").split()


def synthetic_text(n_chars: int, rng: np.random.Generator) -> list[str]:
    docs, total = [], 0
    while total < n_chars:
        doc = " ".join(rng.choice(WORDS, int(rng.integers(5, 80)))) + rng.choice([".", "!", "?", " lah."])
        docs.append(doc)
        total += len(doc)
    return docs


def naive_longest_copy(sample: str, train: str) -> int:
    best, i, j = 0, 0, 0
    while i < len(sample):
        j = max(j, i)
        while j < len(sample) and sample[i:j + 1] in train:
            j += 1
        best = max(best, j - i)
        i += 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=CONFIG["train_mb"])
    parser.add_argument("--samples", type=int, default=CONFIG["samples"])
    args = parser.parse_args()
    cfg = {**CONFIG, "train_mb": args.mb, "samples": args.samples}
    rng = np.random.default_rng(cfg["seed"])
    docs = synthetic_text(int(cfg["train_mb"] * 1e6), rng)
    text = "\n".join(docs)
    vocab = Vocab.from_counts(Counter(text))
    ids = [vocab.encode(d) for d in docs]
    n_chars = sum(len(d) for d in docs)

    KneserNey(len(vocab), cfg["order"]).fit(ids[:200]).log2probs(ids[:50])  # warm-up
    t0 = time.perf_counter()
    kn = KneserNey(len(vocab), cfg["order"]).fit(ids)
    bpc = float(-kn.log2probs(ids[-2000:]).mean())
    kn_s = time.perf_counter() - t0
    prefix = text[: int(cfg["naive_ngram_mb"] * 1e6)]
    t0 = time.perf_counter()
    counts = [Counter(prefix[i - k:i] for i in range(k, len(prefix) + 1)) for k in range(1, cfg["order"] + 1)]
    naive_s = time.perf_counter() - t0
    kn_rate, naive_rate = n_chars / kn_s, len(prefix) / naive_s

    samples = []
    for _ in range(cfg["samples"]):  # half invented, half with a planted 60-char copy
        s = " ".join(rng.choice(WORDS + ["zzq", "qqx"], 120))[: cfg["sample_chars"]]
        if len(samples) % 2:  # copied from inside one training document
            doc = docs[int(rng.integers(0, len(docs)))]
            while len(doc) < 60:
                doc = docs[int(rng.integers(0, len(docs)))]
            start = int(rng.integers(0, len(doc) - 59))
            s = s[:150] + doc[start:start + 60] + s[210:]
        samples.append(s)
    longest_copies(samples[:2], [text[:100_000]])  # warm-up
    t0 = time.perf_counter()
    copies = longest_copies(samples, docs)
    sam_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = [naive_longest_copy(s, text) for s in samples[: cfg["naive_samples"]]]
    naive_copy_s = time.perf_counter() - t0
    if naive != [c.length for c in copies[: cfg["naive_samples"]]]:
        # the naive scan searches the joined text, so it may cross documents: report, never hide
        mismatch = {"naive": naive, "automaton": [c.length for c in copies[: cfg["naive_samples"]]]}
    else:
        mismatch = None
    per_sample_naive = naive_copy_s / cfg["naive_samples"]
    print(json.dumps({
        "config": cfg, "train_chars": n_chars, "vocab_size": len(vocab),
        "kneser_ney": {"fit_score_s": round(kn_s, 3), "chars_per_s": round(kn_rate),
                       "bpc_on_train_tail": round(bpc, 4)},
        "naive_ngram_counter": {"chars_per_s": round(naive_rate), "ngram_types": sum(len(c) for c in counts)},
        "kneser_ney_speedup": round(kn_rate / naive_rate, 1),
        "novelty_automaton": {"seconds": round(sam_s, 3), "seconds_per_sample": round(sam_s / len(samples), 4),
                              "longest_copy_max": max(c.length for c in copies)},
        "novelty_naive_scan": {"seconds_per_sample": round(per_sample_naive, 3), "samples": cfg["naive_samples"],
                               "mismatch": mismatch},
        "novelty_speedup_per_sample": round(per_sample_naive / (sam_s / len(samples)), 1),
    }))


if __name__ == "__main__":
    main()
