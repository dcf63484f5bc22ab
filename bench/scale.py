"""Benchmark: a forum of N posts through every stage, clean to report, in bounded memory.

Generates a seeded forum-shaped raw corpus (``data/raw/scale.parquet``, RAW_SCHEMA, XenForo 2 markup):
threads of about 40 posts, posts of about 280 characters with a long (lognormal) tail of lengths,
XenForo quote blocks of an earlier post of the thread on one post in ten, smilies, links and
entities, some non-ASCII (accents, CJK, emoji, curly quotes), 3% exact re-posts of a recent post and
4% re-posts with one word changed. The file is written in row groups as it is generated, so the
generator's memory is flat too.

Then every stage from clean to report runs as its own subprocess through its real entry point: the
``cmd`` of its dvc.yaml stage, in a scratch folder holding a ``params.yaml`` derived from the
repository's (``crawl.sources: [scale]``, training capped at ``--train-steps`` steps of one epoch and
``--val-steps`` validation batches, ``evaluate.max_test_chars`` at ``--test-chars``). Per stage:

- ``wall_s``, ``cpu_s`` (user + system of the stage process and every process it reaped: pool
  workers), ``docs_in`` and ``mb_in`` (what the stage reads: raw posts and raw HTML for clean, the
  previous stage's documents and text after), ``posts_per_s`` and ``mb_per_s`` over the wall time,
  ``posts_per_cpu_s``;
- ``peak_rss_mb``: the largest peak resident set of any one process of the stage (``os.wait4``'s
  ``ru_maxrss``: the stage process and the descendants it reaped), and ``tree_peak_rss_mb``: the
  most the stage's processes held at once (psutil, polled every 0.2 s).

A stage whose processes together pass ``--rss-cap-mb`` (or that runs past ``--stage-timeout``) is
stopped, so a stage that does not fit cannot take the machine down; it is reported with
``"stopped"`` and the later stages are skipped.

``--posts 100000,1000000,4000000`` runs each size in turn and adds the growth exponents: the log-log
slope of wall time and of peak RSS against posts, between consecutive sizes (1 = linear, 0 = flat).
``--dask`` also runs clean and dedupe (``--dask-stages``) of each size on a Dask scheduler with two
single-threaded workers on 127.0.0.1 (started by the bench, fresh for each stage, each under its
nanny as ``dask worker`` runs by default; each worker's memory limited to ``--dask-memory-limit``,
so Dask spills to disk beyond 60% of it), reports the peak RSS (VmHWM) of the scheduler, of each
worker and of each nanny, and whether the outputs are byte-identical to the local engine's.

``--train-workers N`` trains again on each size's shards with ``train.distribute.strategy:
multi_worker`` over N processes on 127.0.0.1 (``--task-index`` 0..N-1, each reading only its share
of every batch), with the same caps, and reports each process's wall, CPU and peak RSS the same way,
the chief's ``metrics/train.json`` beside the single process's.

``--baseline-ref REF`` runs the same stages with the code of this repository at ``REF`` (``git
archive``) on the same corpus, in the same run: ``baseline_over_this`` gives its CPU seconds, wall
seconds and peak RSS over this code's, per stage (above 1: this code is better).

Wall times on a shared machine are noisy; CPU seconds and RSS are not (much). Prints one JSON object.
Usage: ``python bench/scale.py --posts 100000[,1000000,...] [--dask] [--train-workers 2]
[--stages clean,dedupe,...] [--baseline-ref REF]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contracts import markup  # noqa: E402
from contracts.files import parquet_writer  # noqa: E402
from contracts.schemas import RAW_SCHEMA  # noqa: E402

CONFIG = {
    "seed": 0,
    "thread_posts": (40, 15),  # mean, sd of posts per thread (at least 1)
    "words": (3.4, 0.9),  # lognormal mu, sigma of words per post: mean ~45 words, ~280 characters
    "max_words": 3000,
    "quote_rate": 0.10,  # posts quoting an earlier post of their thread
    "exact_rate": 0.03,  # exact re-posts of a recent post
    "edit_rate": 0.04,  # re-posts of a recent post with one word changed
    "non_ascii_rate": 0.08,  # posts with some non-ASCII words
    "number_rate": 0.25,  # posts with a number (prices, times, years; one in fifty of them a phone number)
    "recent": 5000,  # re-posts copy one of this many recent posts
    "row_group": 10_000,
    "boards": 12,
    "authors": 20_000,
}
STAGES = ("clean", "dedupe", "split", "vocab", "batches", "train", "sample", "evaluate", "report")
DATA_STAGES = ("clean", "dedupe", "split", "vocab", "batches")
SYLLABLES = ["th", "e", "an", "ing", "er", "o", "ou", "ar", "st", "l", "ke", "wh", "y", "ea", "is", "ro", "mi",
             "ne", "ha", "t", "qu", "d", "s", "ch", "ve", "al", "ma", "ka", "lo", "sh"]
COMMON = ["the", "I", "to", "a", "and", "is", "you", "it", "lah", "of", "that", "in", "got", "can", "not", "this",
          "for", "my", "one", "so", "but", "leh", "they", "what", "just", "go", "also", "sia", "very", "then"]
NUMBERS = ["$4.50", "2023", "3pm", "10k", "25", "1.5", "#3", "50%", "2-3", "12:30", "S$800", "100"]
NON_ASCII = ["café", "naïve", "好吃", "怎么样", "😂", "👍", "’", "“ok”", "jalan-jalan", "mée", "Zürich", "€5",
             "…", "—", "한국", "ไทย", "½", "🙏"]
SMILIE = ('<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
          'class="smilie smilie--sprite smilie--sprite{n}" alt="{alt}" title="{alt}" loading="lazy" '
          'data-shortname="{alt}" />')


# -- the corpus -----------------------------------------------------------------------------------
class Forum:
    """The seeded generator: words, posts, HTML (all from one ``random.Random``)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        made = sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(30_000)})
        rng.shuffle(made)
        self.words = COMMON + [w for w in made if w not in COMMON]
        weights = 1.0 / np.arange(1, len(self.words) + 1) ** 1.05
        self.cum = np.cumsum(weights) / weights.sum()
        self.draws = np.random.default_rng(seed)
        self.pool: list[str] = []  # Zipf-drawn words, drawn a block at a time (fast), used in order
        self.cursor = 0

    def take(self, n: int) -> list[str]:
        if self.cursor + n > len(self.pool):
            idx = np.searchsorted(self.cum, self.draws.random(max(n, 1 << 20)), side="right")
            self.pool = self.pool[self.cursor:] + [self.words[i] for i in
                                                   np.minimum(idx, len(self.words) - 1).tolist()]
            self.cursor = 0
        self.cursor += n
        return self.pool[self.cursor - n:self.cursor]

    def text(self) -> str:
        rng = self.rng
        mu, sigma = CONFIG["words"]
        n = max(1, min(CONFIG["max_words"], int(rng.lognormvariate(mu, sigma))))
        toks = self.take(n)
        if rng.random() < CONFIG["non_ascii_rate"]:
            for _ in range(rng.randint(1, 3)):
                toks.insert(rng.randrange(len(toks) + 1), rng.choice(NON_ASCII))
        if rng.random() < CONFIG["number_rate"]:
            phone = rng.random() < 0.02
            number = f"9{rng.randrange(1000):03d} {rng.randrange(10000):04d}" if phone else rng.choice(NUMBERS)
            toks.insert(rng.randrange(len(toks) + 1), number)
        out, start = [], 0
        while start < len(toks):
            end = start + rng.randint(5, 16)
            out.append(" ".join(toks[start:end]).capitalize() + rng.choice(".....?!,"))
            start = end
        return " ".join(out)

    def edited(self, text: str) -> str:
        """``text`` with one word replaced by another."""
        toks = text.split(" ")
        i = self.rng.randrange(len(toks))
        toks[i] = self.words[self.rng.randrange(len(COMMON), len(self.words))]
        return " ".join(toks)

    def html(self, text: str) -> str:
        """XenForo 2 post HTML: sentences on lines (``<br>``), entities, sometimes a smilie or link."""
        rng = self.rng
        body = text.replace("&", "&amp;").replace("<", "&lt;").replace(". ", ".<br>\n")
        r = rng.random()
        if r < 0.08:
            body += " " + SMILIE.format(n=rng.randint(1, 9), alt=rng.choice([":)", ":(", ";)", ":D"]))
        elif r < 0.11:
            body += (f' <a href="https://example.org/t/{rng.randint(1, 99999)}" target="_blank" '
                     f'class="link link--external" rel="nofollow ugc noopener">see this</a>')
        return body


