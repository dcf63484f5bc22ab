"""Training (model/train.py) on tiny in-memory data: outputs, determinism, resume, NaN stop, refusals.

Outputs, determinism, resume after SIGKILL, NaN stop, vocabulary refusal, params errors, masked loss, xz
baseline."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import train_tiny

EPOCHS = 3
STEPS = 13  # 96 tiny documents in 8-row buckets


def weights_of(model_dir: Path) -> list[np.ndarray]:
    from model.artifacts import load_trained

    model, _, _ = load_trained(model_dir)
    return model.get_weights()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted in-process run; other tests compare against it."""
    out = tmp_path_factory.mktemp("reference")
    _, summary = train_tiny.run(out, epochs=EPOCHS)
    return out, summary


def test_masked_loss_is_the_mean_over_real_targets():
    from model.losses import MaskedBits, MaskedNats, masked_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    y = rng.integers(0, 7, size=(2, 5)).astype(np.int32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    expected = float((ce * mask).sum() / mask.sum())
    assert float(masked_loss()(y, logits, sample_weight=mask)) == pytest.approx(expected, rel=1e-5)
    nats, bits = MaskedNats(), MaskedBits()
    for m in (nats, bits):  # two batches: the epoch figure weights characters, not batches
        m.update_state(y[:1], logits[:1], sample_weight=mask[:1])
        m.update_state(y[1:], logits[1:], sample_weight=mask[1:])
    assert float(nats.result()) == pytest.approx(expected, rel=1e-5)
    assert float(bits.result()) == pytest.approx(expected / math.log(2), rel=1e-5)


@pytest.mark.slow
def test_training_writes_model_metrics_plots_and_samples(reference):
    from model.artifacts import load_trained

    out, summary = reference
    assert summary["epochs"] == EPOCHS and summary["steps"] == EPOCHS * STEPS and summary["resumes"] == 0
    assert summary["val_bpc"] == pytest.approx(summary["val_nats"] / math.log(2))
    assert summary["val_perplexity"] == pytest.approx(math.exp(summary["val_nats"]), rel=1e-6)
    assert summary["tokens_per_s"] > 0
    rows = list(csv.DictReader(open(out / "train.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss", "val_loss", "val_bpc", "lr", "tokens_per_s"}
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])  # it learns
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])  # cosine decay
    evo = [json.loads(line) for line in open(out / "evolution.jsonl")]
    assert len(evo) == EPOCHS * 2 and {e["epoch"] for e in evo} == {1, 2, 3}
    assert {tuple(sorted(e)) for e in evo} == {("epoch", "prime", "temperature", "text")}
    model, vocab, meta = load_trained(out / "model")
    assert meta["vocab_hash"] == vocab.hash and meta["network"]["hidden_size"] == 16
    assert meta["params"]["epochs"] == EPOCHS and len(meta["history"]) == EPOCHS
    assert not (out / "ckpt").exists()  # cleared once the model is saved (keep_checkpoints: false)
    assert list((out / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_resumes_and_matches(reference, tmp_path, python_exe, repo_root):
    ref_out, ref_summary = reference
    proc = subprocess.Popen([python_exe, str(train_tiny.SCRIPT), str(tmp_path),
                             f"epochs={EPOCHS}", "sleep=0.25"], cwd=repo_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "ckpt"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if list(ckpt.glob(f"step-000000{STEPS + 2:02d}")) or list(ckpt.glob(f"step-000000{STEPS + 3:02d}")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    steps_done = sorted(int(p.name.split("-")[1]) for p in ckpt.glob("step-*"))
    killed_at = json.loads((ckpt / f"step-{steps_done[-1]:08d}" / "state.json").read_text())["state"]
    assert killed_at["epoch"] == 1 and 0 < killed_at["step_in_epoch"] < STEPS  # mid-epoch
    assert not (tmp_path / "model").exists()

    _, summary = train_tiny.run(tmp_path, epochs=EPOCHS)  # the rerun
    assert summary["resumes"] == 1
    assert summary["steps"] == EPOCHS * STEPS  # continued: no step trained twice or skipped
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3]
    assert len(list(csv.DictReader(open(tmp_path / "train.csv")))) == EPOCHS
    # same batches, same order, same optimizer and dropout state: the uninterrupted run's weights
    for a, b in zip(weights_of(ref_out / "model"), weights_of(tmp_path / "model"), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_nan_loss_stops_with_advice_and_keeps_last_good_checkpoint(tmp_path):
    from model.callbacks import TrainState
    from model.train import TrainingError

    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, batch 5 .*lower train.learning_rate"):
        train_tiny.run(tmp_path, poison_batch=4, checkpoint_every_steps=1, epochs=1)
    kept = sorted((tmp_path / "ckpt").glob("step-*"))
    assert kept, "no checkpoint kept"
    state = TrainState.from_dict(json.loads((kept[-1] / "state.json").read_text())["state"])
    assert state.global_step == 4 and not state.diverged  # the last step before the NaN
    import h5py

    with h5py.File(kept[-1] / "ckpt.weights.h5") as h5:
        arrays = []
        h5.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    assert arrays and all(np.isfinite(a).all() for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating))
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_checkpoint_for_another_vocabulary_is_refused(tmp_path):
    from model.train import TrainingError
    from pipeline.vocab import Vocab

    vocab, *_ = train_tiny.make_data()
    train_tiny.run(tmp_path, epochs=1, keep_checkpoints=True)
    assert list((tmp_path / "ckpt").glob("step-*"))
    other = Vocab((*vocab.tokens[:2], *reversed(vocab.tokens[2:])))
    with pytest.raises(TrainingError, match="vocabulary"):
        train_tiny.run(tmp_path, vocab=other, epochs=1)


def test_params_unknown_and_out_of_range_keys_are_errors():
    from model.train import load_config
    from pipeline.common import ParamsError
    from tests.helpers.params import repo_params

    with pytest.raises(ParamsError, match="train.model.hiden_size"):
        load_config(repo_params({"train": {"model": {"hiden_size": 3}}}))
    with pytest.raises(ParamsError, match="train.epochs = 0: expected an integer >= 1"):
        load_config(repo_params({"train": {"epochs": 0}}))
    with pytest.raises(ParamsError, match="train.optimizer = 'sgd': expected one of 'adam', 'adamw', 'rmsprop'"):
        load_config(repo_params({"train": {"optimizer": "sgd"}}))
    with pytest.raises(ParamsError, match="train.model.dropout = 1.0: expected a number < 1"):
        load_config(repo_params({"train": {"model": {"dropout": 1.0}}}))
    with pytest.raises(ParamsError, match="missing key.*train.evolution.seed"):
        load_config({"train": {**repo_params()["train"], "evolution": {"primes": [], "temperatures": [1.0],
                                                                       "length": 5}}})
    cfg = load_config(repo_params({"train": {"model": {"hidden_size": 32}}}))
    # an override replaces its own key; the section's other keys stay as params.yaml has them
    assert cfg["model"]["hidden_size"] == 32
    assert cfg["model"]["num_layers"] == repo_params()["train"]["model"]["num_layers"]


def test_xz_baseline_uses_the_train_text_as_context():
    from model.train import xz_bpc

    train, val = train_tiny.corpus(400, 0), train_tiny.corpus(50, 1)
    got = xz_bpc(train, val, train_tiny.vocab_for(train + val))
    assert got["val_chars"] == sum(len(t) + 1 for t in val)
    assert 0 < got["xz9_val_bpc"] < got["xz9_val_alone_bpc"]


def test_xz_baseline_from_split_files_streams_val_and_samples_train(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from model.train import xz_baseline, xz_bpc

    train, val = train_tiny.corpus(400, 0), train_tiny.corpus(50, 1)
    for name, texts in (("train", train), ("val", val)):
        pq.write_table(pa.table({"text": texts}), tmp_path / f"{name}.parquet")
    vocab = train_tiny.vocab_for(train + val)
    whole = xz_baseline(tmp_path, vocab, {"xz_context_chars": 10**9, "seed": 0})
    assert whole.pop("xz9_train_sample")["sampled"] is False
    assert whole == xz_bpc(train, val, vocab, None)  # the bound covers it all: the in-memory numbers
    bound = sum(map(len, train)) // 4
    part = xz_baseline(tmp_path, vocab, {"xz_context_chars": bound, "seed": 0})
    seen = part["xz9_train_sample"]
    assert seen["sampled"] and seen["characters"] <= bound and seen["split_documents"] == len(train)
    assert part["xz9_context_chars"] == seen["characters"] + seen["documents"]  # rendered: one END each
    assert part["val_chars"] == whole["val_chars"] and part == xz_baseline(tmp_path, vocab, {
        "xz_context_chars": bound, "seed": 0})
