"""The network: Embedding -> N stacked LSTMs -> Dense logits over the vocabulary. No I/O here.

Every LSTM keeps Keras' defaults that let a GPU run the fused cuDNN kernel: ``tanh`` activation,
``sigmoid`` recurrent activation, no recurrent dropout, ``unroll=False``, biases on. The model
takes no Keras mask: batches are right-padded with END, so padding can only follow the real
characters and never changes their outputs (the LSTM is causal); the loss mask from the loader
(``sample_weight``) is what keeps padding out of training. That keeps cuDNN usable too.

``with_state`` gives the same layers with the LSTM state as input and output: training carries it
across the windows of a long document (model/carry.py) and evaluation scores long documents the
same way.

Layer names are a contract read by the sampler and the browser export: ``embedding``,
``lstm_0`` ... ``lstm_{N-1}``, ``logits``. Keras LSTM weights are ``kernel`` (in, 4H),
``recurrent_kernel`` (H, 4H) and ``bias`` (4H), gates in the order i, f, c (candidate), o.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from pipeline.config import check_fields, setting

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture hyper-parameters: the ``train.model`` section of params.yaml (the values are
    there; no defaults here) plus the vocabulary size."""

    vocab_size: int = setting(ge=1, param=False)  # from the vocabulary, not from params
    embedding_dim: int = setting(ge=1)
    hidden_size: int = setting(ge=1)
    num_layers: int = setting(ge=1)
    dropout: float = setting(ge=0, lt=1)  # applied to the outputs of every LSTM layer, in training only
    mixed_precision: bool  # float16 compute, float32 variables and float32 logits

    def __post_init__(self) -> None:
        check_fields(self, "model")

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(config: NetworkConfig) -> keras.Model:
    """The character LSTM as a functional Keras model: int token ids (batch, time) -> logits."""
    import keras  # here, not at the top: the params check (NetworkConfig) must not pay for TensorFlow
    from keras import layers

    policy = "mixed_float16" if config.mixed_precision else "float32"
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding", dtype=policy)(tokens)
    for i in range(config.num_layers):
        # return_state: the same layer also serves with_state() (state carried between calls); here
        # only the sequence is used
        x = layers.LSTM(config.hidden_size, return_sequences=True, return_state=True, name=f"lstm_{i}",
                        dtype=policy)(x)[0]
        if config.dropout > 0:
            x = layers.Dropout(config.dropout, name=f"dropout_{i}", dtype=policy)(x)
    logits = layers.Dense(config.vocab_size, name="logits", dtype="float32")(x)
    return keras.Model(tokens, logits, name="char_lstm")


def lstm_layers(model: keras.Model) -> list:
    """The LSTM layers of a build_model model, bottom first."""
    return sorted((layer for layer in model.layers if layer.name.startswith("lstm_")),
                  key=lambda layer: int(layer.name.split("_")[1]))


def with_state(model: keras.Model) -> keras.Model:
    """The same layers (shared weights) as ``(tokens, h_0, c_0, h_1, c_1, ...) -> (logits, h_0', c_0', ...)``:
    every LSTM starts from the given state and returns its final one, so a long sequence can be run in
    windows with the state carried from one to the next (truncated backpropagation through time)."""
    import keras

    if not all(layer.return_state for layer in lstm_layers(model)):
        model = _copy_returning_state(model)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = model.get_layer("embedding")(tokens)
    state_in, state_out = [], []
    for layer in lstm_layers(model):
        h = keras.Input(shape=(layer.units,), name=f"{layer.name}_h")
        c = keras.Input(shape=(layer.units,), name=f"{layer.name}_c")
        x, h_out, c_out = layer(x, initial_state=[h, c])
        state_in += [h, c]
        state_out += [h_out, c_out]
        dropout = f"dropout_{layer.name.split('_')[1]}"
        if any(other.name == dropout for other in model.layers):
            x = model.get_layer(dropout)(x)
    logits = model.get_layer("logits")(x)
    return keras.Model([tokens, *state_in], [logits, *state_out], name="char_lstm_with_state")


def _copy_returning_state(model: keras.Model) -> keras.Model:
    """A copy (same weights, not shared) of a model saved before its LSTMs returned their state."""
    import keras

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = tokens
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        config = layer.get_config()
        is_lstm = layer.name.startswith("lstm_")
        if is_lstm:
            config["return_state"] = True
        twin = type(layer).from_config(config)
        x = twin(x)[0] if is_lstm else twin(x)
        twin.set_weights(layer.get_weights())
    return keras.Model(tokens, x, name=model.name)
