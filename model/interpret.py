"""Looking inside the LSTM: what it expects next, and what a few of its cells track.

- ``expectations``: for a validation snippet fed as ``[END, c1, c2, ...]``, the probability the
  model gave each character before seeing it, and its top-k guesses for the character after it.
- ``interpretable_cells``: runs the network over a longer validation text, computes simple
  features of the text at every position (inside double quotes, position in the line, bracket
  depth, position in the word, inside an all-caps word such as a speaker name) and, for each
  feature, picks the cell whose activation correlates most with it (|Pearson r|, over the cells
  of every layer), as in Karpathy's char-rnn write-up.

Cell states are not outputs of a Keras LSTM layer, so ``lstm_states`` recomputes the stacked LSTM
with model/lstm_numpy.py from the layers' weights. Its hidden outputs equal the Keras layers'
outputs (tested to 1e-4), so the cells shown are the model's own. The activation shown is
tanh(c), in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from model.lstm_numpy import LstmWeights, run, softmax
from pipeline.vocab import END_ID, Vocab

OPEN_BRACKETS, CLOSE_BRACKETS = "([{", ")]}"


def lstm_states(model, ids: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer, hidden outputs h and cell states c, each [T, H], for one token sequence."""
    _, hs, cs = run(LstmWeights.from_keras(model), ids)
    return hs, cs


def expectations(model, vocab: Vocab, snippet: str, top_k: int = 5) -> dict[str, Any]:
    """Probability of each snippet character before it was seen, and the top-k next guesses."""
    ids = np.concatenate([[END_ID], vocab.encode(snippet)]).astype(np.int32)
    probs = softmax(np.asarray(model(ids[None, :], training=False), dtype=np.float64)[0])
    actual = [float(probs[t, ids[t + 1]]) for t in range(len(snippet))]
    guesses = []
    for t in range(1, len(ids)):  # after reading snippet[t - 1]
        top = np.argsort(-probs[t], kind="stable")[:top_k]
        guesses.append([(vocab.tokens[j], float(probs[t, j])) for j in top])
    return {"snippet": snippet, "prob_of_char": actual, "next_guesses": guesses}


def text_features(text: str) -> dict[str, np.ndarray]:
    """Features of the text after reading each character (what a cell might track)."""
    quote = np.zeros(len(text))
    line_pos = np.zeros(len(text))
    depth = np.zeros(len(text))
    word_pos = np.zeros(len(text))
    caps = np.zeros(len(text))
    inside, col, d, w, word = False, 0, 0, 0, ""
    for t, ch in enumerate(text):
        if ch in "\"\u201c\u201d":
            inside = {"\u201c": True, "\u201d": False}.get(ch, not inside)
        col = 0 if ch == "\n" else col + 1
        if ch in OPEN_BRACKETS:
            d += 1
        elif ch in CLOSE_BRACKETS:
            d = max(d - 1, 0)
        w = w + 1 if ch.isalnum() else 0
        word = word + ch if ch.isalpha() else ""
        quote[t], line_pos[t], depth[t], word_pos[t] = inside, col, d, w
        caps[t] = len(word) >= 2 and word.isupper()
    return {"inside quotes": quote, "position in line": line_pos, "bracket depth": depth,
            "position in word": word_pos, "in an ALL-CAPS word": caps}


def _correlations(feature: np.ndarray, acts: np.ndarray) -> np.ndarray:
    f = feature - feature.mean()
    a = acts - acts.mean(axis=0)
    den = np.sqrt((f ** 2).sum() * (a ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (f @ a) / den
    return np.nan_to_num(r)


@dataclass(frozen=True)
class Cell:
    feature: str
    layer: int
    index: int
    r: float  # Pearson correlation of tanh(c) with the feature on the analysis text


def interpretable_cells(model, vocab: Vocab, texts: Sequence[str], *,
                        features: Callable[[str], dict[str, np.ndarray]] = text_features,
                        ) -> tuple[list[Cell], list[str]]:
    """The most feature-correlated cell per feature over ``texts`` (each fed from END), distinct
    cells; also the features skipped because they are constant on these texts."""
    weights = LstmWeights.from_keras(model)
    acts, feats = [], []
    for text in texts:
        _, _, cs = run(weights, np.concatenate([[END_ID], vocab.encode(text)]))
        acts.append(np.tanh(np.concatenate(cs, axis=1))[1:])  # state after each character
        feats.append(features(text))
    if not acts:
        return [], []
    all_acts = np.concatenate(acts)
    sizes = list(weights.hidden_sizes)
    chosen, skipped, taken = [], [], set()
    for name in feats[0]:
        f = np.concatenate([x[name] for x in feats])
        if f.std() == 0:
            skipped.append(name)
            continue
        r = _correlations(f, all_acts)
        for j in np.argsort(-np.abs(r), kind="stable"):
            if int(j) not in taken:
                taken.add(int(j))
                layer = int(np.searchsorted(np.cumsum(sizes), j, side="right"))
                chosen.append(Cell(name, layer, int(j - sum(sizes[:layer])), float(r[j])))
                break
    return chosen, skipped


def cell_activations(model, vocab: Vocab, snippet: str, cells: Sequence[Cell]) -> list[list[float]]:
    """tanh(c) of each chosen cell after each character of ``snippet`` (fed from END)."""
    _, cs = lstm_states(model, np.concatenate([[END_ID], vocab.encode(snippet)]))
    return [np.tanh(cs[c.layer][1:, c.index]).round(4).tolist() for c in cells]
