"""Masked per-character loss and metrics for the character LSTM.

The loader yields ``(inputs, targets, mask)``; Keras passes the mask as ``sample_weight``. Padded
positions (mask 0) must carry no loss, and a batch's loss is the *masked mean*
``sum(ce * mask) / sum(mask)``: Keras' ``"mean_with_sample_weight"`` reduction is exactly that (the
default ``"sum_over_batch_size"`` would divide by every position, padding included, and so shrink
the loss of short buckets).

Per-batch means weight every batch equally; an epoch's figure must weight every *character*
equally, so :class:`MaskedNats` keeps two running sums (``sum(ce * mask)``, ``sum(mask)``) and
reports their ratio. :class:`MaskedBits` is the same in bits (nats / ln 2), :class:`RealTokens`
counts real (unmasked) targets, used for tokens/s.
"""

from __future__ import annotations

import math

import keras
from keras import ops

LN2 = math.log(2.0)


def masked_loss() -> keras.losses.Loss:
    """Sparse cross-entropy on logits, averaged over the real (mask 1) targets of the batch."""
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight", name="masked_ce"
    )


class MaskedNats(keras.metrics.Metric):
    """Mean cross-entropy in nats per real character, accumulated over all batches seen."""

    scale = 1.0

    def __init__(self, name: str = "nats", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ce = keras.losses.sparse_categorical_crossentropy(y_true, ops.cast(y_pred, "float32"), from_logits=True)
        w = ops.ones_like(ce) if sample_weight is None else ops.cast(sample_weight, ce.dtype)
        self.total.assign_add(ops.cast(ops.sum(ce * w), "float64"))
        self.count.assign_add(ops.cast(ops.sum(w), "float64"))

    def result(self):
        return ops.cast(ops.divide_no_nan(self.total, self.count) * self.scale, "float32")

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


class MaskedBits(MaskedNats):
    """Bits per real character (nats / ln 2)."""

    scale = 1.0 / LN2

    def __init__(self, name: str = "bpc", **kwargs) -> None:
        super().__init__(name=name, **kwargs)


class RealTokens(keras.metrics.Metric):
    """How many real (mask 1) targets were seen since the last reset (one epoch)."""

    def __init__(self, name: str = "tokens", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        w = ops.ones_like(ops.cast(y_true, "float32")) if sample_weight is None else ops.cast(sample_weight, "float32")
        self.count.assign_add(ops.cast(ops.sum(w), "float64"))

    def result(self):
        return ops.cast(self.count, "float32")

    def reset_state(self):
        self.count.assign(0.0)


def nats_to_bpc(nats: float) -> float:
    return float(nats) / LN2


def perplexity(nats: float) -> float:
    return float(math.exp(min(float(nats), 700.0)))
