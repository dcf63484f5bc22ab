"""The one NumPy LSTM (model/lstm_numpy.py): step, run, weights and their checks, against Keras."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from model.lstm_numpy import (  # noqa: E402
    LayoutError,
    LstmWeights,
    StepWeights,
    initial_state,
    log_softmax,
    run,
    sigmoid,
    softmax,
    step,
)
from pipeline.vocab import END_ID  # noqa: E402
from tests.helpers.tiny_model import keras_logits, lstm_sequence_model  # noqa: E402


@pytest.fixture(scope="module")
def weights(tiny_lstm) -> LstmWeights:
    return LstmWeights.from_keras(tiny_lstm.model)


def test_run_and_step_reproduce_keras(tiny_lstm, weights):
    model, vocab = tiny_lstm.model, tiny_lstm.vocab
    ids = np.concatenate([[END_ID], vocab.encode("the cat sat on a dog.")]).astype(np.int32)
    expected = keras_logits(model, ids)
    logits, hs, cs = run(weights, ids)
    assert logits.dtype == np.float64 and len(hs) == len(cs) == 2
    assert [h.shape for h in hs] == [(len(ids), 32)] * 2
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(hs[-1], np.asarray(lstm_sequence_model(model, "lstm_1")(
        ids[None, :], training=False))[0], atol=1e-5, rtol=0)
    sw = StepWeights.from_weights(weights)
    state, rows = initial_state(sw, 1), []
    for tok in ids:
        out, state = step(sw, np.array([tok]), state)
        rows.append(out[0])
    assert rows[0].dtype == np.float32
    np.testing.assert_allclose(np.array(rows), logits, atol=1e-5, rtol=0)
    np.testing.assert_allclose(state[-1][1][0], cs[-1][-1], atol=1e-5, rtol=0)


def test_exported_tensors_give_the_same_weights(weights):
    back = LstmWeights.from_tensors(dict(weights.named_tensors()))
    assert [n for n, _ in back.named_tensors()] == [n for n, _ in weights.named_tensors()]
    for (_, a), (_, b) in zip(back.named_tensors(), weights.named_tensors()):
        assert a is b
    assert back.vocab_size == weights.vocab_size and back.hidden_sizes == (32, 32)


def test_layout_errors_name_the_layer():
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(5, 3, name="embedding")(inp)
    x = keras.layers.LSTM(4, activation="relu", return_sequences=True, name="lstm_0")(x)
    relu = keras.Model(inp, keras.layers.Dense(5, name="logits")(x))
    with pytest.raises(LayoutError, match="lstm_0: only forward tanh/sigmoid.*activation=relu"):
        LstmWeights.from_keras(relu)
    x = keras.layers.GRU(4, return_sequences=True, name="gru")(keras.layers.Embedding(5, 3, name="embedding")(inp))
    with pytest.raises(LayoutError, match="expected layers embedding, lstm_0.., logits; found"):
        LstmWeights.from_keras(keras.Model(inp, keras.layers.Dense(5, name="logits")(x)))
    w = np.zeros
    with pytest.raises(LayoutError, match=r"lstm_0: unexpected weight shapes \(3, 16\), \(4, 16\), \(12,\)"):
        LstmWeights(w((5, 3)), ((w((3, 16)), w((4, 16)), w(12)),), w((4, 5)), w(5))
    with pytest.raises(LayoutError, match="logits: unexpected weight shapes"):
        LstmWeights(w((5, 3)), ((w((3, 16)), w((4, 16)), w(16)),), w((4, 6)), w(6))
    with pytest.raises(LayoutError, match="no LSTM layer"):
        LstmWeights(w((5, 3)), (), w((3, 5)), w(5))


def test_activations():
    x = np.array([[-800.0, -1.0, 0.0, 2.5, 800.0]])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(sigmoid(x.copy()), 1.0 / (1.0 + np.exp(-x)))
        buf = x.copy()
        assert sigmoid(buf, out=buf) is buf
    assert buf[0, 2] == 0.5 and buf[0, 0] == 0.0 and buf[0, 4] == 1.0
    y = np.array([[-3.0, -1.0, 0.0, 2.5, 4.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    p = softmax(y)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    np.testing.assert_allclose(p[1], 0.2)
    np.testing.assert_allclose(np.log(p), log_softmax(y), atol=1e-12)
    assert log_softmax(np.array([1, 2], dtype=np.float32)).dtype == np.float64
