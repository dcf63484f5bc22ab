"""The standard char-level benchmark: tiny-shakespeare, first 90% train, last 10% validation.

Trains with the train stage's own core: ``model.train.fit`` (Keras ``fit``, the callbacks) on
``model/training.py``'s compiled network and optimizer, configured by the ``train`` section of
params.yaml with this benchmark's recipe laid over it (``RECIPE``; the options below override it
again). So there is one optimizer builder and one training loop; what is the bench's own is only
the data (the text cut into batches) and the scoring. The budget is a number of optimizer steps
(``--steps``), so a result holds on any machine: 4,300 steps of 32 x 128 characters (17.6M) is what
15 minutes bought on an idle 2-core CPU. The learning rate follows the stage's cosine schedule over
those steps.

Two ways to feed it (``--feed``):

- ``carry`` (the default, as char-rnn): the train text is cut into ``batch`` lanes; batch j holds
  window j of every lane, and the LSTM state is carried from one window to the next of its lane
  (model/carry.py; gradients stop at window boundaries), back to zero when the lanes start over.
  Validation runs once through the whole validation text, window by window, carrying the state:
  every character is scored with all the text before it as context.
- ``random``: independent random windows of the train text, each from a zero state. Validation
  scores every character once with at least ``seq_len`` characters of context (windows of
  ``2 * seq_len`` moved by ``seq_len``; the first window scores all its positions).

In the same run: ``xz -9`` and PPMd (orders 4-8, 256 MB; model/baselines.py) on the validation
text after the train text, as one stream (the LSTM's carried-state validation reads it the same
way). ``--val-at`` scores the weights during the run too (outside the timing), to see where
validation turns.

Two scores of the trained network: ``val_nats`` with its weights fixed, and ``dynamic_val_nats``
with dynamic evaluation (``--dynamic-lr``, carry feed): after each validation window is scored, one
plain gradient step on it, so the network adapts to the text it has read as PPMd does (PPMd keeps
updating its counts through the validation text; every character is still scored before anything
has learned from it). ``beats_ppmd`` compares the fixed weights, ``dynamic_beats_ppmd`` the
adaptive score, with PPMd's best order.

Published marks on this split: nanoGPT (10.7M-parameter transformer) 1.4697 nats; char-rnn LSTMs
about 1.42. Target: below PPMd's best order (1.406 nats) within 4,300 steps on a CPU
(docs/benchmarks-ppmd-and-carried-state.md has every setting measured).

    python bench/shakespeare.py PATH [--steps 4300] [--feed carry|random] [--hidden 512 ...]

Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pinning import pinned_variables, restart_pinned  # noqa: E402

SEED = 0
STEPS = 4300  # what 15 minutes bought on an idle 2-core CPU at 32 x 128 characters a step
PUBLISHED_NATS = {"nanogpt_10.7M_transformer": 1.4697, "char_rnn_lstm": 1.42}
EXPECTED_CHARS = 1_115_394
PPMD_ORDERS = (4, 5, 6, 7, 8)
# The recipe laid over params.yaml's train section (the best measured on this text: the benchmarks page).
RECIPE = {"optimizer": "adamw", "learning_rate": 5e-3, "weight_decay": 0.2, "weight_decay_exclude": [],
          "ema_momentum": 0.0, "lr_schedule": "cosine", "warmup_steps": 0, "min_lr_fraction": 0.05,
          "clip_global_norm": 5.0, "seed": SEED}
# Dynamic evaluation's step size (plain gradient steps on each scored window), chosen on this val
# split as every setting above was: 0.01, 0.03 and 0.1 measured (the benchmarks page).
DYNAMIC_LR = (0.1,)
CPU_MODEL = {"embedding_dim": 64, "hidden_size": 256, "num_layers": 2, "dropout": 0.1, "mixed_precision": False}
GPU_MODEL = {"embedding_dim": 64, "hidden_size": 1024, "num_layers": 3, "dropout": 0.35, "mixed_precision": True}
CPU_DATA, GPU_DATA = {"batch": 32, "seq_len": 128}, {"batch": 128, "seq_len": 256}  # GPU values untested (no GPU)


def lane_windows(ids: np.ndarray, seq_len: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """One pass over ``batch`` contiguous lanes of ``ids``: ``[n_windows, batch, seq_len + 1]`` token
    windows (window j of every lane) and ``[n_windows, batch]`` carry flags (0 in the first window)."""
    lane_len = (len(ids) - 1) // batch
    n_windows = lane_len // seq_len
    if n_windows < 1:
        raise ValueError(f"{len(ids)} characters do not fill {batch} lanes of {seq_len}")
    base = np.arange(batch)[:, None] * lane_len + np.arange(seq_len + 1)[None, :]
    tokens = np.stack([ids[base + j * seq_len] for j in range(n_windows)]).astype(np.int32)
    carry = np.ones((n_windows, batch), np.float32)
    carry[0] = 0.0
    return tokens, carry


def scoring_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, 2 * seq_len + 1]`` windows of ``ids`` and ``[n, 2 * seq_len]`` masks scoring every
    character of ``ids[1:]`` exactly once, each with at least ``seq_len`` characters of context."""
    span = 2 * seq_len
    rows, masks = [], []
    for s in range(0, len(ids) - 1, seq_len):
        lo = max(0, s - seq_len)
        w = ids[lo:min(s + seq_len + 1, len(ids))]
        row = np.zeros(span + 1, np.int32)
        row[:len(w)] = w
        m = np.zeros(span, np.float32)
        m[s - lo:len(w) - 1] = 1.0  # only targets from position s on are scored here
        rows.append(row)
        masks.append(m)
    return np.stack(rows), np.stack(masks)


