# Item pipelines: small checks between the spider and the feed exporters, one concern each,
# ordered by number (ITEM_PIPELINES in settings.py). Spiders only extract; nothing here rewrites
# text (cleaning is the clean stage's job). Dropped items are counted under
# `kopitiam/dropped/<reason>` and logged, never silently lost.
"""Item pipelines: required fields, then one item per post id, then posts without a date counted."""

from __future__ import annotations

import logging

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from contracts.ids import SeenIds
from crawler.items import REQUIRED_FIELDS

logger = logging.getLogger(__name__)


class RequiredFieldsPipeline:
    """Drop items that lack a field the raw schema declares non-nullable (counted per field)."""

    def __init__(self, stats) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        for name in REQUIRED_FIELDS:
            if adapter.get(name) in (None, ""):
                self.stats.inc_value(f"kopitiam/dropped/missing_{name}")
                raise DropItem(f"missing required field {name!r} in item from {adapter.get('url')}")
        return item


class UniquePostPipeline:
    """Keep the first item per post id (``contracts.ids.SeenIds``, the project's one dedupe rule):
    a post reached twice (e.g. via two URLs) is written once."""

    def __init__(self, stats) -> None:
        self.stats = stats
        self.seen = SeenIds()

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_item(self, item, spider=None):
        post_id = str(ItemAdapter(item)["post_id"])
        if not self.seen.first(post_id):
            self.stats.inc_value("kopitiam/dropped/duplicate_post")
            raise DropItem(f"duplicate post id {post_id}")
        return item


class PostDatePipeline:
    """Count posts whose date could not be read (``kopitiam/errors/post_without_date``), for every
    spider, and warn once with the first such post's URL.

    The item is kept (its text is still training data), but a null ``posted_at`` is never silent:
    the clean stage's ``since`` filter and dedupe order depend on it, and a spider that reads no
    date at all (new markup, an unknown date format) shows up in metrics/crawl at once.
    """

    STAT = "kopitiam/errors/post_without_date"

    def __init__(self, stats) -> None:
        self.stats = stats
        self.warned = False

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_item(self, item, spider=None):
        adapter = ItemAdapter(item)
        if adapter.get("posted_at") is None:
            self.stats.inc_value(self.STAT)
            if not self.warned:
                self.warned = True
                logger.warning("post %s at %s: no date could be read (posted_at is null); further "
                               "posts without a date are counted in %s, not logged",
                               adapter.get("post_id"), adapter.get("url"), self.STAT)
        return item
