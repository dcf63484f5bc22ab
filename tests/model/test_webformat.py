"""The browser model format (model/webformat.py): exact round trip, and the decoded weights give Keras' outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.lstm_numpy import LstmWeights, run, softmax
from model.webformat import decode_model, encode_model
from pipeline.vocab import END_ID
from tests.helpers.tiny_model import keras_probs


@pytest.fixture(scope="module")
def trained(tiny_lstm):
    return tiny_lstm.path, tiny_lstm.model, tiny_lstm.vocab, tiny_lstm.meta


def test_encode_decode_round_trip_is_exact(trained):
    _, model, vocab, meta = trained
    doc = json.loads(json.dumps(encode_model(model, vocab, meta)))  # through real JSON text
    assert doc["vocab_hash"] == meta["vocab_hash"] == vocab.hash
    assert doc["n_params"] == model.count_params()
    back_vocab, tensors = decode_model(doc)
    assert back_vocab.tokens == vocab.tokens
    assert [t["name"] for t in doc["tensors"]] == [
        "embedding", "lstm_0/kernel", "lstm_0/recurrent_kernel", "lstm_0/bias",
        "lstm_1/kernel", "lstm_1/recurrent_kernel", "lstm_1/bias", "logits/kernel", "logits/bias"]
    for name, layer, index in (("embedding", "embedding", 0), ("lstm_1/recurrent_kernel", "lstm_1", 1),
                               ("lstm_0/bias", "lstm_0", 2), ("logits/kernel", "logits", 0)):
        np.testing.assert_array_equal(tensors[name], model.get_layer(layer).get_weights()[index])
    assert doc["network"] == {"vocab_size": len(vocab), "embedding_dim": 16, "hidden_size": 32, "num_layers": 2}


def test_reference_forward_pass_matches_keras(trained):
    _, model, vocab, meta = trained
    _, tensors = decode_model(encode_model(model, vocab, meta))
    ids = np.concatenate([[END_ID], vocab.encode("the cat sat on the mat. she sells")])
    logits = run(LstmWeights.from_tensors(tensors), ids)[0]
    np.testing.assert_allclose(softmax(logits), keras_probs(model, ids), atol=1e-5)
