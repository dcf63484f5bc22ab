"""The network (model/network.py): layer names (a contract), cuDNN-compatible LSTMs, float32 logits, causality."""

from __future__ import annotations

import keras
import numpy as np
import pytest


def test_layer_names_shapes_and_cudnn_compatible_lstms():
    from model.network import NetworkConfig, build_model

    model = build_model(NetworkConfig(vocab_size=11, embedding_dim=4, hidden_size=6, num_layers=3, dropout=0.2,
                                      mixed_precision=False))
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith(("embedding", "lstm_", "logits"))] == [
        "embedding", "lstm_0", "lstm_1", "lstm_2", "logits"]
    for i in range(3):
        lstm = model.get_layer(f"lstm_{i}")
        # the conditions under which Keras runs the fused cuDNN kernel on a GPU
        assert lstm.activation.__name__ == "tanh" and lstm.recurrent_activation.__name__ == "sigmoid"
        assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_bias and lstm.return_sequences
    out = model(np.zeros((2, 5), np.int32))
    assert tuple(out.shape) == (2, 5, 11) and keras.backend.standardize_dtype(out.dtype) == "float32"


def test_mixed_precision_keeps_float32_logits_and_variables():
    from model.network import NetworkConfig, build_model

    model = build_model(NetworkConfig(vocab_size=7, embedding_dim=4, hidden_size=8, num_layers=2, dropout=0.0,
                                      mixed_precision=True))
    assert model.get_layer("lstm_0").compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in model.weights)
    assert keras.backend.standardize_dtype(model(np.zeros((1, 3), np.int32)).dtype) == "float32"


def test_right_padding_never_changes_the_outputs_at_real_positions():
    """Why the model needs no Keras mask: outputs at t depend only on inputs <= t."""

    from model.network import NetworkConfig, build_model

    keras.utils.set_random_seed(0)
    model = build_model(NetworkConfig(vocab_size=9, embedding_dim=4, hidden_size=8, num_layers=2, dropout=0.0,
                                      mixed_precision=False))
    seq = np.array([[0, 3, 4, 5, 2]], np.int32)
    padded = np.concatenate([seq, np.zeros((1, 6), np.int32)], axis=1)
    a, b = np.asarray(model(seq)), np.asarray(model(padded))[:, :5]
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [{"hidden_size": 0}, {"dropout": 1.0}, {"num_layers": 0}, {"mixed_precision": 1}])
def test_bad_config_is_a_clear_error(bad):
    from model.network import NetworkConfig

    good = {"embedding_dim": 4, "hidden_size": 8, "num_layers": 2, "dropout": 0.0, "mixed_precision": False}
    with pytest.raises(ValueError, match=f"model {next(iter(bad))} = "):
        NetworkConfig(vocab_size=5, **{**good, **bad})
