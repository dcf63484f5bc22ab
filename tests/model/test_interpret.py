"""Interpretation for the report (model/interpret.py): NumPy LSTM states, expectations, cell selection.

The NumPy LSTM recomputation equals the Keras layers, expectations are proper distributions, and cell
selection picks the cell that tracks a feature."""

from __future__ import annotations

import numpy as np
import pytest

from model import interpret
from pipeline.vocab import END_ID
from tests.helpers.eval_project import shared_project
from tests.helpers.tiny_model import lstm_sequence_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from model.artifacts import load_trained

    root, facts = shared_project(tmp_path_factory)
    model, vocab, _ = load_trained(root / "models/lstm")
    return model, vocab, facts


@pytest.mark.slow
def test_numpy_states_equal_keras_layer_outputs(trained):
    model, vocab, facts = trained
    ids = np.concatenate([[END_ID], vocab.encode(facts["val"][1])]).astype(np.int32)
    hs, cs = interpret.lstm_states(model, ids)
    for i, h in enumerate(hs):
        sub = lstm_sequence_model(model, f"lstm_{i}")
        np.testing.assert_allclose(h, np.asarray(sub(ids[None]))[0], atol=1e-4)
    assert len(cs) == len(hs) and cs[0].shape == hs[0].shape


@pytest.mark.slow
def test_expectations_are_distributions(trained):
    model, vocab, _ = trained
    ex = interpret.expectations(model, vocab, "kopi lah", top_k=5)
    assert len(ex["prob_of_char"]) == len(ex["next_guesses"]) == 8
    for guesses in ex["next_guesses"]:
        probs = [p for _, p in guesses]
        assert len(guesses) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_text_features():
    f = interpret.text_features('a "b" (c(d))\nxy')
    assert f["inside quotes"].tolist()[:6] == [0, 0, 1, 1, 0, 0]
    assert f["bracket depth"].tolist()[5:12] == [0, 1, 1, 2, 2, 1, 0]
    assert f["position in line"].tolist()[-3:] == [0, 1, 2]
    assert f["position in word"].tolist()[:3] == [1, 0, 0]
    assert interpret.text_features("ROMEO: Ay")["in an ALL-CAPS word"].tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 0]


@pytest.mark.slow
def test_cell_selection_finds_the_cell_that_tracks_a_feature(trained):
    model, vocab, facts = trained
    texts = facts["val"][:4]
    layer, index = 1, 5

    def planted(text: str) -> dict[str, np.ndarray]:  # a "feature" that IS one cell's activation
        _, cs = interpret.lstm_states(model, np.concatenate([[END_ID], vocab.encode(text)]))
        return {"planted": -np.tanh(cs[layer][1:, index]), "constant": np.zeros(len(text))}

    cells, skipped = interpret.interpretable_cells(model, vocab, texts, features=planted)
    assert skipped == ["constant"]
    assert [(c.layer, c.index) for c in cells] == [(layer, index)]
    assert cells[0].r == pytest.approx(-1.0, abs=1e-9)
    acts = interpret.cell_activations(model, vocab, texts[0], cells)
    assert len(acts[0]) == len(texts[0]) and all(-1 <= a <= 1 for a in acts[0])