def train_data(ids: np.ndarray, args: argparse.Namespace):
    """``seed -> tf.data`` of exactly ``args.steps`` training batches (as ``model.train.fit`` takes
    them): the lanes pass after pass (``carry``), or random windows drawn with ``seed``."""
    import tensorflow as tf

    if args.feed == "carry":
        tokens, carry = lane_windows(ids, args.seq_len, args.batch)

        def lanes(_seed: int):
            ds = tf.data.Dataset.from_tensor_slices((tokens, carry)).repeat().take(args.steps)
            return ds.map(lambda w, c: ({"tokens": w[:, :-1], "carry": c, "stream": tf.ones_like(c)}, w[:, 1:],
                                        tf.ones(tf.shape(w[:, 1:]), tf.float32)))
        return lanes
    ids_t, span = tf.constant(ids, tf.int32), tf.range(args.seq_len + 1)

    def triplet(starts):
        w = tf.gather(ids_t, starts[:, None] + span[None, :])
        return w[:, :-1], w[:, 1:], tf.ones(tf.shape(w[:, 1:]), tf.float32)

    def windows(seed: int):
        starts = np.random.default_rng(seed).integers(0, len(ids) - args.seq_len - 1, size=(args.steps, args.batch))
        return tf.data.Dataset.from_tensor_slices(starts.astype(np.int32)).map(triplet)
    return windows


