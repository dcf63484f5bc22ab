"""Sampling speed: the stateful NumPy sampler vs the tutorial loop, in the same run.

The naive baseline is what tutorials do: for every new character, ``model.predict`` on the whole
growing prefix, softmax with temperature, draw. It is timed on the first ``naive_chars``
characters of a sample only (it is that slow); because its cost grows with the prefix, that
measure favours the baseline. For the full 500-character sample it is also extrapolated from a
linear fit of step time against prefix length (steps timed at the start and at prefix 500).

Uses ``models/lstm/`` when it exists, otherwise a default-sized untrained model
(``NetworkConfig`` defaults over the pipeline vocabulary, or over printable ASCII); ``model``
in the output says which. ``min_length`` = ``length`` keeps every sample at 500 characters.
``tf_function_step_1_stream_chars_per_s`` is a design check: the same carried-state step as a
compiled ``tf.function`` (argmax, 1 stream), the alternative the NumPy step was chosen over.

    python bench/sample.py            # prints one JSON object
"""

from __future__ import annotations

import json
import logging
import os
import platform
import string
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

CONFIG = {
    "model_dir": "models/lstm",
    "length": 500,  # characters per sample
    "streams": 64,  # streams in the batched run
    "single_repeats": 3,  # 1-stream samples timed
    "naive_chars": 25,  # characters timed for the naive loop, from the start of a sample
    "naive_long_steps": 3,  # naive steps timed at prefix length == length
    "temperature": 1.0,
    "seed": 0,
}


def load_model(cfg):
    from model.network import NetworkConfig, build_model
    from model.sampler import StatefulSampler
    from pipeline.vocab import Vocab

    if (Path(cfg["model_dir"]) / "model.keras").exists():
        from model.artifacts import load_trained

        model, vocab, _ = load_trained(cfg["model_dir"])
        label = f"{cfg['model_dir']} (trained)"
    else:
        import keras

        keras.utils.set_random_seed(cfg["seed"])
        if Path("data/vocab.json").exists():
            vocab, where = Vocab.load("data/vocab.json"), "data/vocab.json"
        else:
            vocab, where = Vocab.from_counts({c: 1 for c in string.printable}), "printable ASCII"
        from model.train import load_config

        config = NetworkConfig(vocab_size=len(vocab), **load_config()["model"])
        model = build_model(config)
        label = (f"untrained params.yaml NetworkConfig (embedding {config.embedding_dim}, {config.num_layers} x "
                 f"LSTM {config.hidden_size}) over {where}: no {cfg['model_dir']}/model.keras")
    return model, vocab, StatefulSampler.from_model(model, vocab), label


def naive_step(model, prefixes: np.ndarray, temperature: float, rng) -> np.ndarray:
    """One character per row the tutorial way: predict on the whole prefix, sample the last step."""
    from model.lstm_numpy import softmax

    p = softmax(model.predict(prefixes, verbose=0)[:, -1].astype(np.float64) / temperature)
    return np.array([rng.choice(len(row), p=row) for row in p], dtype=np.int32)


def time_naive(model, batch: int, cfg) -> dict:
    rng = np.random.default_rng(cfg["seed"])
    prefixes = np.zeros((batch, 1), np.int32)  # END: start of a document
    naive_step(model, prefixes, cfg["temperature"], rng)  # warm-up
    t0 = time.perf_counter()
    for _ in range(cfg["naive_chars"]):
        nxt = naive_step(model, prefixes, cfg["temperature"], rng)
        prefixes = np.concatenate([prefixes, nxt[:, None]], axis=1)
    short = (time.perf_counter() - t0) / cfg["naive_chars"]
    long_prefix = rng.integers(2, model.output_shape[-1], size=(batch, cfg["length"]), dtype=np.int32)
    naive_step(model, long_prefix, cfg["temperature"], rng)  # warm-up for the new shape
    t0 = time.perf_counter()
    for _ in range(cfg["naive_long_steps"]):
        naive_step(model, long_prefix, cfg["temperature"], rng)
    long = (time.perf_counter() - t0) / cfg["naive_long_steps"]
    # step time ~ a + b * prefix: fitted on the mean prefix of the short run and on prefix `length`
    mid = (1 + cfg["naive_chars"]) / 2
    b = (long - short) / (cfg["length"] - mid)
    a = short - b * mid
    total = sum(a + b * L for L in range(1, cfg["length"] + 1))
    return {"chars_per_s_measured": batch / short, "chars_per_s_extrapolated_500": batch * cfg["length"] / total,
            "s_per_step_first_chars": short, "s_per_step_prefix_500": long}


