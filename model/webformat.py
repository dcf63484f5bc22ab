"""The browser model format (``reports/model.json``): encode a trained Keras model, decode it back.

The decoded tensors feed ``LstmWeights.from_tensors`` and ``model.lstm_numpy.run``, the reference
forward pass the JavaScript one (model/web/lstm.js) follows.

One JSON document, readable by ``JSON.parse`` in any browser and by ``json.load`` here::

    {"format": "kopitiam-char-lstm", "version": 1,
     "vocab": {"tokens": ["<END>", "<UNK>", " ", ...], "end_id": 0, "unk_id": 1},
     "vocab_hash": "sha256:...",
     "network": {"vocab_size": V, "embedding_dim": E, "hidden_size": H, "num_layers": L},
     "lstm": {"gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid"},
     "dtype": "float32", "byte_order": "little",
     "tensors": [{"name": "embedding", "shape": [V, E], "offset": 0}, ...],
     "n_params": N, "weights_sha256": "...", "weights_base64": "<4 * N bytes, base64>"}

``tensors`` are in Keras layout and order: ``embedding`` (V, E); per layer ``lstm_<i>/kernel``
(in, 4H), ``lstm_<i>/recurrent_kernel`` (H, 4H), ``lstm_<i>/bias`` (4H), gate blocks i, f, c, o;
``logits/kernel`` (H, V), ``logits/bias`` (V). ``offset`` counts float32 values from the start of
the blob; every tensor is C-ordered. Size: about 5.33 bytes per parameter (4 bytes, base64 4/3),
4.7 MB for the default 2 x LSTM(256) over a 100-character vocabulary. Base64 inside JSON (not a
binary file beside it) because the page must work from ``file://``, where browsers refuse
``fetch``: the same document is inlined into ``reports/sampler.html``.

Float32 is kept exactly (no quantisation): the page's next-character probabilities must match
Python's to 1e-4 and its greedy text must be identical.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np

from model.lstm_numpy import LayoutError, LstmWeights
from pipeline.vocab import END_ID, UNK_ID, Vocab

FORMAT = "kopitiam-char-lstm"
VERSION = 1


class ExportError(ValueError):
    """The model cannot be exported (unexpected layers or shapes), or a document is malformed."""


def model_tensors(model) -> list[tuple[str, np.ndarray]]:
    """The weights the browser needs, in format order, checked against each other's shapes."""
    try:
        weights = LstmWeights.from_keras(model)
    except LayoutError as exc:
        raise ExportError(f"{exc} (the export expects the network of model/network.py)") from None
    return [(name, np.ascontiguousarray(t, dtype="<f4")) for name, t in weights.named_tensors()]


def encode_model(model, vocab: Vocab, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document for ``model`` and its ``vocab`` (refuses a vocabulary of another size)."""
    tensors = model_tensors(model)
    emb = tensors[0][1]
    if emb.shape[0] != len(vocab):
        raise ExportError(f"model embeds {emb.shape[0]} tokens but the vocabulary has {len(vocab)}: "
                          "export the vocabulary the model was trained with")
    meta = meta or {}
    if meta.get("vocab_hash") not in (None, vocab.hash):
        raise ExportError(f"vocabulary hash {vocab.hash} differs from the model's {meta['vocab_hash']}")
    manifest, offset = [], 0
    for name, t in tensors:
        manifest.append({"name": name, "shape": list(t.shape), "offset": offset})
        offset += t.size
    blob = b"".join(t.tobytes() for _, t in tensors)
    n_layers = sum(1 for name, _ in tensors if name.endswith("/recurrent_kernel"))
    return {
        "format": FORMAT,
        "version": VERSION,
        "vocab": {"tokens": list(vocab.tokens), "end_id": END_ID, "unk_id": UNK_ID},
        "vocab_hash": vocab.hash,
        "network": {"vocab_size": int(emb.shape[0]), "embedding_dim": int(emb.shape[1]),
                    "hidden_size": int(tensors[2][1].shape[0]), "num_layers": n_layers},
        "lstm": {"gate_order": "ifco", "activation": "tanh", "recurrent_activation": "sigmoid"},
        "dtype": "float32",
        "byte_order": "little",
        "tensors": manifest,
        "n_params": offset,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "weights_base64": base64.b64encode(blob).decode("ascii"),
        "trained": {k: meta[k] for k in ("epochs", "steps", "val_bpc", "val_loss") if k in meta},
    }


def decode_model(doc: dict[str, Any]) -> tuple[Vocab, dict[str, np.ndarray]]:
    """``(vocab, {tensor name: array})`` from a document, checking format, hash and sizes."""
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ExportError(f"not a {FORMAT} v{VERSION} document "
                          f"(format={doc.get('format')!r}, version={doc.get('version')!r})")
    vocab = Vocab(tuple(doc["vocab"]["tokens"]))
    if vocab.hash != doc.get("vocab_hash"):
        raise ExportError(f"vocab_hash {doc.get('vocab_hash')} does not match the tokens ({vocab.hash})")
    blob = base64.b64decode(doc["weights_base64"])
    if len(blob) != 4 * doc["n_params"] or hashlib.sha256(blob).hexdigest() != doc.get("weights_sha256"):
        raise ExportError(f"weights blob is corrupt: {len(blob)} bytes for {doc['n_params']} float32 values "
                          "or its sha256 differs")
    flat = np.frombuffer(blob, dtype="<f4")
    tensors = {}
    for t in doc["tensors"]:
        size = int(np.prod(t["shape"]))
        tensors[t["name"]] = flat[t["offset"]: t["offset"] + size].reshape(t["shape"])
    return vocab, tensors
