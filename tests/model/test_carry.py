"""Carried state, truncated BPTT (model/carry.py): stream batches equal one pass; resume is bit-identical.

A long document run in stream batches gives the outputs of one pass over it, bucket batches in between
leave the kept state alone, and training with carried state resumes from a mid-epoch checkpoint
bit-identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import batches as B
from tests.helpers.corpus import make_splits
from tests.helpers.params import stage_config
from tests.helpers.train_tiny import tiny_config

tf = pytest.importorskip("tensorflow")


def tiny_net(vocab_size: int = 9, dropout: float = 0.0):
    import keras

    from model.network import NetworkConfig, build_model

    keras.utils.set_random_seed(0)
    return build_model(NetworkConfig(vocab_size=vocab_size, embedding_dim=4, hidden_size=8, num_layers=2,
                                     dropout=dropout, mixed_precision=False))


def batch(tokens: np.ndarray, carry, stream: float) -> dict:
    return {"tokens": tf.constant(tokens, tf.int32), "carry": tf.constant(carry, tf.float32),
            "stream": tf.fill([len(tokens)], stream)}


def test_stream_batches_give_the_outputs_of_one_pass_over_each_document():
    from model.carry import CarriedStateModel

    net = tiny_net()
    model = CarriedStateModel(net, lanes=2)
    rng = np.random.default_rng(1)
    long_doc = rng.integers(0, 9, 15).astype(np.int32)  # three windows of 5 in lane 0
    short_doc, next_doc = rng.integers(0, 9, 5).astype(np.int32), rng.integers(0, 9, 10).astype(np.int32)
    lane1 = [short_doc, next_doc[:5], next_doc[5:]]  # lane 1: a one-window document, then a new one
    carries = [[0, 0], [1, 0], [1, 1]]
    outputs = []
    for j in range(3):
        tokens = np.stack([long_doc[5 * j:5 * j + 5], lane1[j]])
        outputs.append(np.asarray(model(batch(tokens, carries[j], 1.0))))
        # a bucket batch of another size in between starts from zero and must not touch the kept state
        bucket = rng.integers(0, 9, (1 + j % 2, 4)).astype(np.int32)
        np.testing.assert_allclose(np.asarray(model(batch(bucket, [1] * len(bucket), 0.0))), np.asarray(net(bucket)),
                                   atol=1e-6)
    one_pass = np.asarray(net(long_doc[None]))[0]
    np.testing.assert_allclose(np.concatenate([o[0] for o in outputs]), one_pass, atol=1e-5)
    np.testing.assert_allclose(outputs[0][1], np.asarray(net(short_doc[None]))[0], atol=1e-5)  # fresh start
    np.testing.assert_allclose(np.concatenate([outputs[1][1], outputs[2][1]]), np.asarray(net(next_doc[None]))[0],
                               atol=1e-5)
    # without carrying, the third window of the long document would see no context: the outputs differ
    fresh = np.asarray(net(long_doc[None, 10:]))[0]
    assert np.abs(fresh - outputs[2][0]).max() > 1e-4


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    root = tmp_path_factory.mktemp("carry")
    paths, vocab = make_splits(root, n_threads=40)
    B.run(paths, vocab, B.check_params(stage_config("batches", B.BatchesConfig, batch_size=4, max_len=16,
                                                    carry_state=True)), root / "out")
    return root / "out", vocab


class Interrupted(Exception):
    pass


def fit_streamed(out: Path, batches: Path, vocab, *, stop_at: int | None = None, **overrides):
    import keras

    from model.data import make_dataset
    from model.train import fit

    class StopAt(keras.callbacks.Callback):  # a crash mid-epoch, right after a step checkpoint
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == stop_at:
                raise Interrupted(f"stopped after step {stop_at}")

    cfg = tiny_config(epochs=2, checkpoint_every_steps=4, keep_checkpoints=True, max_steps_per_epoch=12,
                      **overrides)
    return fit(cfg, vocab=vocab, train_data=lambda s: make_dataset(batches, "train", seed=s, carry=True),
               val_data=lambda: make_dataset(batches, "val", carry=True), model_dir=out / "model",
               checkpoint_dir=out / "ckpt", csv_path=out / "train.csv", evolution_path=out / "evolution.jsonl",
               verbose=0, carry_lanes=4, extra_callbacks=[StopAt()] if stop_at else None)


@pytest.mark.slow
def test_training_with_carried_state_resumes_mid_epoch_bit_identically(streamed, tmp_path):
    batches, vocab = streamed
    from model.data import dataset_stats

    stats = dataset_stats(batches, "train")
    assert stats["carry_state"] and stats["stream_batches"] > 0
    straight, summary = fit_streamed(tmp_path / "a", batches, vocab)
    assert summary["epochs"] == 2 and np.isfinite(summary["val_bpc"])
    assert [w.name for w in straight.weights] == [w.name for w in tiny_net(len(vocab), 0.1).weights]  # the plain net
    with pytest.raises(Interrupted):
        fit_streamed(tmp_path / "b", batches, vocab, stop_at=12 + 8)  # in epoch 2, after its step-8 checkpoint
    assert (tmp_path / "b/ckpt/step-00000020").is_dir()
    resumed, _ = fit_streamed(tmp_path / "b", batches, vocab)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
