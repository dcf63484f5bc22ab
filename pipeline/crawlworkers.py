"""The crawl stage's shared-frontier mode: N local Scrapy workers (plus any ``--join`` workers on
other machines) crawl one source through Redis (crawler/frontier.py).

``run_shared`` (``python -m pipeline.crawl --source NAME --workers N`` with ``crawl.frontier`` set)
stores the crawl's spider, arguments and settings in Redis, starts N worker processes (the first one
queues the start URLs), waits for them (each stops only when the frontier is drained and no worker
holds a lease), then writes ``data/raw/<source>.parquet`` from the shared items through
pipeline/crawlstate.py (sorted by thread, position, post id: the same rows in the same order
whatever the number of workers) and deletes the crawl's keys. Interrupted, the keys stay and the
next run resumes from them (queue, duplicate filter, items).

``join_shared`` (``--join``) runs one more worker for a crawl already started elsewhere with the
same params: no seeding, no output. The crawl id (``crawl.crawl_id``, default: a fingerprint of
the source entry) is how machines find the same crawl.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from contracts import keys, markup
from contracts.files import write_parquet
from contracts.frontier import URL_ENV, Frontier, connect, frontier_prefix, frontier_settings, redact_url
from contracts.schemas import RAW_SCHEMA
from contracts.timestamps import to_utc
from pipeline import crawlstate
from pipeline.common import ParamsError, StageFailed

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Settings that stay on each machine (paths, the frontier itself), never shared through Redis.
LOCAL_SETTINGS = {keys.METRICS_FILE, keys.STATS_FILE, keys.INCREMENTAL_STATE, "JOBDIR"}
RATES = {"pages_per_s": "pages", "posts_per_s": "posts"}  # recomputed after adding workers up


def open_frontier(name: str, cfg: Mapping[str, Any], fingerprint: str) -> tuple[Frontier, str]:
    """The crawl's frontier in Redis and its crawl id; a wrong URL is a ParamsError naming the key."""
    crawl_id = str(cfg.get("crawl_id") or fingerprint)
    try:
        client = connect(cfg["frontier"])
    except (ValueError, ConnectionError) as exc:
        raise ParamsError(f"{cfg.get('_params_file', 'params.yaml')}: crawl.frontier: {exc}") from None
    return Frontier(client, frontier_prefix(name, crawl_id)), crawl_id


def worker_command(spider: str, args: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def run_workers(cmds: list[list[str]], frontier_url: str, on_start: Any = None) -> list[int]:
    """Run worker processes side by side; Ctrl-C / SIGTERM is forwarded to each once as SIGINT
    (Scrapy's graceful stop: the worker hands its unfinished leases back). Exit codes in order."""
    env = {**os.environ, keys.PARENT_PID_ENV: str(os.getpid()), URL_ENV: frontier_url,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, start_new_session=True) for cmd in cmds]
    if on_start is not None:
        on_start([p.pid for p in procs])

    def forward(signum: int, frame: Any) -> None:
        logger.warning("interrupted: asking %d worker(s) to stop; the frontier keeps their work", len(procs))
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    old_int, old_term = signal.signal(signal.SIGINT, forward), signal.signal(signal.SIGTERM, forward)
    try:
        return [proc.wait() for proc in procs]
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def items_table(frontier: Frontier) -> pa.Table:
    """The shared items as a RAW_SCHEMA table (unsorted; crawlstate.merge_posts orders it), with
    the spider's engine markup record in the schema metadata, as the Parquet feed writes it."""
    record = frontier.meta().get("markup")
    schema = (RAW_SCHEMA.with_metadata(markup.to_metadata([markup.EngineMarkup.from_dict(record, "frontier meta")]))
              if record else RAW_SCHEMA)
    rows = []
    for row in frontier.iter_items():
        for field in RAW_SCHEMA:
            if pa.types.is_timestamp(field.type):
                row[field.name] = to_utc(row.get(field.name), field.name)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()


def combine_metrics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The local workers' finished crawl metrics added up: counts summed (nested ones too),
    ``seconds`` = the longest worker's, rates recomputed, other values from the first worker."""
    def add(into: dict[str, Any], part: Mapping[str, Any]) -> None:
        for key, value in part.items():
            before = into.get(key)
            if isinstance(value, Mapping):
                into[key] = dict(before) if isinstance(before, Mapping) else {}
                add(into[key], value)
            elif key == "seconds":
                into[key] = max(float(value or 0), float(before or 0))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                into[key] = value + (before if isinstance(before, (int, float)) else 0)
            elif before is None:
                into[key] = value

    combined: dict[str, Any] = {}
    for part in parts:
        add(combined, part)
    for rate, count in RATES.items():
        seconds = combined.get("seconds")
        combined[rate] = round(combined.get(count, 0) / seconds, 2) if seconds else None
    return combined


