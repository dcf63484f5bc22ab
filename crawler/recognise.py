"""Forum engine recognition: what a fetched page says about the software that rendered it.

Each engine spider answers ``recognise(response) -> list[str] | None`` (a classmethod on
``ForumSpider``): the signals it saw that this page is its engine's, or None. The ``forum``
spider (crawler/spiders/anyforum.py) asks every engine spider Scrapy's ``SpiderLoader`` finds,
so a new engine is recognised as soon as its spider implements the hook. The helpers below read
the signals engines commonly leave, tolerant of broken markup (they never raise):

- ``generator(response)``: ``<meta name="generator" content="vBulletin 4.2.5">`` (vBulletin,
  Discourse, many CMSs);
- ``html_id(response)``, ``html_classes(response)``, ``body_id(response)``: the root elements'
  id and class tokens (XenForo 2 ``html#XF``, XenForo 1 ``html#XenForo``, phpBB ``body#phpbb``);
- ``present(response, *css)``: which of these CSS selectors match something (the markup the
  engine's spider reads);
- ``json_keys(response)``: the top-level keys of a JSON answer (Discourse's ``post_stream``,
  ``topic_list``);
- ``route(url, pattern, label)``: a URL route as a signal (supporting evidence only: a
  recogniser should answer None when the page itself shows nothing of its engine).

Signals are short strings meant for a log line: ``html#XF``, ``meta generator 'vBulletin 4.2.5'``,
``.message--post``, ``route /threads/<slug>.<id>/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from scrapy.http import Response, TextResponse


def _css(response: Response, query: str) -> list[str]:
    """``response.css(query).getall()``, or [] for a response without a text body or broken markup."""
    if not isinstance(response, TextResponse):
        return []
    try:
        return response.css(query).getall()
    except Exception:  # lxml refuses some damaged documents; recognition then sees nothing
        return []


def generator(response: Response) -> str | None:
    """The ``<meta name="generator">`` content, if the page has one."""
    values = _css(response, "meta[name='generator']::attr(content), meta[name='Generator']::attr(content)")
    return values[0].strip() if values and values[0].strip() else None


def html_id(response: Response) -> str | None:
    values = _css(response, "html::attr(id)")
    return values[0] if values else None


def body_id(response: Response) -> str | None:
    values = _css(response, "body::attr(id)")
    return values[0] if values else None


def html_classes(response: Response) -> set[str]:
    values = _css(response, "html::attr(class)")
    return set(values[0].split()) if values else set()


def present(response: Response, *queries: str) -> list[str]:
    """The CSS selectors among ``queries`` that match at least one element."""
    return [q for q in queries if _css(response, q)]


def json_keys(response: Response) -> set[str]:
    """The top-level keys of a JSON object answer; empty for anything else."""
    if not isinstance(response, TextResponse):
        return set()
    text = response.text.lstrip()
    if not text.startswith("{"):
        return set()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return set()
    return set(data) if isinstance(data, dict) else set()


def route(url: str, pattern: re.Pattern[str], label: str) -> list[str]:
    """``[f"route {label}"]`` when ``pattern`` matches ``url``, else []."""
    return [f"route {label}"] if pattern.search(url) else []


def generator_signal(response: Response, *names: str) -> list[str]:
    """``[meta generator '...']`` when the page's generator names one of ``names`` (case-insensitive)."""
    value = generator(response)
    if value and any(name.lower() in value.lower() for name in names):
        return [f"meta generator {value[:60]!r}"]
    return []
