"""The stateful sampler (model/sampler.py) against the full Keras model, on the tiny seeded model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from model.artifacts import ModelFolderError, save_trained  # noqa: E402
from model.lstm_numpy import log_softmax  # noqa: E402
from model.sampler import SamplerError, StatefulSampler, decode_probs, draw  # noqa: E402
from pipeline.vocab import END_ID, Vocab  # noqa: E402
from tests.helpers.tiny_model import keras_greedy, keras_logits  # noqa: E402


@pytest.fixture(scope="module")
def trained(tiny_lstm):
    return tiny_lstm.model, tiny_lstm.vocab


@pytest.fixture(scope="module")
def sampler(trained):
    model, vocab = trained
    return StatefulSampler.from_model(model, vocab)


def keras_mean_logprob(model, vocab: Vocab, prime: str, text: str, ended: bool) -> float:
    ids = [END_ID, *vocab.encode(prime).tolist(), *vocab.encode(text).tolist()] + ([END_ID] if ended else [])
    k = len(ids) - 1 - len(vocab.encode(prime))  # number of generated targets
    lp = log_softmax(keras_logits(model, ids[:-1]))
    targets = np.asarray(ids[1:])
    return float(lp[np.arange(len(targets)), targets][-k:].mean())


def test_step_matches_keras_logits(trained, sampler):
    model, vocab = trained
    ids = np.concatenate([[END_ID], vocab.encode("the cat sat on the dog and ran.")]).astype(np.int32)
    state = sampler.initial_state(1)
    mine = []
    for t in ids:
        logits, state = sampler.step(np.array([t]), state)
        mine.append(logits[0])
    np.testing.assert_allclose(np.array(mine), keras_logits(model, ids), atol=1e-5, rtol=0)


def test_next_probs_is_keras_softmax(trained, sampler):
    model, vocab = trained
    probs = sampler.next_probs("the ")
    assert probs.shape == (len(vocab),) and abs(probs.sum() - 1) < 1e-9
    ref = np.exp(log_softmax(keras_logits(model, [END_ID, *vocab.encode("the ")])[-1]))
    np.testing.assert_allclose(probs, ref, atol=1e-6)


@pytest.mark.parametrize("prime", ["", "the d", "a c"])
def test_greedy_equals_keras_growing_prefix(trained, sampler, prime):
    model, vocab = trained
    s = sampler.greedy(prime, 40)
    assert s.text == keras_greedy(model, vocab, prime, 40)
    assert s.method == "greedy" and s.prime == prime and s.full_text == prime + s.text
    assert s.mean_logprob == pytest.approx(keras_mean_logprob(model, vocab, prime, s.text, s.ended), abs=1e-4)


def test_same_seed_same_text_and_logprob_is_the_models(trained, sampler):
    model, vocab = trained
    a = sampler.generate("the ", n=4, length=60, temperature=1.0, seed=7)
    b = sampler.generate("the ", n=4, length=60, temperature=1.0, seed=7)
    c = sampler.generate("the ", n=4, length=60, temperature=1.0, seed=8)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.text for s in a] != [s.text for s in c]
    assert len({s.text for s in a}) > 1  # independent streams
    assert all(s.seed == 7 and s.stream == i for i, s in enumerate(a))
    for s in a:
        assert s.n_tokens == len(s.text) + int(s.ended)
        assert s.mean_logprob == pytest.approx(keras_mean_logprob(model, vocab, "the ", s.text, s.ended), abs=1e-4)


def test_seed_none_records_a_seed_that_reproduces(sampler):
    (a,) = sampler.generate("a ", n=1, length=30, temperature=1.0)
    (b,) = sampler.generate("a ", n=1, length=30, temperature=1.0, seed=a.seed)
    assert isinstance(a.seed, int) and a.text == b.text


def test_beam_width_one_is_greedy(sampler):
    for prime in ["", "the ", "a d"]:
        g, b = sampler.greedy(prime, 50), sampler.beam(prime, width=1, length=50)
        assert (b.text, b.ended) == (g.text, g.ended)
        assert b.mean_logprob == pytest.approx(g.mean_logprob, abs=1e-9)


def test_beam_scores_are_the_models(trained, sampler):
    model, vocab = trained
    for width, norm in [(4, 1.0), (3, 0.0)]:
        s = sampler.beam("the ", width=width, length=50, length_norm=norm)
        assert s.method == "beam" and s.beam_width == width
        assert s.mean_logprob == pytest.approx(keras_mean_logprob(model, vocab, "the ", s.text, s.ended), abs=1e-4)
    # with length_norm 1 the beam maximises mean log-prob: it does at least as well as greedy here
    # (to float32 rounding: BLAS rounds a 4-row step differently from a 1-row one, ~1e-8 measured)
    assert sampler.beam("the ", 4, 50, 1.0).mean_logprob >= sampler.greedy("the ", 50).mean_logprob - 1e-6


def test_top_k_one_and_tiny_top_p_are_greedy(sampler):
    g = sampler.greedy("the ", 50)
    for kw in ({"top_k": 1}, {"top_p": 1e-9}):
        for s in sampler.generate("the ", n=3, length=50, temperature=1.5, seed=3, **kw):
            assert (s.text, s.ended) == (g.text, g.ended)


def test_temperature_zero_is_greedy_and_negative_is_an_error(sampler):
    g = sampler.greedy("a ", 40)
    assert [s.text for s in sampler.generate("a ", n=2, length=40, temperature=0)] == [g.text, g.text]
    with pytest.raises(SamplerError, match="temperature"):
        sampler.generate("a ", temperature=-0.5)
    with pytest.raises(SamplerError, match="top_p"):
        sampler.generate("a ", top_p=1.5)


def test_low_temperature_concentrates_on_the_argmax(sampler):
    """Statistical check (fixed seed): the share of argmax draws matches the tempered probability."""
    n = 2000

    def spread(prime: str) -> bool:  # argmax clearly first, yet far from certain at temperature 1
        top = np.sort(sampler.next_probs(prime))[::-1]
        return 0.2 < top[0] < 0.8 and top[0] > 1.3 * top[1]

    prime = next(p for p in ["", "d", "the cat ", "o", "n"] if spread(p))
    probs = sampler.next_probs(prime)
    best = int(np.argmax(probs))
    logits = np.log(probs)[None]
    for temperature in (1.0, 0.3, 0.05):
        order, tempered = decode_probs(logits, temperature, None, None)
        expected = tempered[0, 0]
        assert order[0, 0] == best
        first = [s.text[:1] for s in sampler.generate(prime, n=n, length=1, temperature=temperature, seed=11)]
        share = np.mean([f == sampler.vocab.tokens[best] for f in first])
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-3, (temperature, share, expected)
    assert expected > 0.99


def test_top_k_and_top_p_keep_only_the_head():
    logits = np.log(np.array([[0.1, 0.5, 0.25, 0.15]]))
    order, p = decode_probs(logits, 1.0, 2, None)
    assert order[0].tolist() == [1, 2, 3, 0] and np.allclose(p[0], [2 / 3, 1 / 3, 0, 0])
    order, p = decode_probs(logits, 1.0, None, 0.7)  # 0.5 + 0.25 reaches 0.7
    assert np.allclose(p[0], [2 / 3, 1 / 3, 0, 0])
    assert set(draw(np.repeat(order, 1000, 0), np.repeat(p, 1000, 0), np.random.default_rng(0).random(1000))) == {1, 2}


def test_end_stops_a_stream_while_the_others_go_on(sampler):
    """Each stream of a batch equals the same stream sampled alone, whenever the others stop."""
    n, seed, length = 12, 5, 60
    batch = sampler.generate("", n=n, length=length, temperature=1.0, seed=seed)
    lengths = [len(s.text) for s in batch]
    assert any(s.ended for s in batch) and len(set(lengths)) > 2  # streams stopped at different steps
    for i, s in enumerate(batch):
        rng = np.random.default_rng([seed, i])
        logits, state = sampler.warm("")
        out = []
        for _ in range(length):
            order, p = decode_probs(logits, 1.0, None, None)
            tok = int(draw(order, p, np.array([rng.random()]))[0])
            if tok == END_ID:
                break
            out.append(tok)
            logits, state = sampler.step(np.array([tok]), state)
        assert s.text == sampler.vocab.decode(out)
        assert s.ended == (len(out) < length or tok == END_ID)
        assert END_ID not in sampler.vocab.encode(s.text)


def test_length_limit(sampler):
    for s in sampler.generate("the ", n=5, length=3, temperature=1.0, seed=1):
        assert len(s.text) <= 3 and (s.ended or len(s.text) == 3)


def test_prime_outside_vocabulary_maps_to_unk_with_a_warning(sampler, caplog):
    with caplog.at_level(logging.WARNING, logger="model.sampler"):
        a = sampler.next_probs("the \u2603")
    assert "outside the vocabulary" in caplog.text and "\u2603" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="model.sampler"):
        sampler.generate("the \u2603", n=2, length=5, seed=0)
    assert "outside the vocabulary" not in caplog.text  # warned once per prime
    np.testing.assert_allclose(a, sampler.next_probs("the \u2602"))  # both are UNK
    assert not np.allclose(a, sampler.next_probs("the "))


def test_from_dir_round_trip_and_errors(trained, sampler, tmp_path: Path):
    model, vocab = trained
    save_trained(tmp_path / "m", model, vocab, {"network": {}})
    loaded = StatefulSampler.from_dir(tmp_path / "m")
    assert loaded.greedy("a ", 30).text == sampler.greedy("a ", 30).text
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        StatefulSampler.from_dir(tmp_path / "missing")
    other = Vocab.from_counts({"x": 3, "y": 2, "z": 1})
    other.save(tmp_path / "other.json")
    with pytest.raises(ModelFolderError, match="other.json"):
        StatefulSampler.from_dir(tmp_path / "m", tmp_path / "other.json")
    with pytest.raises(SamplerError, match="embedding"):
        StatefulSampler.from_model(model, other)


def test_min_length_bars_end_but_keeps_the_models_logprob(trained, sampler):
    model, vocab = trained
    free = sampler.generate("", n=8, length=40, temperature=1.0, seed=2)
    assert any(s.ended for s in free)
    forced = sampler.generate("", n=8, length=40, temperature=1.0, seed=2, min_length=40)
    assert all(len(s.text) == 40 and not s.ended for s in forced)
    assert forced[0].mean_logprob == pytest.approx(keras_mean_logprob(model, vocab, "", forced[0].text, False),
                                                   abs=1e-4)
    g = sampler.greedy("", 40, min_length=10)
    assert len(g.text) >= 10
