"""Seeded page mutations for the "no exception escapes a spider callback" check (the CI test
tests/crawler/test_guard.py and bench/spider_mutations.py).

A mutation damages a page the way the web does: ``truncate`` (cut at a random byte),
``drop_closing_tags`` (about a third of the closing tags gone), ``flip_bytes`` (random bytes
replaced, some by ``<``, ``>``, ``"`` and NUL), ``empty_attributes`` (attribute values emptied),
``shuffle_lines`` (the page's lines in random order), ``wrong_charset`` (UTF-8 bytes served as
another charset, or Latin-1 bytes served as UTF-8), ``tag_soup`` (invalid tag names such as
``<a"b>`` and ``<1x>``, the lxml trap); and for JSON answers ``json_members`` (members dropped or
replaced by a value of another type, at every depth: the API answer of a shape nobody documented).
Everything is a pure function of the bytes and a ``random.Random``: the same seed gives the same pages.

``cases()`` lists every forum engine spider Scrapy's SpiderLoader finds (``ForumSpider``
subclasses with a ``name``) with the fixture files in ``tests/fixtures/<name>/``, so a new engine's
fixtures are mutated without editing this file. ``run_page`` feeds one page to a spider's
``parse`` (draining every item and request it yields, as Scrapy would) and to every engine's
``recognise``, and returns the exception that escaped, if any.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from scrapy.http import HtmlResponse, Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.recognise import engine_spiders
from crawler.spiders.forum import ForumSpider

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLOSING_TAG_RE = re.compile(rb"</[a-zA-Z][a-zA-Z0-9]*\s*>")
ATTRIBUTE_RE = re.compile(rb'(\s[a-zA-Z_:][-a-zA-Z0-9_:.]*=)("[^"]*"|\'[^\']*\')')
TAG_RE = re.compile(rb"<([a-zA-Z][a-zA-Z0-9]*)")
BAD_NAMES = (b'a"b', b"1x", b"di\xc3v", b"p:", b"x y=", b"-", b"sp@n")


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    return data[:rng.randrange(len(data) + 1)], None


def drop_closing_tags(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    return CLOSING_TAG_RE.sub(lambda m: b"" if rng.random() < 0.33 else m.group(0), data), None


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    out = bytearray(data)
    for _ in range(max(1, len(out) // 200)):
        if out:
            out[rng.randrange(len(out))] = rng.choice([rng.randrange(256), 60, 62, 34, 0])
    return bytes(out), None


def empty_attributes(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    return ATTRIBUTE_RE.sub(lambda m: m.group(1) + b'""' if rng.random() < 0.5 else m.group(0), data), None


def shuffle_lines(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    lines = data.split(b"\n")
    rng.shuffle(lines)
    return b"\n".join(lines), None


def wrong_charset(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    charset = rng.choice(["utf-16", "koi8-r", "shift_jis", "utf-8", "iso-8859-1"])
    if charset == "utf-8":  # bytes that are not UTF-8 served as UTF-8
        data = data.decode("utf-8", "replace").encode("latin-1", "replace")
    return data, charset


def tag_soup(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    return TAG_RE.sub(lambda m: b"<" + rng.choice(BAD_NAMES) if rng.random() < 0.15 else m.group(0), data), None


ODD_VALUES = (None, [], {}, "x", 7, True)


def _odd_members(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll >= 0.05:  # else the member is dropped
                out[key] = rng.choice(ODD_VALUES) if roll < 0.10 else _odd_members(item, rng)
        return out
    if isinstance(value, list):
        return [_odd_members(v, rng) if rng.random() > 0.05 else rng.choice(ODD_VALUES) for v in value]
    return value


def json_members(data: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    return json.dumps(_odd_members(json.loads(data), rng)).encode("utf-8"), None


Mutation = Callable[[bytes, random.Random], tuple[bytes, str | None]]
MUTATIONS: dict[str, Mutation] = {
    "truncate": truncate, "drop_closing_tags": drop_closing_tags, "flip_bytes": flip_bytes,
    "empty_attributes": empty_attributes, "shuffle_lines": shuffle_lines, "wrong_charset": wrong_charset,
    "tag_soup": tag_soup, "json_members": json_members,
}
JSON_ONLY = {"json_members"}  # mutations of a JSON document's structure: JSON fixtures only
HOST = "http://forum.test"
# Fixtures read at the URL they were built for (an id in the URL, links absolute to their host);
# the rest are served at HOST/<spider>/<file>
PAGE_URLS = {"vbulletin/vb3_thread.html": f"{HOST}/showthread.php?t=5002",
             "vbulletin/vb5_channel.html": "https://vb5.test/forum/main-forum/makan",
             "xenforo/xf1_board.html": "http://xf1.test/community/index.php?forums/makan-places.7/"}


@dataclass
class Case:
    spider: type[ForumSpider]
    path: Path

    @property
    def name(self) -> str:
        return f"{self.spider.name}/{self.path.name}"

    @property
    def is_json(self) -> bool:
        return self.path.suffix == ".json"

    def mutations(self) -> dict[str, Mutation]:
        """The mutations that apply to this fixture."""
        return {name: m for name, m in MUTATIONS.items() if self.is_json or name not in JSON_ONLY}


def cases() -> list[Case]:
    """(engine spider, fixture file) for every engine and every page in ``tests/fixtures/<engine>/``."""
    return [Case(cls, path) for cls in engine_spiders()
            for path in sorted((FIXTURES / cls.name).glob("*")) if path.suffix in (".html", ".json")]


def build(spider_cls: type[ForumSpider]) -> ForumSpider:
    hosts = sorted({HOST} | {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, PAGE_URLS.values())})
    return spider_cls.from_crawler(get_crawler(spider_cls), start_url=",".join(f"{h}/" for h in hosts))


def response_for(case: Case, body: bytes, charset: str | None) -> TextResponse:
    url = PAGE_URLS.get(case.name, f"{HOST}/{case.name}")
    kind = "application/json" if case.is_json else "text/html"
    headers = {"Content-Type": f"{kind}; charset={charset}" if charset else kind}
    cls = TextResponse if case.is_json else HtmlResponse
    return cls(url, body=body, headers=headers, request=Request(url))


def drain(results: Any) -> int:
    """Consume a callback's output as Scrapy would; the number of things it yielded."""
    return sum(1 for _ in results or ())


def run_page(spider: ForumSpider, engines: list[type[ForumSpider]], response: TextResponse) -> BaseException | None:
    """Feed one page to ``spider.parse`` and to every engine's ``recognise``; the exception that
    escaped, or None."""
    try:
        drain(spider.parse(response))
        for engine in engines:
            engine.recognise(response)
    except Exception as exc:  # what Scrapy would have lost the page to
        return exc
    return None


def mutate_all(seed: int, rounds: int) -> list[tuple[Case, str, bytes, str | None]]:
    """``rounds`` mutated copies of every fixture under every mutation, seeded."""
    out = []
    for case in cases():
        data = case.path.read_bytes()
        for round_ in range(rounds):
            for name, mutation in case.mutations().items():
                rng = random.Random(f"{seed}:{case.name}:{name}:{round_}")
                body, charset = mutation(data, rng)
                out.append((case, name, body, charset))
    return out
