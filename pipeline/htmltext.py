"""Forum post HTML -> plain text, for the clean stage.

Parsed with lxml's HTML parser (libxml2: tolerant of broken markup, C speed) and walked over lxml's
element tree directly; the crawl stage deliberately leaves all HTML interpretation to this module.
Not through BeautifulSoup: bs4 builds its own tree in Python from the same parser's events, which
was two thirds of the clean stage's CPU time on forum-sized posts; lxml's tree is the one libxml2
builds, so the text is the same (tests/pipeline/test_htmltext.py compares it with a tree built
from the parser events on the fixtures and mangled markup). What is a quote, a signature, a "Click
to expand..." link, a smilie or an @mention comes from the engine's markup record
(``contracts.markup.EngineMarkup``; the clean stage reads it from the raw file):

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
import threading
from dataclasses import dataclass, field

from lxml import etree

from contracts.markup import GENERIC, EngineMarkup

SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "head", "title",
                       "object", "embed", "svg", "button", "input", "select", "textarea"})
BLOCK_TAGS = frozenset({"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "h1", "h2",
                        "h3", "h4", "h5", "h6", "pre", "section", "article", "header", "footer",
                        "hr", "blockquote", "figure", "figcaption", "details", "summary", "td", "th",
                        "address", "center", "main", "nav"})
FILENAME_RE = re.compile(r"\.(?:png|jpe?g|gif|webp|bmp|svg|heic)$", re.IGNORECASE)
# Runs of whitespace other than one plain space (a lone space needs no replacing, and forum text is
# mostly lone spaces): same result as replacing every run, a fraction of the matches.
WS_RE = re.compile(r"[\t\r\n\f\v][ \t\r\n\f\v]*| [ \t\r\n\f\v]+")

# "Sent from my iPhone using Tapatalk"-style lines that mobile apps append (plain-text signatures)
APP_SIGNATURE_RE = re.compile(
    r"^[ \t]*(?:(?:sent|posted) (?:from|via|using) [^\n]{1,80}"
    r"|(?:gesendet|geschrieben) (?:von|mit) [^\n]{1,80}"
    r"|mit der [^\n]{1,60} app [^\n]{1,60}geschrieben\.?)[ \t]*$\n?", re.IGNORECASE | re.MULTILINE)

TEXT, LINK, IMAGE = 0, 1, 2
_NEWLINE = object()  # a stack entry: a line break (the end of a block element)


def strip_app_signatures(text: str) -> tuple[str, int]:
    """Remove whole lines such as "Sent from my iPhone using Tapatalk"; return (text, lines removed)."""
    return APP_SIGNATURE_RE.subn("", text)


# One parser per thread, fed again for each document: an lxml parser shared by two threads crashes the
# process (a Dask worker or a thread pool cleans batches side by side).
_LOCAL = threading.local()
MAX_DEPTH = 255  # libxml2's tree stops at 256 levels of elements (html, body included) and drops what is deeper
HTML_END_RE = re.compile(r"</html", re.IGNORECASE)  # libxml2's tree also drops whatever follows </html>


def parse(html: str) -> etree._Element | _Node | None:
    """The document's root element (lxml's HTML parser, recovering from broken markup; one parser
    per thread, fed again for each document), or None when the markup holds no element at all. Where libxml2's
    tree would lose text (markup nested deeper than it builds, anything after ``</html>``) the tree
    is built from its parser events instead (``parse_events``)."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.HTMLParser(recover=True)
    if html[:1] == "\ufeff":  # a byte order mark is no text (libxml2 would keep it)
        html = html[1:]
    if HTML_END_RE.search(html):
        return parse_events(html)
    try:
        parser.feed(html)
        root = parser.close()
    except etree.XMLSyntaxError:  # nothing to build a tree from ("", a lone comment)
        _LOCAL.parser = None  # never reuse a parser left mid-document
        return None
    if html.count("<") >= MAX_DEPTH and _depth(root) >= MAX_DEPTH:  # fewer tags cannot nest that deep
        return parse_events(html)
    return root


