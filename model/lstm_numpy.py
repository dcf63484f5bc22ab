"""The character LSTM of model/network.py written out in NumPy: the one copy of its forward pass.

Three users, two precisions:

- the sampler (model/sampler.py) calls :func:`step`, float32, one token per stream, state carried;
  the first layer's input projection is folded into a lookup table (``embedding @ kernel + bias``,
  one row per token), which saves a matmul per character;
- the export self-check (model/export.py) and the cell analysis (model/interpret.py) call
  :func:`run`, float64, over a whole token sequence from zero states, returning every layer's
  hidden outputs h and cell states c (Keras' LSTM layer exposes only h). It is also the
  specification the browser's model/web/lstm.js follows.

Weights come from a Keras model (:meth:`LstmWeights.from_keras`, the one layer check: layers
``embedding``, ``lstm_0..``, ``logits``; tanh/sigmoid, biases, forwards) or from the tensors of an
exported document (:meth:`LstmWeights.from_tensors`); both check the shapes against each other.
Keras gate order i, f, c, o. NumPy rather than TensorFlow: see model/sampler.py for the
measurements (a compiled TensorFlow call costs more than a whole one-character NumPy step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

_LSTM_NAME = re.compile(r"^lstm_(\d+)$")

State = list  # [(h, c) per layer], each (B, H) float32
Layer = tuple  # (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,))


class LayoutError(ValueError):
    """The weights are not those of a model/network.py character LSTM (layers, activations, shapes)."""


@dataclass(frozen=True)
class LstmWeights:
    """The network's tensors in Keras layout, as stored (float32)."""

    embedding: np.ndarray  # (V, E)
    layers: tuple[Layer, ...]  # per LSTM layer
    dense_w: np.ndarray  # (H_last, V)
    dense_b: np.ndarray  # (V,)

    def __post_init__(self) -> None:
        vocab_size, width = self.embedding.shape
        if not self.layers:
            raise LayoutError("no LSTM layer: expected layers embedding, lstm_0.., logits (model/network.py)")
        for i, (kernel, recurrent, bias) in enumerate(self.layers):
            hidden = recurrent.shape[0]
            if (kernel.shape != (width, 4 * hidden) or recurrent.shape != (hidden, 4 * hidden)
                    or bias.shape != (4 * hidden,)):
                raise LayoutError(f"lstm_{i}: unexpected weight shapes {kernel.shape}, {recurrent.shape}, {bias.shape} "
                                  f"for input width {width}")
            width = hidden
        if self.dense_w.shape != (width, vocab_size) or self.dense_b.shape != (vocab_size,):
            raise LayoutError(f"logits: unexpected weight shapes {self.dense_w.shape}, {self.dense_b.shape} "
                              f"(expected ({width}, {vocab_size}))")

    @property
    def vocab_size(self) -> int:
        return int(self.embedding.shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(recurrent.shape[0]) for _, recurrent, _ in self.layers)

    @classmethod
    def from_keras(cls, model) -> "LstmWeights":
        """Copy the weights of a model/network.py model, refusing any other layout."""
        layers = {layer.name: layer for layer in model.layers}
        lstm_ids = sorted(int(m.group(1)) for n in layers if (m := _LSTM_NAME.match(n)))
        if any(n not in layers for n in ("embedding", "logits")) or not lstm_ids \
                or lstm_ids != list(range(len(lstm_ids))):
            raise LayoutError(f"model {model.name!r} is not a model/network.py character LSTM: expected layers "
                              f"embedding, lstm_0.., logits; found {sorted(layers)}")
        for i in lstm_ids:
            cfg = layers[f"lstm_{i}"].get_config()
            if (cfg.get("activation"), cfg.get("recurrent_activation")) != ("tanh", "sigmoid") \
                    or not cfg.get("use_bias", True) or cfg.get("go_backwards") \
                    or not cfg.get("return_sequences", True):
                raise LayoutError(f"layer lstm_{i}: only forward tanh/sigmoid LSTMs with biases are supported; got "
                                  f"activation={cfg.get('activation')}, recurrent_activation="
                                  f"{cfg.get('recurrent_activation')}, use_bias={cfg.get('use_bias')}, "
                                  f"go_backwards={cfg.get('go_backwards')}")
        (emb,) = layers["embedding"].get_weights()
        dense_w, dense_b = layers["logits"].get_weights()
        return cls(emb, tuple(tuple(layers[f"lstm_{i}"].get_weights()) for i in lstm_ids), dense_w, dense_b)

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray]) -> "LstmWeights":
        """From ``{name: array}`` named as in the export format (``embedding``, ``lstm_<i>/kernel``, ...)."""
        layers, i = [], 0
        while f"lstm_{i}/kernel" in tensors:
            layers.append(tuple(tensors[f"lstm_{i}/{n}"] for n in ("kernel", "recurrent_kernel", "bias")))
            i += 1
        return cls(tensors["embedding"], tuple(layers), tensors["logits/kernel"], tensors["logits/bias"])

    def named_tensors(self) -> list[tuple[str, np.ndarray]]:
        """Every tensor with its export-format name, in format order."""
        out = [("embedding", self.embedding)]
        for i, (kernel, recurrent, bias) in enumerate(self.layers):
            out += [(f"lstm_{i}/kernel", kernel), (f"lstm_{i}/recurrent_kernel", recurrent), (f"lstm_{i}/bias", bias)]
        return out + [("logits/kernel", self.dense_w), ("logits/bias", self.dense_b)]


