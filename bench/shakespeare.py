"""The standard char-level benchmark: tiny-shakespeare, first 90% train, last 10% validation.

Trains the project's network (model/network.py, masked loss of model/losses.py) within a
wall-clock budget (or for ``--steps``), with a cosine learning-rate decay over it, then reports
validation loss in nats and bits per character. In the same run: ``xz -9`` on the validation text
after the train text.

Two ways to feed it (``--feed``):

- ``carry`` (the default, as char-rnn): the train text is cut into ``batch`` lanes; batch j holds
  window j of every lane, and the LSTM state is carried from one window to the next of its lane
  (model/carry.py; gradients stop at window boundaries), back to zero when the lanes start over.
  With ``--shift-lanes`` each pass first rotates the text by a random offset, so the windows and
  the rows sharing a batch differ from pass to pass, as random windows do (measured worse:
  docs/benchmarks.md#training-speed-and-recipe).
  Validation runs once through the whole validation text, window by window, carrying the state:
  every character is scored with all the text before it as context.
- ``random``: independent random windows of the train text, each from a zero state. Validation
  scores every character once with at least ``seq_len`` characters of context (windows of
  ``2 * seq_len`` moved by ``seq_len``; the first window scores all its positions).

The optimizer is AdamW: Adam with decoupled weight decay (``--weight-decay``, on every weight),
the regularizer that took the carried-state run under 1.44 (at this size and budget the network
over-fits without it: docs/benchmarks.md#training-speed-and-recipe). ``--ema`` scores an exponential moving
average of the trained weights instead of the last ones (Keras ``use_ema``; ``raw_val_nats`` scores
the last weights of the same run): it helped without decay, made no consistent difference with
it, so it is off by default. ``--val-at`` scores the weights during the run too (outside the
budget), to see where validation turns.

Published marks on this split: nanoGPT (10.7M-parameter transformer) 1.4697 nats; PPMd about
1.40; char-rnn LSTMs about 1.42. Targets: < 1.44 nats in 15 min on a 2-core CPU
(docs/benchmarks.md#training-speed-and-recipe has every setting measured); < 1.38 on one GPU within
10 minutes (unmeasured).

    python bench/shakespeare.py PATH [--minutes 15 | --steps N] [--feed carry|random] [--hidden 512 ...]

Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 0
PUBLISHED_NATS = {"nanogpt_10.7M_transformer": 1.4697, "ppmd": 1.40, "char_rnn_lstm": 1.42}
EXPECTED_CHARS = 1_115_394
WEIGHT_DECAY = 0.2  # the best 15-minute CPU setting measured (docs/benchmarks.md#training-speed-and-recipe)


def windows(ids: np.ndarray, seq_len: int, batch: int, rng: np.random.Generator):
    """Endless random (x, y, mask) training batches of ``seq_len`` from ``ids``."""
    n = len(ids) - seq_len - 1
    ar = np.arange(seq_len + 1)
    ones = np.ones((batch, seq_len), np.float32)
    while True:
        starts = rng.integers(0, n, size=batch)
        w = ids[starts[:, None] + ar]
        yield w[:, :-1], w[:, 1:], ones


def lanes(ids: np.ndarray, seq_len: int, batch: int, rng: np.random.Generator | None = None):
    """Endless ({tokens, carry, stream}, y, mask) batches: window j of each of ``batch`` contiguous
    lanes of ``ids``; carry 1 except in the first window of a pass over the lanes. With ``rng``, each
    pass first rotates the text by a random offset, so window boundaries and the rows that share a
    batch change from pass to pass (the lane that crosses the text's end reads its start next)."""
    lane_len = (len(ids) - 1) // batch
    n_windows = lane_len // seq_len
    if n_windows < 1:
        raise ValueError(f"{len(ids)} characters do not fill {batch} lanes of {seq_len}")
    base = np.arange(batch)[:, None] * lane_len + np.arange(seq_len + 1)[None, :]
    ones = np.ones((batch, seq_len), np.float32)
    while True:
        text = ids if rng is None else np.roll(ids, -int(rng.integers(0, len(ids))))
        for j in range(n_windows):
            w = text[base + j * seq_len]
            carry = np.full(batch, 0.0 if j == 0 else 1.0, np.float32)
            yield {"tokens": w[:, :-1], "carry": carry, "stream": np.ones(batch, np.float32)}, w[:, 1:], ones


def evaluate_carried(model, ids: np.ndarray, seq_len: int) -> float:
    """Mean nats per character over ``ids[1:]`` in one pass, the state carried across windows."""
    import tensorflow as tf

    from model.network import with_state

    stepper = with_state(model)
    units = [int(s.shape[-1]) for s in stepper.inputs[1:]]

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32)] * 2 +
                 [[tf.TensorSpec([1, u], tf.float32) for u in units]])
    def window(x, y, states):  # one graph: an eager Keras LSTM runs its time loop op by op
        logits, *final = stepper([x, *states], training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
        return tf.reduce_sum(nll), [tf.cast(f, tf.float32) for f in final]

    states = [tf.zeros((1, u)) for u in units]
    total = 0.0
    for start in range(0, len(ids) - 1, seq_len):
        y = ids[start + 1:start + seq_len + 1]
        x = ids[start:start + len(y)]
        nll, states = window(tf.constant(x[None], tf.int32), tf.constant(y[None], tf.int32), states)
        total += float(nll)
    return total / (len(ids) - 1)


def evaluate(model, ids: np.ndarray, seq_len: int, batch: int = 64) -> float:
    """Mean nats per character over ``ids[1:]`` given ``ids[0]`` onwards, >= seq_len context each."""
    span = 2 * seq_len
    rows, masks = [], []
    for s in range(0, len(ids) - 1, seq_len):
        lo = max(0, s - seq_len)
        w = ids[lo:min(s + seq_len + 1, len(ids))]
        x = np.zeros(span, np.int32)
        y = np.zeros(span, np.int32)
        m = np.zeros(span, np.float32)
        x[:len(w) - 1], y[:len(w) - 1] = w[:-1], w[1:]
        m[s - lo:len(w) - 1] = 1.0  # only targets from position s on are scored here
        rows.append((x, y))
        masks.append(m)
    x = np.stack([r[0] for r in rows])
    y = np.stack([r[1] for r in rows])
    m = np.stack(masks)
    assert m.sum() == len(ids) - 1, (m.sum(), len(ids))  # every character scored exactly once
    return float(model.evaluate(x, y, sample_weight=m, batch_size=batch, verbose=0, return_dict=True)["nats"])


def set_unroll(model, unroll: bool) -> None:
    """Unroll (or not) the time loop of every LSTM of ``model`` in graphs traced from now on."""
    from model.network import lstm_layers

    for layer in lstm_layers(model):
        layer.unroll = unroll


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path, help="tinyshakespeare.txt (1,115,394 characters)")
    ap.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget")
    ap.add_argument("--steps", type=int, default=0, help="train exactly this many steps instead (0: the budget)")
    ap.add_argument("--feed", choices=("carry", "random"), default="carry",
                    help="lanes with the state carried across windows (char-rnn), or random windows")
    ap.add_argument("--hidden", type=int, help="LSTM units (default: CPU 256, GPU 1024)")
    ap.add_argument("--layers", type=int, help="LSTM layers (default: CPU 2, GPU 3)")
    ap.add_argument("--embedding", type=int, default=64)
    ap.add_argument("--dropout", type=float, help="(default: CPU 0.1, GPU 0.35)")
    ap.add_argument("--batch", type=int, help="(default: CPU 32, GPU 128)")
    ap.add_argument("--seq-len", type=int, help="(default: CPU 128, GPU 256)")
    ap.add_argument("--lr", type=float, default=5e-3, help="peak; cosine-decayed to 5%% over the time budget")
    ap.add_argument("--shift-lanes", action=argparse.BooleanOptionalAction, default=False,
                    help="carry feed: rotate the text by a random offset at each pass over the lanes")
    ap.add_argument("--beta2", type=float, default=0.999, help="Adam's second-moment decay")
    ap.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY,
                    help="decoupled weight decay of every weight (AdamW; 0: plain Adam)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this momentum, e.g. 0.999 "
                         "(Keras use_ema; 0: off): val_nats scores the average, raw_val_nats the last weights")
    ap.add_argument("--unroll", action=argparse.BooleanOptionalAction, default=False,
                    help="train with the LSTM time loop unrolled over the fixed window (Keras unroll=True; "
                         "not cuDNN, so a CPU option); evaluation runs the loop as usual")
    ap.add_argument("--val-at", type=lambda v: [float(f) for f in v.split(",") if f], default=[],
                    help="also score the (last) weights at these fractions of the run, e.g. 0.5,0.75 "
                         "(time left out of the budget)")
    ap.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                    help="float16 compute (default: on a GPU)")
    return ap.parse_args(argv)


