"""Forum engine markup: what in a post body is not the poster's own text, described once per engine.

An engine (XenForo, vBulletin, a new one from the ``forum`` genspider template) declares an
``EngineMarkup`` beside its spider (the spider's ``markup`` attribute): the classes of its quote
blocks, their attribution elements and the patterns of the quoted post ids in them, signatures,
"Click to expand" links, smilies and @mentions. The crawler's Parquet feed exporter writes the
records of the engines it crawled into the raw file's schema metadata (key ``kopitiam.markup``,
a JSON list), and the clean stage reads the markup of each raw file from the file itself.

Why in the file, not a registry the clean stage imports: stages meet only at files, the clean
stage cannot import the crawler, and a record that travels with the posts it describes cannot be
forgotten: a new engine's quotes never silently become training text, and re-cleaning an old raw
file uses the markup it was crawled with. The records' type and the rules for combining and
reading them are a contract, so they live here, in the leaf package both sides import.

What the clean stage applies to a file: ``HTML`` (the markup HTML itself gives: ``<blockquote>``
quotes, ``<aside>`` signatures, ``.quote``/``.signature``/``smilie`` classes) combined with the
file's records; a file without records (a user dataset read by pipeline/readers.py, a raw file
from before the records existed) gets ``GENERIC``: ``HTML`` plus the class names of the engines
most forum HTML comes from (XenForo 1 and 2, vBulletin 4 and 5), a deliberate guess for HTML of unknown
origin, documented in docs/data-stages.md#clean. Quoted post ids are read by ``EngineMarkup.quote_ids`` only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Mapping

METADATA_KEY = b"kopitiam.markup"  # Parquet schema metadata: JSON list of EngineMarkup records


@dataclass(frozen=True)
class EngineMarkup:
    """One engine's body markup. Class names are CSS class tokens; patterns are regexes whose group 1
    is a post id. Every field but ``name`` is optional: an engine states what it has."""

    name: str
    quote: tuple[str, ...] = ()  # classes of a quote block (removed, with everything inside)
    quote_tags: tuple[str, ...] = ()  # elements that are quotes whatever their class
    not_quote: tuple[str, ...] = ()  # classes of a quote_tags element that wraps a whole post instead
    quote_title: tuple[str, ...] = ()  # classes of a quote's attribution element (links to the quoted post)
    quote_attrs: tuple[str, ...] = ()  # attributes of a quote element that name the quoted post
    quote_source_ids: tuple[str, ...] = ()  # patterns on those attributes' values
    quote_link_ids: tuple[str, ...] = ()  # patterns on its attribution links' href / data-content-selector
    # Quotes told by structure, not class (vBulletin 3's default style): a <table> one of whose own
    # cells has a ``quote_cell`` class is a quote block; the cell's first element is its attribution
    # ("Originally Posted by X" and the link to the quoted post); an element with a ``quote_label``
    # class right before such a table ("Quote:") goes with it.
    quote_cell: tuple[str, ...] = ()
    quote_label: tuple[str, ...] = ()
    signature: tuple[str, ...] = ()  # classes of a signature block (removed)
    signature_tags: tuple[str, ...] = ()  # elements that are signatures whatever their class
    expander: tuple[str, ...] = ()  # classes of "Click to expand..." links (removed)
    expander_text: tuple[str, ...] = ()  # patterns of whole lines such links leave in text (removed)
    smilie: tuple[str, ...] = ()  # substrings of an <img> class that mark a smilie (-> its alt text)
    mention: tuple[str, ...] = ()  # classes of an @mention link (-> the mention placeholder)
    mention_attrs: tuple[str, ...] = ()  # attributes that make a link an @mention

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"EngineMarkup: name must be a non-empty string, got {self.name!r}")
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"EngineMarkup {self.name!r}: {f.name} must be a list of strings, got {value!r}")
            object.__setattr__(self, f.name, tuple(value))
        for key in ("quote_source_ids", "quote_link_ids", "expander_text"):
            for pattern in getattr(self, key):
                try:
                    rx = re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"EngineMarkup {self.name!r}: {key} {pattern!r} is not a regex: {exc}") from None
                if key != "expander_text" and rx.groups < 1:
                    raise ValueError(f"EngineMarkup {self.name!r}: {key} {pattern!r} needs a group for the post id")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values; fields left empty are not written (``from_dict`` takes their
        defaults), so a record that does not use a field reads the same in versions without it."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v != ()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "markup") -> EngineMarkup:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{origin}: unknown markup key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def combine(self, *others: EngineMarkup) -> EngineMarkup:
        """One record applying this one's rules and ``others``' (each list in order, no repeats)."""
        records = (self, *others)
        merged = {f.name: tuple(dict.fromkeys(v for r in records for v in getattr(r, f.name)))
                  for f in fields(self) if f.name != "name"}
        return EngineMarkup(name="+".join(dict.fromkeys(r.name for r in records)), **merged)

    def quote_ids(self, attrs: Mapping[str, Any], links: Iterable[Mapping[str, Any]]) -> list[str]:
        """The post ids one quote block cites: ``quote_source_ids`` on its ``quote_attrs`` (``attrs``:
        the quote element's attributes), then ``quote_link_ids`` on each attribution link's ``href``
        and ``data-content-selector``; in order of appearance, without repeats. The one quoted-id
        rule of the crawler and the clean stage (they pass attributes from their own HTML parsers)."""
        ids: list[str] = []
        for attr in self.quote_attrs:
            value = attrs.get(attr)
            if isinstance(value, str):
                for pattern in self.quote_source_ids:
                    ids += re.findall(pattern, value)
        for link in links:
            for attr in ("href", "data-content-selector"):
                value = link.get(attr)
                if isinstance(value, str):
                    for pattern in self.quote_link_ids:
                        ids += re.findall(pattern, value)
        return list(dict.fromkeys(ids))


# What HTML itself says, whatever the engine: always applied by the clean stage.
HTML = EngineMarkup(
    name="html",
    quote=("quote",),
    quote_tags=("blockquote",),
    signature=("signature",),
    signature_tags=("aside",),
    smilie=("smilie",),
)

# For HTML of unknown origin (no records in the file): the class names of XenForo 2 and 1 and of
# vBulletin 4 and 5, the engines most forum HTML comes from: a guess for user datasets whose engine
# is unknown.
GENERIC = HTML.combine(EngineMarkup(
    name="generic",
    quote=("bbCodeBlock--quote", "bbCodeQuote", "quoteContainer", "bbcode_quote"),
    not_quote=("postcontent", "message-body", "messageText"),
    quote_title=("bbCodeBlock-title", "attribution", "bbcode_postedby"),
    quote_attrs=("data-source",),
    quote_source_ids=(r"post:\s*(\d+)",),
    quote_link_ids=(r"[?&]id=(\d+)", r"#?post-(\d+)", r"/posts/(\d+)", r"#post(\d+)$", r"[?&]p=(\d+)"),
    signature=("message-signature", "post-signature"),
    expander=("bbCodeBlock-expandLink", "bbCodeBlock-shrinkLink"),
    expander_text=(r"Click to (?:expand|shrink)\.\.\.",),
    mention=("username",),
    mention_attrs=("data-user-id",),
))


def to_metadata(records: Iterable[EngineMarkup]) -> dict[bytes, bytes]:
    """Parquet schema metadata holding ``records`` (in order, without repeats)."""
    unique = list(dict.fromkeys(records))
    return {METADATA_KEY: json.dumps([r.to_dict() for r in unique], sort_keys=True).encode("utf-8")}


def from_metadata(metadata: Mapping[bytes, bytes] | None, origin: str = "Parquet file") -> list[EngineMarkup]:
    """The records stored by ``to_metadata`` ([] when there are none); bad ones name ``origin``."""
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is None:
        return []
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{origin}: schema metadata {METADATA_KEY.decode()} is not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValueError(f"{origin}: schema metadata {METADATA_KEY.decode()}: expected a list of objects")
    return [EngineMarkup.from_dict(d, origin=f"{origin}: {METADATA_KEY.decode()}") for d in data]


def for_file(records: list[EngineMarkup]) -> EngineMarkup:
    """The markup the clean stage applies to a file with ``records``: ``HTML`` and the records,
    or ``GENERIC`` when the file names none."""
    return HTML.combine(*records) if records else GENERIC