def quote_html(post_id: str, author: str, inner: str) -> str:
    return (f'<blockquote data-attributes="member: 1" data-quote="{author}" data-source="post: {post_id}" '
            f'class="bbCodeBlock bbCodeBlock--expandable bbCodeBlock--quote js-expandWatch">\n\t'
            f'<div class="bbCodeBlock-title">\n\t\t<a href="/goto/post?id={post_id}" class="bbCodeBlock-sourceJump" '
            f'rel="nofollow" data-xf-click="attribution" data-content-selector="#post-{post_id}">{author} said:</a>'
            f'\n\t</div>\n\t<div class="bbCodeBlock-content">\n\t\t<div class="bbCodeBlock-expandContent '
            f'js-expandContent ">\n\t\t\t{inner}\n\t\t</div>\n\t\t<div class="bbCodeBlock-expandLink '
            f'js-expandLink"><a role="button" tabindex="0">Click to expand...</a></div>\n\t</div>\n</blockquote>')


def xenforo_markup() -> dict[bytes, bytes]:
    """The schema metadata a XenForo crawl writes (contracts.markup), so clean reads the file as one."""
    from crawler.spiders.xenforo import MARKUP

    return markup.to_metadata([MARKUP])


def generate(path: Path, n_posts: int, seed: int) -> dict[str, Any]:
    """Write ``n_posts`` raw posts to ``path``; return counts of what was planted and the sizes."""
    forum = Forum(seed)
    rng = forum.rng
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    schema = RAW_SCHEMA.with_metadata(xenforo_markup())
    recent: list[str] = []  # texts of recent posts (re-posts copy them)
    counts = {"posts": 0, "threads": 0, "quotes": 0, "exact": 0, "edited": 0, "body_bytes": 0}
    columns: dict[str, list] = {name: [] for name in RAW_SCHEMA.names}
    path.parent.mkdir(parents=True, exist_ok=True)
    with parquet_writer(path, schema) as writer:
        while counts["posts"] < n_posts:
            counts["threads"] += 1
            thread = str(counts["threads"])
            length = max(1, int(rng.gauss(*CONFIG["thread_posts"])))
            title = forum.text()[:80]
            thread_posts: list[tuple[str, str, str]] = []  # (post id, author, html) of this thread
            for position in range(min(length, n_posts - counts["posts"])):
                counts["posts"] += 1
                pid = str(1_000_000 + counts["posts"])
                author = f"user{int(rng.paretovariate(1.2)) % CONFIG['authors']}"
                text = _post_text(forum, recent, counts)
                body = forum.html(text)
                own = body
                if thread_posts and rng.random() < CONFIG["quote_rate"]:
                    qid, qauthor, qhtml = rng.choice(thread_posts)
                    body = quote_html(qid, qauthor, qhtml) + body
                    counts["quotes"] += 1
                thread_posts.append((pid, author, own))
                recent.append(text)
                if len(recent) > 2 * CONFIG["recent"]:
                    del recent[:CONFIG["recent"]]
                counts["body_bytes"] += len(body.encode())
                row = {"source": "scale", "url": f"https://forum.example/threads/t.{thread}/post-{pid}",
                       "board": f"board{int(thread) % CONFIG['boards']}", "thread_id": thread, "thread_title": title,
                       "page": position // 20 + 1, "position": position, "post_id": pid, "author": author,
                       "posted_at": t0 + dt.timedelta(seconds=30 * counts["posts"]), "body": body,
                       "body_format": "html", "quoted_post_ids": [], "fetched_at": t0}
                for name, value in row.items():
                    columns[name].append(value)
                if len(columns["post_id"]) >= CONFIG["row_group"]:
                    writer.write_table(pa.table(columns, schema=schema))
                    columns = {name: [] for name in RAW_SCHEMA.names}
        if columns["post_id"]:
            writer.write_table(pa.table(columns, schema=schema))
    return counts


