"""The tiny trained character LSTM of the model tests, and the Keras ground truth to compare with.

``train_tiny`` fits a seeded model on documents laid out as the contract says (``[END, doc, END]``,
inputs ``seq[:-1]``, targets ``seq[1:]``, END-padded, mask 1 on real targets); ``tiny_lstm_dir``
saves the shared one (conftest's ``tiny_lstm`` fixture) with ``save_trained``, as the train stage
does. ``keras_logits``/``keras_probs``/``keras_greedy`` run the full Keras model on a whole prefix:
what the NumPy sampler, the export and the browser page must reproduce.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.vocab import END_ID, Vocab

# Short documents, so the model learns to produce END and streams stop at different lengths.
DOCS = ["the cat sat on the mat.", "a dog ran.", "the dog sat.", "cats nap on mats all day long.",
        "ok.", "the rat ate the oat.", "a cat and a dog and a rat.", "no."]


def vocab_for(docs: Sequence[str]) -> Vocab:
    return Vocab.from_counts(Counter("".join(docs)), n_docs=len(docs))


def train_tiny(docs: Sequence[str], vocab: Vocab, *, embedding_dim: int = 8, hidden_size: int = 24,
               steps: int = 30, batch_size: int = 16, seed: int = 0):
    """``(model, NetworkConfig)``: a 2-layer LSTM fitted with Adam(0.02) for about ``steps`` batches
    of ``batch_size`` documents (the documents repeated, in order; one epoch)."""
    import keras

    from model.network import NetworkConfig, build_model

    keras.utils.set_random_seed(seed)
    config = NetworkConfig(vocab_size=len(vocab), embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=2,
                           dropout=0.0, mixed_precision=False)
    model = build_model(config)
    seqs = [np.concatenate([[END_ID], vocab.encode(d), [END_ID]]) for d in docs]
    width = max(len(s) for s in seqs) - 1
    x = np.full((len(seqs), width), END_ID, dtype=np.int32)
    y = np.full((len(seqs), width), END_ID, dtype=np.int32)
    mask = np.zeros((len(seqs), width), dtype=np.float32)
    for i, s in enumerate(seqs):
        x[i, :len(s) - 1], y[i, :len(s) - 1], mask[i, :len(s) - 1] = s[:-1], s[1:], 1.0
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reps = max(1, steps * batch_size // len(seqs))
    tile = lambda a: np.tile(a, (reps, 1))  # noqa: E731
    model.fit(tile(x), tile(y), sample_weight=tile(mask), batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return model, config


def tiny_lstm_dir(base: Path) -> Path:
    """``base/tiny-lstm``: a 2 x LSTM(32) trained 60 full batches of DOCS, saved; reused when present."""
    out = base / "tiny-lstm"
    if (out / "meta.json").exists():
        return out
    from model.artifacts import save_trained

    vocab = vocab_for(DOCS)
    model, config = train_tiny(DOCS, vocab, embedding_dim=16, hidden_size=32, steps=60, batch_size=len(DOCS))
    save_trained(out, model, vocab, {"network": config.to_dict(), "params": {}, "epochs": 1})
    return out


_TRACED: dict[int, object] = {}


def keras_logits(model, ids: Sequence[int]) -> np.ndarray:
    """Logits (T, V) of the full Keras model over the whole sequence (traced once for any length)."""
    import tensorflow as tf

    if id(model) not in _TRACED:
        _TRACED[id(model)] = tf.function(lambda x: model(x, training=False),
                                         input_signature=[tf.TensorSpec([1, None], tf.int32)])
    return np.asarray(_TRACED[id(model)](tf.constant([list(ids)], dtype=tf.int32)))[0]


def keras_probs(model, ids: Sequence[int]) -> np.ndarray:
    """Softmax (float64) of the full Keras model's logits after each token of ``ids``."""
    from model.lstm_numpy import softmax

    return softmax(np.asarray(keras_logits(model, ids), dtype=np.float64))


def keras_greedy(model, vocab: Vocab, prime: str, length: int) -> str:
    """Greedy continuation by running the full model on the growing prefix END + prime + ...: the
    tutorial loop, and the ground truth any sampler must reproduce. Stops at END (not included)."""
    ids = [END_ID, *vocab.encode(prime).tolist()]
    out: list[int] = []
    for _ in range(length):
        tok = int(np.argmax(keras_logits(model, ids)[-1]))
        if tok == END_ID:
            break
        out.append(tok)
        ids.append(tok)
    return vocab.decode(out)


def lstm_sequence_model(model, name: str):
    """A Keras model from the network's input to LSTM layer ``name``'s output sequence (the layer
    also returns its final state, see model/network.py)."""
    import keras

    out = model.get_layer(name).output
    return keras.Model(model.input, out[0] if isinstance(out, (list, tuple)) else out)
