"""No exception escapes the mybb, invision, smf, nodebb and flarum spiders: seeded mutations of their
fixtures (truncated, closing tags dropped, bytes flipped, attributes emptied, lines shuffled; JSON
members dropped or of the wrong type) are parsed, and recognised, without an uncaught exception;
what they cannot read they count."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from crawler.spiders.flarum import FlarumSpider
from crawler.spiders.invision import InvisionSpider
from crawler.spiders.mybb import MybbSpider
from crawler.spiders.nodebb import NodebbSpider
from crawler.spiders.smf import SmfSpider
from tests.helpers.spider_server import FIXTURES

SPIDERS = {"mybb": MybbSpider, "invision": InvisionSpider, "smf": SmfSpider, "nodebb": NodebbSpider,
           "flarum": FlarumSpider}
pytestmark = pytest.mark.slow  # about 250 pages, 10-30 s
SEEDS = 12  # per fixture: 21 fixtures, 252 pages
ODD_VALUES = (None, [], {}, "x", 7, True)


def mutate_json(value, rng: random.Random):
    """Members dropped or replaced by a value of another type, at every depth."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll >= 0.05:
                out[key] = rng.choice(ODD_VALUES) if roll < 0.10 else mutate_json(item, rng)
        return out
    if isinstance(value, list):
        return [mutate_json(v, rng) if rng.random() > 0.05 else rng.choice(ODD_VALUES) for v in value]
    return value


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return data[:rng.randrange(len(data))]
    if kind == 1:
        return re.sub(rb"</(div|p|blockquote|a|span)>", b"", data, count=rng.randrange(60))
    if kind == 2:
        flipped = bytearray(data)
        for _ in range(20):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    if kind == 3:
        return re.sub(rb'(href|id|class|datetime|title|data-[a-z-]+)="[^"]*"',
                      lambda m: m.group(1) + b'=""' if rng.random() < 0.3 else m.group(0), data)
    lines = data.split(b"\n")
    rng.shuffle(lines)
    return b"\n".join(lines)


def mutations(path: Path):
    raw = path.read_bytes()
    for seed in range(SEEDS):
        rng = random.Random(f"{path.name}:{seed}")
        if path.suffix == ".json" and seed % 2 == 0:
            yield seed, json.dumps(mutate_json(json.loads(raw), rng)).encode("utf-8")
        else:
            yield seed, mutate_bytes(raw, rng)


@pytest.mark.parametrize("path", sorted(p for name in SPIDERS for p in (FIXTURES / name).iterdir()),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mutated_fixtures_raise_nothing(path):
    spider_class = SPIDERS[path.parent.name]
    url = "http://forum.test/api/x" if path.suffix == ".json" else "http://forum.test/showthread.php?tid=17"
    for seed, body in mutations(path):
        spider = spider_class.from_crawler(get_crawler(spider_class), start_url="http://forum.test/")
        response = TextResponse(url, body=body, encoding="utf-8", request=Request(url))
        try:
            list(spider.parse(response))
            spider_class.recognise(response)
        except Exception as exc:  # the assertion names the page that escaped
            pytest.fail(f"{path.name} mutation {seed}: {type(exc).__name__}: {exc}")