def _post_text(forum: Forum, recent: list[str], counts: dict[str, int]) -> str:
    r = forum.rng.random()
    if recent and r < CONFIG["exact_rate"]:
        counts["exact"] += 1
        return forum.rng.choice(recent[-CONFIG["recent"]:])
    if recent and r < CONFIG["exact_rate"] + CONFIG["edit_rate"]:
        counts["edited"] += 1
        return forum.edited(forum.rng.choice(recent[-CONFIG["recent"]:]))
    return forum.text()


# -- running stages -------------------------------------------------------------------------------
def stage_commands(repo: Path = REPO) -> dict[str, list[str]]:
    """Each stage's command line from dvc.yaml (``python`` = this interpreter)."""
    with open(repo / "dvc.yaml", encoding="utf-8") as fh:
        stages = yaml.safe_load(fh)["stages"]
    out = {}
    for name in STAGES:
        cmd = shlex.split(stages[name]["cmd"])
        out[name] = [sys.executable if cmd[0] == "python" else cmd[0], *cmd[1:]]
    return out


def bench_params(args: argparse.Namespace, engine: str = "local", scheduler: str = "",
                 code: Path = REPO) -> dict[str, Any]:
    """The params.yaml of ``code`` with the bench's source, training caps and engine."""
    with open(code / "params.yaml", encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    params["crawl"]["sources"] = ["scale"]
    params["train"].update(epochs=1, max_steps_per_epoch=args.train_steps, val_max_steps=args.val_steps,
                           max_minutes=0)
    params["evaluate"]["max_test_chars"] = args.test_chars
    for stage in ("clean", "dedupe"):
        params[stage]["engine"] = engine
    params["dask"]["scheduler"] = scheduler
    return params


class Watch:
    """Polls a process tree's resident memory (psutil) until stopped; stops the tree above a cap."""

    def __init__(self, proc: subprocess.Popen, cap_mb: float, interval: float = 0.2) -> None:
        self.proc, self.cap_mb, self.interval = proc, cap_mb, interval
        self.tree_peak_mb = 0.0
        self.stopped: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.wait(self.interval):
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.tree_peak_mb = max(self.tree_peak_mb, total / 2**20)
            if total / 2**20 > self.cap_mb and self.stopped is None:
                self.stopped = f"processes held {total / 2**20:.0f} MB > --rss-cap-mb {self.cap_mb:.0f}"
                kill_tree(self.proc.pid)

    def close(self) -> None:
        self._done.set()
        self._thread.join()


def kill_tree(pid: int) -> None:
    """SIGKILL a stage's session (it was started in a new one)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Runs the stage in a child and reports its rusage: a process that forks and execs a stage carries its
# own peak RSS into the stage's (Linux keeps the pre-exec high-water mark), so the measuring parent
# must be this small interpreter (no site, no imports), not the bench process.
LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{ru.ru_maxrss} {ru.ru_utime} {ru.ru_stime} {code}")
sys.exit(code if code >= 0 else 1)
"""


def run_stage(cmd: list[str], cwd: Path, log: Path, cap_mb: float, timeout: float,
              code: Path = REPO) -> dict[str, Any]:
    """Run one stage (of the checkout ``code``); wall and CPU time, peak RSS of its largest process
    and of its tree, status."""
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
    usage_file = log.with_suffix(".rusage")
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(usage_file), *cmd], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    watch = Watch(proc, cap_mb)
    timer = threading.Timer(timeout, lambda: (setattr(watch, "stopped", watch.stopped or
                                                      f"ran past --stage-timeout {timeout:.0f} s"),
                                              kill_tree(proc.pid)))
    timer.start()
    proc.wait()
    wall = time.perf_counter() - started
    timer.cancel()
    watch.close()
    try:
        maxrss, utime, stime, code = usage_file.read_text().split()
    except (OSError, ValueError):  # the launcher itself was killed
        maxrss, utime, stime, code = "0", "0", "0", str(proc.returncode)
    result = {"wall_s": round(wall, 2), "cpu_s": round(float(utime) + float(stime), 2),
              "peak_rss_mb": round(int(maxrss) / 1024, 1), "tree_peak_rss_mb": round(watch.tree_peak_mb, 1),
              "exit": int(code)}
    if watch.stopped:
        result["stopped"] = watch.stopped
    elif result["exit"] != 0:
        result["error"] = log.read_text(errors="replace")[-1500:]
    return result


