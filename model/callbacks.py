"""Training side effects as Keras callbacks, one concern each.

All of them share one :class:`TrainState` (epoch, step, clock, history, samples), which the
checkpoint writes and a resumed run reads back. Outputs that DVC declares (``plots/train.csv``,
``reports/evolution.jsonl``) are rewritten whole from that state after every epoch, atomically,
so a killed-and-resumed run (DVC deletes declared outputs before a stage runs) still ends with
the complete history.

- :class:`RunClock`: steps, epoch position and wall time in the state.
- :class:`NanGuard`: stops on a NaN/Inf loss, naming epoch, batch and value.
- :class:`TimeBudget`: stops after ``max_minutes`` of training (across resumes).
- :class:`StepCheckpoint`: a checkpoint every N steps and at every epoch end (never of NaN weights).
- :class:`EpochCSV`: one row per epoch to ``plots/train.csv``.
- :class:`SampleEvolution`: fixed-seed samples after every epoch to ``reports/evolution.jsonl``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from pipeline.common import atomic_path, write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

CSV_COLUMNS = ("epoch", "train_loss", "val_loss", "val_bpc", "lr", "tokens_per_s")


@dataclass
class TrainState:
    """Where training stands; everything a resumed run needs besides weights and optimizer."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0  # completed steps of the unfinished epoch
    global_step: int = 0
    seconds: float = 0.0  # wall time of training so far, over all runs
    train_tokens: float = 0.0  # real targets trained on so far
    train_seconds: float = 0.0  # time inside training steps only (for tokens/s)
    history: list[dict[str, Any]] = field(default_factory=list)
    evolution: list[dict[str, Any]] = field(default_factory=list)
    resumes: list[dict[str, int]] = field(default_factory=list)
    stop_reason: str = ""
    diverged: str = ""  # the NaN message, when training diverged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainState":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Checkpointer:
    """Checkpoint folders ``<dir>/step-<global_step:08d>/`` holding ``ckpt.weights.h5`` (model
    weights and optimizer slots, through Keras ``save_weights``) and ``state.json``.

    Each folder is written under a temporary name and renamed when complete, so a kill at any
    moment leaves the previous checkpoint intact; the newest ``keep`` folders are kept.
    """

    WEIGHTS = "ckpt.weights.h5"
    STATE = "state.json"

    def __init__(self, directory: str | Path, *, fingerprint: dict[str, Any], keep: int = 2) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self.keep = keep

    def complete(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.glob("step-*") if (p / self.STATE).exists() and (p / self.WEIGHTS).exists()]
        return sorted(found, key=lambda p: int(p.name.split("-")[1]))

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def read(self, path: Path) -> tuple[dict[str, Any], TrainState]:
        with open(path / self.STATE, encoding="utf-8") as fh:
            data = json.load(fh)
        return data.get("fingerprint", {}), TrainState.from_dict(data["state"])

    def restore(self, path: Path, model: keras.Model) -> None:
        """Weights, optimizer slots and dropout RNG states from checkpoint ``path`` into ``model``."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path / self.WEIGHTS)
        with open(path / self.STATE, encoding="utf-8") as fh:
            set_rng_states(model, json.load(fh).get("rng", {}))

    def save(self, model: keras.Model, state: TrainState) -> Path | None:
        if not all(np.isfinite(w).all() for w in model.get_weights()):
            log.warning("not checkpointing step %d: weights hold NaN/Inf; keeping the last good checkpoint",
                        state.global_step)
            return None
        final = self.directory / f"step-{state.global_step:08d}"
        tmp = self.directory / f".tmp-step-{state.global_step:08d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_weights(tmp / self.WEIGHTS)
        write_json_atomic(tmp / self.STATE, {"fingerprint": self.fingerprint, "state": state.to_dict(),
                                             "rng": rng_states(model)})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in self.complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        log.debug("checkpoint %s", final)
        return final

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def rng_states(model: keras.Model) -> dict[str, list[int]]:
    """The state of every layer's random seed generator (dropout masks). Keras' ``save_weights``
    leaves them out, and without them a resumed run would draw other dropout masks."""
    from model.carry import plain_model

    return {layer.name: np.asarray(keras.ops.convert_to_numpy(layer.seed_generator.state)).tolist()
            for layer in plain_model(model).layers if getattr(layer, "seed_generator", None) is not None}


def set_rng_states(model: keras.Model, states: dict[str, list[int]]) -> None:
    from model.carry import plain_model

    for layer in plain_model(model).layers:
        if layer.name in states and getattr(layer, "seed_generator", None) is not None:
            sg = layer.seed_generator
            sg.state.assign(np.asarray(states[layer.name], dtype=keras.backend.standardize_dtype(sg.state.dtype)))


class RunClock(keras.callbacks.Callback):
    """Keeps ``state`` step counters and clocks current. ``step_offset``: steps of the current
    epoch already done before this ``fit`` call (a resumed partial epoch)."""

    def __init__(self, state: TrainState, step_offset: int = 0) -> None:
        super().__init__()
        self.state = state
        self.step_offset = step_offset

    def on_train_begin(self, logs=None):
        self._t0 = time.monotonic()
        self._s0 = self.state.seconds

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.monotonic()
        self._epoch_tokens0 = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.state.step_in_epoch = self.step_offset + batch + 1
        self.state.global_step += 1
        now = time.monotonic()
        self.state.seconds = self._s0 + (now - self._t0)
        self.epoch_train_seconds = now - self._epoch_t0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        tokens = float(logs.get("tokens", 0.0))
        secs = getattr(self, "epoch_train_seconds", 0.0)
        self.state.train_tokens += tokens
        self.state.train_seconds += secs
        self.state.epoch = epoch + 1
        self.state.step_in_epoch = 0
        self.step_offset = 0
        self.state.seconds = self._s0 + (time.monotonic() - self._t0)
        logs["tokens_per_s"] = tokens / secs if secs > 0 else 0.0


class NanGuard(keras.callbacks.Callback):
    """Stops training on a NaN or Inf loss and records why; the trainer raises afterwards."""

    def __init__(self, state: TrainState) -> None:
        super().__init__()
        self.state = state
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.state.diverged = (
                f"loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1} "
                f"(global step {self.state.global_step}): training diverged; lower train.learning_rate "
                f"or train.clip_global_norm and run again (the last good checkpoint is kept)"
            )
            self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """Stops after ``max_minutes`` of wall time (counted over resumed runs too); 0 = no limit."""

    def __init__(self, state: TrainState, max_minutes: float) -> None:
        super().__init__()
        self.state = state
        self.max_seconds = float(max_minutes) * 60.0

    def on_train_batch_end(self, batch, logs=None):
        if self.max_seconds > 0 and self.state.seconds >= self.max_seconds and not self.model.stop_training:
            self.state.stop_reason = (f"time budget of {self.max_seconds / 60:g} min reached "
                                      f"at step {self.state.global_step}")
            log.info("%s: finishing this epoch's validation and stopping", self.state.stop_reason)
            self.model.stop_training = True


class StepCheckpoint(keras.callbacks.Callback):
    """A checkpoint every ``every_steps`` global steps (0 = off) and after every epoch."""

    def __init__(self, checkpointer: Checkpointer, state: TrainState, every_steps: int) -> None:
        super().__init__()
        self.checkpointer = checkpointer
        self.state = state
        self.every_steps = int(every_steps)

    def on_train_batch_end(self, batch, logs=None):
        if self.state.diverged or self.every_steps <= 0:
            return
        if self.state.global_step % self.every_steps == 0:
            self.checkpointer.save(self.model, self.state)

    def on_epoch_end(self, epoch, logs=None):
        if not self.state.diverged:
            self.checkpointer.save(self.model, self.state)


def current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    if callable(lr):
        lr = lr(optimizer.iterations)
    return float(keras.ops.convert_to_numpy(lr))


class EpochCSV(keras.callbacks.Callback):
    """Appends a row per epoch to ``state.history`` and rewrites ``path`` (CSV_COLUMNS) from it.

    Must run after :class:`RunClock` (which adds ``tokens_per_s``) and before the checkpoint.
    """

    def __init__(self, path: str | Path, state: TrainState) -> None:
        super().__init__()
        self.path = Path(path)
        self.state = state

    def on_train_begin(self, logs=None):
        self.write()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val = float(logs.get("val_nats", float("nan")))
        row = {
            "epoch": epoch + 1,
            "train_loss": float(logs.get("nats", float("nan"))),
            "val_loss": val,
            "val_bpc": val / math.log(2.0),
            "lr": current_lr(self.model.optimizer),
            "tokens_per_s": float(logs.get("tokens_per_s", 0.0)),
            "steps": self.state.global_step,
            "seconds": round(self.state.seconds, 3),
        }
        self.state.history = [r for r in self.state.history if r["epoch"] < row["epoch"]] + [row]
        self.write()
        log.info("epoch %d: train %.4f nats, val %.4f nats = %.4f bpc, lr %.2e, %.0f tokens/s",
                 row["epoch"], row["train_loss"], val, row["val_bpc"], row["lr"], row["tokens_per_s"])

    def write(self) -> None:
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                for row in self.state.history:
                    writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class SampleEvolution(keras.callbacks.Callback):
    """After every epoch, ``sample_fn(model, prime, temperature)`` for each fixed prime and
    temperature, appended to ``state.evolution`` and written to ``path`` as JSON lines."""

    def __init__(self, path: str | Path, state: TrainState, sample_fn: Callable[[keras.Model, str, float], str],
                 primes: list[str], temperatures: list[float]) -> None:
        super().__init__()
        self.path = Path(path)
        self.state = state
        self.sample_fn = sample_fn
        self.primes = list(primes)
        self.temperatures = [float(t) for t in temperatures]

    def on_train_begin(self, logs=None):
        self.write()

    def on_epoch_end(self, epoch, logs=None):
        if self.state.diverged:
            return
        rows = [r for r in self.state.evolution if r["epoch"] < epoch + 1]
        for prime in self.primes:
            for temperature in self.temperatures:
                text = self.sample_fn(self.model, prime, temperature)
                rows.append({"epoch": epoch + 1, "temperature": temperature, "prime": prime, "text": text})
        self.state.evolution = rows
        self.write()
        if rows:
            log.info("epoch %d sample (T=%g): %r", epoch + 1, rows[-1]["temperature"],
                     rows[-1]["prime"] + rows[-1]["text"][:80])

    def write(self) -> None:
        write_jsonl_atomic(self.path, self.state.evolution, sort_keys=False)
