"""The Shakespeare char-rnn bench (bench/shakespeare.py): lanes, the optimizer and a short run.

The lanes continue from window to window, the optimizer decays the weights by default, and a short run
(unrolled training loop, weight averaging, both feeds) prints one JSON object with finite scores."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.shakespeare import WEIGHT_DECAY, build_optimizer, lanes, parse_args

pytest.importorskip("tensorflow")


@pytest.mark.parametrize("shifted", [False, True])
def test_lanes_continue_each_row_and_restart_the_state_at_each_pass(shifted: bool):
    ids = np.arange(1, 102, dtype=np.int32)  # 101 ids: 4 lanes of 25 characters, 2 windows of 10 each
    stream = lanes(ids, seq_len=10, batch=4, rng=np.random.default_rng(3) if shifted else None)
    passes = [[next(stream) for _ in range(2)] for _ in range(2)]

    def after(t):  # the character after each of ``t`` in the text (read around its end when rotated)
        return t % 101 + 1 if shifted else t + 1

    for (first, y_first, _), (second, _, mask) in passes:
        assert first["carry"].tolist() == [0.0] * 4 and second["carry"].tolist() == [1.0] * 4
        # row r of window 2 starts where row r of window 1 stopped; targets are the next characters
        np.testing.assert_array_equal(second["tokens"][:, 0], after(first["tokens"][:, -1]))
        np.testing.assert_array_equal(y_first, after(first["tokens"]))
        assert mask.shape == (4, 10) and mask.min() == 1.0
    starts = [p[0][0]["tokens"][:, 0].tolist() for p in passes]
    if shifted:  # a new rotation each pass, lanes still 25 characters apart
        assert starts[0] != starts[1]
        assert all(((np.array(s) - s[0]) % 101).tolist() == [0, 25, 50, 75] for s in starts)
    else:
        assert starts == [[1, 26, 51, 76]] * 2  # the same four contiguous lanes every pass


def test_the_optimizer_decays_every_weight_by_default_and_not_with_zero():
    import keras

    assert parse_args(["text.txt"]).weight_decay == WEIGHT_DECAY > 0
    for decay in (WEIGHT_DECAY, 0.0):
        args = parse_args(["text.txt", "--lr", "0.01", "--weight-decay", str(decay), "--ema", "0"])
        weights = keras.Variable(np.ones((2, 3), np.float32))
        # a zero gradient moves Adam nowhere: what changes is the decoupled decay, lr * decay
        build_optimizer(args).apply_gradients([(np.zeros((2, 3), np.float32), weights)])
        np.testing.assert_allclose(np.asarray(weights), 1.0 - 0.01 * decay, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("feed", ["carry", "random"])
def test_a_short_run_reports_finite_scores_for_the_trained_and_the_averaged_weights(
        tmp_path: Path, python_exe: str, repo_root: Path, feed: str):
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "\n"]
    text = " ".join(rng.choice(words, size=3000))
    path = tmp_path / "tiny.txt"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [python_exe, "bench/shakespeare.py", str(path), "--steps", "3", "--feed", feed, "--hidden", "8",
         "--layers", "2", "--embedding", "4", "--batch", "4", "--seq-len", "16", "--unroll", "--ema", "0.9",
         "--val-at", "0.5"],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["steps"] == 3 and out["config"]["feed"] == feed and out["config"]["unroll"] is True
    assert out["train_tokens"] == 3 * 4 * 16
    for key in ("val_nats", "raw_val_nats"):
        assert math.isfinite(out[key]) and 0 < out[key] < 10, (key, out[key])
    assert out["val_nats"] != out["raw_val_nats"]  # the averaged weights are scored, not the last ones
    assert out["val_bpc"] == pytest.approx(out["val_nats"] / math.log(2))
    assert [(c["fraction"], c["step"]) for c in out["val_curve"]] == [(0.5, 2)]  # scored mid-run, once
    assert math.isfinite(out["val_curve"][0]["raw_val_nats"])
