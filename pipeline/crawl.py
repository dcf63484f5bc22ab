"""Stage ``crawl``: one source of params.yaml -> ``data/raw/<source>.parquet`` + crawl metrics.

Reads params ``sources.<name>`` (what to crawl) and ``crawl`` (how); writes
``data/raw/<name>.parquet`` (``contracts.schemas.RAW_SCHEMA``, through the Parquet feed exporter)
and ``metrics/crawl/<name>.json`` (pages fetched, by kind, and robots.txt apart; posts; errors by
kind, e.g. ``post_without_date``; bytes; seconds).

A source entry names a ``spider`` (a Scrapy spider name, ``scrapy list``) with its ``args``;
``demo_forum`` serves the offline demo forum on 127.0.0.1 for the crawl (``{server}`` in args
becomes its base URL); ``throttle: false`` switches AutoThrottle and delays off (only for sites
we own); ``settings`` passes extra Scrapy settings. Scrapy runs in a subprocess
(``python -m scrapy crawl``): Twisted's reactor cannot restart in one process, and a crawl that
dies cannot take this process down with it. New source kinds plug into ``RUNNERS``.

``reader: FORMAT`` (instead of ``spider``) reads a local dataset (Parquet, JSONL, plain lines, the
``babynames`` corpus) through pipeline/readers.py. Spider sources keep state in
``<crawl.jobs_dir>/<name>/`` (pipeline/crawlstate.py): ``resume`` (default true) gives Scrapy a
JOBDIR, so an interrupted crawl continues on the next run; ``incremental`` (default false) keeps
every post fetched so far and lets forum spiders skip threads whose last post is unchanged; new
posts are merged by post_id. ``crawl.http_cache`` switches Scrapy's HTTP cache on (development).

Usage: ``python -m pipeline.crawl --source demo [--verbose]`` (dvc.yaml runs it once per
``crawl.sources``). A mistake in the params (an unknown key or spider argument, a bad value) or a
missing file ends in one line naming the params file and key, exit status 2; ``--verbose`` keeps
the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow.parquet as pq

from contracts import keys
from pipeline import crawlstate, crawlworkers
from pipeline.common import (
    ParamsError,
    StageFailed,
    load_params,
    params_name,
    run_main,
    setup_logging,
    write_json_atomic,
)
from pipeline.config import section, setting
from pipeline.readers import run_reader

logger = logging.getLogger(__name__)



def _frontier_problem(value: str) -> str | None:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        return 'expected "" (no shared frontier) or redis://HOST:PORT/DB'
    return None


@dataclass(frozen=True)
class CrawlConfig:
    """The ``crawl`` section of params.yaml (values and meanings there)."""

    sources: list[str]  # names of entries under `sources` that `dvc repro` crawls
    user_agent: str
    log_level: str = setting(choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"))
    min_posts: int = setting(ge=0)
    jobs_dir: str  # per-source crawl state; not a DVC output, so it lives here rather than in dvc.yaml
    http_cache: bool
    # Shared frontier (pipeline/crawlworkers.py, contracts/frontier.py): "" = one in-process scheduler
    frontier: str = setting(check=_frontier_problem)
    crawl_id: str
    workers: int = setting(ge=1)  # local worker processes with a frontier (--workers overrides)
    lease_timeout: float = setting(gt=0)


SOURCE_KEYS = {"spider", "reader", "args", "demo_forum", "throttle", "settings", "resume", "incremental"}
DEMO_FORUM_KEYS = {"genres", "plays", "seed", "posts_per_page", "threads_per_page", "engine"}
UNTHROTTLED = {"AUTOTHROTTLE_ENABLED": "False", "DOWNLOAD_DELAY": "0",
               "CONCURRENT_REQUESTS_PER_DOMAIN": "16"}
REPO_ROOT = Path(__file__).resolve().parents[1]


def source_entry(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sources.<name>`` entry, checked: known keys, exactly one kind, well-typed values."""
    where = params_name(params)
    sources = params.get("sources") or {}
    if name not in sources:
        raise ParamsError(f"{where}: no source {name!r} under 'sources'; "
                          f"known: {', '.join(sorted(sources)) or '(none)'}")
    entry = sources[name]
    if not isinstance(entry, Mapping):
        raise ParamsError(f"{where}: sources.{name}: expected a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - SOURCE_KEYS)
    if unknown:
        raise ParamsError(f"{where}: sources.{name}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(SOURCE_KEYS))}")
    kinds = [kind for kind in RUNNERS if kind in entry]
    if len(kinds) != 1:
        raise ParamsError(f"{where}: sources.{name}: name exactly one of {', '.join(RUNNERS)}")
    for key in ("args", "demo_forum", "settings"):
        if entry.get(key) is not None and not isinstance(entry[key], Mapping):
            raise ParamsError(f"{where}: sources.{name}.{key}: expected a mapping")
    bad = sorted(set(entry.get("demo_forum") or {}) - DEMO_FORUM_KEYS)
    if bad:
        raise ParamsError(f"{where}: sources.{name}.demo_forum: unknown key(s) {', '.join(bad)}; "
                          f"known: {', '.join(sorted(DEMO_FORUM_KEYS))}")
    return dict(entry)


def check_spider(name: str, spider: str, args: Mapping[str, Any], where: str = "params.yaml") -> None:
    """Fail early, naming the params file and key, on an unknown spider or an argument it does not
    take; then build the spider with the arguments, so a bad value (``since``, ``timezone``, a
    ``start_url`` that is not a URL) is reported here in one line rather than as the Scrapy
    subprocess's traceback. Asked through ``scrapy checkargs`` (crawler/commands/checkargs.py),
    like the crawl itself, so this process never imports the crawler."""
    import subprocess

    build = "{server}" not in " ".join(str(v) for v in args.values())  # demo URLs exist only later
    cmd = [sys.executable, "-m", "scrapy", "checkargs", spider, *(["--build"] if build else [])]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True)
    try:
        verdict = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise StageFailed(f"source {name!r}: scrapy checkargs {spider} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-500:]}") from None
    if verdict.get("error") == "spider":
        raise ParamsError(f"{where}: sources.{name}.spider: unknown spider {spider!r}; "
                          f"available: {', '.join(verdict['available'])}")
    if verdict.get("error") == "arguments":
        raise ParamsError(f"{where}: sources.{name}.args: unknown argument(s) {', '.join(verdict['unknown'])} "
                          f"for spider {spider!r}; known: {', '.join(verdict['known'])}")
    if verdict.get("error") == "value":
        raise ParamsError(f"{where}: sources.{name}.args: {verdict['message']}")


