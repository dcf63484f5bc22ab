"""The post-id dedupe rule: the first occurrence of an id wins.

Used wherever repeated post ids are dropped: the crawler's item pipeline, the local-dataset
readers and the clean stage. (The crawl state's merge of re-crawled posts is a different rule on
purpose: there the newest fetch of a post replaces the older one.)

Memory: 8 bytes per id (a forum of 10M posts: 80 MB), whatever the ids' length. An id is kept as
the first 8 bytes of its BLAKE2b digest, in sorted NumPy runs (LSM style: a small set of recent keys
is flushed into a run, runs of similar size are merged, so there are O(log n) runs and each key is
merged O(log n) times). Two ids share a key with probability about n**2 / 2**65 (3e-6 for 10M ids):
the same odds as two posts sharing a ``doc_id`` (16 hex digits of SHA-256), which the whole pipeline
already takes as a document's identity.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Iterable

import numpy as np


def id_key(ident: str) -> int:
    """An id's 64-bit key (first 8 bytes of BLAKE2b, little-endian)."""
    return int.from_bytes(hashlib.blake2b(ident.encode("utf-8"), digest_size=8).digest(), "little")


class SeenIds:
    """Ids met so far, for post-id dedupe: the first occurrence of an id wins, later ones are repeats.

    One rule for every place that drops repeated post ids (a batch of rows or one record at a time).
    """

    def __init__(self, flush_at: int = 1 << 16) -> None:
        self._recent: set[int] = set()
        self._runs: list[np.ndarray] = []  # sorted uint64, disjoint, oldest (largest) first
        self._views: list[memoryview] = []  # the runs as sequences: bisect reads them without NumPy's call cost
        self._flush_at = flush_at
        self._size = 0

    def _in_runs(self, key: int) -> bool:
        for view in self._views:
            i = bisect.bisect_left(view, key)
            if i < len(view) and view[i] == key:
                return True
        return False

    def _known(self, keys: np.ndarray) -> np.ndarray:
        """Which of ``keys`` (uint64) are in the runs."""
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            i = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[i] == keys
        return found

    def _remember(self, keys: Iterable[int]) -> None:
        before = len(self._recent)
        self._recent.update(keys)
        self._size += len(self._recent) - before
        if len(self._recent) >= self._flush_at:
            self._flush()

    def _flush(self) -> None:
        run = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        run.sort()
        self._recent.clear()
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = np.union1d(self._runs.pop(), run)  # disjoint: a key enters a run once
            self._views.pop()
        self._runs.append(run)
        self._views.append(memoryview(run))

    def first(self, ident: str) -> bool:
        """True the first time ``ident`` is met (and remember it), False after."""
        key = id_key(ident)
        if key in self._recent or self._in_runs(key):
            return False
        self._remember((key,))
        return True

    def repeats(self, ids: Iterable[str]) -> list[int]:
        """Positions in ``ids`` of ids met before (earlier calls or earlier in ``ids``); remembers all."""
        keys = np.fromiter((id_key(i) for i in ids), dtype=np.uint64)
        if len(keys) == 0:
            return []
        seen_before = self._known(keys)
        recent = self._recent
        out = []
        for pos, (key, old) in enumerate(zip(keys.tolist(), seen_before.tolist())):
            if old or key in recent:
                out.append(pos)
            else:
                recent.add(key)
                self._size += 1
        if len(recent) >= self._flush_at:
            self._flush()
        return out

    def add(self, ids: Iterable[str]) -> None:
        """Remember ``ids`` without asking (e.g. ids of rows dropped for another reason)."""
        keys = np.fromiter((id_key(i) for i in ids), dtype=np.uint64)
        if len(keys):
            self._remember(k for k, old in zip(keys.tolist(), self._known(keys).tolist()) if not old)

    def __contains__(self, ident: object) -> bool:
        if not isinstance(ident, str):
            return False
        key = id_key(ident)
        return key in self._recent or self._in_runs(key)

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        """Bytes held by the runs (the recent set adds at most ``flush_at`` Python ints)."""
        return sum(run.nbytes for run in self._runs)
