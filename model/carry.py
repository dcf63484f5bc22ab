"""Training with the LSTM state carried from one chunk of a long document to the next.

Truncated backpropagation through time, as char-rnn does it: the batches stage puts the chunks of a
long document in consecutive batches of its split's *stream*, row r of one stream batch continuing
row r of the previous one (pipeline/batches.py, model/data.py). :class:`CarriedStateModel` wraps the
character LSTM of model/network.py for Keras ``fit``: it keeps the final LSTM state of the last
stream batch in non-trainable variables (one ``[batch_size, units]`` pair per layer) and starts a
stream batch's rows from it where ``carry`` is 1 (from zero elsewhere). Gradients stop at the chunk
boundary: the kept state is a value, not part of the graph. Bucket batches (documents of one chunk)
start from zero and leave the kept state alone, so they may interleave with the stream freely.

The variables are weights of the wrapper, so a step checkpoint holds them and a resumed run carries
the same state as an uninterrupted one. What is saved as the trained model is the plain network
(:func:`plain_model`): sampling and export never see the wrapper. The LSTMs are called with an
initial state, which the fused cuDNN kernel supports: the GPU path is unchanged.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from model.network import lstm_layers, with_state


class CarriedStateModel(keras.Model):
    """``{"tokens", "carry", "stream"} -> logits``, carrying the LSTM state across stream batches."""

    def __init__(self, net: keras.Model, lanes: int, **kwargs: Any) -> None:
        super().__init__(name="char_lstm_carried_state", **kwargs)
        self.net = net
        self.stepper = with_state(net)
        self.lanes = int(lanes)
        self.units = [layer.units for layer in lstm_layers(net)]
        self.kept = [self.add_weight(shape=(self.lanes, units), initializer="zeros", trainable=False,
                                     name=f"kept_{i}_{part}")
                     for i, units in enumerate(self.units) for part in ("h", "c")]
        self.built = True  # every variable exists: checkpoints can be loaded before the first batch

    def call(self, inputs: dict[str, Any], training: bool = False):
        tokens = inputs["tokens"]
        in_stream = tf.reduce_max(inputs["stream"]) > 0
        carry = tf.cast(inputs["carry"], "float32")[:, None] * tf.cast(in_stream, "float32")
        rows = tf.shape(tokens)[0]
        tf.debugging.assert_less_equal(rows, self.lanes, message="a batch has more rows than the stream's lanes "
                                       "(batches.batch_size)")
        # no tf.cond: bucket batches read zeros (carry 0) and write back what was kept
        states = [tf.convert_to_tensor(v)[:rows] * carry for v in self.kept]
        logits, *final = self.stepper([tokens, *states], training=training)
        for variable, value in zip(self.kept, final):
            value = tf.pad(tf.stop_gradient(tf.cast(value, variable.dtype)), [[0, self.lanes - rows], [0, 0]])
            variable.assign(tf.where(in_stream, value, tf.convert_to_tensor(variable)))
        return logits


def plain_model(model: keras.Model) -> keras.Model:
    """The character LSTM itself (tokens -> logits), whether or not ``model`` is the wrapper."""
    return model.net if isinstance(model, CarriedStateModel) else model
