"""The training core shared by the one-device stage (``model.train``, Keras ``fit``) and the
distributed loop (``model.distribute``): the optimizer and its schedule, the compiled network,
checkpoint fingerprints and resumption, the callbacks, the validation set and the summary.
Both executors import this module; neither imports the other's loop.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot start or continue (diverged, checkpoint for another vocabulary, no data)."""


# Keys that may change between a killed run and its resumption without invalidating the checkpoint.
RESUMABLE_KEYS = {"max_minutes", "checkpoint_every_steps", "keep_checkpoints", "val_max_steps",
                  "xz_context_chars", "evolution"}


def learning_rate_schedule(cfg: Mapping[str, Any], total_steps: int) -> Any:
    """``lr_schedule`` over ``total_steps``: ``constant`` (the peak ``learning_rate``), or ``cosine``:
    ``warmup_steps`` of linear warm-up from a tenth of the peak, then a cosine decay to
    ``min_lr_fraction`` of it at the last step."""
    import keras

    lr = float(cfg["learning_rate"])
    if cfg["lr_schedule"] != "cosine":
        return lr
    warmup = min(int(cfg["warmup_steps"]), max(total_steps - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr * 0.1 if warmup else lr, decay_steps=max(total_steps - warmup, 1),
        alpha=float(cfg["min_lr_fraction"]), warmup_target=lr if warmup else None, warmup_steps=warmup)


OPTIMIZERS = ("adam", "adamw", "rmsprop")


def make_optimizer(cfg: Mapping[str, Any], total_steps: int):
    """The optimizer the ``train`` keys describe: ``optimizer`` (adam, adamw or rmsprop) on the
    learning-rate schedule, gradients clipped to ``clip_global_norm``; ``weight_decay`` decoupled
    from the gradient (Keras applies ``w -= lr_t * weight_decay * w`` before each update, the AdamW
    rule, for every optimizer) on every trainable weight except those whose name holds one of
    ``weight_decay_exclude`` (e.g. ``bias``); ``ema_momentum`` > 0 keeps an exponential moving average
    of the weights (Keras ``use_ema``; :func:`average_weights` puts it in place). Mixed precision wraps
    it in dynamic loss scaling."""
    import keras

    kind = cfg["optimizer"]
    if kind not in OPTIMIZERS:
        raise ValueError(f"train.optimizer = {kind!r}: expected one of {', '.join(OPTIMIZERS)}")
    ema = float(cfg["ema_momentum"])
    common = {"learning_rate": learning_rate_schedule(cfg, total_steps),
              "global_clipnorm": float(cfg["clip_global_norm"]) or None,
              "weight_decay": float(cfg["weight_decay"]) or (0.0 if kind == "adamw" else None),  # AdamW wants a float
              "use_ema": ema > 0, "ema_momentum": ema or 0.99}
    cls = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}[kind]
    opt = cls(**common)
    if cfg["weight_decay_exclude"]:
        opt.exclude_from_weight_decay(var_names=list(cfg["weight_decay_exclude"]))
    if cfg["model"]["mixed_precision"]:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def inner_optimizer(optimizer):
    """The optimizer itself, inside a mixed-precision loss-scale wrapper or not."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def check_weight_decay(cfg: Mapping[str, Any], model) -> None:
    """Every ``weight_decay_exclude`` entry names part of some weight: a typo would silently decay
    everything."""
    names = [v.path for v in model.trainable_variables]
    unused = [part for part in cfg["weight_decay_exclude"] if not any(part in n for n in names)]
    if unused:
        raise TrainingError(f"train.weight_decay_exclude {unused} matches no weight of the network; weight "
                            f"names: {', '.join(names)}")


@contextmanager
def averaging_deferred(optimizer):
    """Within: Keras ``fit`` leaves the trained weights in place at its end instead of swapping in
    the moving average (a resumed run calls ``fit`` twice; the average is put in place once, by
    :func:`average_weights`, after the last epoch)."""
    opt = inner_optimizer(optimizer)
    if not opt.use_ema:
        yield
        return
    opt.finalize_variable_values = lambda var_list: None  # Keras calls it on the instance: shadow it
    try:
        yield
    finally:
        del opt.finalize_variable_values


def average_weights(model) -> bool:
    """With ``ema_momentum``: copy the moving average into the weights (the model then kept);
    returns whether it did."""
    opt = inner_optimizer(model.optimizer)
    if not opt.use_ema:
        return False
    opt.finalize_variable_values(model.trainable_variables)
    return True


def build_and_compile(cfg: Mapping[str, Any], vocab_size: int, total_steps: int, lanes: int = 0):
    """The compiled model and its NetworkConfig; with ``lanes`` (the batch size of a stream that
    carries state) the network wrapped in model/carry.py's CarriedStateModel."""
    from model.losses import MaskedBits, MaskedNats, RealTokens, masked_loss
    from model.network import NetworkConfig, build_model

    net = NetworkConfig(vocab_size=vocab_size, **cfg["model"])
    model = build_model(net)
    if lanes:
        from model.carry import CarriedStateModel

        model = CarriedStateModel(model, lanes)
    check_weight_decay(cfg, model)
    model.compile(optimizer=make_optimizer(cfg, total_steps), loss=masked_loss(),
                  weighted_metrics=[MaskedNats(), MaskedBits(), RealTokens()])
    return model, net


def count_batches(ds) -> int:
    """Batches in ``ds``: its cardinality when known (the loader states it), else counted by a pass."""
    known = int(ds.cardinality().numpy())
    if known >= 0:
        return known
    return int(ds.reduce(0, lambda n, _: n + 1).numpy())


