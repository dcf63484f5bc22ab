"""The post-id dedupe rule: the first occurrence of an id wins.

Used wherever repeated post ids are dropped: the crawler's item pipeline, the local-dataset
readers and the clean stage. (The crawl state's merge of re-crawled posts is a different rule on
purpose: there the newest fetch of a post replaces the older one.)
"""

from __future__ import annotations

from typing import Iterable


class SeenIds:
    """Ids met so far, for post-id dedupe: the first occurrence of an id wins, later ones are repeats.

    One rule for every place that drops repeated post ids (a batch of rows or one record at a time).
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def first(self, ident: str) -> bool:
        """True the first time ``ident`` is met (and remember it), False after."""
        if ident in self._seen:
            return False
        self._seen.add(ident)
        return True

    def repeats(self, ids: Iterable[str]) -> list[int]:
        """Positions in ``ids`` of ids met before (earlier calls or earlier in ``ids``); remembers all."""
        return [i for i, ident in enumerate(ids) if not self.first(ident)]

    def add(self, ids: Iterable[str]) -> None:
        """Remember ``ids`` without asking (e.g. ids of rows dropped for another reason)."""
        self._seen.update(ids)

    def __contains__(self, ident: object) -> bool:
        return ident in self._seen

    def __len__(self) -> int:
        return len(self._seen)