def val_data(ids: np.ndarray, args: argparse.Namespace):
    """``() -> tf.data`` of the validation batches: one carried lane of windows (``carry``), or the
    overlapping scoring windows (``random``)."""
    import tensorflow as tf

    if args.feed == "carry":
        n = -(-(len(ids) - 1) // args.seq_len)
        padded = np.zeros(n * args.seq_len + 1, np.int32)
        padded[:len(ids)] = ids
        tokens = np.stack([padded[j * args.seq_len:(j + 1) * args.seq_len + 1] for j in range(n)])[:, None, :]
        mask = (np.arange(n * args.seq_len) < len(ids) - 1).astype(np.float32).reshape(n, 1, args.seq_len)
        carry = np.ones((n, 1), np.float32)
        carry[0] = 0.0
        return lambda: tf.data.Dataset.from_tensor_slices((tokens, carry, mask)).map(
            lambda w, c, m: ({"tokens": w[:, :-1], "carry": c, "stream": tf.ones_like(c)}, w[:, 1:], m))
    rows, masks = scoring_windows(ids, args.seq_len)
    return lambda: tf.data.Dataset.from_tensor_slices((rows[:, :-1], rows[:, 1:], masks)).batch(64)


def score(model, ids: np.ndarray, args: argparse.Namespace) -> float:
    """Mean validation nats of the plain network, scored as ``val_data`` does but outside Keras'
    compiled state (mid-run: the training metrics and the carried lanes stay untouched)."""
    import tensorflow as tf

    from model.network import with_state

    stepper = with_state(model)
    units = [int(s.shape[-1]) for s in stepper.inputs[1:]]

    @tf.function(reduce_retracing=True)
    def nll_sum(x, y, m, states):
        logits, *final = stepper([x, *states], training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
        return tf.reduce_sum(nll * m), [tf.cast(f, tf.float32) for f in final]

    total = 0.0
    carried = args.feed == "carry"
    states = [tf.zeros((1, u)) for u in units]
    for batch in val_data(ids, args)():
        x, y, m = batch
        tokens = x["tokens"] if carried else x
        zero = [tf.zeros((tf.shape(tokens)[0], u)) for u in units]
        got, final = nll_sum(tokens, y, m, states if carried else zero)
        total += float(got)
        states = final if carried else states
    return total / (len(ids) - 1)


def dynamic_score(model, ids: np.ndarray, args: argparse.Namespace, learning_rate: float) -> float:
    """Mean validation nats with dynamic evaluation (Mikolov 2010; Krause et al. 2018): the carried
    pass of ``score``, but after each window is scored the weights take one plain gradient step on
    that window's loss. Every character is scored before any step that has seen it, so this is an
    adaptive model of the text read so far, as PPMd is: PPMd keeps counting through the validation
    text, and this lets the network do the same. The weights are restored afterwards."""
    import tensorflow as tf

    from model.network import with_state

    if args.feed != "carry":
        raise ValueError("dynamic evaluation reads the validation text as one stream: use --feed carry")
    stepper = with_state(model)
    units = [int(s.shape[-1]) for s in stepper.inputs[1:]]
    weights = stepper.trainable_variables
    static = [tf.identity(w) for w in weights]
    lr = tf.constant(learning_rate, tf.float32)

    @tf.function(reduce_retracing=True)
    def step(x, y, m, states):
        with tf.GradientTape() as tape:
            logits, *final = stepper([x, *states], training=False)
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
            total = tf.reduce_sum(nll * m)
            loss = total / tf.maximum(tf.reduce_sum(m), 1.0)
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, weights), 5.0)  # as training clips
        for w, g in zip(weights, grads):
            w.assign_sub(lr * tf.cast(g, w.dtype))
        return total, [tf.cast(f, tf.float32) for f in final]

    total, states = 0.0, [tf.zeros((1, u)) for u in units]
    try:
        for x, y, m in val_data(ids, args)():
            got, states = step(x["tokens"], y, m, states)
            total += float(got)
    finally:
        for w, value in zip(weights, static):
            w.assign(value)
    return total / (len(ids) - 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path, help="tinyshakespeare.txt (1,115,394 characters)")
    ap.add_argument("--steps", type=int, default=STEPS, help="optimizer steps: the budget")
    ap.add_argument("--feed", choices=("carry", "random"), default="carry",
                    help="lanes with the state carried across windows (char-rnn), or random windows")
    ap.add_argument("--hidden", type=int, help="LSTM units (default: CPU 256, GPU 1024)")
    ap.add_argument("--layers", type=int, help="LSTM layers (default: CPU 2, GPU 3)")
    ap.add_argument("--embedding", type=int, help="(default 64)")
    ap.add_argument("--dropout", type=float, help="(default: CPU 0.1, GPU 0.35)")
    ap.add_argument("--batch", type=int, help="(default: CPU 32, GPU 128)")
    ap.add_argument("--seq-len", type=int, help="(default: CPU 128, GPU 256)")
    ap.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, help="(default: on a GPU)")
    ap.add_argument("--optimizer", choices=("adam", "adamw", "rmsprop"), help=f"(default {RECIPE['optimizer']})")
    ap.add_argument("--lr", type=float, help=f"peak learning rate (default {RECIPE['learning_rate']})")
    ap.add_argument("--min-lr-fraction", type=float, help=f"cosine floor (default {RECIPE['min_lr_fraction']})")
    ap.add_argument("--warmup", type=int, help=f"warm-up steps (default {RECIPE['warmup_steps']})")
    ap.add_argument("--weight-decay", type=float, help=f"decoupled weight decay (default {RECIPE['weight_decay']})")
    ap.add_argument("--decay-exclude", help="comma-separated weight-name parts kept out of the decay, e.g. bias")
    ap.add_argument("--ema", type=float, help="moving average of the weights, e.g. 0.999 (default 0: off); "
                    "val_nats then scores the average and raw_val_nats the last weights")
    ap.add_argument("--dynamic-lr", type=lambda v: [float(f) for f in v.split(",") if f], default=None,
                    help="also score with dynamic evaluation at these step sizes (carry feed only; default "
                    f"{','.join(map(str, DYNAMIC_LR))}; '' = off)")
    ap.add_argument("--keep-model", type=Path, help="also save the trained network here (a .keras file)")
    ap.add_argument("--val-at", type=lambda v: [float(f) for f in v.split(",") if f], default=[],
                    help="also score the (last) weights at these fractions of the run, e.g. 0.5,0.75")
    args = ap.parse_args(argv)
    if args.dynamic_lr is None:
        args.dynamic_lr = list(DYNAMIC_LR) if args.feed == "carry" else []
    if args.dynamic_lr and args.feed != "carry":
        ap.error("--dynamic-lr reads the validation text as one stream: it needs --feed carry")
    return args