def stage_inputs(stage: str, work: Path, gen: dict[str, Any]) -> tuple[int, float] | None:
    """(documents, MB of text) the stage reads, from the metrics of the stages before it."""
    def metrics(name: str) -> dict[str, Any]:
        return json.loads((work / "metrics" / f"{name}.json").read_text())

    if stage == "clean":
        return gen["posts"], gen["body_bytes"] / 1e6
    if stage == "dedupe":
        m = metrics("clean")
        return m["kept"], m["bytes_out"] / 1e6
    if stage == "split":
        m = metrics("dedupe")
        return m["kept"], m["bytes_out"] / 1e6
    if stage in ("vocab", "batches"):
        m = metrics("split")["splits"]
        parts = ("train", "val") if stage == "vocab" else ("train", "val", "test")
        return sum(m[s]["documents"] for s in parts), sum(m[s]["characters"] for s in parts) / 1e6  # chars, not bytes
    return None


def with_rates(result: dict[str, Any], inputs: tuple[int, float] | None) -> dict[str, Any]:
    if inputs is None or "exit" not in result or result["exit"] != 0:
        return result
    docs, mb = inputs
    wall, cpu = max(result["wall_s"], 1e-9), max(result["cpu_s"], 1e-9)
    return {**result, "docs_in": docs, "mb_in": round(mb, 2), "posts_per_s": round(docs / wall),
            "mb_per_s": round(mb / wall, 2), "posts_per_cpu_s": round(docs / cpu)}