def run_shared(name: str, spider: str, args: Mapping[str, Any], settings: dict[str, Any],
               job: crawlstate.CrawlJob, cfg: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Crawl ``name`` with ``cfg['workers']`` local workers through the Redis frontier; write ``out``."""
    workers = int(cfg["workers"])
    frontier, crawl_id = open_frontier(name, cfg, job.fingerprint)
    shared = {k: v for k, v in settings.items() if k not in LOCAL_SETTINGS}
    if frontier.started():
        logger.info("source %s: resuming crawl %s from %s (%d requests queued)", name, crawl_id,
                    redact_url(cfg["frontier"]), frontier.queued())
    else:
        index = settings.get(keys.INCREMENTAL_STATE)
        frontier.set_meta(spider=spider, args=dict(args), settings=shared,
                          index=json.loads(Path(index).read_text()) if index else None)
    host = socket.gethostname()
    with tempfile.TemporaryDirectory() as tmp:
        metrics_files = [Path(tmp) / f"metrics-{i}.json" for i in range(workers)]
        cmds = [worker_command(spider, args, {
            **settings, keys.METRICS_FILE: str(metrics_files[i]),
            **frontier_settings(cfg["frontier"], frontier.prefix, f"{host}-{i}", seed=i == 0,
                                lease_timeout=float(cfg["lease_timeout"]))}) for i in range(workers)]
        logger.info("crawling %s with %d worker(s) through %s (crawl id %s)", name, workers,
                    redact_url(cfg["frontier"]), crawl_id)
        codes = run_workers(cmds, cfg["frontier"], on_start=lambda pids: job.running.write_text(str(os.getpid())))
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in metrics_files if p.exists()]
    if any(code != 0 for code in codes):
        logger.warning("source %s: worker exit codes %s (a worker that died left its work to the others)",
                       name, codes)
    if not frontier.done():
        job.interrupted()
        raise StageFailed(f"source {name!r}: the workers stopped before the frontier was drained "
                          f"(exit codes {codes}); the crawl is kept in Redis: run the stage again to resume")
    table = items_table(frontier)
    part = job.part_path()
    write_parquet(table, part)
    rows = job.commit(out)
    metrics = combine_metrics(parts)
    per_worker = frontier.worker_stats()
    metrics.update(
        pages=sum(w["pages"] for w in per_worker.values()), posts=table.num_rows, workers=per_worker,
        requeued=frontier.requeued(), frontier=redact_url(cfg["frontier"]), crawl_id=crawl_id,
        worker_exit_codes=codes, run_rows=table.num_rows, state=crawlstate.describe(job), raw_rows=rows)
    for rate, count in RATES.items():
        metrics[rate] = round(metrics[count] / metrics["seconds"], 2) if metrics.get("seconds") else None
    frontier.clear()
    if rows < cfg["min_posts"]:
        raise StageFailed(f"source {name!r}: {rows} posts < crawl.min_posts {cfg['min_posts']}: "
                          f"check sources.{name}.args.start_url, robots.txt and the crawl log")
    return metrics


def join_shared(name: str, cfg: Mapping[str, Any], fingerprint: str) -> int:
    """Run one worker for a crawl started elsewhere (same params); its exit code."""
    frontier, crawl_id = open_frontier(name, cfg, fingerprint)
    meta = frontier.meta()
    if not meta:
        raise StageFailed(f"source {name!r}: no crawl {crawl_id} at {redact_url(cfg['frontier'])}; start it "
                          f"with `python -m pipeline.crawl --source {name} --workers N` (same params)")
    worker = f"{socket.gethostname()}-join-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = dict(meta["settings"])
        if meta.get("index") is not None:  # incremental: the thread index of the machine that started it
            index = Path(tmp) / "threads.json"
            index.write_text(json.dumps(meta["index"]))
            settings[keys.INCREMENTAL_STATE] = str(index)
        settings.update(frontier_settings(cfg["frontier"], frontier.prefix, worker, seed=False,
                                          lease_timeout=float(cfg["lease_timeout"])))
        logger.info("joining crawl %s of %s at %s as worker %s", crawl_id, name,
                    redact_url(cfg["frontier"]), worker)
        (code,) = run_workers([worker_command(meta["spider"], meta["args"], settings)], cfg["frontier"])
    logger.info("worker %s finished (exit code %d): %s", worker, code, frontier.worker_stats().get(worker))
    return code
