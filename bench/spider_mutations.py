"""Benchmark: the forum spiders on damaged pages. Every engine spider's fixture pages
(tests/fixtures/<engine>/: the nine spiders SpiderLoader finds, XenForo to Flarum), mutated
``--rounds`` times by each mutation of tests/helpers/mutations.py (truncated, closing tags dropped,
bytes flipped, attributes emptied, lines shuffled, a wrong charset, invalid tag names; JSON answers
also with members dropped or of the wrong type; seeded), go through the spider's ``parse`` (all its
output drained) and every engine's ``recognise``, as in the CI test tests/crawler/test_guard.py,
which runs about 600 of them (``--rounds 2``).

Counts the exceptions that escaped (``escaped``, by mutation and engine; each one would be a
``forum/errors/callback_exception`` in a crawl, logged by crawler.guard), and times the damaged
pages beside the baseline measured in the same run: the same fixtures undamaged. A warm-up first
(dateparser loads its locales the first time a damaged date makes it guess a language).
Prints one JSON object.

Usage: ``python bench/spider_mutations.py [--seed 1] [--rounds 20]``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers import mutations  # noqa: E402


def run(pages: list, spiders: dict, engines: list) -> tuple[float, Counter, list[str]]:
    """(seconds, escaped exceptions by "mutation engine", the first few as text) over ``pages``."""
    escaped: Counter = Counter()
    examples: list[str] = []
    start = time.perf_counter()
    for case, name, body, charset in pages:
        error = mutations.run_page(spiders[case.spider], engines, mutations.response_for(case, body, charset))
        if error is not None:
            escaped[f"{name} {case.spider.name}"] += 1
            if len(examples) < 5:
                examples.append(f"{case.name} {name}: {type(error).__name__}: {str(error)[:120]}")
    return time.perf_counter() - start, escaped, examples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20, help="mutated copies per fixture and mutation")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # every damaged page is logged by the spiders: not what is measured
    engines = mutations.engine_spiders()
    spiders = {cls: mutations.build(cls) for cls in engines}
    clean = [(case, "none", case.path.read_bytes(), None) for case in mutations.cases()]
    run(mutations.mutate_all(args.seed + 10**6, 2), spiders, engines)  # warm-up, other pages
    base_s, base_escaped, _ = run(clean * args.rounds, spiders, engines)
    pages = mutations.mutate_all(args.seed, args.rounds)
    seconds, escaped, examples = run(pages, spiders, engines)
    print(json.dumps({
        "engines": [c.name for c in engines], "fixtures": len(clean), "mutations": sorted(mutations.MUTATIONS),
        "seed": args.seed, "rounds": args.rounds, "pages": len(pages),
        "escaped": sum(escaped.values()), "escaped_by": dict(sorted(escaped.items())), "examples": examples,
        "seconds": round(seconds, 2), "pages_per_s": round(len(pages) / seconds, 1),
        "baseline": {"pages": len(clean) * args.rounds, "escaped": sum(base_escaped.values()),
                     "seconds": round(base_s, 2), "pages_per_s": round(len(clean) * args.rounds / base_s, 1)},
    }, sort_keys=True))


if __name__ == "__main__":
    main()
