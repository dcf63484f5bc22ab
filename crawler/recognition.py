"""What a fetched page says about the forum engine that served it: the helpers of the spiders'
``recognise(response) -> list[str] | None`` class methods (the engine-agnostic ``forum`` spider asks
each spider in turn and continues as the one that recognises the start page).

A signal is a short label of one thing seen (``"html: div.post[id^=post_]"``, ``"header: X-Powered-By
NodeBB"``, ``"json: topic_list"``, ``"url: showthread.php?tid="``). A spider recognises a page when at
least one of its *markup* signals (page content, headers, JSON shape) matched; URL routes alone
recognise nothing (``showthread.php`` is MyBB's and vBulletin's), they only add to the list.
Every helper tolerates any response (binary, empty, broken markup): recognition never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from scrapy.http import Response, TextResponse


def css_signals(response: Response, checks: Mapping[str, str]) -> list[str]:
    """Labels of ``checks`` (label -> CSS selector) that select something on an HTML page."""
    if not isinstance(response, TextResponse) or _looks_like_json(response):
        return []
    found = []
    for label, css in checks.items():
        try:
            if response.css(css):
                found.append(label)
        except (ValueError, TypeError, AttributeError):  # a page lxml cannot parse selects nothing
            continue
    return found


def text_signals(response: Response, checks: Mapping[str, re.Pattern[str]]) -> list[str]:
    """Labels of ``checks`` (label -> regex) found in the first 200 kB of the page's text."""
    if not isinstance(response, TextResponse):
        return []
    try:
        head = response.text[:200_000]
    except (ValueError, AttributeError):
        return []
    return [label for label, pattern in checks.items() if pattern.search(head)]


def url_signals(url: str, checks: Mapping[str, re.Pattern[str]]) -> list[str]:
    """Labels of ``checks`` (label -> regex) matching the URL."""
    return [label for label, pattern in checks.items() if pattern.search(url)]


def header_signals(response: Response, name: str, pattern: re.Pattern[str]) -> list[str]:
    """``["header: <name> <value>"]`` when the response's header ``name`` matches ``pattern``."""
    raw = response.headers.get(name) if response.headers else None
    value = raw.decode("latin-1") if isinstance(raw, bytes) else (raw or "")
    return [f"header: {name} {value.strip()}"] if value and pattern.search(value) else []


def json_body(response: Response) -> Any:
    """The response's JSON document, or None when it is not JSON."""
    if not isinstance(response, TextResponse) or not _looks_like_json(response):
        return None
    try:
        return json.loads(response.text)
    except (ValueError, AttributeError):
        return None


def _looks_like_json(response: TextResponse) -> bool:
    kind = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
    if "json" in kind:
        return True
    try:
        start = response.text.lstrip()[:1]
    except (ValueError, AttributeError):
        return False
    return start in ("{", "[")


def recognised(markup: list[str], urls: list[str]) -> list[str] | None:
    """The signals to report: None unless a markup signal matched (URL routes alone are not enough)."""
    return markup + urls if markup else None
