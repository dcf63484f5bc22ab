"""Tiny in-memory training runs for the train, carry and distribute tests, also run as a script (``SCRIPT``).

Batches follow docs/contracts.md: each document is ``[END, c1..cn, END]``, inputs ``seq[:-1]``,
targets ``seq[1:]``, right-padded with END to the batch's bucket length, mask 1 on real targets.

    python tests/helpers/train_tiny.py OUT_DIR [key=value ...]   # trains, writes OUT_DIR/{model,ckpt,...}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve()  # what the subprocess tests run
ROOT = SCRIPT.parents[2]
if str(ROOT) not in sys.path:  # run as a script, the repository root is not on the path
    sys.path.insert(0, str(ROOT))

from pipeline.vocab import END_ID, Vocab  # noqa: E402

WORDS = "the cat sat on a mat and the dog ran to the big red barn while birds sang".split()


def corpus(n_docs: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) + "." for _ in range(n_docs)]


def vocab_for(texts: list[str]) -> Vocab:
    counts: dict[str, int] = {}
    for t in texts:
        for c in t:
            counts[c] = counts.get(c, 0) + 1
    return Vocab.from_counts(counts, n_docs=len(texts))


def encode_batches(texts: list[str], vocab: Vocab, batch_size: int = 8, buckets=(16, 32, 64)):
    """Contract-shaped numpy batches: list of (inputs, targets, mask), one bucket length each."""
    seqs = []
    for t in texts:
        ids = np.concatenate([[END_ID], vocab.encode(t), [END_ID]]).astype(np.int32)
        seqs.append(ids)
    by_bucket: dict[int, list[np.ndarray]] = {}
    for s in seqs:
        n = len(s) - 1
        b = next(b for b in buckets if n <= b)
        by_bucket.setdefault(b, []).append(s)
    out = []
    for b, group in sorted(by_bucket.items()):
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            x = np.zeros((len(chunk), b), np.int32)
            y = np.zeros((len(chunk), b), np.int32)
            m = np.zeros((len(chunk), b), np.float32)
            for r, s in enumerate(chunk):
                n = len(s) - 1
                x[r, :n], y[r, :n], m[r, :n] = s[:-1], s[1:], 1.0
            out.append((x, y, m))
    return out


def make_data(n_train: int = 96, n_val: int = 24, seed: int = 0, poison_batch: int | None = None):
    """(vocab, train_data(seed) -> tf.data.Dataset, val_data() -> tf.data.Dataset, texts...).
    ``poison_batch``: that batch of every epoch gets a NaN in its mask (a NaN loss, for tests)."""
    import tensorflow as tf

    from model.data import share_rows

    train_texts, val_texts = corpus(n_train, seed), corpus(n_val, seed + 1)
    vocab = vocab_for(train_texts + val_texts)
    train_b, val_b = encode_batches(train_texts, vocab), encode_batches(val_texts, vocab)

    def gen(batches, share=None):
        if share is not None:  # this worker's rows of every batch, as model.data reads them
            batches = [tuple(t[share_rows(len(t), *share)] for t in batch) for batch in batches]
        sig = (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32),
               tf.TensorSpec([None, None], tf.float32))
        return tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=sig)

    def train_data(s: int, share=None):
        order = np.random.default_rng(s).permutation(len(train_b))
        batches = [train_b[i] for i in order]
        if poison_batch is not None:
            x, y, m = batches[poison_batch]
            m = m.copy()
            m[0, 0] = np.nan
            batches[poison_batch] = (x, y, m)
        return gen(batches, share)

    return vocab, train_data, lambda share=None: gen(val_b, share), train_texts, val_texts


def tiny_config(**overrides) -> dict:
    from model.train import load_config
    from tests.helpers.params import repo_params

    # params.yaml's train section, tiny; learning_rate 0.002 and no time cap: what these tests were tuned with
    cfg = load_config(repo_params({"train": {
        "seed": 7, "epochs": 2, "checkpoint_every_steps": 3, "warmup_steps": 2, "learning_rate": 0.002,
        "max_minutes": 0, "model": {"embedding_dim": 8, "hidden_size": 16, "num_layers": 2, "dropout": 0.1},
        "evolution": {"primes": ["", "the "], "temperatures": [0.7], "length": 20, "seed": 3},
    }}))
    for key, value in overrides.items():
        if "." in key:
            a, b = key.split(".", 1)
            cfg[a] = {**cfg[a], b: value}
        else:
            cfg[key] = value
    return cfg


class SlowSteps:
    """A callback that sleeps after every step, so a test can kill the run mid-epoch."""

    def __new__(cls, seconds: float):
        import time

        import keras

        class _Slow(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                time.sleep(seconds)

        return _Slow()


def run(out: Path, vocab=None, sleep: float = 0.0, poison_batch: int | None = None, task_index: int | None = None,
        **overrides):
    from model.train import fit

    data_vocab, train_data, val_data, _, _ = make_data(poison_batch=poison_batch)
    return fit(tiny_config(**overrides), vocab=vocab or data_vocab, train_data=train_data, val_data=val_data,
               model_dir=out / "model", checkpoint_dir=out / "ckpt", csv_path=out / "train.csv",
               evolution_path=out / "evolution.jsonl", tensorboard_dir=out / "tb", verbose=0,
               extra_callbacks=[SlowSteps(sleep)] if sleep else None, task_index=task_index)


if __name__ == "__main__":
    out_dir = Path(sys.argv[1])
    kv = {}
    for arg in sys.argv[2:]:
        k, v = arg.split("=", 1)
        kv[k] = json.loads(v)
    _, summary = run(out_dir, **kv)
    print(json.dumps(summary))
