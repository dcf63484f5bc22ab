"""Benchmark: the model-side stages (evaluate, report, and train's xz baseline) at forum scale.

bench/scale.py runs every stage from the raw corpus; this one starts where the data stages end, so the
model-side stages can be measured at sizes the data stages do not reach yet, and quickly. For each
size N it writes, from bench/scale.py's seeded forum text generator (``Forum``: Zipf words, a
lognormal tail of post lengths, some non-ASCII), the files the model-side stages read:
``data/clean/{posts,dropped}.parquet``, ``data/dedup/{corpus,duplicates}.parquet`` and
``data/split/{train,val,test}.parquet`` (CLEAN_SCHEMA; threads of about 40 posts assigned whole to
train/val/test 90/5/5; the 3% exact and 4% edited re-posts listed as duplicates), written a row
group at a time.

One tiny model is trained once, on the smallest size, through the real ``vocab``, ``batches``,
``train`` and ``sample`` entry points (``--hidden`` units, one layer, ``--train-steps`` steps), and
shared by every size (characters its vocabulary lacks are UNK, as in any run). Then for each size,
through the real entry points (the ``cmd`` of their dvc.yaml stages) with the repository's
params.yaml unchanged but for the train section (so evaluate and report run with their defaults):

- ``evaluate``, ``report``;
- ``train_xz``: the train stage's xz baseline (``model.train.xz_baseline``, what ``main`` runs after
  fitting) in a process of its own, since the train stage itself needs batches at that size.

Per stage: ``wall_s``, ``cpu_s``, ``peak_rss_mb`` (the largest process's peak resident set, from
``wait4``) and ``tree_peak_rss_mb`` (the stage's processes together, psutil polled every 0.2 s), as
bench/scale.py measures them; then the log-log growth slopes between sizes. Prints one JSON object.
Usage: ``python bench/scale_model.py --posts 100000,1000000,4000000 [--workdir DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  bench/scale.py: the corpus generator and the stage runner

from contracts.files import parquet_writer  # noqa: E402
from contracts.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA, DUPLICATES_SCHEMA  # noqa: E402

REPO = scale.REPO
SPLIT_SHARES = (("train", 0.9), ("val", 0.05), ("test", 0.05))
DROP_RATE = 0.01  # posts listed in dropped.parquet (the report counts them by reason)
MODEL_STAGES = ("vocab", "batches", "train", "sample")
SIZE_STAGES = ("train_xz", "evaluate", "report")
XZ_CMD = ("from pathlib import Path; from model.train import load_config, xz_baseline; "
          "from pipeline.vocab import Vocab; "
          "print(xz_baseline(Path('data/split'), Vocab.load('models/lstm/vocab.json'), "
          "load_config(path='params.yaml')))")


class Writers:
    """One Parquet writer per output file, rows buffered per file and written a row group at a time."""

    def __init__(self, work: Path) -> None:
        files = {"posts": ("data/clean/posts.parquet", CLEAN_SCHEMA),
                 "dropped": ("data/clean/dropped.parquet", DROPPED_SCHEMA),
                 "corpus": ("data/dedup/corpus.parquet", CLEAN_SCHEMA),
                 "duplicates": ("data/dedup/duplicates.parquet", DUPLICATES_SCHEMA),
                 **{s: (f"data/split/{s}.parquet", CLEAN_SCHEMA) for s, _ in SPLIT_SHARES}}
        self.schemas = {k: schema for k, (_, schema) in files.items()}
        self.writers = {}
        for key, (rel, schema) in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            self.writers[key] = parquet_writer(work / rel, schema)
        self.rows: dict[str, list[dict]] = {k: [] for k in files}

    def add(self, key: str, row: dict[str, Any]) -> None:
        self.rows[key].append(row)
        if len(self.rows[key]) >= scale.CONFIG["row_group"]:
            self.flush(key)

    def flush(self, key: str) -> None:
        if self.rows[key]:
            self.writers[key].write_table(pa.Table.from_pylist(self.rows[key], schema=self.schemas[key]))
            self.rows[key] = []

    def close(self) -> None:
        for key, writer in self.writers.items():
            self.flush(key)
            writer.close()


def write_corpus(work: Path, n_posts: int, seed: int) -> dict[str, Any]:
    """The clean, dedup and split files of ``n_posts`` forum posts under ``work``; what was written."""
    forum = scale.Forum(seed)
    rng = forum.rng
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    out = Writers(work)
    recent: list[str] = []
    counts: dict[str, int] = {"posts": 0, "threads": 0, "dropped": 0, "duplicates": 0, "chars": 0,
                              **{s: 0 for s, _ in SPLIT_SHARES}, **{f"{s}_chars": 0 for s, _ in SPLIT_SHARES}}
    while counts["posts"] < n_posts:
        counts["threads"] += 1
        thread = str(counts["threads"])
        r, split = rng.random(), "test"
        for name, share in SPLIT_SHARES:
            if r < share:
                split = name
                break
            r -= share
        for position in range(min(max(1, int(rng.gauss(*scale.CONFIG["thread_posts"]))), n_posts - counts["posts"])):
            counts["posts"] += 1
            pid = str(1_000_000 + counts["posts"])
            kind = _kind(rng.random())
            text = forum.text() if kind is None or not recent else (
                rng.choice(recent) if kind == "exact" else forum.edited(rng.choice(recent)))
            text = text.replace(". ", ".\n")
            doc_id = f"{seed:x}{int(pid):012x}"
            if rng.random() < DROP_RATE:
                counts["dropped"] += 1
                out.add("dropped", {"doc_id": doc_id, "source": "scale", "reason": rng.choice(
                    ["too_short", "low_letters", "empty", "too_long"]), "detail": None})
                continue
            row = {"doc_id": doc_id, "source": "scale", "board": f"board{int(thread) % 12}", "thread_id": thread,
                   "thread_title": None, "post_id": pid, "position": position, "author_hash": None,
                   "posted_at": t0 + dt.timedelta(seconds=30 * counts["posts"]), "text": text, "n_chars": len(text),
                   "quoted_post_ids": []}
            out.add("posts", row)
            counts["chars"] += len(text)
            if kind is not None and recent:
                counts["duplicates"] += 1
                out.add("duplicates", {"doc_id": doc_id, "kept_doc_id": doc_id, "source": "scale",
                                       "kind": "exact" if kind == "exact" else "near", "similarity": 0.9})
                continue
            recent.append(text)
            if len(recent) > scale.CONFIG["recent"]:
                del recent[:len(recent) // 2]
            out.add("corpus", row)
            out.add(split, row)
            counts[split] += 1
            counts[f"{split}_chars"] += len(text)
    out.close()
    return counts


def _kind(r: float) -> str | None:
    if r < scale.CONFIG["exact_rate"]:
        return "exact"
    if r < scale.CONFIG["exact_rate"] + scale.CONFIG["edit_rate"]:
        return "edited"
    return None


def bench_params(args: argparse.Namespace) -> dict[str, Any]:
    """The repository's params.yaml; only the train section is made tiny (one layer, a few steps)."""
    with open(REPO / "params.yaml", encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    params["train"]["model"].update(embedding_dim=16, hidden_size=args.hidden, num_layers=1)
    params["train"].update(epochs=1, max_steps_per_epoch=args.train_steps, val_max_steps=5, max_minutes=0,
                           checkpoint_every_steps=0)
    params["train"]["evolution"]["primes"] = []
    return params


def commands() -> dict[str, list[str]]:
    cmds = scale.stage_commands()
    cmds["train_xz"] = [sys.executable, "-c", XZ_CMD]
    return cmds


def run(stage: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    (work / "logs").mkdir(exist_ok=True)
    result = scale.run_stage(commands()[stage], work, work / "logs" / f"{stage}.log", args.rss_cap_mb,
                             args.stage_timeout)
    print(f"[scale_model] {work.name}: {stage} {json.dumps(result)[:400]}", file=sys.stderr, flush=True)
    return result


def train_model(model_dir: Path, corpus_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """vocab, batches, train and sample on ``corpus_dir``'s split, in ``model_dir``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "data").mkdir(exist_ok=True)
    _link(corpus_dir / "data/split", model_dir / "data/split")
    _write_yaml(model_dir / "params.yaml", bench_params(args))
    out = {}
    for stage in MODEL_STAGES:
        out[stage] = run(stage, model_dir, args)
        if out[stage]["exit"]:
            raise SystemExit(f"{stage} failed: {out[stage].get('error', '')}")
    return out


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target.resolve(), link)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def run_size(n_posts: int, model_dir: Path, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    work = root / f"posts-{n_posts}"
    if not (work / "data/split/test.parquet").exists():
        t = time.perf_counter()
        corpus = write_corpus(work, n_posts, args.seed)
        corpus["generate_s"] = round(time.perf_counter() - t, 1)
        (work / "corpus.json").write_text(json.dumps(corpus))
    corpus = json.loads((work / "corpus.json").read_text())
    for rel in ("models/lstm", "reports/samples.jsonl", "metrics/train.json", "plots/train.csv"):
        _link(model_dir / rel, work / rel)
    _write_yaml(work / "params.yaml", bench_params(args))
    stages = {}
    for stage in args.stages:
        stages[stage] = run(stage, work, args)
    if stages.get("evaluate", {}).get("exit") == 0:
        ev = json.loads((work / "metrics/eval.json").read_text())
        corpus["eval"] = {k: ev.get(k) for k in ("test", "baseline_train", "seconds")}
        corpus["eval"]["bpc"] = {k: round(v["bpc"], 4) for k, v in ev["models"].items()}
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return {"posts": n_posts, "corpus": corpus, "stages": stages}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", default="100000", help="comma-separated corpus sizes in posts")
    ap.add_argument("--stages", default=",".join(SIZE_STAGES), help=f"comma-separated, from {','.join(SIZE_STAGES)}")
    ap.add_argument("--seed", type=int, default=scale.CONFIG["seed"])
    ap.add_argument("--hidden", type=int, default=64, help="LSTM units of the tiny model (one layer)")
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--budget-mb", type=float, default=1536.0)
    ap.add_argument("--rss-cap-mb", type=float, default=8000.0, help="stop a stage whose processes hold more")
    ap.add_argument("--stage-timeout", type=float, default=7200.0)
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder; corpora already there are reused")
    ap.add_argument("--keep", action="store_true", help="keep each size's files (and reuse them next time)")
    args = ap.parse_args(argv)
    args.posts = sorted(int(p) for p in args.posts.split(",") if p.strip())
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if set(args.stages) - set(SIZE_STAGES) or not args.posts or min(args.posts) < 1:
        ap.error(f"--stages: from {SIZE_STAGES}; --posts: positive integers")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="kopitiam-scale-model-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        smallest = root / f"posts-{args.posts[0]}"
        if not (smallest / "data/split/test.parquet").exists():
            (smallest / "corpus.json").parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            corpus = write_corpus(smallest, args.posts[0], args.seed)
            corpus["generate_s"] = round(time.perf_counter() - t, 1)
            (smallest / "corpus.json").write_text(json.dumps(corpus))
        model_dir = root / "model"
        model = {} if (model_dir / "models/lstm/meta.json").exists() else train_model(model_dir, smallest, args)
        runs = [run_size(n, model_dir, args, root) for n in args.posts]
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {"config": {"posts": args.posts, "stages": args.stages, "hidden": args.hidden,
                         "train_steps": args.train_steps, "seed": args.seed, "cpus": os.cpu_count()},
              "model": model, "runs": runs, "growth": scale.growth(runs),
              "targets": scale.targets(runs, args.budget_mb)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
