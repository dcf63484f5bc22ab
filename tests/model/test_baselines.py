"""Baselines (model/baselines.py) give known values on known text.

Unigram and Kneser-Ney by hand and against an independent dict-based reference, compressors on copied
versus random text."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from model import baselines
from model.baselines import KneserNey, compressor_bits, count_targets, render_text, unigram_log2probs
from pipeline.vocab import END_ID, Vocab

AB = Vocab(("<END>", "<UNK>", "a", "b"))


def test_unigram_bits_per_char_by_hand():
    # train "aab": targets a a b END -> counts a2 b1 END1 UNK0, N=4; add-one over V=4 -> /8
    lp = unigram_log2probs([AB.encode("aab")], [AB.encode("ab")], len(AB), alpha=1.0)
    expected = [math.log2(3 / 8), math.log2(2 / 8), math.log2(2 / 8)]  # a, b, END
    assert lp.tolist() == pytest.approx(expected)
    assert baselines.bits_summary(-lp.sum(), 3)["bpc"] == pytest.approx(-sum(expected) / 3)


def test_kneser_ney_order1_by_hand():
    # counts a2 b1 END1; n1=2, n2=1 -> D = 2/(2+2) = 0.5; 3 types; uniform over V=4
    kn = KneserNey(len(AB), order=1).fit([AB.encode("aab")])
    assert kn.discounts == [0.5]
    p = kn.next_distribution([])
    assert p.tolist() == pytest.approx([0.21875, 0.09375, 0.46875, 0.21875])  # END, UNK, a, b


def _reference_counts(train: list[list[int]], order: int) -> list:
    """counts[order]: raw n-gram counts; counts[k < order]: continuation counts (distinct left contexts)."""
    grams = [defaultdict(int) for _ in range(order + 1)]  # grams[k][tuple] = raw count
    for d in train:
        seq = [END_ID] * (order - 1) + d + [END_ID]
        for t in range(order - 1, len(seq)):
            for k in range(1, order + 1):
                grams[k][tuple(seq[t - k + 1:t + 1])] += 1
    counts = [None] * (order + 1)
    counts[order] = dict(grams[order])
    for k in range(order - 1, 0, -1):
        cont = defaultdict(int)
        for g in counts[k + 1]:
            cont[g[1:]] += 1
        counts[k] = dict(cont)
    return counts


def _reference_kn(train: list[list[int]], order: int, V: int):
    """Interpolated Kneser-Ney written plainly with dicts (Chen & Goodman), for comparison."""
    counts = _reference_counts(train, order)
    disc = []
    for k in range(order + 1):
        if k == 0:
            disc.append(0)
            continue
        n1 = sum(1 for c in counts[k].values() if c == 1)
        n2 = sum(1 for c in counts[k].values() if c == 2)
        disc.append(n1 / (n1 + 2 * n2) if n1 else 0.5)

    def prob(hist: tuple, w: int) -> float:
        k = len(hist) + 1
        if k == 1:
            tot = sum(counts[1].values())
            return max(counts[1].get((w,), 0) - disc[1], 0) / tot + disc[1] * len(counts[1]) / tot / V
        lower = prob(hist[1:], w)
        followers = [c for g, c in counts[k].items() if g[:-1] == hist]
        if not followers:
            return lower
        tot = sum(followers)
        return max(counts[k].get(hist + (w,), 0) - disc[k], 0) / tot + disc[k] * len(followers) / tot * lower

    return prob


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_matches_plain_reference(order):
    rng = np.random.default_rng(order)
    V = 6
    train = [list(rng.integers(2, V, rng.integers(0, 12))) for _ in range(25)]
    test = [list(rng.integers(1, V, rng.integers(0, 8))) for _ in range(6)]
    kn = KneserNey(V, order).fit([np.array(d, dtype=np.int64) for d in train])
    ref = _reference_kn(train, order, V)
    got = kn.log2probs([np.array(d, dtype=np.int64) for d in test])
    expected = []
    for d in test:
        seq = [END_ID] * (order - 1) + d + [END_ID]
        expected += [math.log2(ref(tuple(seq[t - order + 1:t]), seq[t])) for t in range(order - 1, len(seq))]
    assert got.tolist() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("order", [1, 3, 5])
def test_kneser_ney_is_a_distribution_everywhere(order):
    vocab = Vocab.from_counts({c: 1 for c in "abcdefgh "})
    kn = KneserNey(len(vocab), order).fit([vocab.encode(t) for t in ["abc abd", "bad cab", "fed ace"] * 3])
    for context in ["", "a", "ab", "abc ab", "hhhh", "zz"]:
        p = kn.next_distribution(vocab.encode(context))
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p > 0).all()


def test_kneser_ney_learns_structure_unigram_cannot():
    vocab = Vocab.from_counts({c: 1 for c in "abc"})
    train = [vocab.encode("abc" * 30)] * 5
    test = [vocab.encode("abc" * 20)]
    kn_bpc = -KneserNey(len(vocab), 3).fit(train).log2probs(test).mean()
    uni_bpc = -unigram_log2probs(train, test, len(vocab)).mean()
    assert uni_bpc > 1.5 and kn_bpc < 0.2


def test_bad_orders_are_clear_errors():
    with pytest.raises(ValueError, match="order"):
        KneserNey(10, 0)
    with pytest.raises(ValueError, match="overflows"):
        KneserNey(300, 9)


def test_render_text_and_targets():
    vocab = Vocab(("<END>", "<UNK>", "a", "b"))
    docs = [vocab.encode("ab\u00e9"), vocab.encode("")]
    text = render_text(docs, vocab)
    assert text == "ab" + baselines.UNK_CHAR + baselines.END_CHAR + baselines.END_CHAR
    assert len(text) == count_targets(docs) == 5


def test_compressors_price_copies_low_and_noise_high():
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    train = "".join(rng.choice(letters, 40_000))
    copy, noise = train[10_000:14_000], "".join(rng.choice(letters, 4_000))
    for name in baselines.COMPRESSORS:
        copied = compressor_bits(name, train, copy) / len(copy)
        fresh = compressor_bits(name, train, noise) / len(noise)
        assert fresh > 4.0, name  # log2(26) = 4.70: random letters cannot be compressed much
        assert copied < fresh, name
        if name == "xz_9":  # LZMA's dictionary reaches back over all the train text: a copy is nearly free
            assert copied < 0.5
    with pytest.raises(ValueError, match="unknown compressor"):
        compressor_bits("zstd", "a", "b")


def _ppmd_cost(prime: str, doc: str, order: int) -> float:
    """Bits PPMd spends on ``doc`` after ``prime``, from two fresh encoders (no fork)."""
    import pyppmd

    def coded(text: str) -> int:
        enc = pyppmd.Ppmd7Encoder(order, 16 << 20)
        return len(enc.encode(text.encode("utf-8"))) + len(enc.flush())
    return 8.0 * (coded(prime + doc) - coded(prime))


def _ppmd_corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["kopi", "teh", "uncle", "makan", "shiok", "lah", "the", "price"]
    return [" ".join(rng.choice(words, int(rng.integers(3, 12)))) + baselines.END_CHAR for _ in range(n)]


def test_ppmd_scores_each_document_from_the_primed_state_of_its_round_robin_prefix():
    pytest.importorskip("pyppmd")
    train, docs = _ppmd_corpus(40, 0), _ppmd_corpus(7, 1)
    bits, stream = baselines.ppmd_doc_bits(train, docs, order=4, memory_mb=16, states=3)
    for i, doc in enumerate(docs):  # doc i after the train documents up to the (i mod 3)-th of the last three
        prefix = "".join(train[:len(train) - 3 + i % 3 + 1])
        assert bits[i] == _ppmd_cost(prefix, doc, 4), i
    assert stream == _ppmd_cost("".join(train), "".join(docs), 4)


def test_ppmd_gives_a_document_no_context_from_the_documents_before_it():
    pytest.importorskip("pyppmd")
    train = _ppmd_corpus(30, 0)
    rng = np.random.default_rng(5)
    novel = "".join(rng.choice(list("zqxjvwy"), 300)) + baselines.END_CHAR  # nothing like it in train
    bits, stream = baselines.ppmd_doc_bits(train, [novel, novel, novel], order=5, memory_mb=16, states=1)
    assert bits[0] == bits[1] == bits[2]  # the repeats are not cheaper: each is coded alone
    assert stream < 0.7 * bits.sum()  # as one stream the second and third copies are nearly free
    copied, _ = baselines.ppmd_doc_bits(train, [train[3]], order=5, memory_mb=16, states=1)
    assert copied[0] / len(train[3]) < 0.5 * bits[0] / len(novel)  # the train text is what it learned


def test_ppmd_states_and_doc_store_and_bad_orders_fail(tmp_path):
    assert baselines.ppmd_states(0) == 1 and baselines.ppmd_states(5) == 5
    assert baselines.ppmd_states(10_000) == baselines.PPMD_STATES and baselines.ppmd_states(9, 3) == 3
    with baselines.DocStore(tmp_path / "s", states=3, groups=2) as store:
        for i, doc in enumerate(["a", "bb", "ccc", "dddd", "é"]):
            store.add(doc, i % 2)
    assert store.documents == 5
    assert list(store.records(1)) == [(1, b"bb"), (0, b"\xc3\xa9")]  # documents 1 and 4: state 4 mod 3
    assert list(store.in_order()) == [b"a", b"bb", b"ccc", b"dddd", "é".encode()]
    with pytest.raises(ValueError, match="group 2 outside"):
        baselines.DocStore(tmp_path / "t", states=1).add("x", 2)
    pytest.importorskip("pyppmd")
    with pytest.raises(ValueError, match="PPMd order must be in"):
        baselines.ppmd_doc_bits(["a"], ["b"], order=1, memory_mb=16)
    with pytest.raises(ValueError, match="more than the 2 train documents"):
        baselines.ppmd_store_bits(["a", "b"], store, order=3, memory_mb=16)


def test_ppmd_scores_runs_jobs_in_fresh_processes(tmp_path):
    pytest.importorskip("pyppmd")
    train, docs = _ppmd_corpus(20, 0), _ppmd_corpus(4, 1)
    with baselines.DocStore(tmp_path, baselines.ppmd_states(len(train)), groups=len(docs)) as store:
        for i, doc in enumerate(docs):
            store.add(doc, i)
    got = baselines.ppmd_scores(train, [("a", 3), ("a", 5)], {"a": store}, 16)
    assert set(got) == {("a", 3), ("a", 5)}
    for (_, order), future in got.items():
        bits, stream = future.result()
        here, here_stream = baselines.ppmd_doc_bits(train, docs, order, 16)
        assert bits.tolist() == here.tolist() and stream == here_stream
