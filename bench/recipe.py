"""The default run's training speed and recipe: variants of params.yaml measured side by side.

Every variant is the ``train`` and ``batches`` sections of params.yaml with a few keys overridden, run
in its own process (op determinism and XLA are process-wide switches) on the project's own
``data/split`` and ``data/vocab.json`` (run ``dvc repro vocab`` first), on the kernels params.yaml's
``kernels`` section pins (bench/pinning.py): the batches are rebuilt with
the variant's batch settings, then

- ``--part speed``: ``--steps`` training steps after ``--warmup`` untimed ones; tokens/s of real
  targets. Ratios are to the first variant (``baseline``) of the same run.
- ``--part recipe``: training for ``--tokens`` real train targets (the same amount of data for
  every variant, whatever its batch size) or ``--epochs`` whole epochs (the default run's
  schedule), then the bits per character on the whole val split: as training reports it
  (``val_bpc``) and as the evaluate stage scores test, each document alone from a zero state, with the
  state carried across its windows (``val_bpc_documents``) or not (``val_bpc_chunks``).

    python bench/recipe.py --part speed [--steps 40] [--variants baseline,batch128,...]
    python bench/recipe.py --part recipe [--tokens 1000000 | --epochs 3] [--variants ...]

Prints exactly one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> overrides: "train.<key>", "train.model.<key>", "batches.<key>"
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "batch128": {"batches.batch_size": 128},
    "batch256": {"batches.batch_size": 256},
    "no_carry": {"batches.carry_state": False},
    "nondeterministic_ops": {"train.deterministic_ops": False},
    "deterministic_ops": {"train.deterministic_ops": True},
    "batch128_no_carry": {"batches.batch_size": 128, "batches.carry_state": False},
    "batch128_dropout0": {"batches.batch_size": 128, "train.model.dropout": 0.0},
    "batch128_dropout0_lr0.012": {"batches.batch_size": 128, "train.model.dropout": 0.0, "train.learning_rate": 0.012},
    "lr_0.004": {"train.learning_rate": 0.004},
    "lr_0.012": {"train.learning_rate": 0.012},
    "dropout_0": {"train.model.dropout": 0.0},
    "embedding_32": {"train.model.embedding_dim": 32},
    "wide_1x384": {"train.model.num_layers": 1, "train.model.hidden_size": 384},
    "deep_3x192": {"train.model.num_layers": 3, "train.model.hidden_size": 192},
    "batch16": {"batches.batch_size": 16},
    "batch32": {"batches.batch_size": 32},
    "hidden_384": {"train.model.hidden_size": 384},
    "hidden_512": {"train.model.hidden_size": 512},
    "adamw_0.05": {"train.optimizer": "adamw", "train.weight_decay": 0.05},
    "adamw_0.1": {"train.optimizer": "adamw", "train.weight_decay": 0.1},
    "adamw_0.1_nobias": {"train.optimizer": "adamw", "train.weight_decay": 0.1, "train.weight_decay_exclude": ["bias"]},
    "carry": {"batches.carry_state": True},
    "ema_0.999": {"train.ema_momentum": 0.999},
    "wide_1x512": {"train.model.num_layers": 1, "train.model.hidden_size": 512},
    "dropout_0_ema": {"train.model.dropout": 0.0, "train.ema_momentum": 0.999},
    "adamw_0.1_ema": {"train.optimizer": "adamw", "train.weight_decay": 0.1, "train.ema_momentum": 0.999},
    "min_lr_0.02": {"train.min_lr_fraction": 0.02},
    "1x384_ema": {"train.model.num_layers": 1, "train.model.hidden_size": 384, "train.ema_momentum": 0.999},
    "1x384_dropout0_ema": {"train.model.num_layers": 1, "train.model.hidden_size": 384, "train.model.dropout": 0.0,
                           "train.ema_momentum": 0.999},
    "1x384_dropout0": {"train.model.num_layers": 1, "train.model.hidden_size": 384, "train.model.dropout": 0.0},
    "1x384_dropout0.2": {"train.model.num_layers": 1, "train.model.hidden_size": 384, "train.model.dropout": 0.2},
    "1x384_adamw_0.1": {"train.model.num_layers": 1, "train.model.hidden_size": 384, "train.optimizer": "adamw",
                        "train.weight_decay": 0.1},
}


def apply(params: dict, overrides: dict) -> dict:
    params = json.loads(json.dumps(params))
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = params
        for part in path:
            node = node[part]
        node[last] = value
    return params


def document_val_bpc(model, split_dir: Path, vocab, params: dict) -> dict:
    """The val split scored as the evaluate stage scores test: each document alone from a zero state,
    the state carried across its windows (``documents``) or not (``chunks``). Comparable across
    variants whatever their batches (training's own val figure reads a carried-state variant's lanes,
    whose state runs on from one document into the next)."""
    import math

    from model.evaluate import lstm_doc_nats, read_texts

    docs = [vocab.encode(t) for t in read_texts(split_dir / "val.parquet")]
    n = sum(len(d) + 1 for d in docs)
    bs, max_len = int(params["evaluate"]["batch_size"]), int(params["batches"]["max_len"])
    return {f"val_bpc_{key}": round(float(lstm_doc_nats(model, docs, batch_size=bs, max_len=max_len,
                                                        carry_state=carried).sum()) / n / math.log(2), 4)
            for key, carried in (("documents", True), ("chunks", False))}


def run_variant(name: str, part: str, args: argparse.Namespace) -> dict:
    """One variant in this process (called in a child): rebuild batches, train, measure."""
    import numpy as np
    import yaml

    from model import train as T
    from model.data import dataset_stats, make_dataset
    from pipeline import batches as B
    from pipeline.split import SPLITS
    from pipeline.vocab import Vocab

    with open(ROOT / "params.yaml", encoding="utf-8") as fh:
        params = apply(yaml.safe_load(fh), VARIANTS[name])
    vocab = Vocab.load(args.vocab)
    work = Path(tempfile.mkdtemp(prefix=f"recipe-{name}-"))
    bp = B.check_params(params["batches"])
    B.run({s: args.split_dir / f"{s}.parquet" for s in SPLITS}, vocab, bp, work / "batches")
    stats = dataset_stats(work / "batches", "train")
    carry = T.carried_state(stats, params["train"])
    cfg = T.load_config(params)
    mean_targets = stats["real_tokens"] / stats["batches"]
    if part == "speed":
        steps = args.warmup + args.steps
    else:
        steps = max(1, round(args.tokens / mean_targets))
    if part == "recipe" and args.epochs:  # whole epochs, as the default run trains
        steps = stats["batches"] * args.epochs
        cfg.update(epochs=args.epochs, max_steps_per_epoch=0, val_max_steps=0)
    else:
        cfg.update(epochs=1, max_steps_per_epoch=steps, val_max_steps=0 if part == "recipe" else 1,
                   warmup_steps=min(cfg["warmup_steps"], steps // 10))
    cfg.update(checkpoint_every_steps=0, keep_checkpoints=False, max_minutes=0)
    cfg["evolution"] = {**cfg["evolution"], "primes": [], "temperatures": []}
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

    clock = StepClock()
    t0 = time.perf_counter()
    model, summary = T.fit(cfg, vocab=vocab,
                       train_data=lambda s: make_dataset(work / "batches", "train", seed=s, carry=carry),
                       val_data=lambda: make_dataset(work / "batches", "val", carry=carry),
                       model_dir=work / "model", checkpoint_dir=work / "ckpt", csv_path=work / "train.csv",
                       evolution_path=work / "evo.jsonl", verbose=0, extra_callbacks=[clock],
                       carry_lanes=stats["batch_size"] if carry else 0)
    total = time.perf_counter() - t0
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights()))
    out = {"variant": name, "overrides": VARIANTS[name], "steps": steps, "batch_size": stats["batch_size"],
           "carry_state": carry, "train_targets_per_batch": round(mean_targets, 1),
           "weights_sha256": digest.hexdigest()[:16]}
    if part == "speed":
        timed = np.diff(clock.times[args.warmup - 1:]) if args.warmup else np.diff([t0, *clock.times])
        out["tokens_per_s"] = round(mean_targets / float(np.median(timed)), 1)
    else:
        out.update(document_val_bpc(model, args.split_dir, vocab, params))
        out.update(val_bpc=round(summary["val_bpc"], 4), train_tokens_per_s=round(summary["tokens_per_s"], 1),
                   epochs=summary["epochs"], seconds=round(total, 1),
                   val_bpc_by_epoch=[round(float(r["val_bpc"]), 4) for r in csv.DictReader(open(work / "train.csv"))])
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("speed", "recipe"), default="speed")
    ap.add_argument("--variants", default=None, help="comma-separated names (default: all); the first is the baseline")
    ap.add_argument("--steps", type=int, default=40, help="speed: timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="speed: untimed steps first")
    ap.add_argument("--tokens", type=int, default=1_000_000, help="recipe: real train targets per variant")
    ap.add_argument("--epochs", type=int, default=0, help="recipe: whole epochs instead of --tokens")
    ap.add_argument("--split-dir", type=Path, default=ROOT / "data/split")
    ap.add_argument("--vocab", type=Path, default=ROOT / "data/vocab.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_variant(args.child, args.part, args)))
        return
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    from bench.pinning import pinned_environment

    env = pinned_environment()  # the kernels dvc repro trains with on this CPU
    results = []
    for name in names:
        cmd = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {name} failed (exit {proc.returncode})")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(row)
        print(f"{name}: {row} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    key = "tokens_per_s" if args.part == "speed" else "val_bpc"
    base = results[0][key]
    for row in results:
        row[f"{key}_vs_{results[0]['variant']}"] = round(row[key] / base, 3)
    print(json.dumps({"bench": "recipe", "part": args.part, "baseline": results[0]["variant"],
                      "steps": args.steps if args.part == "speed" else None,
                      "tokens": args.tokens if args.part == "recipe" else None, "results": results}))


if __name__ == "__main__":
    main()