def time_tf_function(sampler, cfg) -> float:
    """Design check: the same carried-state step as a compiled ``tf.function`` (1 stream, argmax)."""
    import tensorflow as tf

    w = sampler.weights
    consts = [tf.constant(a) for a in (w.input_table, *w.recurrent, *w.kernels, *w.biases, w.dense_w, w.dense_b)]
    n_layers = len(w.recurrent)

    @tf.function
    def step(tok, state):
        table, rec = consts[0], consts[1:1 + n_layers]
        kernels, biases = consts[1 + n_layers:2 * n_layers], consts[2 * n_layers:3 * n_layers - 1]
        x, new = None, []
        for i, (h, c) in enumerate(state):
            z = tf.gather(table, tok) + h @ rec[i] if i == 0 else x @ kernels[i - 1] + h @ rec[i] + biases[i - 1]
            zi, zf, zg, zo = tf.split(z, 4, axis=1)
            c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zg)
            x = tf.sigmoid(zo) * tf.tanh(c)
            new.append((x, c))
        return x @ consts[-2] + consts[-1], new

    state = [(tf.zeros((1, h)), tf.zeros((1, h))) for h in w.hidden_sizes]
    tok = tf.constant([0])
    for _ in range(10):  # warm-up (tracing)
        logits, state = step(tok, state)
    t0 = time.perf_counter()
    for _ in range(cfg["length"]):
        logits, state = step(tok, state)
        tok = tf.constant([int(np.argmax(logits.numpy()[0, 1:])) + 1])  # END barred, like min_length
    return cfg["length"] / (time.perf_counter() - t0)


def time_stateful(sampler, n: int, repeats: int, cfg) -> dict:
    kw = dict(length=cfg["length"], min_length=cfg["length"], temperature=cfg["temperature"])
    sampler.generate("", n=n, seed=cfg["seed"], **{**kw, "length": 20, "min_length": 20})  # warm-up
    t0 = time.perf_counter()
    chars = 0
    for r in range(repeats):
        chars += sum(len(s.text) for s in sampler.generate("", n=n, seed=cfg["seed"] + r, **kw))
    seconds = time.perf_counter() - t0
    return {"chars_per_s": chars / seconds, "chars": chars, "seconds": seconds}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cfg = CONFIG
    model, vocab, sampler, label = load_model(cfg)
    one = time_stateful(sampler, 1, cfg["single_repeats"], cfg)
    many = time_stateful(sampler, cfg["streams"], 1, cfg)
    tf_fn = time_tf_function(sampler, cfg)
    naive1 = time_naive(model, 1, cfg)
    naive_many = time_naive(model, cfg["streams"], cfg)
    r = lambda x: float(f"{x:.4g}")  # noqa: E731
    print(json.dumps({
        "bench": "sample",
        "device": f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
        "model": label,
        "vocab_size": len(vocab),
        "config": cfg,
        "stateful_1_stream_chars_per_s": r(one["chars_per_s"]),
        f"stateful_{cfg['streams']}_streams_chars_per_s": r(many["chars_per_s"]),
        "naive_1_stream_chars_per_s": r(naive1["chars_per_s_measured"]),
        "naive_1_stream_chars_per_s_500_extrapolated": r(naive1["chars_per_s_extrapolated_500"]),
        f"naive_{cfg['streams']}_streams_chars_per_s": r(naive_many["chars_per_s_measured"]),
        f"naive_{cfg['streams']}_streams_chars_per_s_500_extrapolated": r(naive_many["chars_per_s_extrapolated_500"]),
        "ratio_1_stream": r(one["chars_per_s"] / naive1["chars_per_s_measured"]),
        "ratio_1_stream_500_extrapolated": r(one["chars_per_s"] / naive1["chars_per_s_extrapolated_500"]),
        f"ratio_{cfg['streams']}_streams": r(many["chars_per_s"] / naive_many["chars_per_s_measured"]),
        f"ratio_{cfg['streams']}_streams_500_extrapolated":
            r(many["chars_per_s"] / naive_many["chars_per_s_extrapolated_500"]),
        "tf_function_step_1_stream_chars_per_s": r(tf_fn),
        "naive_detail": {"1": {k: r(v) for k, v in naive1.items()},
                         str(cfg["streams"]): {k: r(v) for k, v in naive_many.items()}},
        "note": (f"naive = model.predict on the growing prefix per character, timed on the first {cfg['naive_chars']} "
                 f"characters (cheaper than later ones, so the plain ratio favours the baseline); *_500_extrapolated "
                 f"fits step time linearly in prefix length up to {cfg['length']}. "
                 f"Stateful: {cfg['length']}-char samples "
                 f"(END barred), {cfg['single_repeats']} x 1 stream, 1 x {cfg['streams']} streams."),
    }))


if __name__ == "__main__":
    main()