def _depth(root: etree._Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node)
    return deepest


class _Node:
    """An element of ``_EventTree``: the part of lxml's element interface the walk uses. A comment
    or processing instruction has no tag (None), like lxml's, whose tag is not a string."""

    __slots__ = ("tag", "attrib", "children", "text", "tail")

    def __init__(self, tag: str | None, attrib: dict[str, str]) -> None:
        self.tag, self.attrib, self.children = tag, attrib, []
        self.text: str | None = None
        self.tail: str | None = None

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self):
        return iter(self.children)

    def __reversed__(self):
        return reversed(self.children)

    def iterdescendants(self, tag: str | None = None):
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if tag is None or node.tag == tag:
                yield node
            stack.extend(reversed(node.children))


class _EventTree:
    """A parser target that builds a tree of ``_Node`` from libxml2's parser events, which go on
    where its own tree stops (slower: Python runs per event; used only there).
    The top-level nodes hang under a ``document`` node, which no rule matches."""

    def __init__(self) -> None:
        self.stack = [_Node("document", {})]

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        node = _Node(tag, dict(attrib))
        self.stack[-1].children.append(node)
        self.stack.append(node)

    def end(self, tag: str) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def data(self, text: str) -> None:
        parent = self.stack[-1]
        if parent.children:
            parent.children[-1].tail = (parent.children[-1].tail or "") + text
        else:
            parent.text = (parent.text or "") + text

    def comment(self, text: str) -> None:
        self.stack[-1].children.append(_Node(None, {}))

    def pi(self, target: str, data: str | None = None) -> None:
        self.comment("")

    def close(self) -> _Node:
        return self.stack[0]


def parse_events(html: str) -> _Node:
    """``parse`` where libxml2's tree would lose text: the tree built from the parser's events."""
    parser = etree.HTMLParser(recover=True, target=_EventTree())
    parser.feed(html)
    return parser.close()


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


def _class_set(node: etree._Element) -> frozenset[str] | set[str]:
    cls = node.get("class")
    return set(cls.split()) if cls else _NO_CLASSES


def _descendant_with_class(node: etree._Element, cls: str) -> etree._Element | None:
    """The first element under ``node`` (document order) with the class token ``cls``."""
    for el in node.iterdescendants():
        if el.tag.__class__ is str and cls in _class_set(el):
            return el
    return None


def _elements(node: etree._Element):
    """``node``'s child elements (not comments or processing instructions)."""
    return (child for child in node if child.tag.__class__ is str)


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

    def quote_cell_of(self, table: etree._Element) -> etree._Element | None:
        """The first of ``table``'s own cells (not a nested table's) with a ``quote_cell`` class."""
        rows = [c for c in _elements(table) if c.tag == "tr"]
        for group in (c for c in _elements(table) if c.tag in ("tbody", "thead", "tfoot")):
            rows += [c for c in _elements(group) if c.tag == "tr"]
        for row in rows:
            for cell in _elements(row):
                if cell.tag in ("td", "th") and _class_set(cell) & self.quote_cell:
                    return cell
        return None

    def is_quote_table(self, node: etree._Element) -> bool:
        return bool(self.quote_cell) and node.tag == "table" and self.quote_cell_of(node) is not None

    def is_quote_label(self, node: etree._Element, next_element: etree._Element | None) -> bool:
        """A "Quote:" label: a ``quote_label`` element whose next sibling element is a quote table."""
        return (bool(self.quote_label) and next_element is not None and node.tag.__class__ is str
                and bool(_class_set(node) & self.quote_label) and self.is_quote_table(next_element))

    def is_mention(self, node: etree._Element, classes: frozenset[str] | set[str]) -> bool:
        return node.tag == "a" and (bool(classes & self.mention)
                                    or any(attr in node.attrib for attr in self.markup.mention_attrs))

    def quote_ids(self, quote: etree._Element) -> list[str]:
        """Post ids a quote block cites, from its own attributes and its title link: the first element
        under the quote with a ``quote_title`` class token; a quote table's cell's first element."""
        links = []
        for cls in self.markup.quote_title:
            title = _descendant_with_class(quote, cls)
            if title is not None:
                links += [dict(a.attrib) for a in title.iterdescendants("a")]
        if quote.tag == "table" and self.quote_cell:  # a structural quote: the cell's first element
            cell = self.quote_cell_of(quote)
            first = next(_elements(cell), None) if cell is not None else None
            if first is not None:
                links += [dict(a.attrib) for a in ([first] if first.tag == "a" else first.iterdescendants("a"))]
        return self.markup.quote_ids(dict(quote.attrib), links)