def build_optimizer(args: argparse.Namespace):
    """AdamW from the options: the learning rate is set per step by train_for_budget, gradients are
    clipped to a global norm of 5, and with ``--ema`` the optimizer keeps the averaged weights."""
    import keras

    opt = keras.optimizers.AdamW(learning_rate=args.lr, beta_2=args.beta2, weight_decay=args.weight_decay,
                                 global_clipnorm=5.0, use_ema=args.ema > 0, ema_momentum=args.ema or 0.99)
    return keras.optimizers.LossScaleOptimizer(opt) if args.mixed_precision else opt


def train_for_budget(model, opt, batches, args, validate=None) -> tuple[int, float, float, list]:
    """Train until the wall-clock budget is spent, the learning rate cosine-decayed over it:
    ``(steps, train seconds, last batch loss, [(fraction, step, val nats) at each --val-at])``.
    ``validate()`` scores the current weights; its time is left out of the budget."""
    budget = args.minutes * 60.0
    x, y, m = next(batches)  # warm-up (tracing, with the same arguments) outside the budget and the steps
    model.train_on_batch(x, y, sample_weight=m)
    steps, t0, last_loss = 0, time.perf_counter(), float("nan")
    inner = opt.inner_optimizer if args.mixed_precision else opt
    checkpoints, curve = sorted(args.val_at), []
    while True:
        elapsed = time.perf_counter() - t0
        if (steps >= args.steps) if args.steps else (elapsed >= budget):
            break
        frac = steps / args.steps if args.steps else elapsed / budget
        if validate and checkpoints and frac >= checkpoints[0]:
            paused = time.perf_counter()
            curve.append((checkpoints.pop(0), steps, validate()))
            print(f"step {steps} val {curve[-1][2]:.4f}", file=sys.stderr)
            t0 += time.perf_counter() - paused
        inner.learning_rate.assign(args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))))
        x, y, m = next(batches)
        last_loss = float(model.train_on_batch(x, y, sample_weight=m, return_dict=True)["loss"])
        steps += 1
        if steps % 200 == 0:
            print(f"step {steps} {elapsed:.0f}s loss {last_loss:.4f}", file=sys.stderr)
    return steps, time.perf_counter() - t0, last_loss, curve


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    # CPU defaults: the best 15-minute setting measured (docs/benchmarks.md#training-speed-and-recipe)
    for key, cpu_value, gpu_value in (("hidden", 256, 1024), ("layers", 2, 3), ("dropout", 0.1, 0.35),
                                      ("batch", 32, 128), ("seq_len", 128, 256), ("mixed_precision", False, True)):
        if getattr(args, key) is None:  # defaults by device; the GPU ones are untested here (no GPU)
            setattr(args, key, gpu_value if gpu else cpu_value)

    from bench.train import device_name
    from model.losses import MaskedNats, masked_loss
    from model.network import NetworkConfig, build_model
    from model.train import xz_bpc
    from pipeline.vocab import Vocab

    text = args.path.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    vocab = Vocab.from_counts(counts)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)

    keras.utils.set_random_seed(SEED)
    net = NetworkConfig(len(vocab), args.embedding, args.hidden, args.layers, args.dropout, args.mixed_precision)
    model = plain = build_model(net)
    if args.feed == "carry":
        from model.carry import CarriedStateModel

        model = CarriedStateModel(plain, lanes=args.batch)
    opt = build_optimizer(args)
    model.compile(optimizer=opt, loss=masked_loss(), weighted_metrics=[MaskedNats()])
    rng = np.random.default_rng(SEED)
    if args.feed == "carry":
        batches = lanes(train_ids, args.seq_len, args.batch, rng if args.shift_lanes else None)
    else:
        batches = windows(train_ids, args.seq_len, args.batch, rng)
    score = evaluate_carried if args.feed == "carry" else evaluate

    def validate() -> float:
        set_unroll(plain, False)  # evaluation windows have no fixed length
        nats = score(plain, val_ids, args.seq_len)
        set_unroll(plain, args.unroll)
        return nats

    set_unroll(plain, args.unroll)
    steps, train_seconds, last_loss, curve = train_for_budget(model, opt, batches, args, validate)
    set_unroll(plain, False)
    t1 = time.perf_counter()
    raw_val_nats = val_nats = score(plain, val_ids, args.seq_len)
    if args.ema:  # the averaged weights are the model this run keeps; the last ones are reported beside
        (opt.inner_optimizer if args.mixed_precision else opt).finalize_variable_values(plain.trainable_variables)
        val_nats = score(plain, val_ids, args.seq_len)
    eval_seconds = time.perf_counter() - t1
    base = xz_bpc([train_text], [val_text], vocab)
    out = {
        "bench": "shakespeare", "device": device_name(), "tensorflow": tf.__version__, "seed": SEED,
        "chars": len(text), "expected_chars": EXPECTED_CHARS, "train_chars": len(train_text),
        "val_chars": len(val_text),
        "config": {**net.to_dict(), "batch": args.batch, "seq_len": args.seq_len, "lr": args.lr,
                   "minutes": args.minutes, "steps": args.steps, "feed": args.feed,
                   "shift_lanes": args.shift_lanes, "unroll": args.unroll, "beta2": args.beta2,
                   "weight_decay": args.weight_decay, "ema": args.ema},
        "parameters": int(plain.count_params()), "steps": steps, "train_tokens": steps * args.batch * args.seq_len,
        "train_seconds": round(train_seconds, 1), "tokens_per_s": steps * args.batch * args.seq_len / train_seconds,
        "last_train_batch_nats": last_loss, "val_nats": val_nats, "val_bpc": val_nats / math.log(2),
        "raw_val_nats": raw_val_nats, "eval_seconds": round(eval_seconds, 1),
        "val_curve": [{"fraction": f, "step": n, "raw_val_nats": v} for f, n, v in curve],
        "xz9_val_bpc_given_train": base["xz9_val_bpc"], "xz9_val_nats_given_train": base["xz9_val_bpc"] * math.log(2),
        "published_nats": PUBLISHED_NATS, "cpu_target_nats_15min": 1.44, "gpu_target_nats_10min": 1.38,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
