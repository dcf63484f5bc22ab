"""Does the model invent or copy? Novel-word share and longest verbatim copy from the train text.

- ``novel_word_share``: of the word tokens in the generated samples (``\\w+`` runs, lower-cased),
  the share whose word never occurs in the training text. ``scan_train`` finds which of the
  samples' words the training text holds while streaming it, so the training vocabulary (which
  grows with the corpus) is never built.
- ``longest_copies``: for each sample, the longest substring that also occurs verbatim in the
  training text (a memorisation check), with its position.

Longest copies use a suffix automaton built over the SAMPLES (kilobytes), not over the training
text (megabytes): the training text is then streamed through the automaton once, in one pass,
computing at every step the longest suffix of the text read so far that is a substring of some
sample (the classic longest-common-substring walk). Building an automaton, suffix array or suffix
tree over MBs of training text in Python would cost GBs of memory; this costs one linear pass over
the training text (a few seconds per MB at worst) whatever the number of samples. Samples are joined
with private-use separators that never occur in the training text, so no match crosses samples.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

log = logging.getLogger(__name__)
WORD_RE = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Word tokens of ``text``: runs of Unicode word characters, lower-cased."""
    return [w.lower() for w in WORD_RE.findall(text)]


def novel_word_share(samples: Sequence[str], train_vocabulary: set[str]) -> tuple[float, int, int]:
    """(share of sample word tokens absent from ``train_vocabulary``, novel tokens, all tokens)."""
    tokens = [w for s in samples for w in words(s)]
    novel = sum(1 for w in tokens if w not in train_vocabulary)
    return (novel / len(tokens) if tokens else 0.0), novel, len(tokens)


def train_vocabulary(texts: Iterable[str]) -> set[str]:
    """Every word of ``texts`` (memory grows with the distinct words: ``scan_train`` bounds it)."""
    vocab: set[str] = set()
    for t in texts:
        vocab.update(words(t))
    return vocab


def _seen_words(wanted: set[str], texts: Iterable[str], seen: set[str], batch_chars: int = 1 << 20) -> Iterator[str]:
    """Yield ``texts`` unchanged, adding to ``seen`` each word of ``wanted`` they contain (``words``'
    tokens: texts are read a batch at a time, joined by a newline, which no word spans)."""
    batch: list[str] = []
    size = 0

    def flush() -> None:
        found = {w.lower() for w in set(WORD_RE.findall("\n".join(batch)))}
        seen.update(found & wanted)
        batch.clear()

    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= batch_chars:
            flush()
            size = 0
        yield text
    flush()


def scan_train(samples: Sequence[str], train_texts: Iterable[str]) -> tuple[set[str], list[Copy]]:
    """One pass over ``train_texts`` (any iterable: a split streamed from disk) for both measures:
    which of the samples' words occur in them, and each sample's longest copy (``longest_copies``).
    The word set is the train vocabulary restricted to the samples' words, which is all
    ``novel_word_share`` asks of it, so memory is the samples', not the train split's, however many
    distinct words the corpus has."""
    wanted = {w for s in samples for w in words(s)}
    seen: set[str] = set()
    copies = longest_copies(samples, _seen_words(wanted, train_texts, seen))
    return seen, copies


class SuffixAutomaton:
    """Minimal suffix automaton (Blumer et al.): states recognise exactly the substrings added."""

    def __init__(self) -> None:
        self.next: list[dict[str, int]] = [{}]
        self.link: list[int] = [-1]
        self.length: list[int] = [0]
        self.last = 0

    def extend(self, ch: str) -> int:
        """Append one character; return the state of the whole string read so far."""
        nxt, link, length = self.next, self.link, self.length
        cur = len(length)
        nxt.append({}), link.append(0), length.append(length[self.last] + 1)
        p = self.last
        while p != -1 and ch not in nxt[p]:
            nxt[p][ch] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q])), link.append(link[q]), length.append(length[p] + 1)
                while p != -1 and nxt[p].get(ch) == q:
                    nxt[p][ch] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        self.last = cur
        return cur


@dataclass(frozen=True)
class Copy:
    """The longest span of a sample found verbatim in the training text."""

    length: int
    start: int  # offset in the sample
    text: str


def _match_train(sam: SuffixAutomaton, train_texts: Iterable[str]) -> tuple[list[int], int]:
    """Per automaton state, the longest match ending there seen while walking ``train_texts``; the
    number of characters walked."""
    best = [0] * len(sam.length)
    nxt, link, length = sam.next, sam.link, sam.length
    n_chars = 0
    for text in train_texts:  # training documents are separate strings: matches never span two
        v, cur = 0, 0
        for ch in text:
            if ch in nxt[v]:
                v, cur = nxt[v][ch], cur + 1
            else:
                while v != -1 and ch not in nxt[v]:
                    v = link[v]
                if v == -1:
                    v, cur = 0, 0
                    continue
                cur = length[v] + 1
                v = nxt[v][ch]
            if cur > best[v]:
                best[v] = cur
        n_chars += len(text)
    return best, n_chars


def _spread_along_links(best: list[int], link: list[int], length: list[int]) -> None:
    """Make ``best[v]`` the longest match among all strings of state ``v`` (in place)."""
    # A match of length L in state v also matches min(L, len(link(v))) in its suffix-link parent.
    for v in sorted(range(1, len(length)), key=length.__getitem__, reverse=True):
        b = min(best[v], length[v])
        best[v] = b
        if link[v] > 0 and min(b, length[link[v]]) > best[link[v]]:
            best[link[v]] = min(b, length[link[v]])
    # Every string of a suffix-link ancestor is a suffix of v's strings: take the best along the chain.
    for v in sorted(range(1, len(length)), key=length.__getitem__):
        if link[v] > 0 and best[link[v]] > best[v]:
            best[v] = best[link[v]]


def longest_copies(samples: Sequence[str], train_texts: Iterable[str], *, separator_base: int = 0xF0000) -> list[Copy]:
    """For each sample, its longest substring that occurs in any of ``train_texts``."""
    sam = SuffixAutomaton()
    ends: list[list[int]] = []  # per sample: the state after each of its characters
    for i, s in enumerate(samples):
        ends.append([sam.extend(ch) for ch in s])
        sam.extend(chr(separator_base + i))  # a private-use character no text contains
    best, n_chars = _match_train(sam, train_texts)
    _spread_along_links(best, sam.link, sam.length)
    copies = []
    for s, states in zip(samples, ends):
        top, end = 0, 0
        for j, v in enumerate(states):  # best[v]: longest suffix of s[:j+1] that occurs in the text
            if best[v] > top:
                top, end = best[v], j + 1
        copies.append(Copy(top, end - top, s[end - top:end]))
    log.debug("longest copies: %d samples against %d training characters", len(samples), n_chars)
    return copies
