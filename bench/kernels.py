"""What ``kernels.portable`` costs: training tokens/s of the default network with the portable kernels
(model/kernels.py) beside this CPU's own, and the weights hash of each, in the same run.

Settings: ``portable_AVX2`` and ``portable_AVX`` (what the stages pin for ``kernels.isa``; the levels
this CPU has), ``native`` (the libraries' own choices for this CPU; TensorFlow's oneDNN rewrites as
TensorFlow decides) and ``native_onednn`` (the same with the rewrites on). Each run trains ``--steps``
steps of params.yaml's train model on ``data/batches/train`` (the seed's order) in a fresh process,
since the kernels are chosen when the libraries load; settings are interleaved and repeated
``--repeats`` times (the machines are shared: read the ratios). Tokens/s counts real targets after
``--warmup`` steps; ``vs_native`` is a ratio of medians. A setting gives one hash in every run; two
settings with different hashes sum in another order.

    python bench/kernels.py [--steps 40] [--warmup 8] [--repeats 3] [--batches data/batches]
                            [--settings portable_AVX2,native]

``--settings`` picks some of them (``native``, the baseline of every ratio, is always run).

Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def settings(threads: int) -> dict[str, dict[str, str]]:
    """Each setting's variables, on top of an environment cleared of every variable they name: the
    portable kernels of every level this CPU has, then the CPU's own."""
    from model.kernels import LEVELS, cpu_flags, environment

    flags = cpu_flags()
    have = [isa for isa, level in LEVELS.items() if flags is None or all(f in flags for f in level.flags)]
    portable = {f"portable_{isa}": environment({"portable": True, "isa": isa, "threads": threads}, {}) for isa in have}
    return {**portable, "native": {}, "native_onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"}}


def child(batches: Path, params: Path, steps: int, warmup: int) -> dict:
    """One timed run in this process: tokens/s after ``warmup`` steps and the hash of every weight."""
    import keras
    import numpy as np
    import tensorflow as tf

    from model.data import make_dataset
    from model.train import load_config
    from model.training import build_and_compile
    from pipeline.common import load_params
    from pipeline.vocab import Vocab

    cfg = load_config(load_params(params))
    vocab = Vocab.load(batches.parent / "vocab.json")
    keras.utils.set_random_seed(int(cfg["seed"]))
    tf.config.experimental.enable_op_determinism()
    model, _ = build_and_compile(cfg, len(vocab), steps)
    ds = make_dataset(batches, "train", seed=int(cfg["seed"])).take(steps)
    tokens = [float(np.asarray(mask).sum()) for _, _, mask in ds]
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[Clock()])
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.asarray(w.numpy()).tobytes())
    return {"tokens_per_s": sum(tokens[warmup:]) / (ends[-1] - ends[warmup - 1]), "hash": digest.hexdigest()[:16]}


def run(name: str, env: dict[str, str], args: argparse.Namespace, cleared: set[str]) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in cleared}
    base.update(PYTHONPATH=os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")]), TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batches", str(args.batches), "--params", str(args.params)]
    proc = subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=Path, default=ROOT / "data" / "batches")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--settings", default="", help="comma-separated settings to run (default: all; native always)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.batches, args.params, args.steps, args.warmup)))
        return
    from model.kernels import load_config
    from pipeline.common import load_params

    threads = int(load_config(load_params(args.params))["threads"])
    todo = settings(threads)
    if args.settings:
        wanted = {name.strip() for name in args.settings.split(",") if name.strip()} | {"native"}
        unknown = wanted - set(todo)
        if unknown:
            ap.error(f"--settings: {', '.join(sorted(unknown))} not among this CPU's settings {', '.join(todo)}")
        todo = {name: env for name, env in todo.items() if name in wanted}
    cleared = {k for env in todo.values() for k in env} | {"NPY_DISABLE_CPU_FEATURES"}
    runs: dict[str, list[dict]] = {name: [] for name in todo}
    for _ in range(args.repeats):
        for name, env in todo.items():
            runs[name].append(run(name, env, args, cleared))
    native = statistics.median(r["tokens_per_s"] for r in runs["native"])
    out = {"benchmark": "kernels", "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "portable_threads": threads,
           "settings": {}}
    for name, rs in runs.items():
        tps = [r["tokens_per_s"] for r in rs]
        out["settings"][name] = {"tokens_per_s_median": round(statistics.median(tps), 1),
                                 "tokens_per_s": [round(t, 1) for t in tps],
                                 "vs_native": round(statistics.median(tps) / native, 3),
                                 "hashes": sorted({r["hash"] for r in rs}), "env": todo[name]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
