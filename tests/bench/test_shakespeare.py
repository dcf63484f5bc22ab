"""bench/shakespeare.py: the char-rnn lanes continue from window to window, validation scores every
character once, the run is the train stage's configuration with the bench's recipe laid over it (the
stage's optimizer decays the weights), and a short run through ``model.train.fit`` prints one JSON
object whose mid-run score agrees with the final one; dynamic evaluation adapts to the validation
text and restores the weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.shakespeare import RECIPE, lane_windows, parse_args, scoring_windows, train_config
from tests.helpers.processes import run_side_by_side

pytest.importorskip("tensorflow")


def test_lanes_continue_each_row_and_restart_the_state_at_each_pass():
    ids = np.arange(1, 102, dtype=np.int32)  # 101 ids: 4 lanes of 25 characters, 2 windows of 10 each
    tokens, carry = lane_windows(ids, seq_len=10, batch=4)
    assert tokens.shape == (2, 4, 11) and carry.tolist() == [[0.0] * 4, [1.0] * 4]
    # row r of window 2 starts where row r of window 1 stopped (its last target is the next first input)
    np.testing.assert_array_equal(tokens[1][:, 0], tokens[0][:, -1])
    assert tokens[0][:, 0].tolist() == [1, 26, 51, 76]  # four contiguous lanes
    with pytest.raises(ValueError, match="do not fill"):
        lane_windows(ids[:20], seq_len=10, batch=4)


def test_scoring_windows_score_every_character_once_with_context():
    ids = np.arange(1, 60, dtype=np.int32)
    rows, masks = scoring_windows(ids, seq_len=8)
    assert masks.sum() == len(ids) - 1
    scored = [int(rows[i, 1 + t]) for i in range(len(rows)) for t in np.flatnonzero(masks[i])]
    assert scored == ids[1:].tolist()  # each target once, in order
    assert all(np.flatnonzero(m)[0] >= 8 for m in masks[1:])  # at least seq_len characters before it


def test_the_run_is_the_stage_config_with_the_recipe_and_options_over_it():
    args = parse_args(["text.txt", "--hidden", "32", "--layers", "1", "--dropout", "0.0", "--embedding", "8",
                       "--batch", "4", "--seq-len", "16", "--no-mixed-precision", "--weight-decay", "0.1",
                       "--decay-exclude", "bias", "--steps", "7"])
    cfg = train_config(args)
    assert cfg["optimizer"] == RECIPE["optimizer"] == "adamw" and cfg["learning_rate"] == RECIPE["learning_rate"]
    assert cfg["weight_decay"] == 0.1 and cfg["weight_decay_exclude"] == ["bias"]
    assert cfg["epochs"] == 1 and cfg["max_steps_per_epoch"] == 7 and cfg["model"]["hidden_size"] == 32
    assert cfg["distribute"]["strategy"] == "none"


def test_the_recipe_decays_the_weights_through_the_stage_optimizer():
    import keras

    from model.training import make_optimizer

    args = parse_args(["text.txt", "--hidden", "8", "--layers", "1", "--dropout", "0.1", "--embedding", "4",
                       "--batch", "4", "--seq-len", "16", "--no-mixed-precision"])
    for decay in (RECIPE["weight_decay"], 0.0):
        args.weight_decay = decay
        cfg = train_config(args)
        weights = keras.Variable(np.ones((2, 3), np.float32))
        # a zero gradient moves Adam nowhere: what changes is the decoupled decay, lr * decay (step 0: peak lr)
        make_optimizer(cfg, 100).apply_gradients([(np.zeros((2, 3), np.float32), weights)])
        np.testing.assert_allclose(np.asarray(weights), 1.0 - RECIPE["learning_rate"] * decay, rtol=1e-6)


def test_dynamic_evaluation_adapts_and_gives_the_weights_back():
    import keras

    from bench.shakespeare import dynamic_score, score
    from model.network import NetworkConfig, build_model

    keras.utils.set_random_seed(0)
    model = build_model(NetworkConfig(vocab_size=5, embedding_dim=4, hidden_size=8, num_layers=2, dropout=0.0,
                                      mixed_precision=False))
    ids = np.tile(np.array([1, 2, 3, 4, 2, 3], np.int32), 40)  # a repeated pattern: adapting must help
    args = parse_args(["text.txt", "--seq-len", "16"])
    before = [w.copy() for w in model.get_weights()]
    static = score(model, ids, args)
    assert dynamic_score(model, ids, args, 0.0) == pytest.approx(static, rel=1e-5)
    assert dynamic_score(model, ids, args, 0.5) < static - 0.1
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert score(model, ids, args) == static


def test_dynamic_evaluation_needs_the_carried_stream():
    assert parse_args(["t.txt"]).dynamic_lr and parse_args(["t.txt", "--feed", "random"]).dynamic_lr == []
    assert parse_args(["t.txt", "--dynamic-lr", ""]).dynamic_lr == []
    with pytest.raises(SystemExit):
        parse_args(["t.txt", "--feed", "random", "--dynamic-lr", "0.1"])


@pytest.mark.slow
@pytest.mark.parametrize("feed", ["carry", "random"])
def test_a_short_run_reports_finite_scores_and_the_mid_run_scorer_agrees(
        tmp_path: Path, python_exe: str, repo_root: Path, feed: str):
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "\n"]
    path = tmp_path / "tiny.txt"
    path.write_text(" ".join(rng.choice(words, size=3000)), encoding="utf-8")
    base = [python_exe, "bench/shakespeare.py", str(path), "--steps", "4", "--feed", feed, "--hidden", "8",
            "--layers", "2", "--embedding", "4", "--batch", "4", "--seq-len", "16"]
    dynamic = ["--dynamic-lr", "0,0.5"] if feed == "carry" else []
    outs = [json.loads(out) for out in run_side_by_side([base + ["--val-at", "0.5,1.0"] + dynamic,
                                                           base + ["--ema", "0.9", "--dynamic-lr", ""]], repo_root)]
    plain, averaged = outs
    assert plain["steps"] == 4 and plain["train_tokens"] == 4 * 4 * 16 and plain["config"]["feed"] == feed
    assert [(c["fraction"], c["step"]) for c in plain["val_curve"]] == [(0.5, 2), (1.0, 4)]
    # the scorer used mid-run and Keras' validation in fit score the same weights alike
    assert plain["val_curve"][-1]["raw_val_nats"] == pytest.approx(plain["val_nats"], rel=1e-4)
    assert plain["val_bpc"] == pytest.approx(plain["val_nats"] / math.log(2))
    assert averaged["val_nats"] != averaged["raw_val_nats"]  # the averaged weights are scored, not the last ones
    assert averaged["raw_val_nats"] == pytest.approx(plain["val_nats"], rel=1e-5)  # the same run's last weights
    if feed == "carry":  # a zero step is the fixed weights' score; a real one adapts (and changes it)
        assert plain["dynamic_val_nats"]["0.0"] == pytest.approx(plain["val_nats"], rel=1e-4)
        assert plain["dynamic_val_nats"]["0.5"] != plain["dynamic_val_nats"]["0.0"]
        assert plain["dynamic_beats_ppmd"] == (min(plain["dynamic_val_nats"].values()) < plain["ppmd_best_val_nats"])
    else:
        assert plain["dynamic_val_nats"] == {}
    assert averaged["dynamic_val_nats"] == {} and averaged["dynamic_beats_ppmd"] is False
    for out in outs:
        assert math.isfinite(out["val_nats"]) and 0 < out["val_nats"] < 10
        assert set(out["ppmd_val_nats_by_order"]) == {"4", "5", "6", "7", "8"}
        assert out["ppmd_best_val_nats"] == min(out["ppmd_val_nats_by_order"].values())
        assert out["beats_ppmd"] == (out["val_nats"] < out["ppmd_best_val_nats"])
        assert out["kernels"]["TF_ENABLE_ONEDNN_OPTS"] == "1"  # the train stage's pinned kernels (params.yaml)
