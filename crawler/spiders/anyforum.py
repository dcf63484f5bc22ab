"""Spider ``forum``: any supported forum engine, recognised from the start page.

``scrapy crawl forum -a start_url=URL`` fetches the first start URL, asks every engine spider of the
project (the ``ForumSpider`` subclasses Scrapy's ``SpiderLoader`` finds, each through its
``recognise(response)`` classmethod; crawler/recognise.py) which signals of its engine the page
shows (``<meta name="generator">``, the ``html``/``body`` ids, the engine's post and thread-list
markup, footers, headers, an API answer's JSON shape; URL routes only add to these), logs what it
recognised and why, and continues as
that engine's spider with the same arguments: the spider object *becomes* an instance of the engine
class (its class is switched and the engine's ``__init__`` runs with the arguments), so from then
on the crawl, its callbacks, stats, markup record (the Parquet feed writes it with the first row
group) and resumable requests are exactly the engine spider's. The engine's own ``start`` then
runs on every start URL; the page already fetched is handed to its callback, not fetched again.

- the engine with the most signals wins; a tie, or no engine at all, is an error naming the
  signals seen (``forum/errors/ambiguous_engine``, ``forum/errors/unrecognised_engine``), and so is
  a start page that answers an HTTP error (``forum/errors/start_page_status``);
- ``engine=NAME`` skips recognition (an engine spider's name, ``scrapy list``);
- the recognised engine is kept in the job's spider state (``JOBDIR``), so a resumed crawl continues
  as that engine before any saved request runs;
- several start URLs are one forum: the first one decides the engine;
- not with a shared frontier (``KOPITIAM_FRONTIER``): its other workers would never see the start
  page; name the engine's spider there (this spider's log says which).

Arguments: every ``ForumSpider`` argument, plus ``engine``. Usage:
``scrapy crawl forum -a start_url=https://forum.example.com/ -a timezone=Europe/Berlin -O out.parquet``
"""

from __future__ import annotations

from typing import Any, AsyncIterator, ClassVar

import scrapy
from scrapy import signals
from scrapy.http import Response

from contracts import keys
from contracts.markup import EngineMarkup
from crawler import recognise as rx
from crawler.spiders.forum import ForumSpider

STATE_KEY = "forum_engine"  # the spider state (JOBDIR) key holding the recognised engine's name


async def outputs(result: Any) -> AsyncIterator[Any]:
    """The items and requests of a callback's result, whether it is a generator or an async one."""
    if hasattr(result, "__aiter__"):
        async for out in result:
            yield out
    else:
        for out in result or ():
            yield out


class AnyForumSpider(ForumSpider):
    name = "forum"
    #: Until the engine is known: no body markup (no item can be yielded before the class switch).
    markup: ClassVar[EngineMarkup | None] = EngineMarkup(name="forum")
    ARGUMENTS: ClassVar[dict[str, str]] = {
        **ForumSpider.ARGUMENTS,
        "engine": "skip recognition: crawl as this engine spider (a name from `scrapy list`)",
    }

    def __init__(self, engine: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine_args = dict(kwargs)  # what the engine spider is built with, as given
        self.forced_engine = engine or None
        if self.forced_engine and self.forced_engine not in {c.name for c in rx.engine_spiders()}:
            raise ValueError(f"spider 'forum': engine={engine!r} is not a forum engine spider; known: "
                             f"{', '.join(c.name for c in rx.engine_spiders())}")

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> AnyForumSpider:
        if crawler.settings.get(keys.FRONTIER):
            raise ValueError("spider 'forum' cannot run with a shared frontier: the other workers never see "
                             "the start page it recognises the engine from; use the engine's spider "
                             "(scrapy crawl forum logs which)")
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.resume_engine, signal=signals.engine_started)
        return spider

    def engines(self) -> list[type[ForumSpider]]:
        return rx.engine_spiders(getattr(self, "settings", None))

    def resume_engine(self) -> None:
        """Before any request runs: become the engine a resumed job (spider state) or ``engine`` names."""
        name = (getattr(self, "state", None) or {}).get(STATE_KEY) or self.forced_engine
        if name and isinstance(self, AnyForumSpider):
            why = "resumed job" if not self.forced_engine else "engine argument"
            self.become(next(c for c in self.engines() if c.name == name), [why])

    def become(self, engine: type[ForumSpider], signals_seen: list[str]) -> bool:
        """Switch this spider object to ``engine`` (its class, then its ``__init__`` with the same
        arguments); remember the choice in the job's spider state. False (counted, logged) when
        Python refuses the switch: the engine class's instance layout differs (a base with slots,
        or a mixin listed before ``ForumSpider``)."""
        where = self.start_urls[0] if self.start_urls else "-"
        args, state = self.engine_args, getattr(self, "state", None)
        try:
            self.__class__ = engine
        except TypeError as exc:
            self.inc("errors/engine_switch")
            self.logger.error("%s: cannot continue as spider %r (%s); list ForumSpider first among its bases",
                              where, engine.name, exc)
            return False
        self.logger.info("%s: continuing as spider %r (%s)", where, engine.name, "; ".join(signals_seen))
        self.crawler.stats.set_value(f"forum/recognised/{engine.name}", 1)
        engine.__init__(self, **args)
        if state is not None:
            state[STATE_KEY] = engine.name
        return True

    async def start(self) -> AsyncIterator[Any]:
        if not self.start_urls:
            raise ValueError("spider 'forum': start_url is required (-a start_url=URL[,URL...])")
        if not isinstance(self, AnyForumSpider):  # already an engine (resumed job or ``engine``)
            async for request in type(self).start(self):
                yield request
            return
        yield scrapy.Request(self.start_urls[0], meta={"handle_httpstatus_all": True}, dont_filter=True)

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        """The first start page: recognise the engine, become it, continue with its own start."""
        if not isinstance(self, AnyForumSpider):  # a later page reached here through the old callback
            async for out in outputs(self.parse(response, **kwargs)):
                yield out
            return
        engine = self.recognised(response)
        if engine is None or not self.become(*engine):
            return
        fetched = {response.url, getattr(response.request, "url", None), *response.meta.get("redirect_urls", [])}
        async for request in type(self).start(self):
            if isinstance(request, scrapy.Request) and request.url in fetched and request.callback is not None:
                async for out in outputs(request.callback(response)):
                    yield out
            else:
                yield request

    def recognised(self, response: Response) -> tuple[type[ForumSpider], list[str]] | None:
        """The engine the start page shows, with its signals; None (counted, logged) when none does."""
        if response.status >= 400:
            self.inc("errors/start_page_status")
            self.logger.error("%s answered HTTP %d: no page to recognise a forum engine on", response.url,
                              response.status)
            return None
        engines = self.engines()
        found, failed = rx.recognise_all(response, engines)
        for name, error in failed.items():
            self.inc("errors/recogniser")
            self.logger.error("%s: the %s spider's recognise() raised %s", response.url, name, error)
        best = rx.best_engine(found)
        if best is None:
            self.inc("errors/ambiguous_engine" if found else "errors/unrecognised_engine")
            self.logger.error("%s: %s; the page shows: %s", response.url,
                              f"engines tie: {found}" if found else
                              f"no forum engine recognised it (asked: {', '.join(c.name for c in engines)})",
                              rx.page_signals(response))
            return None
        return next(c for c in engines if c.name == best), found[best]