def run_stages(work: Path, args: argparse.Namespace, gen: dict[str, Any], code: Path = REPO,
               label: str = "") -> dict[str, Any]:
    """Every stage of ``args.stages`` in ``work`` (its ``data/raw`` in place) with the code of ``code``."""
    _write_yaml(work / "params.yaml", bench_params(args, code=code))
    commands = stage_commands(code)
    stages: dict[str, Any] = {}
    (work / "logs").mkdir(exist_ok=True)
    for stage in args.stages:
        result = run_stage(commands[stage], work, work / "logs" / f"{stage}.log", args.rss_cap_mb, args.stage_timeout,
                           code)
        stages[stage] = with_rates(result, stage_inputs(stage, work, gen))
        print(f"[scale] {gen['posts']} posts{label}: {stage} {json.dumps(stages[stage])[:300]}", file=sys.stderr,
              flush=True)
        if result["exit"] != 0:
            break
    return stages


def baseline_code(ref: str, root: Path) -> Path:
    """This repository's tree at ``ref`` (``git archive``), the baseline's code."""
    code = root / f"baseline-{ref}"
    if not code.exists():
        code.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    return code


def ratios(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Per stage, baseline over this code: CPU seconds, wall seconds, peak RSS (> 1: this code is better)."""
    out = {}
    for stage, a in new.items():
        b = old.get(stage)
        if b and not a.get("exit") and not b.get("exit"):
            out[stage] = {k: round(b[k] / max(a[k], 1e-9), 2) for k in ("cpu_s", "wall_s", "peak_rss_mb")}
    return out


def run_size(n_posts: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Generate ``n_posts`` and run the stages in ``root/<n>``; per-stage numbers."""
    work = root / f"posts-{n_posts}"
    raw = work / "data" / "raw" / "scale.parquet"
    t = time.perf_counter()
    gen = generate(raw, n_posts, args.seed)
    gen.update(generate_s=round(time.perf_counter() - t, 1), raw_file_mb=round(raw.stat().st_size / 1e6, 1))
    out = {"posts": n_posts, "corpus": gen, "stages": run_stages(work, args, gen)}
    if args.baseline_ref or args.baseline_dir:
        base = root / f"posts-{n_posts}-baseline"
        (base / "data").mkdir(parents=True, exist_ok=True)
        os.symlink(raw.parent, base / "data" / "raw")
        code = args.baseline_dir or baseline_code(args.baseline_ref, root)
        name = args.baseline_ref or str(code)
        out["baseline"] = {"ref": name, "stages": run_stages(base, args, gen, code, f" (baseline {name})")}
        out["baseline_over_this"] = ratios(out["stages"], out["baseline"]["stages"])
        shutil.rmtree(base, ignore_errors=True)
    if args.train_workers and out["stages"].get("batches", {}).get("exit") == 0:
        out["multi_worker_train"] = run_multi_worker_train(work, args)
    if args.dask:
        out["dask"] = run_dask(work, args, stage_commands(), gen)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


# -- the Dask run ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` and two ``dask worker`` processes (one thread each) on 127.0.0.1, each
    under its nanny, as ``dask worker`` starts them by default (the nanny sets the worker's
    environment, e.g. ``MALLOC_TRIM_THRESHOLD_``, and restarts a worker past 95% of its limit)."""

    def __init__(self, cwd: Path, log: Path, memory_limit: str) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = open(log, "ab")
        base = [sys.executable, "-m"]
        self.scheduler = subprocess.Popen(
            [*base, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--dashboard-address", "127.0.0.1:0"], cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.workers = [subprocess.Popen(
            [*base, "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
             "--nworkers", "1", "--dashboard-address", "127.0.0.1:0", "--memory-limit", memory_limit],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT) for _ in range(2)]
        self._wait_for_workers(2)

    def _wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        while True:
            try:
                with Client(self.address, timeout=5, set_as_default=False) as client:
                    client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise

    def peaks_mb(self) -> dict[str, float]:
        """VmHWM (peak resident set) of the scheduler, of each worker process and of its nanny.
        A worker the nanny restarted reports its replacement's peak; the stage log shows restarts."""
        out = {"scheduler": _vm_hwm_mb(self.scheduler.pid)}
        for i, nanny in enumerate(self.workers):
            children = psutil.Process(nanny.pid).children()
            out[f"worker{i}"] = max((_vm_hwm_mb(c.pid) for c in children), default=float("nan"))
            out[f"nanny{i}"] = _vm_hwm_mb(nanny.pid)
        return out

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_dask(work: Path, args: argparse.Namespace, commands: dict[str, list[str]],
             gen: dict[str, Any]) -> dict[str, Any]:
    """Clean and dedupe of ``work``'s corpus on a two-worker Dask cluster; same bytes as local?"""
    dwork = work / "dask"
    (dwork / "data").mkdir(parents=True, exist_ok=True)
    (dwork / "logs").mkdir(exist_ok=True)
    os.symlink(work / "data" / "raw", dwork / "data" / "raw")
    stages = [s for s in ("clean", "dedupe") if s in args.dask_stages.split(",")]
    if "clean" not in stages:  # dedupe alone reads the local engine's clean output (the same bytes)
        os.symlink(work / "data" / "clean", dwork / "data" / "clean")
        (dwork / "metrics").mkdir(exist_ok=True)
        shutil.copy(work / "metrics" / "clean.json", dwork / "metrics" / "clean.json")
    out: dict[str, Any] = {}
    for stage in stages:
        cluster = Cluster(dwork, dwork / "logs" / "cluster.log", args.dask_memory_limit)
        try:
            _write_yaml(dwork / "params.yaml", bench_params(args, "dask", cluster.address))
            result = run_stage(commands[stage], dwork, dwork / "logs" / f"{stage}.log", args.rss_cap_mb,
                               args.stage_timeout)
            result["process_peak_rss_mb"] = {"stage": result["peak_rss_mb"], **cluster.peaks_mb()}
        finally:
            cluster.close()
        files = {"clean": ["data/clean/posts.parquet", "data/clean/dropped.parquet"],
                 "dedupe": ["data/dedup/corpus.parquet", "data/dedup/duplicates.parquet"]}[stage]
        if result["exit"] == 0 and (work / files[0]).exists():
            result["same_bytes_as_local"] = all(sha256_of(work / f) == sha256_of(dwork / f) for f in files)
            result = with_rates(result, stage_inputs(stage, dwork, gen))
        out[stage] = result
        print(f"[scale] dask {stage} {json.dumps(result)[:300]}", file=sys.stderr, flush=True)
        if result["exit"] != 0:
            break
    return out


def run_multi_worker_train(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The train stage of ``work``'s shards as ``multi_worker`` over ``args.train_workers`` processes
    on 127.0.0.1, each started with ``--task-index``; per process wall, CPU, peak RSS."""
    mwork = work / "multi_worker"
    (mwork / "logs").mkdir(parents=True, exist_ok=True)
    os.symlink(work / "data", mwork / "data")
    params = bench_params(args)
    workers = [f"127.0.0.1:{free_port()}" for _ in range(args.train_workers)]
    params["train"]["distribute"].update(strategy="multi_worker", workers=workers)
    _write_yaml(mwork / "params.yaml", params)
    cmd = stage_commands()["train"]
    results: list[dict[str, Any]] = [{} for _ in workers]

    def one(i: int) -> None:
        results[i] = run_stage([*cmd, "--task-index", str(i)], mwork, mwork / "logs" / f"train-{i}.log",
                               args.rss_cap_mb, args.stage_timeout)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out: dict[str, Any] = {"workers": len(workers), "processes": results,
                           "peak_rss_mb": max(r.get("peak_rss_mb", 0.0) for r in results)}
    for name, folder in (("chief", mwork), ("single_process", work)):
        metrics = folder / "metrics" / "train.json"
        if metrics.exists():
            m = json.loads(metrics.read_text())
            out[name] = {k: m.get(k) for k in ("steps", "val_bpc", "tokens_per_s", "seconds")}
    print(f"[scale] multi_worker train {json.dumps(out)[:400]}", file=sys.stderr, flush=True)
    return out


# -- growth ----------------------------------------------------------------------------------------
def slope(x1: float, y1: float, x2: float, y2: float) -> float | None:
    if min(x1, y1, x2, y2) <= 0 or x1 == x2:
        return None
    return round(math.log(y2 / y1) / math.log(x2 / x1), 3)


def growth(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage, log-log slopes of wall time, CPU time and peak RSS between consecutive sizes."""
    out: dict[str, Any] = {}
    for a, b in zip(runs, runs[1:]):
        key = f"{a['posts']}->{b['posts']}"
        for stage, ra in a["stages"].items():
            rb = b["stages"].get(stage)
            if not rb or ra.get("exit") or rb.get("exit"):
                continue
            out.setdefault(stage, {})[key] = {
                "time": slope(a["posts"], ra["wall_s"], b["posts"], rb["wall_s"]),
                "cpu": slope(a["posts"], ra["cpu_s"], b["posts"], rb["cpu_s"]),
                "rss": slope(a["posts"], ra["peak_rss_mb"], b["posts"], rb["peak_rss_mb"])}
    return out


def targets(runs: list[dict[str, Any]], budget_mb: float) -> dict[str, Any]:
    """The issue's bars: every stage under the RSS budget, clean >= 10k posts/s, data-stage time slopes."""
    over = {f"{r['posts']}:{s}": v["peak_rss_mb"] for r in runs for s, v in r["stages"].items()
            if v.get("exit") or v["peak_rss_mb"] > budget_mb}
    clean = [r["stages"]["clean"].get("posts_per_s", 0) for r in runs if "clean" in r["stages"]]
    return {f"every_stage_peak_rss<{budget_mb:.0f}MB": not over, "over_budget_or_failed": over,
            "clean_posts_per_s>=10000": bool(clean) and min(clean) >= 10_000}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", default="100000", help="comma-separated corpus sizes in posts")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, in order, from {','.join(STAGES)}")
    ap.add_argument("--seed", type=int, default=CONFIG["seed"])
    ap.add_argument("--train-steps", type=int, default=20, help="train.max_steps_per_epoch (one epoch)")
    ap.add_argument("--val-steps", type=int, default=20, help="train.val_max_steps")
    ap.add_argument("--test-chars", type=int, default=200_000, help="evaluate.max_test_chars")
    ap.add_argument("--dask", action="store_true", help="also clean and dedupe on a two-worker Dask cluster")
    ap.add_argument("--dask-stages", default="clean,dedupe", help="which of clean,dedupe run on Dask (dedupe "
                    "alone reads the local clean output)")
    ap.add_argument("--dask-memory-limit", default="1536MiB", help="each Dask worker's memory limit: Dask spills "
                    "to disk from 60%% of it (0: no limit, no spilling)")
    ap.add_argument("--train-workers", type=int, default=0, help="also train on each size's shards as multi_worker "
                    "over this many processes on 127.0.0.1 (0: no)")
    ap.add_argument("--baseline-ref", default="", help="git ref whose code runs the same stages on the same corpus "
                    "(baseline_over_this: its CPU, wall and RSS over this code's)")
    ap.add_argument("--baseline-dir", type=Path, default=None, help="a checkout whose code is the baseline "
                    "(instead of --baseline-ref)")
    ap.add_argument("--budget-mb", type=float, default=1536.0, help="the peak RSS every stage must stay under")
    ap.add_argument("--rss-cap-mb", type=float, default=6000.0, help="stop a stage whose processes hold more")
    ap.add_argument("--stage-timeout", type=float, default=3600.0, help="stop a stage running longer (seconds)")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep each size's scratch folder")
    args = ap.parse_args(argv)
    args.posts = [int(p) for p in args.posts.split(",") if p.strip()]
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown or not args.posts or min(args.posts) < 1:
        ap.error(f"--stages: unknown {unknown}; --posts: positive integers")
    if args.train_workers < 0 or args.train_workers == 1:
        ap.error(f"--train-workers: 0 (off) or at least 2 processes, got {args.train_workers}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="kopitiam-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        runs = [run_size(n, args, root) for n in args.posts]
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {"config": {**CONFIG, "posts": args.posts, "stages": args.stages, "train_steps": args.train_steps,
                         "val_steps": args.val_steps, "test_chars": args.test_chars, "cpus": os.cpu_count()},
              "runs": runs, "growth": growth(runs), "targets": targets(runs, args.budget_mb)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
