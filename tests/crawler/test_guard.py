"""No exception escapes a spider callback: every engine's fixture pages (XenForo 1 and 2 to Flarum: the
nine engine spiders), mutated the way the web damages pages (tests/helpers/mutations.py, seeded: truncated,
closing tags dropped, bytes flipped, attributes emptied, lines shuffled, a wrong charset, invalid
tag names; JSON members dropped or of the wrong type), go through the spider's ``parse`` and every
engine's ``recognise`` without an exception, and what a spider cannot read it counts; in a real
crawl, a page a callback cannot handle is counted (``forum/errors/callback_exception``) and logged
with its URL by ``crawler.guard``, and the crawl goes on. bench/spider_mutations.py runs many more pages."""

from __future__ import annotations

import logging
import re

import pytest

from crawler.extensions import summarize
from tests.helpers import mutations
from tests.helpers.spider_server import FixtureServer, Page, fixture_bytes, run_spider

SEED = 20261207
ROUNDS = 2  # mutated copies per fixture and mutation: about 600 pages (a few seconds of CPU)
ENGINES = {"xenforo", "vbulletin", "phpbb", "discourse", "mybb", "invision", "smf", "nodebb", "flarum"}


def test_no_exception_escapes_a_callback():
    cases = mutations.cases()
    engines = mutations.engine_spiders()
    assert {c.name for c in engines} == {c.spider.name for c in cases} == ENGINES  # every engine has fixtures
    spiders = {cls: mutations.build(cls) for cls in engines}
    pages = mutations.mutate_all(SEED, ROUNDS)
    assert len(pages) >= 300 and {name for _, name, _, _ in pages} == set(mutations.MUTATIONS)
    escaped = []
    logging.disable(logging.CRITICAL)  # the spiders log every damaged page; not this test's subject
    try:
        for case, name, body, charset in pages:
            error = mutations.run_page(spiders[case.spider], engines, mutations.response_for(case, body, charset))
            if error is not None:
                escaped.append(f"{case.name} {name}: {type(error).__name__}: {error}")
    finally:
        logging.disable(logging.NOTSET)
    assert escaped == []
    for cls, spider in spiders.items():  # what the damage made unreadable is counted, engine by engine
        stats = spider.crawler.stats.get_stats()
        assert sum(v for k, v in stats.items() if k.startswith("forum/errors/")) > 0, cls.name


def test_mutations_are_seeded_and_damaging():
    first, again = mutations.mutate_all(SEED, 1), mutations.mutate_all(SEED, 1)
    assert [b for _, _, b, _ in first] == [b for _, _, b, _ in again]
    changed = sum(1 for (case, _, body, charset) in first if body != case.path.read_bytes() or charset)
    assert changed > 0.9 * len(first)


def test_a_failing_callback_is_counted_and_logged_and_the_crawl_goes_on(tmp_path):
    """A thread URL that answers an image: the spider's selectors raise on it (no text); the guard
    counts it, logs it with the URL, and the other start URL's posts are crawled."""
    routes = {"/threads/good-thread.100/": Page(fixture_bytes("xenforo", "thread_p1.html")),
              "/threads/an-image.200/": Page(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")}
    with FixtureServer(routes) as server:
        start = ",".join(server.url(p) for p in routes)
        run = run_spider("xenforo", {"start_url": start, "max_pages": 1}, tmp_path)
    assert len(run.items) == 20
    assert run.stats["forum/errors/callback_exception"] == 1
    assert summarize(run.stats)["errors"]["callback_exception"] == 1
    assert not any(k.startswith("spider_exceptions/") for k in run.stats)  # handled, not Scrapy's "Spider error"
    line = next(ln for ln in run.log.splitlines() if "callback raised" in ln)
    assert re.search(r"/threads/an-image\.200/: spider xenforo's parse callback raised \w+", line)


@pytest.mark.parametrize("charset", ["utf-16", "koi8-r"])
def test_wrong_charset_pages_are_not_lost(charset):
    """A declared charset that does not match the bytes gives mojibake, never an exception."""
    case = next(c for c in mutations.cases() if c.path.name == "thread_p1.html")
    spider = mutations.build(case.spider)
    response = mutations.response_for(case, case.path.read_bytes(), charset)
    assert mutations.run_page(spider, [case.spider], response) is None
