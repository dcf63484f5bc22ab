"""Training throughput of the char LSTM beside a naive baseline, in the same run.

Ours: int token ids -> Embedding -> LSTMs, length-bucketed END-padded batches (the batches stage),
masked loss, no Keras mask (cuDNN-eligible on a GPU). Naive baseline (as common tutorials): the
same LSTMs fed one-hot float inputs through a ``Masking`` layer, every batch padded to the longest
sequence (``max_len``). Tokens/s counts real (unmasked) targets only.

Configs: ``reference`` is char-rnn's (2 x 512, batch 100, sequence 100: full-length batches, so
only one-hot vs embedding differs); ``default`` is params.yaml's train model with the batch shapes
of data/batches/train when present (else seeded synthetic batches: a random bucket of
16..128, lengths uniform inside it).
char-rnn reported 0.46 s per 100 x 100 batch on a TITAN Z GPU.

    python bench/train.py [--steps 6] [--warmup 2] [--batches data/batches] [--configs reference,default]
                          [--strategy mirrored [--cpu-devices 2]]

``--strategy mirrored`` adds, per config, the distributed step of model/distribute.py (every local
GPU, else ``--cpu-devices`` logical CPU devices) on the same global batches, timed interleaved with
the one-device Keras step: ``mirrored.vs_one_device`` is the tokens/s ratio.

Prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 0
CHAR_RNN_TITAN_Z_S_PER_BATCH = 0.46
CONFIGS = {
    "reference": {"hidden_size": 512, "num_layers": 2, "embedding_dim": 64, "batch_size": 100, "seq_len": 100,
                  "vocab_size": 65, "lengths": "full"},
    "default": {"from_params": True, "batch_size": 64, "seq_len": 128, "vocab_size": 100, "lengths": "buckets"},
}


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def synthetic_batches(rng, n: int, batch: int, seq_len: int, vocab: int, lengths: str):
    """``n`` (x, y, mask) batches: full length, or a long-tailed document length mix bucketed."""
    buckets = [16, 32, 48, 64, 96, seq_len]
    out = []
    for _ in range(n):
        if lengths == "full":
            real = np.full(batch, seq_len)
            t = seq_len
        else:
            i = int(rng.integers(len(buckets)))  # a bucket, then lengths that fall into it
            t = buckets[i]
            real = rng.integers((buckets[i - 1] if i else 0) + 1, t + 1, size=batch)
        x = rng.integers(2, vocab, size=(batch, t)).astype(np.int32)
        mask = (np.arange(t)[None, :] < real[:, None]).astype(np.float32)
        x = np.where(mask > 0, x, 0).astype(np.int32)
        y = np.roll(x, -1, axis=1)
        out.append((x, y, mask))
    return out


def real_batches(batches_dir: Path, n: int):
    from model.data import make_dataset

    ds = make_dataset(batches_dir, "train", seed=SEED).take(n)
    return [tuple(np.asarray(t) for t in b) for b in ds]


def pad_to_max(batch, max_len: int):
    x, y, m = batch
    pad = max_len - x.shape[1]
    return tuple(np.pad(a, ((0, 0), (0, pad))) for a in (x, y, m))


def naive_model(cfg: dict):
    """One-hot float inputs, a Masking layer, the same LSTMs and logits (the tutorial recipe)."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(None, cfg["vocab_size"]), dtype="float32")
    x = layers.Masking(mask_value=0.0)(inp)
    for i in range(cfg["num_layers"]):
        x = layers.LSTM(cfg["hidden_size"], return_sequences=True, name=f"lstm_{i}")(x)
    return keras.Model(inp, layers.Dense(cfg["vocab_size"], name="logits")(x))


def one_hot_feed(vocab: int):
    def feed(b):
        x, y, m = b
        return np.eye(vocab, dtype=np.float32)[x] * (m[..., None] > 0), y, m  # padding = all-zero rows
    return feed


def time_interleaved(runs: dict, warmup: int) -> dict:
    """``runs``: name -> (model, batches, feed). Every model first trains once on each batch shape
    (tracing is not training time), then the timed batches go round-robin across the models, so
    load changes on a shared machine hit all of them alike. Tokens/s counts real targets only."""
    fed = {name: [feed(b) for b in batches] for name, (_, batches, feed) in runs.items()}
    for name, (model, _, _) in runs.items():
        shapes = {b[0].shape: b for b in fed[name][warmup:]}
        for x, y, m in fed[name][:warmup] + list(shapes.values()):
            model.train_on_batch(x, y, sample_weight=m)
    secs = dict.fromkeys(runs, 0.0)
    n = len(next(iter(fed.values())))
    for i in range(warmup, n):
        for name, (model, _, _) in runs.items():
            x, y, m = fed[name][i]
            t0 = time.perf_counter()
            model.train_on_batch(x, y, sample_weight=m)
            secs[name] += time.perf_counter() - t0
    out = {}
    for name in runs:
        timed = fed[name][warmup:]
        real = float(sum(b[2].sum() for b in timed))
        out[name] = {"s_per_batch": secs[name] / len(timed), "tokens_per_s": real / secs[name],
                     "padding_efficiency": real / float(sum(b[2].size for b in timed)), "batches": len(timed)}
    return out