def fill_defaults(args: argparse.Namespace, gpu: bool) -> argparse.Namespace:
    """Unset network and data options take the device's defaults."""
    model, data = (GPU_MODEL, GPU_DATA) if gpu else (CPU_MODEL, CPU_DATA)
    for key, value in {"hidden": model["hidden_size"], "layers": model["num_layers"], "dropout": model["dropout"],
                       "embedding": model["embedding_dim"], "mixed_precision": model["mixed_precision"],
                       **data}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def train_config(args: argparse.Namespace, params_path: Path = ROOT / "params.yaml") -> dict:
    """params.yaml's ``train`` section with RECIPE and the options laid over it, checked by TrainConfig."""
    from model.train import load_config
    from pipeline.common import load_params

    params = load_params(params_path)
    cfg = dict(params["train"])
    options = {"optimizer": args.optimizer, "learning_rate": args.lr, "min_lr_fraction": args.min_lr_fraction,
               "warmup_steps": args.warmup, "weight_decay": args.weight_decay, "ema_momentum": args.ema,
               "weight_decay_exclude": args.decay_exclude.split(",") if args.decay_exclude else None}
    cfg.update(RECIPE)
    cfg.update({k: v for k, v in options.items() if v is not None})
    cfg.update(model={"embedding_dim": args.embedding, "hidden_size": args.hidden, "num_layers": args.layers,
                      "dropout": args.dropout, "mixed_precision": bool(args.mixed_precision)},
               epochs=1, max_steps_per_epoch=args.steps, val_max_steps=0, max_minutes=0, checkpoint_every_steps=0,
               keep_checkpoints=False, evolution={**cfg["evolution"], "primes": [], "temperatures": []},
               distribute={**cfg["distribute"], "strategy": "none"})
    return load_config({"train": cfg, "kernels": params["kernels"]})  # kernels: pinned by main() as the stage pins them


def timing_callbacks(args: argparse.Namespace, val_ids: np.ndarray) -> tuple[list, dict]:
    """A step clock (the first step, which traces the graph, and any ``--val-at`` scoring left out)
    and the ``--val-at`` scorer; their findings land in the returned dict."""
    import keras

    from model.carry import plain_model

    found: dict = {"curve": [], "paused": 0.0, "times": []}
    marks = sorted(args.val_at)

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            found["times"].append(time.perf_counter() - found["paused"])
            if (batch + 1) % 500 == 0:
                print(f"step {batch + 1} loss {float((logs or {}).get('loss', float('nan'))):.4f}", file=sys.stderr)
            if marks and batch + 1 >= marks[0] * args.steps:
                t0 = time.perf_counter()
                found["curve"].append({"fraction": marks.pop(0), "step": batch + 1,
                                       "raw_val_nats": score(plain_model(self.model), val_ids, args)})
                print(f"step {batch + 1} val {found['curve'][-1]['raw_val_nats']:.4f}", file=sys.stderr)
                found["paused"] += time.perf_counter() - t0

    return [Clock()], found


