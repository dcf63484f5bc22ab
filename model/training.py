"""The training core shared by the one-device stage (``model.train``, Keras ``fit``) and the
distributed loop (``model.distribute``): the optimizer and its schedule, the compiled network,
checkpoint fingerprints and resumption, the callbacks, the validation set and the summary.
Both executors import this module; neither imports the other's loop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot start or continue (diverged, checkpoint for another vocabulary, no data)."""


# Keys that may change between a killed run and its resumption without invalidating the checkpoint.
RESUMABLE_KEYS = {"max_minutes", "checkpoint_every_steps", "keep_checkpoints", "val_max_steps",
                  "xz_context_chars", "evolution"}


def make_optimizer(cfg: Mapping[str, Any], total_steps: int):
    import keras

    lr = float(cfg["learning_rate"])
    schedule: Any = lr
    if cfg["lr_schedule"] == "cosine":
        warmup = min(int(cfg["warmup_steps"]), max(total_steps - 1, 0))
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * 0.1 if warmup else lr, decay_steps=max(total_steps - warmup, 1),
            alpha=float(cfg["min_lr_fraction"]), warmup_target=lr if warmup else None, warmup_steps=warmup)
    clip = float(cfg["clip_global_norm"]) or None
    cls = keras.optimizers.Adam if cfg["optimizer"] == "adam" else keras.optimizers.RMSprop
    opt = cls(learning_rate=schedule, global_clipnorm=clip)
    if cfg["model"]["mixed_precision"]:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


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


def summarize(state, model, steps: int, epochs: int) -> dict[str, Any]:
    """metrics/train.json (less the xz baseline) from the last finished epoch."""
    from model.losses import nats_to_bpc, perplexity

    last = state.history[-1]
    return {
        "train_nats": last["train_loss"], "train_bpc": nats_to_bpc(last["train_loss"]),
        "train_perplexity": perplexity(last["train_loss"]),
        "val_nats": last["val_loss"], "val_bpc": last["val_bpc"], "val_perplexity": perplexity(last["val_loss"]),
        "tokens_per_s": state.train_tokens / state.train_seconds if state.train_seconds else 0.0,
        "epochs": state.epoch, "steps": state.global_step, "steps_per_epoch": steps,
        "seconds": round(state.seconds, 2), "resumes": len(state.resumes),
        "stop_reason": state.stop_reason or f"{epochs} epochs done",
        "parameters": int(model.count_params()),
    }
