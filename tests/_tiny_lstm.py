"""A tiny trained character LSTM for the export and browser tests, trained once per session.

Not a test module (no ``test_`` prefix); imported by tests/test_export.py and
tests/test_browser_sampler.py. Saved with model.artifacts.save_trained, like the train stage does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

TEXT = ("the cat sat on the mat. the dog ate the hat! a bat and a rat met at the vat.\n"
        "she sells sea shells by the sea shore; the shells she sells are sea shells.\n")


def tiny_model_dir(base: Path) -> Path:
    """``base/tiny-lstm``: a seeded 2 x LSTM(24) fitted for a few epochs; reused when present."""
    out = base / "tiny-lstm"
    if (out / "meta.json").exists():
        return out
    import keras

    from model.artifacts import save_trained
    from model.network import NetworkConfig, build_model
    from pipeline.vocab import END_ID, Vocab

    vocab = Vocab.from_counts(Counter(TEXT), n_docs=1)
    keras.utils.set_random_seed(0)
    config = NetworkConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=24, num_layers=2)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.concatenate([[END_ID], vocab.encode(TEXT * 2), [END_ID]]).astype(np.int32)
    starts = range(0, len(ids) - 41, 5)
    x = np.stack([ids[s:s + 40] for s in starts])
    y = np.stack([ids[s + 1:s + 41] for s in starts])
    model.fit(x, y, epochs=40, batch_size=16, shuffle=False, verbose=0)
    save_trained(out, model, vocab, {"network": config.to_dict(), "params": {"epochs": 40}, "epochs": 40})
    return out


def keras_probs(model, ids: np.ndarray) -> np.ndarray:
    """Softmax (float64) of the full Keras model's logits after each token of ``ids``."""
    logits = np.asarray(model(np.asarray(ids, dtype=np.int32)[None, :], training=False), dtype=np.float64)[0]
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def keras_greedy(model, vocab, prime: str, length: int) -> str:
    """Greedy continuation by running the full Keras model on the growing prefix END + prime + ...:
    the ground truth any sampler must reproduce. Stops at END (not included) or after ``length``.

    The prefix is right-padded to one fixed length so a single traced function serves every step
    (the LSTM is causal: padding after position t cannot change the logits at t)."""
    import tensorflow as tf

    from pipeline.vocab import END_ID

    ids = [END_ID, *vocab.encode(prime).tolist()]
    width = len(ids) + length
    step = tf.function(lambda x: model(x, training=False))
    out: list[int] = []
    for _ in range(length):
        padded = np.full((1, width), END_ID, dtype=np.int32)
        padded[0, :len(ids)] = ids
        nxt = int(np.argmax(np.asarray(step(padded))[0, len(ids) - 1]))
        if nxt == END_ID:
            break
        out.append(nxt)
        ids.append(nxt)
    return vocab.decode(out)