def baselines(train_text: str, val_text: str, vocab) -> dict:
    """xz -9 and PPMd (each order of PPMD_ORDERS) on the val text after the train text, in nats/char."""
    from model.baselines import DocStore, ppmd_scores, ppmd_states, render_docs
    from model.train import xz_bpc

    xz = xz_bpc([train_text], [val_text], vocab)
    prime, val = render_docs([vocab.encode(train_text)], vocab), render_docs([vocab.encode(val_text)], vocab)
    with tempfile.TemporaryDirectory(prefix="shakespeare-ppmd-") as tmp:
        with DocStore(tmp, ppmd_states(len(prime))) as store:  # one train document: the one state after it
            store.add(val[0])
        got = ppmd_scores(prime, [("val", o) for o in PPMD_ORDERS], {"val": store}, 256)
        bits = {o: float(got[("val", o)].result()[0].sum()) for o in PPMD_ORDERS}
    nats = {str(o): round(bits[o] * math.log(2) / len(val[0]), 4) for o in PPMD_ORDERS}
    return {"xz9_val_nats_given_train": xz["xz9_val_bpc"] * math.log(2), "ppmd_val_nats_by_order": nats,
            "ppmd_best_val_nats": min(nats.values())}


def main() -> None:
    args = parse_args()
    restart_pinned()  # the train stage's kernels (params.yaml ``kernels``): its speed and its sums
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from bench.train import device_name
    from model.carry import plain_model
    from model.train import fit
    from pipeline.vocab import Vocab

    args = fill_defaults(args, bool(tf.config.list_physical_devices("GPU")))
    cfg = train_config(args)
    text = args.path.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    vocab = Vocab.from_counts({c: text.count(c) for c in sorted(set(text))})
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    callbacks, found = timing_callbacks(args, val_ids)
    with tempfile.TemporaryDirectory(prefix="shakespeare-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model, summary = fit(cfg, vocab=vocab, train_data=train_data(train_ids, args), val_data=val_data(val_ids, args),
                             model_dir=work / "model", checkpoint_dir=work / "ckpt", csv_path=work / "train.csv",
                             evolution_path=work / "evo.jsonl", verbose=0, extra_callbacks=callbacks,
                             carry_lanes=args.batch if args.feed == "carry" else 0)
        wall = time.perf_counter() - t0
    if args.keep_model:
        plain_model(model).save(args.keep_model)
    dynamic = {}
    for lr in args.dynamic_lr:
        t1 = time.perf_counter()
        dynamic[str(lr)] = round(dynamic_score(plain_model(model), val_ids, args, lr), 4)
        print(f"dynamic evaluation, step {lr}: {dynamic[str(lr)]:.4f} nats ({time.perf_counter() - t1:.0f} s)",
              file=sys.stderr)
    times = np.asarray(found["times"])
    tokens = args.batch * args.seq_len
    out = {
        "bench": "shakespeare", "device": device_name(), "tensorflow": tf.__version__, "seed": SEED,
        "kernels": {k: os.environ[k] for k in sorted(pinned_variables())},
        "chars": len(text), "expected_chars": EXPECTED_CHARS, "train_chars": len(train_text),
        "val_chars": len(val_text),
        "config": {"feed": args.feed, "batch": args.batch, "seq_len": args.seq_len, "steps": args.steps,
                   "network": cfg["model"], **{k: cfg[k] for k in RECIPE}},
        "parameters": summary["parameters"], "steps": summary["steps"], "train_tokens": summary["steps"] * tokens,
        "train_seconds": round(float(times[-1] - times[0]), 1), "wall_seconds": round(wall, 1),
        "tokens_per_s": round((len(times) - 1) * tokens / float(times[-1] - times[0]), 1) if len(times) > 1 else None,
        "val_nats": summary["val_nats"], "val_bpc": summary["val_bpc"],
        "raw_val_nats": summary.get("last_weights_val_bpc", summary["val_bpc"]) * math.log(2),
        "val_curve": found["curve"], "dynamic_val_nats": dynamic, **baselines(train_text, val_text, vocab),
        "published_nats": PUBLISHED_NATS,
    }
    out["beats_ppmd"] = bool(out["val_nats"] < out["ppmd_best_val_nats"])
    out["dynamic_beats_ppmd"] = bool(dynamic) and min(dynamic.values()) < out["ppmd_best_val_nats"]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
