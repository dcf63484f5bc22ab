"""Attribute reads that survive damaged markup.

parsel's ``Selector.attrib`` builds a dict of *every* attribute of an element, and lxml raises
``ValueError`` on an attribute name holding a control character (one flipped byte in a tag is
enough). Reading by name the attributes one wants asks lxml for those names only.
"""

from __future__ import annotations

from collections.abc import Iterable

from parsel import Selector

LINK_ATTRS = ("href", "data-content-selector")  # what EngineMarkup.quote_ids reads on a link


def attr(sel: Selector, name: str) -> str:
    """The value of attribute ``name`` ("" when absent)."""
    value = sel.root.get(name) if hasattr(sel.root, "get") else None
    return value if isinstance(value, str) else ""


def attrs(sel: Selector, names: Iterable[str]) -> dict[str, str]:
    """The attributes ``names`` that ``sel`` has, by name."""
    return {name: value for name in names if (value := attr(sel, name))}
