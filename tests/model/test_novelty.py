"""Novelty (model/novelty.py): the novel-word share and the longest verbatim copy from the training text.

The share by hand; the longest copy found for a planted span, checked against brute force, never crossing
samples or documents."""

from __future__ import annotations

import random

from model.novelty import SuffixAutomaton, longest_copies, novel_word_share, train_vocabulary


def _brute(sample: str, texts: list[str]) -> int:
    best = 0
    for i in range(len(sample)):
        for j in range(i + best + 1, len(sample) + 1):
            if any(sample[i:j] in t for t in texts):
                best = j - i
            else:
                break
    return best


def test_planted_copied_span_is_found():
    rng = random.Random(0)
    train = "".join(rng.choice("abcdefgh ijklmnop\n") for _ in range(50_000))
    planted = train[31_337:31_337 + 83]
    sample = "QQ" + "".join(rng.choice("xyz") for _ in range(40)) + planted + "ZZZZ" + "k"
    other = "".join(rng.choice("XYZ") for _ in range(30))
    copies = longest_copies([sample, other], [train])
    assert copies[0].length >= 83 and planted in copies[0].text
    assert copies[0].text == sample[copies[0].start:copies[0].start + copies[0].length]
    assert copies[0].text in train
    assert copies[1].length == 0 and copies[1].text == ""


def test_matches_brute_force_on_random_strings():
    rng = random.Random(1)
    for trial in range(200):
        alphabet = "ab" if trial % 2 else "abc"
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(3)]
        samples = ["".join(rng.choice(alphabet + "d") for _ in range(rng.randint(0, 12))) for _ in range(4)]
        for s, c in zip(samples, longest_copies(samples, texts)):
            assert c.length == _brute(s, texts), (s, texts)


def test_matches_never_cross_samples_or_training_documents():
    copies = longest_copies(["xxab", "cdyy"], ["abcd"])
    assert [c.length for c in copies] == [2, 2]  # "abcd" spans the two samples: not a copy
    assert longest_copies(["abcd"], ["ab", "cd"])[0].length == 2  # nor across two training documents


def test_suffix_automaton_recognises_exactly_the_substrings():
    text = "abcbcabbca"
    sam = SuffixAutomaton()
    for ch in text:
        sam.extend(ch)

    def accepts(s: str) -> bool:
        v = 0
        for ch in s:
            if ch not in sam.next[v]:
                return False
            v = sam.next[v][ch]
        return True

    subs = {text[i:j] for i in range(len(text)) for j in range(i, len(text) + 1)}
    for s in subs:
        assert accepts(s)
    for s in ["cc", "aa", "abcc", "bcabbcab"]:
        assert accepts(s) == (s in text)


def test_novel_word_share_by_hand():
    vocab = train_vocabulary(["Kopi O kosong, teh tarik", "uncle"])
    share, novel, total = novel_word_share(["kopi siew dai", "UNCLE teh"], vocab)
    # words: kopi siew dai uncle teh -> novel: siew, dai
    assert (novel, total) == (2, 5) and share == 2 / 5
    assert novel_word_share([], vocab) == (0.0, 0, 0)


def test_scan_train_holds_only_the_samples_words_and_finds_the_same_copies():
    from model.novelty import _seen_words, scan_train
    from model.novelty import words as words_of

    rng = random.Random(3)
    words = ["kopi", "Teh", "uncle", "MAKAN", "shiok", "lah", "İstanbul", "naïve", "x_1"]
    train = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))) for _ in range(300)] + ["zzqx."]
    samples = ["teh kopi zzqx qqzz", "makan İSTANBUL naïve lah", "nothing here"]
    seen, copies = scan_train(samples, iter(train))  # any iterable, read once
    wanted = {w for s in samples for w in words_of(s)}
    assert seen == train_vocabulary(train) & wanted
    assert [c.length for c in copies] == [c.length for c in longest_copies(samples, train)]
    for s in samples:
        assert novel_word_share([s], seen) == novel_word_share([s], train_vocabulary(train))
    small: set[str] = set()  # batches of a few characters: no word is lost at a batch boundary
    assert list(_seen_words(wanted, train, small, batch_chars=7)) == train and small == seen
