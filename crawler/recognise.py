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


def engine_spiders(settings: Any = None) -> list[type]:
    """Every engine spider of the project, by name: the ``ForumSpider`` subclasses Scrapy's
    ``SpiderLoader`` finds (``settings``: a crawler's, default the project's ``crawler.settings``)
    that implement ``recognise``."""
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    from crawler.spiders.forum import ForumSpider

    if settings is None:
        from crawler import settings as project_settings

        settings = Settings()
        settings.setmodule(project_settings)
    loader = SpiderLoader.from_settings(settings)
    classes = [loader.load(name) for name in sorted(loader.list())]
    return [c for c in classes if issubclass(c, ForumSpider)
            and c.recognise.__func__ is not ForumSpider.recognise.__func__]


def recognise_all(response: Response, engines: list[type]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Ask every engine: ({engine name: its signals} for those that recognised the page,
    {engine name: error} for recognisers that raised, which count as not recognising)."""
    found: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for engine in engines:
        try:
            signals = engine.recognise(response)
        except Exception as exc:  # a recogniser's bug must not stop the others
            failed[engine.name] = f"{type(exc).__name__}: {exc}"
            continue
        if signals:
            found[engine.name] = list(signals)
    return found, failed


def best_engine(found: dict[str, list[str]]) -> str | None:
    """The engine with the most signals; None when two or more share the most (ambiguous)."""
    if not found:
        return None
    most = max(len(s) for s in found.values())
    leaders = [name for name, s in found.items() if len(s) == most]
    return leaders[0] if len(leaders) == 1 else None


def page_signals(response: Response) -> str:
    """What a page shows of its software, for the error when no engine recognised it."""
    parts = [f"status {getattr(response, 'status', '?')}",
             f"content type {response.headers.get('Content-Type', b'').decode('latin-1') or 'none'}",
             f"generator {generator(response)!r}", f"html id {html_id(response)!r}",
             f"html classes {sorted(html_classes(response))[:8]}", f"body id {body_id(response)!r}"]
    keys = json_keys(response)
    if keys:
        parts.append(f"JSON keys {sorted(keys)[:10]}")
    return ", ".join(parts)
