# Items: the fields every spider yields. One PostItem per forum post (or per document for the
# text/article spiders and readers). The fields are exactly contracts/schemas.py RAW_SCHEMA, so
# the Parquet feed exporter can write an item without guessing.
"""Scrapy items for kopitiam: ``PostItem`` mirrors ``contracts.schemas.RAW_SCHEMA`` field for field."""

from __future__ import annotations

from datetime import datetime

import scrapy


def _iso(value: object) -> object:
    """JSON/CSV feeds: timestamps as ISO 8601 with their UTC offset (Parquet keeps real timestamps)."""
    return value.isoformat() if isinstance(value, datetime) else value


class PostItem(scrapy.Item):
    source = scrapy.Field()  # params key of the source, e.g. "demo"
    url = scrapy.Field()  # permalink of the post
    board = scrapy.Field()  # board (sub-forum) name
    thread_id = scrapy.Field()  # str
    thread_title = scrapy.Field()
    page = scrapy.Field()  # 1-based page of the thread the post was read from
    position = scrapy.Field()  # 0-based index of the post in its thread
    post_id = scrapy.Field()  # str, unique within the source
    author = scrapy.Field()
    posted_at = scrapy.Field(serializer=_iso)  # aware datetime in UTC, or None
    body = scrapy.Field()  # HTML as served (body_format "html") or plain text ("text")
    body_format = scrapy.Field()
    quoted_post_ids = scrapy.Field()  # list[str]
    fetched_at = scrapy.Field(serializer=_iso)  # aware datetime in UTC


REQUIRED_FIELDS = ("source", "url", "thread_id", "position", "post_id", "body_format", "fetched_at")
