"""Why carried-state training validated worse: one model per feed, each scored on val three ways.

Trains the default recipe (params.yaml ``train`` and ``batches``, ``--epochs`` overriding
``train.epochs``) twice on the project's ``data/split`` and ``data/vocab.json``: with
``batches.carry_state`` off (buckets only, every window from a zero state) and on (long documents'
windows in lanes, the LSTM state carried across them, and across the END from one document of a
lane into the next). Then scores each model on the val split:

- ``lanes``: the carried-state val batches (the lanes, the state carried across windows and
  across documents' ENDs): what carried-state training reports as its val loss;
- ``buckets``: the plain val batches (every window from zero): what training without carry reports;
- ``documents``: each document alone from a zero state, the state carried across its own windows
  (``model.evaluate.lstm_doc_nats``, the evaluate stage's rule with ``evaluate.carry_state``);
- ``chunks``: each document alone, every window from zero (the evaluate stage's chunk rule).

    python bench/carry_state.py [--epochs 1] [--feeds no_carry,carry] [--max-steps N]

Prints exactly one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEEDS = {"no_carry": False, "carry": True}


def keras_val_nats(model, batches: Path, carry: bool, lanes: int) -> float:
    """Mean val nats of ``model`` (the plain network) over the val batches of ``batches``; with
    ``carry`` the carried-state batches through a fresh state-carrying wrapper."""
    from model.carry import CarriedStateModel
    from model.data import make_dataset
    from model.losses import MaskedNats, masked_loss

    net = CarriedStateModel(model, lanes) if carry else model
    net.compile(loss=masked_loss(), weighted_metrics=[MaskedNats()])
    return float(net.evaluate(make_dataset(batches, "val", carry=carry), verbose=0, return_dict=True)["nats"])


def run_feed(name: str, args: argparse.Namespace) -> dict:
    """One feed in this process (called in a child): build both kinds of batches, train, score."""
    import numpy as np
    import yaml

    from model import train as T
    from model.data import dataset_stats, make_dataset
    from model.evaluate import lstm_doc_nats, read_texts
    from pipeline import batches as B
    from pipeline.split import SPLITS
    from pipeline.vocab import Vocab

    with open(ROOT / "params.yaml", encoding="utf-8") as fh:
        params = yaml.safe_load(fh)
    vocab = Vocab.load(args.vocab)
    work = Path(tempfile.mkdtemp(prefix=f"carry-{name}-"))
    splits = {s: args.split_dir / f"{s}.parquet" for s in SPLITS}
    for carry in (False, True):
        bp = B.check_params({**params["batches"], "carry_state": carry})
        B.run(splits, vocab, bp, work / f"batches_{carry}")
    carry = FEEDS[name]
    batches = work / f"batches_{carry}"
    stats = dataset_stats(batches, "train")
    cfg = T.load_config(params)
    cfg.update(epochs=args.epochs, max_steps_per_epoch=args.max_steps, checkpoint_every_steps=0,
               keep_checkpoints=False, max_minutes=0)
    cfg["evolution"] = {**cfg["evolution"], "primes": [], "temperatures": []}
    t0 = time.perf_counter()
    model, summary = T.fit(cfg, vocab=vocab, train_data=lambda s: make_dataset(batches, "train", seed=s, carry=carry),
                           val_data=lambda: make_dataset(batches, "val", carry=carry), model_dir=work / "model",
                           checkpoint_dir=work / "ckpt", csv_path=work / "train.csv", evolution_path=work / "evo.jsonl",
                           verbose=0, carry_lanes=stats["batch_size"] if carry else 0)
    seconds = time.perf_counter() - t0
    val = [vocab.encode(t) for t in read_texts(args.split_dir / "val.parquet")]
    n_targets = sum(len(d) + 1 for d in val)
    bs, max_len = int(params["evaluate"]["batch_size"]), int(params["batches"]["max_len"])
    scores = {"lanes": keras_val_nats(model, work / "batches_True", True, stats["batch_size"]),
              "buckets": keras_val_nats(model, work / "batches_False", False, stats["batch_size"])}
    for key, carried in (("documents", True), ("chunks", False)):
        nats = lstm_doc_nats(model, val, batch_size=bs, max_len=max_len, carry_state=carried)
        scores[key] = float(np.sum(nats)) / n_targets
    shutil.rmtree(work, ignore_errors=True)
    return {"feed": name, "epochs": args.epochs, "steps": summary["steps"], "seconds": round(seconds, 1),
            "train_tokens_per_s": round(summary["tokens_per_s"], 1), "train_nats": round(summary["train_nats"], 4),
            "reported_val_nats": round(summary["val_nats"], 4),
            "val_nats": {k: round(v, 4) for k, v in scores.items()},
            "val_bpc": {k: round(v / math.log(2), 4) for k, v in scores.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--feeds", default="no_carry,carry")
    ap.add_argument("--max-steps", type=int, default=0, help="batches per epoch (0: the whole split; for a quick try)")
    ap.add_argument("--split-dir", type=Path, default=ROOT / "data/split")
    ap.add_argument("--vocab", type=Path, default=ROOT / "data/vocab.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_feed(args.child, args)))
        return
    names = args.feeds.split(",")
    unknown = [n for n in names if n not in FEEDS]
    if unknown:
        ap.error(f"unknown feed(s) {unknown}; known: {', '.join(FEEDS)}")
    results = []
    for name in names:  # one process per feed: op determinism and seeds are process-wide
        proc = subprocess.run([sys.executable, __file__, "--child", name, *sys.argv[1:]], capture_output=True,
                              text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"feed {name} failed (exit {proc.returncode})")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: {results[-1]}", file=sys.stderr)
    print(json.dumps({"bench": "carry_state", "epochs": args.epochs, "results": results}))


if __name__ == "__main__":
    main()
