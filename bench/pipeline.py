"""Benchmark: the clean and dedupe stages on a synthetic forum corpus.

Generates a raw corpus of ``--size-mb`` MB of XenForo 2 post HTML (default 200): pseudo-English
replies with ``<br />`` paragraphs, entities, smilies, links, quote blocks of earlier posts (some
nested), signatures (``aside.message-signature``), phone numbers and e-mails, and planted near
duplicates (an earlier reply re-posted with a few characters changed). Then it runs
``pipeline.clean.run_clean`` and ``pipeline.dedupe.run_dedupe`` with all cores and reports:

- clean MB/s of raw HTML (target >= 5) and dedupe MB/s of clean text (target >= 20);
- recall of the planted near duplicates (target >= 0.95);
- peak RSS (this process and the largest worker) at the full size and at 1/8 of it, each run in a
  fresh subprocess (the small run doubles as the warm-up), so growth with size is visible
  (target < 2 GB, flat);
- baselines in the same run, on a subset of the clean corpus: naive pure-Python pairwise Jaccard
  over shingle sets (the speed-up is a ratio of MB/s) with its precision/recall as ground truth
  for the MinHash result on the same subset, and datasketch ``MinHash.update_batch`` signatures
  against ``pipeline.minhash.signatures``.

With ``--engine local,dask`` the same corpus is cleaned and deduped by each engine in the same run
(dask: a LocalCluster of one single-threaded worker process per core, started before the clock
starts); ``engines`` reports MB/s for each and whether the output files are byte-identical. On one
machine Dask can only show its overhead against the process pool (task shipping, the LSH shuffle
through the scheduler); the scale-out itself needs more machines than these 2 cores.

Prints one JSON object. Usage: ``python bench/pipeline.py [--size-mb 200] [--baseline-docs 1500]
[--engine local,dask]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from contracts.files import parquet_writer  # noqa: E402
from contracts.schemas import RAW_SCHEMA  # noqa: E402
from pipeline import clean, dask_engine, dedupe, minhash  # noqa: E402
from pipeline.config import section  # noqa: E402

CONFIG = {
    "seed": 0,
    "near_dup_rate": 0.03,  # fraction of posts that re-post an earlier reply with small edits
    "exact_dup_rate": 0.01,  # fraction of posts copied verbatim
    "quote_rate": 0.35,  # posts that quote an earlier post
    "signature_rate": 0.3,
    "edits": (1, 6),  # characters changed in a planted near duplicate
    "words": (30, 260),  # words per reply
    "row_group": 4000,
    "small_fraction": 1 / 8,  # size of the warm-up / RSS-growth run
}
SYLLABLES = ["th", "e", "an", "ing", "er", "o", "ou", "ar", "st", "l", "ke", "wh", "y", "ea", "is", "ro",
             "mi", "ne", "ha", "t", "qu", "d", "s", "ch", "ve", "al"]
SMILIE = ('<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
          'class="smilie smilie--sprite smilie--sprite{n}" alt="{alt}" title="{alt}" loading="lazy" '
          'data-shortname="{alt}" />')


def vocabulary(rng: random.Random, n: int = 6000) -> tuple[list[str], list[float]]:
    words = sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(n)})
    cum, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 1) ** 1.05
        cum.append(total)
    rng.shuffle(words)
    return words, cum


def reply_text(rng: random.Random, words: list[str], cum: list[float]) -> str:
    toks = rng.choices(words, cum_weights=cum, k=rng.randint(*CONFIG["words"]))
    out, start = [], 0
    while start < len(toks):
        end = start + rng.randint(6, 20)
        out.append(" ".join(toks[start:end]).capitalize() + rng.choice([".", ".", "?", "!", "..."]))
        start = end
    return " ".join(out)


def html_of(rng: random.Random, text: str) -> str:
    sentences = text.split(". ")
    parts = []
    for i, s in enumerate(sentences):
        if rng.random() < 0.15:
            s += " " + SMILIE.format(n=rng.randint(1, 9), alt=rng.choice([":)", ":(", ";)", ":D"]))
        if rng.random() < 0.05:
            s += (' <a href="https://example.org/t/%d" class="link link--external">see &amp; read</a>'
                  % rng.randint(1, 9999))
        if rng.random() < 0.03:
            s += " call me 9%03d %04d or mail u%d@example.com" % (rng.randint(0, 999), rng.randint(0, 9999), i)
        parts.append(s)
    return ".<br />\n".join(parts).replace("'", "&#039;")


def quote(post_id: int, author: str, inner: str) -> str:
    return (f'<blockquote data-attributes="member: 1" data-quote="{author}" data-source="post: {post_id}" '
            f'class="bbCodeBlock bbCodeBlock--expandable bbCodeBlock--quote js-expandWatch">'
            f'<div class="bbCodeBlock-title"><a href="/goto/post?id={post_id}" class="bbCodeBlock-sourceJump" '
            f'rel="nofollow" data-xf-click="attribution" data-content-selector="#post-{post_id}">{author} said:</a>'
            f'</div><div class="bbCodeBlock-content"><div class="bbCodeBlock-expandContent js-expandContent">'
            f'{inner}</div><div class="bbCodeBlock-expandLink js-expandLink"><a role="button" tabindex="0">'
            f'Click to expand...</a></div></div></blockquote>')


def edit(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(*CONFIG["edits"])):
        i = rng.randrange(len(chars))
        if chars[i].isalpha():
            chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
    return "".join(chars)


def generate(path: Path, size_mb: float, seed: int) -> dict:
    """Write the raw corpus; return ground truth {copy post_id: "near" | "exact"} and sizes."""
    rng = random.Random(seed)
    words, cum = vocabulary(rng)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    recent: list[tuple[int, str, str]] = []  # (post_id, reply text, html) of recent posts
    planted: dict[str, str] = {}
    rows, n_bytes, pid = [], 0, 0
    with parquet_writer(path, RAW_SCHEMA) as writer:
        while n_bytes < size_mb * 1e6:
            pid += 1
            r = rng.random()
            decor = pid  # seeds the smilies/links/phones sprinkled over the reply
            if recent and r < CONFIG["near_dup_rate"] + CONFIG["exact_dup_rate"]:
                orig_id, orig_text, _ = rng.choice(recent)
                text = edit(rng, orig_text) if r < CONFIG["near_dup_rate"] else orig_text
                planted[str(pid)] = "near" if r < CONFIG["near_dup_rate"] else "exact"
                decor = orig_id  # a re-post: same decorations, edited words
            else:
                text = reply_text(rng, words, cum)
            body = html_of(random.Random(decor), text)
            if recent and rng.random() < CONFIG["quote_rate"]:
                qid, _, qhtml = rng.choice(recent)
                body = quote(qid, f"user{qid % 977}", qhtml) + body
            if rng.random() < CONFIG["signature_rate"]:
                body += ('<aside class="message-signature"><div class="bbWrapper">Sent from my phone '
                         f'&mdash; user{pid % 977} sig</div></aside>')
            recent.append((pid, text, body if len(body) < 20000 else html_of(rng, text)))
            if len(recent) > 2000:
                recent = recent[-1000:]
            rows.append({"source": "bench", "url": f"https://forum.example/posts/{pid}/", "board": "b1",
                         "thread_id": str(pid // 40), "thread_title": "t", "page": 1, "position": pid % 40,
                         "post_id": str(pid), "author": f"user{pid % 977}",
                         "posted_at": t0 + dt.timedelta(seconds=pid * 60), "body": body, "body_format": "html",
                         "quoted_post_ids": [], "fetched_at": t0})
            n_bytes += len(body.encode())
            if len(rows) == CONFIG["row_group"]:
                writer.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
    return {"planted": planted, "raw_mb": n_bytes / 1e6, "posts": pid}


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the pool workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> dict:
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main": round(self_mb, 1), "largest_worker": round(child_mb, 1)}


def engine_run(raw: Path, out: Path, name: str, engine: dask_engine.DaskEngine | None) -> dict:
    """Clean and dedupe ``raw`` into ``out`` with one engine; metrics, CPU seconds, output hashes."""
    cpu0 = cpu_seconds()
    ccfg = {**section("clean", clean.CleanConfig), "engine": name}
    dcfg = {**section("dedupe", dedupe.DedupeConfig), "engine": name}
    cm = clean.run_clean([raw], out / "clean" / "posts.parquet", out / "clean" / "dropped.parquet", ccfg,
                         engine=engine)
    cpu1 = cpu_seconds()
    dm = dedupe.run_dedupe(out / "clean" / "posts.parquet", out / "dedup" / "corpus.parquet",
                           out / "dedup" / "duplicates.parquet", dcfg,
                           out / "clean" / "dropped.parquet", engine=engine)
    cpu2 = cpu_seconds()
    files = ["clean/posts.parquet", "clean/dropped.parquet", "dedup/corpus.parquet", "dedup/duplicates.parquet"]
    return {"clean": cm, "dedupe": dm, "cpu": (cpu1 - cpu0, cpu2 - cpu1),
            "sha256": {f: hashlib.sha256((out / f).read_bytes()).hexdigest()[:16] for f in files}}


def dask_worker_rss_mb(engine: dask_engine.DaskEngine) -> float:
    rss = engine.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return round(max(rss.values()), 1)


def run_once(size_mb: float, workdir: Path, engines: list[str]) -> dict:
    """Generate, clean, dedupe; measure speeds, recall and peak RSS (meant for a fresh process)."""
    raw = workdir / "raw" / "bench.parquet"
    raw.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    truth = generate(raw, size_mb, CONFIG["seed"])
    gen_s = time.perf_counter() - t
    runs: dict[str, dict] = {}
    for name in engines:
        if name == "dask":
            t = time.perf_counter()
            dask_cfg = {**section("dask", dask_engine.DaskConfig), "n_workers": os.cpu_count() or 1}
            with dask_engine.DaskEngine(dask_cfg) as engine:
                start_s = time.perf_counter() - t
                runs[name] = engine_run(raw, workdir / name, name, engine)
                runs[name].update(cluster_start_s=round(start_s, 1), worker_rss_mb=dask_worker_rss_mb(engine),
                                  tasks_by_worker=None)
            runs[name]["tasks_by_worker"] = sorted(engine.tasks_by_worker.values())
        else:
            runs[name] = engine_run(raw, workdir / name, name, None)
    first = runs[engines[0]]
    cm, dm = first["clean"], first["dedupe"]
    clean_cpu, dedupe_cpu = first["cpu"]
    out_dir = workdir / engines[0]
    dups = pq.read_table(out_dir / "dedup" / "duplicates.parquet").to_pylist()
    removed = {d["doc_id"] for d in dups}
    id_of = {pid: clean.doc_id_for("bench", pid) for pid in truth["planted"]}
    near = [p for p, kind in truth["planted"].items() if kind == "near"]
    exact = [p for p, kind in truth["planted"].items() if kind == "exact"]
    found = sum(id_of[p] in removed for p in near)
    per_engine = {name: {"clean_mb_per_s": r["clean"]["mb_per_s"], "dedupe_mb_per_s": r["dedupe"]["mb_per_s"],
                         "clean_s": r["clean"]["seconds"], "dedupe_s": r["dedupe"]["seconds"],
                         "same_bytes_as_" + engines[0]: r["sha256"] == first["sha256"],
                         **{k: r[k] for k in ("cluster_start_s", "worker_rss_mb", "tasks_by_worker") if k in r}}
                  for name, r in runs.items()}
    return {"size_mb": round(truth["raw_mb"], 1), "posts": truth["posts"], "generate_s": round(gen_s, 1),
            "engine": engines[0], "engines": per_engine,
            "clean_s": cm["seconds"], "clean_mb_per_s": cm["mb_per_s"], "clean_kept": cm["kept"],
            "clean_dropped": cm["dropped_by_reason"], "text_mb": round(dm["bytes_in"] / 1e6, 1),
            "dedupe_s": dm["seconds"], "dedupe_mb_per_s": dm["mb_per_s"],
            # CPU seconds (main + pool workers): MB per CPU-second does not depend on how busy a shared
            # machine is; x2 is what two idle cores would give if the pool scaled perfectly
            "clean_cpu_s": round(clean_cpu, 1), "clean_mb_per_cpu_s": round(truth["raw_mb"] / clean_cpu, 3),
            "clean_2core_projected_mb_per_s": round(2 * truth["raw_mb"] / clean_cpu, 2),
            "dedupe_cpu_s": round(dedupe_cpu, 1),
            "dedupe_mb_per_cpu_s": round(dm["bytes_in"] / 1e6 / dedupe_cpu, 3),
            "dedupe_2core_projected_mb_per_s": round(2 * dm["bytes_in"] / 1e6 / dedupe_cpu, 2),
            "planted_near": len(near), "planted_near_found": found,
            "planted_exact_recall": round(sum(id_of[p] in removed for p in exact) / max(len(exact), 1), 4),
            "planted_recall": round(found / max(len(near), 1), 4),
            "exact_removed": dm["exact_duplicates"], "near_removed": dm["near_duplicates"],
            "peak_rss_mb": peak_rss_mb()}


def baselines(posts: Path, n_docs: int, cfg: dict) -> dict:
    """Naive pairwise Jaccard and datasketch on the first n_docs clean texts, against pipeline.minhash."""
    first = next(pq.ParquetFile(posts).iter_batches(batch_size=n_docs, columns=["text"]))
    texts = first.column("text").to_pylist()
    texts = [t for t in texts if len(t) >= cfg["near_min_chars"]]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    k, thr = cfg["shingle"], cfg["threshold"]
    t = time.perf_counter()
    sets = [{s[i:i + k] for i in range(len(s) - k + 1)} for s in texts]
    truth = set()
    for i in range(len(sets)):
        for j in range(i):
            inter = len(sets[i] & sets[j])
            if inter and inter / (len(sets[i]) + len(sets[j]) - inter) >= thr:
                truth.add((j, i))
    naive_s = time.perf_counter() - t
    t = time.perf_counter()
    sig = minhash.signatures(texts, shingle=k, num_perm=cfg["num_perm"], seed=cfg["seed"])
    rank = np.arange(len(texts))
    pairs = minhash.candidate_pairs(minhash.band_keys(sig, cfg["bands"]), rank, cfg["bucket_window"],
                                    cfg["min_shared_bands"])
    sims = minhash.similarity(sig, pairs[:, 0], pairs[:, 1])
    found = {tuple(p) for p, s in zip(pairs.tolist(), sims) if s >= thr}
    mh_s = time.perf_counter() - t
    from datasketch import MinHash
    sub = texts[:300]
    t = time.perf_counter()
    for s in sub:
        m = MinHash(num_perm=cfg["num_perm"], seed=cfg["seed"])
        m.update_batch([s[i:i + k].encode() for i in range(len(s) - k + 1)])
    ds_s = time.perf_counter() - t
    t = time.perf_counter()
    minhash.signatures(sub, shingle=k, num_perm=cfg["num_perm"])
    ours_s = time.perf_counter() - t
    sub_mb = sum(len(s.encode()) for s in sub) / 1e6
    tp = len(found & truth)
    return {"docs": len(texts), "mb": round(mb, 2), "naive_pairwise_s": round(naive_s, 2),
            "naive_mb_per_s": round(mb / naive_s, 3), "minhash_lsh_s": round(mh_s, 3),
            "minhash_lsh_mb_per_s": round(mb / mh_s, 2), "speedup_vs_naive": round(naive_s / mh_s, 1),
            "true_pairs": len(truth), "lsh_recall_vs_exact_jaccard": round(tp / max(len(truth), 1), 4),
            "lsh_precision_vs_exact_jaccard": round(tp / max(len(found), 1), 4),
            "datasketch_signature_mb_per_s": round(sub_mb / ds_s, 2),
            "ours_signature_mb_per_s": round(sub_mb / ours_s, 2),
            "signature_speedup_vs_datasketch": round(ds_s / ours_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument("--baseline-docs", type=int, default=1500)
    parser.add_argument("--engine", default="local",
                        help="comma-separated engines to run on the same data: local, dask (first = main numbers)")
    parser.add_argument("--one-run", action="store_true", help="internal: one run in this process, JSON out")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    if not engines or set(engines) - {"local", "dask"}:
        parser.error(f"--engine: a comma-separated list of local and dask, got {args.engine!r}")
    if args.one_run:
        with tempfile.TemporaryDirectory(prefix="kopitiam-bench-") as tmp:
            result = run_once(args.size_mb, Path(tmp), engines)
            result["baseline"] = baselines(Path(tmp) / engines[0] / "clean" / "posts.parquet", args.baseline_docs,
                                           section("dedupe", dedupe.DedupeConfig))
        print(json.dumps(result))
        return
    runs = []
    for size in (max(2.0, args.size_mb * CONFIG["small_fraction"]), args.size_mb):  # warm-up, then timed
        out = subprocess.run([sys.executable, __file__, "--one-run", "--size-mb", str(size),
                              "--baseline-docs", str(args.baseline_docs), "--engine", ",".join(engines)],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    small, full = runs
    rss = lambda r: max(r["peak_rss_mb"].values())  # noqa: E731
    report = {"config": {**CONFIG, "size_mb": args.size_mb, "clean": section("clean", clean.CleanConfig),
                         "dedupe": section("dedupe", dedupe.DedupeConfig)},
              **{k: v for k, v in full.items() if k != "baseline"},
              "baseline": full["baseline"],
              "dedupe_speedup_vs_naive_pairwise": round(full["dedupe_mb_per_s"]
                                                        / full["baseline"]["naive_mb_per_s"], 1),
              "rss_small_run": small["peak_rss_mb"], "rss_small_size_mb": small["size_mb"],
              "rss_growth_full_over_small": round(rss(full) / rss(small), 2),
              "targets": {"clean_mb_per_s>=5": full["clean_mb_per_s"] >= 5,
                          "dedupe_mb_per_s>=20": full["dedupe_mb_per_s"] >= 20,
                          "near_dup_recall>=0.95": full["planted_recall"] >= 0.95,
                          "peak_rss<2GB": rss(full) < 2048}}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
