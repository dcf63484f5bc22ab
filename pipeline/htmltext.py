"""Forum post HTML -> plain text, for the clean stage.

Parsed with BeautifulSoup on the lxml parser (tolerant of broken markup, fast C parser
underneath; the crawl stage deliberately leaves all HTML interpretation to this module). What is
a quote, a signature, a "Click to expand..." link, a smilie or an @mention comes from the engine's
markup record (``contracts.markup.EngineMarkup``; the clean stage reads it from the raw file):

- quote blocks (any nesting depth) are removed; the ids of the posts they quote are returned
  (``EngineMarkup.quote_ids`` on the block's ``data-source`` and its attribution links); quotes
  told by structure (a ``<table>`` with a ``quote_cell`` cell, vBulletin 3) go with the label
  element before them ("Quote:"), their attribution being the cell's first element;
- signatures (and, on the text, whole "Sent from my iPhone using Tapatalk"-style app lines:
  ``strip_app_signatures``), "Click to expand..." links and the lines they leave, ``<script>``,
  ``<style>``, ``<noscript>``, ``<template>``, ``<iframe>`` and comments are removed;
- smilies become their alt text (``:)``); other images their alt text unless it looks like a file
  name, else ``image_placeholder``; ``@mentions`` become ``mention_placeholder`` so no username
  reaches the text;
- links become their text; ``<br>`` and block elements become line breaks; whitespace inside text
  nodes collapses as a browser would; entities are decoded by the parser.

The walk is iterative (no recursion limit on deeply nested input) and records how many characters
came from plain text, link text and images, so filters can tell "only links/smilies" posts apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from bs4.builder._lxml import LXMLTreeBuilder
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

from contracts.markup import GENERIC, EngineMarkup

SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "head", "title",
                       "object", "embed", "svg", "button", "input", "select", "textarea"})
BLOCK_TAGS = frozenset({"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "h1", "h2",
                        "h3", "h4", "h5", "h6", "pre", "section", "article", "header", "footer",
                        "hr", "blockquote", "figure", "figcaption", "details", "summary", "td", "th",
                        "address", "center", "main", "nav"})
FILENAME_RE = re.compile(r"\.(?:png|jpe?g|gif|webp|bmp|svg|heic)$", re.IGNORECASE)
WS_RE = re.compile(r"[ \t\r\n\f\v]+")
_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)

# "Sent from my iPhone using Tapatalk"-style lines that mobile apps append (plain-text signatures)
APP_SIGNATURE_RE = re.compile(
    r"^[ \t]*(?:(?:sent|posted) (?:from|via|using) [^\n]{1,80}"
    r"|(?:gesendet|geschrieben) (?:von|mit) [^\n]{1,80}"
    r"|mit der [^\n]{1,60} app [^\n]{1,60}geschrieben\.?)[ \t]*$\n?", re.IGNORECASE | re.MULTILINE)

TEXT, LINK, IMAGE = 0, 1, 2


def strip_app_signatures(text: str) -> tuple[str, int]:
    """Remove whole lines such as "Sent from my iPhone using Tapatalk"; return (text, lines removed)."""
    return APP_SIGNATURE_RE.subn("", text)


class _ReusingLXMLTreeBuilder(LXMLTreeBuilder):
    """bs4's lxml builder, keeping its lxml parser between documents (lxml parsers may be fed again
    after ``close()``). Building a parser costs ~0.06 ms, a quarter of the time of a short post."""

    _parser = None

    def parser_for(self, encoding):
        if self._parser is None:
            self._parser = super().parser_for(encoding)
        return self._parser

    def feed(self, markup) -> None:
        try:
            super().feed(markup)
        except BaseException:
            self._parser = None  # never reuse a parser left mid-document
            raise


_BUILDER: _ReusingLXMLTreeBuilder | None = None


def parse(html: str) -> BeautifulSoup:
    """BeautifulSoup on lxml, ``class`` kept as one string (skips bs4's per-tag splitting)."""
    global _BUILDER
    if _BUILDER is None:
        _BUILDER = _ReusingLXMLTreeBuilder(multi_valued_attributes=None)
    return BeautifulSoup(html, builder=_BUILDER)


@dataclass
class HtmlText:
    """The text of one post body and what was taken out of it."""

    text: str
    quoted_post_ids: list[str] = field(default_factory=list)
    n_quotes: int = 0
    n_signatures: int = 0
    chars_text: int = 0  # non-space characters from plain text
    chars_link: int = 0  # ... from link text
    chars_image: int = 0  # ... from image / smilie alt text and placeholders


_NO_CLASSES: frozenset[str] = frozenset()


def _class_set(tag: Tag) -> frozenset[str] | set[str]:
    cls = tag.attrs.get("class")
    if not cls:
        return _NO_CLASSES
    return set(cls.split()) if isinstance(cls, str) else set(cls)


class Rules:
    """An ``EngineMarkup`` as the sets and regex the walk tests against (built once per record)."""

    def __init__(self, markup: EngineMarkup) -> None:
        self.markup = markup
        self.quote, self.quote_tags = frozenset(markup.quote), frozenset(markup.quote_tags)
        self.not_quote = frozenset(markup.not_quote)
        self.signature, self.signature_tags = frozenset(markup.signature), frozenset(markup.signature_tags)
        self.expander, self.mention = frozenset(markup.expander), frozenset(markup.mention)
        self.quote_cell, self.quote_label = frozenset(markup.quote_cell), frozenset(markup.quote_label)
        self.expander_text = (re.compile(r"^[ \t]*(?:" + "|".join(markup.expander_text) + r")[ \t]*$", re.MULTILINE)
                              if markup.expander_text else None)

    def is_quote(self, name: str, classes: frozenset[str] | set[str]) -> bool:
        return bool(classes & self.quote) or (name in self.quote_tags and not classes & self.not_quote)

    def quote_cell_of(self, table: Tag) -> Tag | None:
        """The first of ``table``'s own cells (not a nested table's) with a ``quote_cell`` class."""
        rows = [c for c in table.children if isinstance(c, Tag) and c.name == "tr"]
        for group in (c for c in table.children if isinstance(c, Tag) and c.name in ("tbody", "thead", "tfoot")):
            rows += [c for c in group.children if isinstance(c, Tag) and c.name == "tr"]
        for row in rows:
            for cell in row.children:
                if isinstance(cell, Tag) and cell.name in ("td", "th") and _class_set(cell) & self.quote_cell:
                    return cell
        return None

    def is_quote_table(self, node: Tag) -> bool:
        return bool(self.quote_cell) and node.name == "table" and self.quote_cell_of(node) is not None

    def is_quote_label(self, node: Tag, classes: frozenset[str] | set[str]) -> bool:
        """A "Quote:" label: a ``quote_label`` element whose next element is a quote table."""
        if not classes & self.quote_label:
            return False
        after = node.find_next_sibling()
        return isinstance(after, Tag) and self.is_quote_table(after)

    def is_mention(self, node: Tag, classes: frozenset[str] | set[str]) -> bool:
        return node.name == "a" and (bool(classes & self.mention)
                                     or any(attr in node.attrs for attr in self.markup.mention_attrs))

    def quote_ids(self, quote: Tag) -> list[str]:
        """Post ids a quote block cites, from its own attributes and its title link (not nested quotes)."""
        links = []
        for cls in self.markup.quote_title:
            title = quote.find(lambda tag, cls=cls: cls in _class_set(tag))  # a class token ("attribution type")
            if isinstance(title, Tag):
                links += [a.attrs for a in title.find_all("a")]
        if quote.name == "table" and self.quote_cell:  # a structural quote: the cell's first element
            cell = self.quote_cell_of(quote)
            first = cell.find(True, recursive=False) if cell is not None else None
            if isinstance(first, Tag):
                links += [a.attrs for a in ([first] if first.name == "a" else first.find_all("a"))]
        return self.markup.quote_ids(quote.attrs, links)


_RULES: dict[EngineMarkup, Rules] = {}


def rules_for(markup: EngineMarkup) -> Rules:
    """The (cached) rules of ``markup``: records are few, bodies many."""
    if markup not in _RULES:
        _RULES[markup] = Rules(markup)
    return _RULES[markup]


class _TextWalk:
    """One conversion: the text parts and counters so far, and what each kind of element becomes.

    The walk is a loop over an explicit stack of ``(node or None = line break, category)``; the
    category (TEXT, LINK, IMAGE) says which counter a string's characters go to.
    """

    def __init__(self, rules: Rules, image_placeholder: str, image_alt: bool, mention_placeholder: str) -> None:
        self.rules = rules
        self.image_placeholder, self.image_alt = image_placeholder, image_alt
        self.mention_placeholder = mention_placeholder
        self.out = HtmlText(text="")
        self.parts: list[str] = []

    def run(self, soup: BeautifulSoup) -> HtmlText:
        parts, stack = self.parts, [(soup, TEXT)]
        while stack:
            node, cat = stack.pop()
            if node is None:
                parts.append("\n")
            elif isinstance(node, NavigableString):
                if not isinstance(node, _SKIP_STRINGS):
                    self.string(str(node), cat)
            elif isinstance(node, Tag):
                self.tag(node, cat, stack)
        text = "".join(parts)
        self.out.text = self.rules.expander_text.sub("", text) if self.rules.expander_text else text
        return self.out

    def string(self, raw: str, cat: int) -> None:
        """Whitespace collapsed as a browser would; its visible characters counted by category."""
        s = WS_RE.sub(" ", raw)
        if s:
            self.parts.append(s)
            n = len(s) - s.count(" ")
            if cat == TEXT:
                self.out.chars_text += n
            elif cat == LINK:
                self.out.chars_link += n
            else:
                self.out.chars_image += n

    def tag(self, node: Tag, cat: int, stack: list) -> None:
        """Handle one element: drop, replace or descend (children pushed in reverse: popped in order)."""
        name = node.name
        if name in SKIP_TAGS:
            return
        if name == "br":
            self.parts.append("\n")
            return
        classes, rules = _class_set(node), self.rules
        if name == "img":
            self.image(node, classes)
        elif rules.is_quote(name, classes) or rules.is_quote_table(node):
            self.out.n_quotes += 1
            self.out.quoted_post_ids += [i for i in rules.quote_ids(node) if i not in self.out.quoted_post_ids]
            self.parts.append("\n")
        elif name in rules.signature_tags or classes & rules.signature:
            self.out.n_signatures += 1
        elif classes & rules.expander or rules.is_quote_label(node, classes):
            return
        elif rules.is_mention(node, classes):
            if self.mention_placeholder:
                self.parts.append(self.mention_placeholder)
                self.out.chars_link += len(self.mention_placeholder)
        else:
            if name in BLOCK_TAGS:
                self.parts.append("\n")
                stack.append((None, cat))
            child_cat = LINK if name == "a" and cat == TEXT else cat
            stack.extend((child, child_cat) for child in reversed(node.contents))

    def image(self, node: Tag, classes: frozenset[str] | set[str]) -> None:
        """Smilies -> alt text; other images -> alt text unless off or a file name, else the placeholder."""
        alt = node.attrs.get("alt")
        alt = alt.strip() if isinstance(alt, str) else ""
        smilie = any(mark in c for c in classes for mark in self.rules.markup.smilie)
        if not smilie and (not self.image_alt or not alt or FILENAME_RE.search(alt)):
            alt = self.image_placeholder
        if alt:
            self.parts.append(f" {alt} ")
            self.out.chars_image += len(alt)


def html_to_text(html: str, *, markup: EngineMarkup = GENERIC, image_placeholder: str = "",
                 image_alt: bool = True, mention_placeholder: str = "@user") -> HtmlText:
    """Convert one post body to text under ``markup`` (default: the generic record for HTML of
    unknown origin); see the module docstring for the rules."""
    return _TextWalk(rules_for(markup), image_placeholder, image_alt, mention_placeholder).run(parse(html))