_RULES: dict[EngineMarkup, Rules] = {}


def rules_for(markup: EngineMarkup) -> Rules:
    """The (cached) rules of ``markup``: records are few, bodies many."""
    if markup not in _RULES:
        _RULES[markup] = Rules(markup)
    return _RULES[markup]


class _TextWalk:
    """One conversion: the text parts and counters so far, and what each kind of element becomes.

    The walk is a loop over an explicit stack of ``(entry, category)``: an entry is an element, a
    string (an element's ``text`` or a child's ``tail``) or ``_NEWLINE``; the category (TEXT, LINK,
    IMAGE) says which counter a string's characters go to. Comments and processing instructions
    are skipped; the text after them (their tail) is not.
    """

    def __init__(self, rules: Rules, image_placeholder: str, image_alt: bool, mention_placeholder: str) -> None:
        self.rules = rules
        self.image_placeholder, self.image_alt = image_placeholder, image_alt
        self.mention_placeholder = mention_placeholder
        self.out = HtmlText(text="")
        self.parts: list[str] = []

    def run(self, root: etree._Element | _Node | None) -> HtmlText:
        parts = self.parts
        stack: list = [] if root is None else [(root, TEXT)]
        while stack:
            node, cat = stack.pop()
            if node.__class__ is str:
                self.string(node, cat)
            elif node is _NEWLINE:
                parts.append("\n")
            elif node.tag.__class__ is str:  # comments and processing instructions have a function as tag
                self.tag(node, cat, stack)
        text = "".join(parts)
        self.out.text = self.rules.expander_text.sub("", text) if self.rules.expander_text else text
        return self.out

    def string(self, raw: str, cat: int) -> None:
        """Whitespace collapsed as a browser would; its visible characters counted by category."""
        s = WS_RE.sub(" ", raw)
        self.parts.append(s)
        n = len(s) - s.count(" ")
        if cat == TEXT:
            self.out.chars_text += n
        elif cat == LINK:
            self.out.chars_link += n
        else:
            self.out.chars_image += n

    def tag(self, node: etree._Element, cat: int, stack: list) -> None:
        """Handle one element: drop, replace or descend (its contents pushed in reverse: popped in order)."""
        name = node.tag
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
        elif classes & rules.expander:
            return
        elif rules.is_mention(node, classes):
            if self.mention_placeholder:
                self.parts.append(self.mention_placeholder)
                self.out.chars_link += len(self.mention_placeholder)
        else:
            self.descend(node, name, cat, stack)

    def descend(self, node: etree._Element, name: str, cat: int, stack: list) -> None:
        """Push an element's text, children and their tails (in reverse: popped in order), a line
        break around a block element."""
        if name in BLOCK_TAGS:
            self.parts.append("\n")
            stack.append((_NEWLINE, cat))
        child_cat = LINK if name == "a" and cat == TEXT else cat
        rules, next_element = self.rules, None  # walking backwards: the element after ``child``
        for child in reversed(node):
            if child.tail:
                stack.append((child.tail, child_cat))
            if not rules.is_quote_label(child, next_element):  # a "Quote:" label goes with its table
                stack.append((child, child_cat))
            if child.tag.__class__ is str:
                next_element = child
        if node.text:
            stack.append((node.text, child_cat))

    def image(self, node: etree._Element, classes: frozenset[str] | set[str]) -> None:
        """Smilies -> alt text; other images -> alt text unless off or a file name, else the placeholder."""
        alt = node.get("alt")
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
