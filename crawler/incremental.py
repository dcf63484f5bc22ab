# Incremental re-crawls: which threads a previous crawl already holds completely, and their last post.
"""``ThreadIndex``: skip threads whose last post is unchanged since the previous crawl.

The crawl stage (pipeline/crawlstate.py) writes, before each run, a JSON index of the threads the
source already holds: ``{thread_id: {"last_post_id", "last_posted_at", "last_page", "posts", "complete"}}``
and passes its path as the ``KOPITIAM_INCREMENTAL_STATE`` setting. A forum spider reads the last
post of every thread a board page lists (``ForumSpider.thread_last_posts``) and does not request
a thread when the index holds it ``complete`` (positions contiguous: no page missing) with the
same last post (same post id, or the same time when the board shows no id). Of a changed
thread, its first page (the entry) and the pages from the one that held its last known post
(``last_page``) onwards are fetched again; the stage merges the posts into the store by
``post_id``, so nothing is duplicated. Without the setting (plain ``scrapy crawl``) every thread is fetched.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from contracts import keys
from contracts.timestamps import to_utc

logger = logging.getLogger(__name__)

SETTING = keys.INCREMENTAL_STATE


@dataclass(frozen=True)
class LastPost:
    """The last post of a thread as a board page shows it (either field may be unknown)."""

    post_id: str | None = None
    posted_at: datetime | None = None


class ThreadIndex:
    def __init__(self, threads: Mapping[str, Mapping[str, Any]]) -> None:
        self.threads = dict(threads)

    @classmethod
    def load(cls, path: str | Path | None) -> "ThreadIndex | None":
        if not path:
            return None
        path = Path(path)
        if not path.exists():
            logger.info("no incremental state at %s: every thread is fetched", path)
            return None
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of thread ids, got {type(data).__name__}")
        return cls(data)

    def resume_page(self, thread_id: str | None) -> int | None:
        """The page holding a complete thread's last known post: earlier pages need no re-fetch."""
        known = self.threads.get(str(thread_id))
        if not known or not known.get("complete") or not known.get("last_page"):
            return None
        return int(known["last_page"])

    def unchanged(self, thread_id: str, last: LastPost | None) -> bool:
        """True when the previous crawl holds this thread completely up to the same last post."""
        known = self.threads.get(str(thread_id))
        if not known or not known.get("complete") or last is None:
            return False
        if last.post_id is not None:
            return str(last.post_id) == str(known.get("last_post_id"))
        if last.posted_at is not None and known.get("last_posted_at"):
            return last.posted_at == to_utc(known["last_posted_at"], "last_posted_at")
        return False