def _child_env() -> dict[str, str]:
    """The environment of Scrapy subprocesses: this one, with the repository on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}


def scrapy_command(spider: str, args: Mapping[str, Any], settings: Mapping[str, Any], feed: Path) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd + ["-O", f"{feed}:parquet"]


def _spider_settings(entry: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The Scrapy settings a source's entry and the crawl section ask for (before its job's own)."""
    settings = {"USER_AGENT": cfg["user_agent"], "LOG_LEVEL": cfg["log_level"]}
    if entry.get("throttle", True) is False:
        settings.update(UNTHROTTLED)
    if cfg["http_cache"]:
        settings["HTTPCACHE_ENABLED"] = "True"
    return settings


def run_spider(name: str, entry: Mapping[str, Any], cfg: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Crawl one spider source into ``out``; return the metrics (demo forum served if asked)."""
    from demoforum.server import DemoForumServer
    from demoforum.site import DemoForum

    spider, args = entry["spider"], dict(entry.get("args") or {})
    check_spider(name, spider, args, cfg.get("_params_file", "params.yaml"))
    server = None
    if entry.get("demo_forum") is not None:
        try:
            forum = DemoForum(**(entry["demo_forum"] or {}))
        except ValueError as exc:  # a bad option value (engine, posts_per_page): name the key
            raise ParamsError(f"{cfg.get('_params_file', 'params.yaml')}: sources.{name}.demo_forum: {exc}") from None
        server = DemoForumServer(forum).start()
        args = {k: str(v).replace("{server}", server.base_url) for k, v in args.items()}
    args["source"] = name
    settings = _spider_settings(entry, cfg)
    job = crawlstate.CrawlJob(Path(cfg["jobs_dir"]), name, resume=entry.get("resume", True),
                              incremental=entry.get("incremental", False), fingerprint=crawlstate.fingerprint(
                                  {k: entry.get(k) for k in ("spider", "args", "demo_forum", "settings")}))
    settings.update(job.begin())  # JOBDIR (resume) and the incremental thread index
    settings.update(entry.get("settings") or {})
    try:
        if cfg["frontier"]:  # shared frontier in Redis: it holds the resumable state, not JOBDIR
            settings.pop("JOBDIR", None)
            return crawlworkers.run_shared(name, spider, args, settings, job, cfg, out)
        return _run_local(name, spider, args, settings, job, cfg, out)
    finally:
        if server is not None:
            server.stop()


def _run_local(name: str, spider: str, args: dict[str, Any], settings: dict[str, Any], job: crawlstate.CrawlJob,
               cfg: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """One ``scrapy crawl`` child into the job's part file, then the part merged into ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        feed = job.part_path()
        metrics_file = Path(tmp) / "metrics.json"
        settings[keys.METRICS_FILE] = str(metrics_file)
        cmd = scrapy_command(spider, args, settings, feed)
        logger.info("crawling %s: %s", name, " ".join(cmd))
        # the child stops when this process dies (crawler.extensions.ParentWatch)
        returncode = job.run(cmd, cwd=REPO_ROOT, env={**_child_env(), keys.PARENT_PID_ENV: str(os.getpid())})
        if returncode != 0:
            raise StageFailed(f"source {name!r}: scrapy crawl {spider} exited {returncode} (see log above)")
        metrics = _finished_metrics(name, metrics_file, job)
        run_rows = pq.ParquetFile(feed).metadata.num_rows if feed.exists() else 0
        rows = job.commit(out)  # store + this run's (and resumed runs') posts, merged by post_id
        metrics["run_rows"], metrics["state"] = run_rows, crawlstate.describe(job)
        if rows < cfg["min_posts"]:
            raise StageFailed(f"source {name!r}: {rows} posts < crawl.min_posts {cfg['min_posts']}: "
                               f"check sources.{name}.args.start_url, robots.txt and the crawl log")
        metrics["raw_rows"] = rows
        if run_rows != metrics["posts"]:  # the exporter refused some items: logged by Scrapy
            metrics["errors"]["export_failed"] = metrics["posts"] - run_rows
            metrics["errors_total"] += metrics["posts"] - run_rows
            logger.error("source %r: %d of %d items could not be written to Parquet (see the "
                         "crawl log for the field and value)", name, metrics["posts"] - run_rows, metrics["posts"])
    return metrics


def _finished_metrics(name: str, metrics_file: Path, job: crawlstate.CrawlJob) -> dict[str, Any]:
    """The metrics the crawl wrote, once it is known to have finished (interrupted: state kept, error)."""
    if not metrics_file.exists():
        raise StageFailed(f"source {name!r}: the crawl wrote no metrics ({metrics_file}); did it start?")
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    if metrics["finish_reason"] == keys.SHUTDOWN and job.resume:
        job.interrupted()
        raise StageFailed(f"source {name!r}: crawl interrupted; its state is saved in {job.dir}: "
                           f"run the stage again to resume where it stopped")
    if metrics["finish_reason"] != keys.FINISHED:
        raise StageFailed(f"source {name!r}: crawl ended with {metrics['finish_reason']!r}, not 'finished'")
    return metrics


# Source kinds: an entry names exactly one of these keys.
RUNNERS: dict[str, Callable[[str, Mapping[str, Any], Mapping[str, Any], Path], dict[str, Any]]] = {
    "spider": run_spider,
    "reader": run_reader,  # local datasets (Parquet, JSONL, lines, baby names): pipeline/readers.py
}


def load_config(params: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Every params value crawling ``source`` reads: the ``crawl`` section (``_params_file`` added,
    for messages) and the ``sources.<source>`` entry."""
    return {"crawl": {**section("crawl", CrawlConfig, params), "_params_file": params_name(params)},
            "source": source_entry(source, params)}


def crawl_source(name: str, params: Mapping[str, Any], *, raw_dir: Path, metrics_dir: Path,
                 workers: int | None = None) -> dict[str, Any]:
    """Crawl (or read) one source: ``raw_dir/<name>.parquet`` and ``metrics_dir/<name>.json``."""
    config = load_config(params, name)
    cfg, entry = config["crawl"], config["source"]
    cfg["workers"] = check_workers(cfg, workers)
    kind = next(kind for kind in RUNNERS if kind in entry)
    out = (raw_dir / f"{name}.parquet").resolve()
    started = time.monotonic()
    try:
        metrics = RUNNERS[kind](name, entry, cfg, out)
    except ParamsError as exc:  # a runner's own params check (readers): name the file it came from
        where = params_name(params)
        if str(exc).startswith(f"{where}:"):
            raise
        raise type(exc)(f"{where}: {exc}") from None
    metrics.update(source=name, kind=kind, name=entry[kind], output=os.path.relpath(out),
                   output_bytes=out.stat().st_size, wall_seconds=round(time.monotonic() - started, 3))
    write_json_atomic(metrics_dir / f"{name}.json", metrics)
    logger.info("crawl %s: %s posts, %s pages, %s errors, %.1f MB in %.1f s -> %s", name,
                metrics.get("raw_rows"), metrics.get("pages"), metrics.get("errors_total"),
                metrics.get("bytes", 0) / 1e6, metrics["wall_seconds"], out)
    return metrics


def check_workers(cfg: Mapping[str, Any], workers: int | None) -> int:
    """The number of local workers: ``--workers`` or ``crawl.workers``; more than 1 needs a frontier."""
    count = cfg["workers"] if workers is None else workers
    if not isinstance(count, int) or count < 1:
        raise ParamsError(f"{cfg['_params_file']}: crawl.workers / --workers: expected a whole number >= 1, "
                          f"got {count!r}")
    if count > 1 and not cfg["frontier"]:
        raise ParamsError(f"{cfg['_params_file']}: {count} workers need a shared frontier: set "
                          f"crawl.frontier to redis://HOST:PORT/DB")
    return count


def join_source(name: str, params: Mapping[str, Any]) -> int:
    """``--join``: one more worker for a running shared crawl of ``name`` (no seeding, no output)."""
    cfg = {**section("crawl", CrawlConfig, params), "_params_file": params_name(params)}
    entry = source_entry(name, params)
    if not cfg["frontier"] or "spider" not in entry:
        raise ParamsError(f"{cfg['_params_file']}: --join needs crawl.frontier set and a spider source "
                          f"(sources.{name})")
    return crawlworkers.join_shared(name, cfg, crawlstate.fingerprint(
        {k: entry.get(k) for k in ("spider", "args", "demo_forum", "settings")}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="--verbose: full traceback on errors")
    parser.add_argument("--source", action="append", help="source name (repeatable; default: crawl.sources)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw-dir", default="data/raw", type=Path)
    parser.add_argument("--metrics-dir", default="metrics/crawl", type=Path)
    parser.add_argument("--workers", type=int, help="local worker processes (needs crawl.frontier; "
                        "default crawl.workers)")
    parser.add_argument("--join", action="store_true", help="join a running shared crawl of --source "
                        "as one more worker (no seeding, no output)")
    args = parser.parse_args(argv)
    setup_logging()
    params = load_params(args.params)
    names = args.source or section("crawl", CrawlConfig, params)["sources"]
    if args.join:
        if len(names) != 1:
            raise ParamsError("--join takes exactly one --source")
        code = join_source(names[0], params)
        if code != 0:
            raise StageFailed(f"the joined worker exited with {code}")
        return
    for name in names:
        crawl_source(name, params, raw_dir=args.raw_dir, metrics_dir=args.metrics_dir, workers=args.workers)


if __name__ == "__main__":
    run_main(main)