def time_mirrored(strategy, cfg: dict, batches: list, warmup: int, one_device) -> dict:
    """The same batches through model/distribute.py's step on ``strategy`` and through the
    one-device Keras model ``one_device``, alternating batch by batch; tokens/s of real targets."""
    import keras

    from model.distribute import Steps
    from model.losses import masked_loss
    from model.network import NetworkConfig, build_model

    with strategy.scope():
        keras.utils.set_random_seed(SEED)
        model = build_model(NetworkConfig(cfg["vocab_size"], cfg["embedding_dim"], cfg["hidden_size"],
                                          cfg["num_layers"]))
        model.compile(optimizer=keras.optimizers.Adam(2e-3, global_clipnorm=5.0), loss=masked_loss())
        model.optimizer.build(model.trainable_variables)
    run = Steps(strategy, model)
    for b in batches[:warmup] + list({b[0].shape: b for b in batches[warmup:]}.values()):
        run.train(b)
    secs = {"mirrored": 0.0, "one_device": 0.0}
    for b in batches[warmup:]:
        t0 = time.perf_counter()
        run.train(b)
        secs["mirrored"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        one_device.train_on_batch(*b[:2], sample_weight=b[2])
        secs["one_device"] += time.perf_counter() - t0
    timed = batches[warmup:]
    real = float(sum(b[2].sum() for b in timed))
    return {"replicas": run.replicas, "devices": list(strategy.extended.worker_devices),
            "s_per_batch": secs["mirrored"] / len(timed), "tokens_per_s": real / secs["mirrored"],
            "one_device_tokens_per_s": real / secs["one_device"],
            "vs_one_device": secs["one_device"] / secs["mirrored"]}


def run_config(name: str, cfg: dict, steps: int, warmup: int, batches_dir: Path, strategy=None) -> dict:
    import keras

    from model.losses import masked_loss
    from model.network import NetworkConfig, build_model
    from model.train import load_config

    cfg = dict(cfg)
    data = "synthetic"
    if cfg.pop("from_params", False):
        cfg.update({k: v for k, v in load_config()["model"].items()
                    if k in ("hidden_size", "num_layers", "embedding_dim")})
    rng = np.random.default_rng(SEED)
    n = steps + warmup
    batches = None
    if cfg["lengths"] == "buckets" and (batches_dir / "train").is_dir():
        batches = real_batches(batches_dir, n)
        if len(batches) == n:
            data = str(batches_dir / "train")
            from model.data import dataset_stats

            cfg["vocab_size"] = int(dataset_stats(batches_dir, "train")["vocab_size"])
            cfg["batch_size"] = int(max(b[0].shape[0] for b in batches))
            cfg["seq_len"] = int(max(b[0].shape[1] for b in batches))
        else:
            batches = None
    if batches is None:
        batches = synthetic_batches(rng, n, cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"], cfg["lengths"])

    def ours_model():
        keras.utils.set_random_seed(SEED)
        model = build_model(NetworkConfig(cfg["vocab_size"], cfg["embedding_dim"], cfg["hidden_size"],
                                          cfg["num_layers"], dropout=0.0, mixed_precision=False))
        model.compile(optimizer=keras.optimizers.Adam(2e-3, global_clipnorm=5.0), loss=masked_loss())
        return model

    keras.utils.set_random_seed(SEED)
    naive = naive_model(cfg)
    naive.compile(optimizer=keras.optimizers.Adam(2e-3, global_clipnorm=5.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    padded = [pad_to_max(b, cfg["seq_len"]) for b in batches]
    runs = {"ours": (ours_model(), batches, lambda b: b),
            "naive_onehot_pad_to_max": (naive, padded, one_hot_feed(cfg["vocab_size"]))}
    if cfg["lengths"] == "buckets":  # splits the gain: bucketing alone (same network, padded batches)
        runs["ours_pad_to_max"] = (ours_model(), padded, lambda b: b)
    timed = time_interleaved(runs, warmup)
    fast, slow = timed["ours"], timed["naive_onehot_pad_to_max"]
    out = {"config": {**cfg, "data": data}, **timed,
           "speedup_tokens_per_s": fast["tokens_per_s"] / slow["tokens_per_s"]}
    if strategy is not None:
        out["mirrored"] = time_mirrored(strategy, cfg, batches, warmup, runs["ours"][0])
    if name == "reference":
        out["char_rnn_titan_z_s_per_batch"] = CHAR_RNN_TITAN_Z_S_PER_BATCH
        out["vs_char_rnn_titan_z"] = CHAR_RNN_TITAN_Z_S_PER_BATCH / fast["s_per_batch"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="timed batches per model")
    ap.add_argument("--warmup", type=int, default=2, help="untimed batches first (tracing, allocation)")
    ap.add_argument("--batches", type=Path, default=Path("data/batches"))
    ap.add_argument("--configs", default="reference,default")
    ap.add_argument("--strategy", choices=("none", "mirrored"), default="none")
    ap.add_argument("--cpu-devices", type=int, default=2, help="mirrored without a GPU: logical CPU devices")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    strategy = None
    if args.strategy == "mirrored":  # before TensorFlow touches a device
        from model.distribute import DistributeConfig, make_strategy
        from pipeline.config import check_section

        dist = {"strategy": "mirrored", "workers": [], "cpu_devices": args.cpu_devices, "timeout_s": 300}
        strategy = make_strategy(check_section(DistributeConfig, dist, where="bench/train.py",
                                               prefix="train.distribute"))[0]
    results = {name: run_config(name, CONFIGS[name], args.steps, args.warmup, args.batches, strategy)
               for name in args.configs.split(",")}
    print(json.dumps({"bench": "train", "device": device_name(), "tensorflow": tf.__version__, "seed": SEED,
                      "steps": args.steps, "warmup": args.warmup, "strategy": args.strategy, "results": results},
                     indent=1))


if __name__ == "__main__":
    main()
