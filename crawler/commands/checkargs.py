"""``scrapy checkargs SPIDER [-a NAME=VALUE ...] [--build]``: are these spider arguments right?

The crawl stage runs it before a crawl, so a params mistake (an unknown spider, an argument the
spider does not take, a bad value) is reported in one line naming the params key, and the stage
reaches the crawler only through Scrapy's command line. Prints one JSON object on stdout:
``{"ok": true}``, or ``{"error": "spider" | "arguments" | "value", ...}`` with exit status 2:
``available`` spiders, ``unknown`` and ``known`` arguments, or the spider's own ``message``.
``--build`` also builds the spider with the arguments (its ``__init__`` checks their values).
"""

from __future__ import annotations

import argparse
import json
import sys

from scrapy.commands import BaseRunSpiderCommand
from scrapy.exceptions import UsageError
from scrapy.spiderloader import SpiderLoader


class Command(BaseRunSpiderCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[options] <spider>"

    def short_desc(self) -> str:
        return "Check a spider's name and arguments (-a) without crawling; JSON on stdout"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--build", action="store_true", help="also build the spider with the arguments")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError()
        result = check(SpiderLoader.from_settings(self.settings), args[0], opts.spargs, opts.build)
        print(json.dumps(result, sort_keys=True))
        if "error" in result:
            sys.exit(2)


def check(loader: SpiderLoader, spider: str, args: dict[str, str], build: bool) -> dict:
    """The verdict on ``spider`` and ``args`` (see the module docstring)."""
    if spider not in loader.list():
        return {"error": "spider", "available": sorted(loader.list())}
    cls = loader.load(spider)
    known = getattr(cls, "ARGUMENTS", None)
    if known is None:  # a spider that does not declare its arguments takes any
        return {"ok": True}
    unknown = sorted(set(args) - set(known))
    if unknown:
        return {"error": "arguments", "unknown": unknown, "known": sorted(known)}
    if build:
        try:
            cls(**args)
        except ValueError as exc:
            return {"error": "value", "message": str(exc)}
    return {"ok": True}