# -- activations ------------------------------------------------------------------------------
def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)); ``out=x`` works in place (the sampler's step reuses its buffer)."""
    out = np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in the input's precision."""
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# -- float32 step (sampling) ----------------------------------------------------------------
@dataclass(frozen=True)
class StepWeights:
    """The weights laid out for :func:`step` (all float32, C-contiguous)."""

    input_table: np.ndarray  # (V, 4H0): embedding @ kernel_0 + bias_0, one row per token
    recurrent: tuple[np.ndarray, ...]  # per layer (H, 4H)
    kernels: tuple[np.ndarray, ...]  # layers 1.. (H_prev, 4H)
    biases: tuple[np.ndarray, ...]  # layers 1.. (4H,)
    dense_w: np.ndarray  # (H_last, V)
    dense_b: np.ndarray  # (V,)

    @classmethod
    def from_weights(cls, w: LstmWeights) -> "StepWeights":
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        (k0, _, b0), rest = w.layers[0], w.layers[1:]
        table = f32(f32(w.embedding) @ f32(k0) + f32(b0))
        return cls(table, tuple(f32(r) for _, r, _ in w.layers), tuple(f32(k) for k, _, _ in rest),
                   tuple(f32(b) for _, _, b in rest), f32(w.dense_w), f32(w.dense_b))

    @property
    def vocab_size(self) -> int:
        return int(self.input_table.shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(r.shape[0]) for r in self.recurrent)


def initial_state(w: StepWeights, batch: int) -> State:
    """Zero (h, c) per layer for ``batch`` streams."""
    return [(np.zeros((batch, h), np.float32), np.zeros((batch, h), np.float32)) for h in w.hidden_sizes]


def step(w: StepWeights, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """Feed one token per stream: ``(logits (B, V) float32, new state)``. Pure: ``state`` is untouched."""
    x = None
    new: State = []
    for i, (h, c) in enumerate(state):
        if i == 0:
            z = w.input_table[tokens] + h @ w.recurrent[0]
        else:
            z = x @ w.kernels[i - 1] + h @ w.recurrent[i] + w.biases[i - 1]
        n = h.shape[1]
        gi = sigmoid(z[:, :n], out=z[:, :n])
        gf = sigmoid(z[:, n:2 * n], out=z[:, n:2 * n])
        gc = np.tanh(z[:, 2 * n:3 * n])
        go = sigmoid(z[:, 3 * n:], out=z[:, 3 * n:])
        c = gf * c + gi * gc
        x = go * np.tanh(c)
        new.append((x, c))
    return x @ w.dense_w + w.dense_b, new


# -- float64 sequence (export check, cell analysis) ---------------------------------------------
def run(w: LstmWeights, ids: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``(logits (T, V), [h (T, H) per layer], [c (T, H) per layer])`` after each token of ``ids``,
    from zero states, in float64."""
    x = w.embedding[np.asarray(ids, dtype=np.int64)].astype(np.float64)
    hs, cs = [], []
    for layer in w.layers:
        kernel, recurrent, bias = (a.astype(np.float64) for a in layer)
        hidden = recurrent.shape[0]
        h, c = np.zeros(hidden), np.zeros(hidden)
        h_all, c_all = np.empty((len(x), hidden)), np.empty((len(x), hidden))
        for t in range(len(x)):
            z = x[t] @ kernel + h @ recurrent + bias
            gi, gf, gc, go = (z[k * hidden:(k + 1) * hidden] for k in range(4))
            c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gc)
            h = sigmoid(go) * np.tanh(c)
            h_all[t], c_all[t] = h, c
        hs.append(h_all)
        cs.append(c_all)
        x = h_all
    return x @ w.dense_w.astype(np.float64) + w.dense_b, hs, cs
