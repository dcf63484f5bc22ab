"""model/training.py's optimizer keys: AdamW's decoupled weight decay reaches exactly the weights not
excluded, a typo in the exclusions or Adam with decay is a clear error, and with a moving average of
the weights the saved model is the average, scored on val."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import train_tiny

pytest.importorskip("tensorflow")


def test_weight_decay_reaches_every_weight_but_the_excluded():
    from model.training import build_and_compile

    cfg = train_tiny.tiny_config(optimizer="adamw", weight_decay=0.5, weight_decay_exclude=["bias"],
                                 lr_schedule="constant", learning_rate=0.01)
    model, _ = build_and_compile(cfg, vocab_size=12, total_steps=10)
    before = {v.path: np.array(v) for v in model.trainable_variables}
    # a zero gradient moves Adam nowhere: what changes is the decoupled decay, lr * decay * w
    model.optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in model.trainable_variables])
    decayed = kept = 0
    for v in model.trainable_variables:
        expected = before[v.path] * (1.0 if "bias" in v.path else 1.0 - 0.01 * 0.5)
        np.testing.assert_allclose(np.array(v), expected, rtol=1e-6, err_msg=v.path)
        kept, decayed = (kept + 1, decayed) if "bias" in v.path else (kept, decayed + 1)
    assert decayed == 6 and kept == 3  # embedding, 2 x (kernel, recurrent kernel), logits kernel; 3 biases


def test_an_exclusion_matching_no_weight_and_adam_with_decay_are_errors():
    from model.train import load_config
    from model.training import TrainingError, build_and_compile
    from pipeline.common import ParamsError
    from tests.helpers.params import repo_params

    cfg = train_tiny.tiny_config(optimizer="adamw", weight_decay=0.1, weight_decay_exclude=["biass"])
    with pytest.raises(TrainingError, match=r"weight_decay_exclude \['biass'\] matches no weight"):
        build_and_compile(cfg, vocab_size=12, total_steps=10)
    with pytest.raises(ParamsError, match="Adam with decoupled weight decay is adamw"):
        load_config(repo_params({"train": {"optimizer": "adam", "weight_decay": 0.1}}))
    with pytest.raises(ParamsError, match="train.ema_momentum = 1.0"):
        load_config(repo_params({"train": {"ema_momentum": 1.0}}))


@pytest.mark.slow
def test_with_a_moving_average_the_saved_model_is_the_average_scored_on_val(tmp_path):
    import keras

    from model.artifacts import load_trained
    from model.losses import MaskedNats, masked_loss

    _, summary = train_tiny.run(tmp_path, epochs=2, optimizer="adamw", weight_decay=0.1, ema_momentum=0.9)
    assert summary["val_bpc"] != summary["last_weights_val_bpc"]  # the average, not the last weights
    model, _, meta = load_trained(tmp_path / "model")
    assert meta["params"]["ema_momentum"] == 0.9
    _, _, val_data, _, _ = train_tiny.make_data()
    model.compile(optimizer=keras.optimizers.Adam(), loss=masked_loss(), weighted_metrics=[MaskedNats()])
    nats = model.evaluate(val_data(), verbose=0, return_dict=True)["nats"]
    assert nats == pytest.approx(summary["val_nats"], rel=1e-5)  # the saved weights are the ones scored
