"""HTML pages from Jinja2 templates: the report (model/report.py) and the compare page
(model/compare.py) share one environment, one stylesheet and one set of table and plot macros
(``model/templates/``: ``base.html``, ``style.css``, ``macros.html``).

Why Jinja2: its autoescaping makes every value a template prints HTML-escaped (quotes included)
unless the code marks it safe, which none of ours does, so scraped text, generated samples,
params values and run names cannot add markup. Hand-escaping every f-string fragment relied on
never forgetting one. It is a well-kept library, already in the lock (dask's distributed needs it).
``StrictUndefined`` turns a misspelt variable into an error instead of an empty cell.

Values reach the templates as plain Python data; ``fmt`` is the one number formatter, as a filter.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined


def fmt(v: Any) -> str:
    """A value as shown in a table cell: thousands separators, 4 decimals, "-" for nothing."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def signed(v: Any) -> str:
    """A difference with its sign (``+0.0123``, ``-1,204``, ``±0``), "" for nothing."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return ""
    if v == 0:
        return "\u00b10"
    return f"{v:+,.4f}" if isinstance(v, float) else f"{v:+,}"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested JSON as (dotted key, scalar) pairs in key order; lists of scalars joined."""
    if isinstance(data, dict):
        return [kv for k in sorted(data, key=str) for kv in flatten(data[k], f"{prefix}{k}.")]
    if isinstance(data, list):
        if all(not isinstance(x, (dict, list)) for x in data):
            return [(prefix[:-1], ", ".join(fmt(x) for x in data))]
        return [kv for i, x in enumerate(data) for kv in flatten(x, f"{prefix}{i}.")]
    return [(prefix[:-1], data)]


@functools.cache
def environment() -> Environment:
    """The one template environment: package templates, autoescaping on, undefined is an error."""
    env = Environment(loader=PackageLoader("model", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, signed=signed, repr=repr)
    return env


def render(template: str, **context: Any) -> str:
    """``template`` (a file name under model/templates/) rendered with ``context``."""
    return environment().get_template(template).render(**context)


def cell(value: Any, delta: Any = None, best: bool = False) -> dict[str, Any]:
    """A table cell with its difference to a baseline and a best-of-column mark (macros.html ``cell``)."""
    return {"value": value, "delta": delta, "best": best}


def sample_view(s: dict[str, Any]) -> dict[str, Any]:
    """A sample row as the ``sample`` macro shows it: prime and continuation as text, END flag."""
    return {"prime": str(s.get("prime") or ""), "text": str(s.get("text") or ""), "ended": bool(s.get("ended"))}


def fence(text: str) -> str:
    """A Markdown fenced code block whose fence is longer than any backtick run inside ``text``."""
    ticks = "`" * max(3, max((len(x) for x in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}\n{text}\n{ticks}"


def md_cell(value: Any) -> str:
    """A value for a Markdown table cell: one line, pipes and HTML-significant characters escaped
    (Markdown renderers pass raw HTML through)."""
    if isinstance(value, dict):
        text = fmt(value["value"]) + (f" ({signed(value['delta'])})" if value["delta"] is not None else "")
        text += " *" if value["best"] else ""
    else:
        text = fmt(value)
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows)]
