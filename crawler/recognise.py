"""Forum engine recognition: what a fetched page says about the software that served it.

Each engine spider answers ``recognise(response) -> list[str] | None`` (a classmethod on
``ForumSpider``): the signals it saw that this page is its engine's, or None. The ``forum`` spider
(crawler/spiders/anyforum.py) asks every engine spider Scrapy's ``SpiderLoader`` finds
(``engine_spiders``, ``recognise_all``) and continues as the one with the most signals
(``best_engine``); a page no engine places is an error naming what it shows (``page_signals``).

A signal is a short label of one thing seen, ``"<where>: <what>"``, meant for a log line:
``"html: .message--post (XenForo 2)"``, ``"meta: generator 'vBulletin 4.2.5'"``, ``"text: Powered By
MyBB"``, ``"header: X-Powered-By NodeBB"``, ``"json: Discourse post_stream"``, ``"url: showthread.php"``.
The helpers that find them, each tolerant of any response (binary, empty, broken markup, JSON where
HTML was expected and the reverse: recognition never raises):

- ``css_signals(response, {label: css})``: the engine's markup on an HTML page (root ids such as
  ``html#XF`` and ``body#phpbb`` are CSS too);
- ``generator_signals(response, *names)``: ``<meta name="generator">`` naming the engine;
- ``text_signals(response, {label: regex})``: footers, template comments, script globals;
- ``header_signals(response, name, regex)``: a response header (NodeBB's ``X-Powered-By``);
- ``json_body(response)`` / ``json_keys(response)``: a JSON answer, to check its shape;
- ``url_signals(url, {label: regex})``: URL routes.

The rule every recogniser follows, through ``recognised(markup, urls)``: a page is recognised only
when something *in the answer* (markup, text, headers, JSON shape) is the engine's; URL routes only
add to those signals (``showthread.php`` is MyBB's and vBulletin's, ``/forum/`` Invision's and
vBulletin 5's), they never recognise a page alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from scrapy.http import Response, TextResponse

TEXT_HEAD = 200_000  # text signals are looked for in the page's first 200,000 characters


def _text(response: Response) -> str | None:
    """The response's text, or None for a response without one (binary, undecodable)."""
    if not isinstance(response, TextResponse):
        return None
    try:
        return response.text
    except (ValueError, AttributeError, LookupError):
        return None


def is_json(response: Response) -> bool:
    """Whether the answer is JSON: a JSON content type, or a body that starts like a JSON document."""
    kind = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
    if "json" in kind:
        return True
    text = _text(response)
    return text is not None and text.lstrip()[:1] in ("{", "[")


def _select(response: Response, css: str) -> list[str]:
    """``response.css(css).getall()`` on an HTML page; [] for anything else or broken markup."""
    if _text(response) is None or is_json(response):
        return []
    try:
        return response.css(css).getall()
    except Exception:  # lxml refuses some damaged documents: recognition then sees nothing there
        return []


def css_signals(response: Response, checks: Mapping[str, str]) -> list[str]:
    """Labels of ``checks`` (label -> CSS selector) that select something on an HTML page."""
    return [label for label, css in checks.items() if _select(response, css)]


def generator(response: Response) -> str | None:
    """The ``<meta name="generator">`` content, if the page has one."""
    values = _select(response, "meta[name='generator']::attr(content), meta[name='Generator']::attr(content)")
    return values[0].strip() if values and values[0].strip() else None


def generator_signals(response: Response, *names: str) -> list[str]:
    """``["meta: generator '...'"]`` when the page's generator names one of ``names`` (any case)."""
    value = generator(response)
    if value and any(name.lower() in value.lower() for name in names):
        return [f"meta: generator {value[:60]!r}"]
    return []


def text_signals(response: Response, checks: Mapping[str, re.Pattern[str]]) -> list[str]:
    """Labels of ``checks`` (label -> regex) found in the first ``TEXT_HEAD`` characters of the page."""
    text = _text(response)
    if text is None:
        return []
    head = text[:TEXT_HEAD]
    return [label for label, pattern in checks.items() if pattern.search(head)]


def header_signals(response: Response, name: str, pattern: re.Pattern[str]) -> list[str]:
    """``["header: <name> <value>"]`` when the response's header ``name`` matches ``pattern``."""
    raw = response.headers.get(name) if response.headers else None
    value = raw.decode("latin-1") if isinstance(raw, bytes) else (raw or "")
    return [f"header: {name} {value.strip()}"] if value and pattern.search(value) else []


def json_body(response: Response) -> Any:
    """The answer's JSON document, or None when it is not JSON (or not valid JSON)."""
    text = _text(response)
    if text is None or not is_json(response):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def json_keys(response: Response) -> set[str]:
    """The top-level keys of a JSON object answer; empty for anything else."""
    data = json_body(response)
    return set(data) if isinstance(data, dict) else set()


def url_signals(url: str, checks: Mapping[str, re.Pattern[str]]) -> list[str]:
    """Labels of ``checks`` (label -> regex) matching the URL."""
    return [label for label, pattern in checks.items() if pattern.search(url)]


def recognised(markup: list[str], urls: list[str]) -> list[str] | None:
    """The signals to report: None unless the answer itself showed one (``markup``); URL routes
    (``urls``) only add to them."""
    return markup + urls if markup else None


# ---- the forum spider's side -----------------------------------------------------------------
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
    def first(css: str) -> str | None:
        values = _select(response, css)
        return values[0] if values else None

    html_classes = sorted((first("html::attr(class)") or "").split())
    parts = [f"status {getattr(response, 'status', '?')}",
             f"content type {(response.headers.get('Content-Type') or b'').decode('latin-1') or 'none'}",
             f"generator {generator(response)!r}", f"html id {first('html::attr(id)')!r}",
             f"html classes {html_classes[:8]}", f"body id {first('body::attr(id)')!r}"]
    keys = json_keys(response)
    if keys:
        parts.append(f"JSON keys {sorted(keys)[:10]}")
    return ", ".join(parts)