def fingerprint(cfg: Mapping[str, Any], vocab_hash: str, steps_per_epoch: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed. Of ``distribute`` only the cluster's shape
    counts (strategy, number of workers): addresses may change between runs."""
    params = {k: v for k, v in cfg.items() if k not in RESUMABLE_KEYS | {"distribute"}}
    dist = cfg.get("distribute") or {"strategy": "none"}
    if dist["strategy"] != "none":
        params["distribute"] = {"strategy": dist["strategy"], "cpu_devices": dist.get("cpu_devices"),
                                "workers": len(dist.get("workers") or [])}
    return {"vocab_hash": vocab_hash, "steps_per_epoch": steps_per_epoch, "params": params}


def make_sample_fn(vocab, length: int, seed: int) -> Callable:
    """``fn(model, prime, temperature) -> text`` with the stateful sampler of model/sampler.py."""
    from model.sampler import StatefulSampler

    def sample(model, prime: str, temperature: float) -> str:
        from model.carry import plain_model

        model = plain_model(model)
        quiet = logging.getLogger("model.sampler")  # one INFO line per sample: too chatty here
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            sampler = StatefulSampler.from_model(model, vocab)
            return sampler.generate(prime, n=1, length=length, temperature=temperature, seed=seed)[0].text
        finally:
            quiet.setLevel(level)
    return sample


def resume_state(ckpt, model, vocab, steps: int) -> Any:
    """The TrainState to start from: the latest matching checkpoint restored into ``model``, or a
    fresh state (a checkpoint made with other settings is deleted). A checkpoint for another
    vocabulary is a TrainingError: resuming would scramble the characters."""
    from model import callbacks as cb

    latest = ckpt.latest()
    if latest is None:
        return cb.TrainState()
    found, saved = ckpt.read(latest)
    if found.get("vocab_hash") != vocab.hash:
        raise TrainingError(
            f"checkpoint {latest} was trained with vocabulary {found.get('vocab_hash')}, but data/vocab.json "
            f"is {vocab.hash}: resuming would scramble the characters. Restore the vocabulary it was made "
            f"with, or delete {ckpt.directory} to train from scratch")
    if found != ckpt.fingerprint:
        changed = sorted(k for k in set(found.get("params", {})) | set(ckpt.fingerprint["params"])
                         if found.get("params", {}).get(k) != ckpt.fingerprint["params"].get(k))
        log.warning("checkpoint %s was made with other settings (%s): training from scratch",
                    latest, ", ".join(changed) or "steps per epoch")
        ckpt.clear()
        return cb.TrainState()
    ckpt.restore(latest, model)
    saved.stop_reason = ""
    saved.resumes.append({"epoch": saved.epoch, "step_in_epoch": saved.step_in_epoch,
                          "global_step": saved.global_step})
    log.info("resuming from %s: epoch %d, step %d of %d", latest, saved.epoch + 1, saved.step_in_epoch, steps)
    return saved


def validation_dataset(cfg: Mapping[str, Any], val_data: Callable[[], Any]):
    """The val split, cut to ``val_max_steps`` batches, with its cardinality known to Keras."""
    import tensorflow as tf

    val_ds = val_data()
    if cfg["val_max_steps"]:
        val_ds = val_ds.take(int(cfg["val_max_steps"]))
    n_val = count_batches(val_ds)
    if n_val == 0:
        raise TrainingError("the val split has no batches: check data/batches/val")
    return val_ds.apply(tf.data.experimental.assert_cardinality(n_val))  # lets Keras size its epochs


def make_callbacks(cfg: Mapping[str, Any], state, ckpt, step_offset: int, *, csv_path: Path, evolution_path: Path,
                   sample_fn: Callable, tensorboard_dir: Path | None) -> list:
    """One callback per side effect (model/callbacks.py), TensorBoard last when it has a folder."""
    import keras

    from model import callbacks as cb

    evo = cfg["evolution"]
    cbs = [cb.NanGuard(state), cb.RunClock(state, step_offset), cb.TimeBudget(state, cfg["max_minutes"]),
           cb.EpochCSV(csv_path, state),
           cb.SampleEvolution(evolution_path, state, sample_fn, evo["primes"], evo["temperatures"]),
           cb.StepCheckpoint(ckpt, state, int(cfg["checkpoint_every_steps"]))]
    if tensorboard_dir is not None:
        cbs.append(keras.callbacks.TensorBoard(str(tensorboard_dir), write_graph=False, profile_batch=0))
    return cbs


def summarize(state, model, steps: int, epochs: int, averaged_val_nats: float | None = None) -> dict[str, Any]:
    """metrics/train.json (less the xz baseline) from the last finished epoch. With
    ``averaged_val_nats`` (the val score of the moving average, the weights kept) the val figures are
    the average's, and ``last_weights_val_bpc`` the last epoch's trained weights'."""
    from model.losses import nats_to_bpc, perplexity

    last = state.history[-1]
    val_nats = last["val_loss"] if averaged_val_nats is None else averaged_val_nats
    out = {
        "train_nats": last["train_loss"], "train_bpc": nats_to_bpc(last["train_loss"]),
        "train_perplexity": perplexity(last["train_loss"]),
        "val_nats": val_nats, "val_bpc": nats_to_bpc(val_nats), "val_perplexity": perplexity(val_nats),
        "tokens_per_s": state.train_tokens / state.train_seconds if state.train_seconds else 0.0,
        "epochs": state.epoch, "steps": state.global_step, "steps_per_epoch": steps,
        "seconds": round(state.seconds, 2), "resumes": len(state.resumes),
        "stop_reason": state.stop_reason or f"{epochs} epochs done",
        "parameters": int(model.count_params()),
    }
    if averaged_val_nats is not None:
        out["last_weights_val_bpc"] = last["val_bpc"]
    return out
