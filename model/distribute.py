"""Training on several devices or machines with ``tf.distribute`` (the ``train.distribute`` params).

``strategy: none`` never comes here: ``model.train.fit`` runs Keras ``fit``. Both executors build
on the shared core in :mod:`model.training`.
``mirrored`` (every local GPU, or ``cpu_devices`` logical CPU devices when there is none) and
``multi_worker`` (one process per machine, ``workers`` = ``host:port`` list or ``TF_CONFIG``)
share one custom training loop, because:

- Keras 3 ``fit`` under ``MultiWorkerMirroredStrategy`` fails (tensorflow/tensorflow#72388) and we
  patch no private Keras/TF code;
- under any strategy ``fit`` averages per-replica masked means, while the loss must stay the mean
  over the real characters of the *global* batch; and Keras' optimizer clips each replica's
  gradient before summing them, while ``clip_global_norm`` means the norm of the global gradient.

So a step (``tf.function``) runs the same Keras layers on every replica's rows, each replica sums
its masked cross-entropy and divides by the global batch's real-character count (an all-reduce
of the replicas' counts), gradients are summed across replicas (one batched all-reduce), and the Keras optimizer
(clipping included) applies the summed gradient in cross-replica context, exactly as one process
would. The global batch stays ``batches.batch_size``, so hyperparameters mean the same at any
scale and no learning-rate rule applies. Each worker reads only its share of every batch
(``model.data`` shares: contiguous rows, the same batch order on every worker, all rows of one
bucket length: no re-padding, no bucket mixing), and its replicas split that share the same way;
the global batch's real-character count, which every replica divides by, is one more all-reduce.
Validation streams the val split (each worker its share) on every pass; nothing holds a split.

Only the chief (task 0) writes the declared outputs and checkpoints; the other workers run the
same callbacks into a temporary folder that is deleted at the end (TensorFlow's recipe: every
worker does the same work, so none waits long in a collective). On start the chief's weights,
optimizer slots, dropout RNG states and position (restored from its last checkpoint, or fresh) are
broadcast to every worker, so a restarted cluster resumes where the chief's checkpoint stands.
A dead worker makes the next collective fail (after ``timeout_s`` at most) and every survivor
stops with :class:`~model.training.TrainingError`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model import training as tr
from model.data import share_rows
from pipeline.config import setting

log = logging.getLogger(__name__)

STRATEGIES = ("none", "mirrored", "multi_worker")
def _host_ports(workers: list) -> str | None:
    bad = [w for w in workers if not (isinstance(w, str) and _host_port(w))]
    return f"expected 'host:port' items, got {bad!r}" if bad else None


@dataclass(frozen=True)
class DistributeConfig:
    """``train.distribute`` (values and meanings in params.yaml)."""

    strategy: str = setting(choices=STRATEGIES)
    workers: list[str] = setting(check=_host_ports)  # TF_CONFIG wins when set
    cpu_devices: int = setting(ge=1)
    timeout_s: float = setting(gt=0)


def _host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit()


def tf_config(dist: Mapping[str, Any], task_index: int | None) -> dict[str, Any]:
    """The cluster as TF_CONFIG: the environment's when set, else built from ``workers``."""
    if os.environ.get("TF_CONFIG"):
        conf = json.loads(os.environ["TF_CONFIG"])
        index = int(conf.get("task", {}).get("index", 0))
        if task_index is not None and task_index != index:
            raise tr.TrainingError(f"--task-index {task_index} disagrees with TF_CONFIG's task index {index}")
        return conf
    workers = list(dist["workers"])
    if len(workers) < 1:
        raise tr.TrainingError("train.distribute.strategy is multi_worker but train.distribute.workers is empty and "
                            "TF_CONFIG is not set: list every worker's host:port, chief first")
    if task_index is None or not 0 <= task_index < len(workers):
        raise tr.TrainingError(f"multi_worker needs --task-index 0..{len(workers) - 1} (0 = chief), got {task_index}")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": task_index}}


def make_strategy(dist: Mapping[str, Any], task_index: int | None = None):
    """``(strategy, task_index, n_workers)`` for ``mirrored`` or ``multi_worker``. Must run before
    TensorFlow touches a device (logical CPU devices cannot be set up afterwards)."""
    import tensorflow as tf

    if dist["strategy"] == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(dist["cpu_devices"]))])
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        else:
            devices = None  # every local GPU
        return tf.distribute.MirroredStrategy(devices=devices), 0, 1
    conf = tf_config(dist, task_index)
    os.environ["TF_CONFIG"] = json.dumps(conf)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(dist["timeout_s"]))
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return strategy, int(conf["task"]["index"]), len(conf["cluster"]["worker"])


replica_rows = share_rows  # the rows of a batch of n that one of a worker's replicas trains on


class Steps:
    """The compiled train and eval steps and the chief-to-all broadcast, for one model."""

    def __init__(self, strategy, model) -> None:
        import keras
        import tensorflow as tf

        self.strategy, self.model = strategy, model
        self.replicas = strategy.num_replicas_in_sync
        self.local_replicas = len(strategy.extended.worker_devices)
        sum_op = tf.distribute.ReduceOp.SUM

        def masked_ce_sum(x, y, m, training):
            logits = model(x, training=training)
            ce = keras.losses.sparse_categorical_crossentropy(y, tf.cast(logits, tf.float32), from_logits=True)
            return tf.reduce_sum(ce * m)

        def replica_train(x, y, m):
            ctx = tf.distribute.get_replica_context()
            total = ctx.all_reduce(sum_op, tf.reduce_sum(m))  # the global batch's real characters
            with tf.GradientTape() as tape:
                ce_sum = masked_ce_sum(x, y, m, True)
                loss = ce_sum / tf.maximum(total, 1.0)  # this replica's share of the global-batch mean
                scaled = model.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, model.trainable_variables)]
            reduced = ctx.all_reduce(sum_op, grads + [ce_sum])
            return reduced[:-1], reduced[-1], total

        def train_step(dist_x, dist_y, dist_m):
            grads, ce_sum, total = strategy.run(replica_train, args=(dist_x, dist_y, dist_m))
            local = strategy.experimental_local_results
            grads = [local(g)[0] for g in grads]  # identical on every replica after the all-reduce
            model.optimizer.apply(grads, model.trainable_variables)  # clipping sees the global gradient
            return local(ce_sum)[0], local(total)[0]

        def replica_eval(x, y, m):
            return tf.distribute.get_replica_context().all_reduce(
                sum_op, tf.stack([masked_ce_sum(x, y, m, False), tf.reduce_sum(m)]))

        def eval_step(dist_x, dist_y, dist_m):
            return strategy.experimental_local_results(strategy.run(replica_eval, args=(dist_x, dist_y, dist_m)))[0]

        def replica_flag(flag):
            return tf.distribute.get_replica_context().all_reduce(sum_op, [tf.identity(flag)])[0]

        def any_step(flag):
            return strategy.experimental_local_results(strategy.run(replica_flag, args=(flag,)))[0]

        self._train = tf.function(train_step, reduce_retracing=True)
        self._eval = tf.function(eval_step, reduce_retracing=True)
        self._any = tf.function(any_step)

    def distribute(self, batch) -> tuple:
        """This worker's ``(x, y, mask)`` rows (numpy) as per-replica values, contiguous rows each.
        Replica ids run worker by worker (``task * local replicas + local index``)."""
        n, local = batch[0].shape[0], self.local_replicas

        def part(i):
            return self.strategy.experimental_distribute_values_from_function(
                lambda ctx: batch[i][replica_rows(n, ctx.replica_id_in_sync_group % local, local)])
        return part(0), part(1), part(2)

    def train(self, batch) -> tuple[float, float]:
        """One optimizer step on a global batch (this worker's share of it); returns the global
        batch's summed masked cross-entropy (nats) and its real characters."""
        ce_sum, total = self._train(*self.distribute(batch))
        return float(ce_sum), float(total)

    def evaluate(self, batch) -> tuple[float, float]:
        """The global batch's summed masked cross-entropy (nats) and real characters."""
        ce_sum, total = self._eval(*self.distribute(batch)).numpy().tolist()
        return ce_sum, total

    def any(self, flag: bool) -> bool:
        """True on every worker when any worker passes True (stop decisions must be unanimous)."""
        import tensorflow as tf

        return float(self._any(tf.constant(1.0 if flag else 0.0, tf.float32))) > 0

    def broadcast_from_chief(self, variables: list) -> None:
        """Give every replica replica 0's values (the chief's): an all-reduce sum in which the
        others contribute zeros, in float64 (exact for float32 weights and 32-bit counters)."""
        import tensorflow as tf

        strategy = self.strategy

        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            keep = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.float64)
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, [tf.cast(v, tf.float64) * keep for v in variables])

        values = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica_fn))())[0]
        for v, value in zip(variables, values):
            v.assign(tf.cast(value, v.dtype))


def state_variables(model) -> list:
    """Everything that must agree across workers: weights, optimizer slots and step, dropout RNG."""
    seen, out = set(), []
    for v in [*model.variables, *model.optimizer.variables,
              *[layer.seed_generator.state for layer in model.layers if getattr(layer, "seed_generator", None)]]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _to_numpy(batch) -> tuple:
    return tuple(np.asarray(t) for t in batch)


def _passes(dataset) -> Callable[[], Iterator[tuple]]:
    """A function giving a fresh pass over ``dataset`` as numpy batches each time it is called."""
    return lambda: (_to_numpy(b) for b in dataset)


def fit_distributed(cfg: Mapping[str, Any], *, vocab, train_data: Callable[..., Any], val_data: Callable[..., Any],
                    model_dir: Path, checkpoint_dir: Path, csv_path: Path, evolution_path: Path,
                    tensorboard_dir: Path | None = None, extra_callbacks: list | None = None,
                    task_index: int | None = None) -> tuple[Any, dict[str, Any]]:
    """``model.train.fit`` for ``mirrored`` and ``multi_worker`` (same arguments, same outputs,
    written by the chief only). Returns ``(model, summary)``; on a non-chief ``summary`` is None.
    ``train_data(seed, share=...)`` and ``val_data(share=...)`` are called with this worker's
    share ``(task, workers)`` of every batch (``None``: whole batches, one worker)."""
    import keras
    import tensorflow as tf

    from model import callbacks as cb
    from model.artifacts import save_trained

    dist = cfg["distribute"]
    strategy, task, n_workers = make_strategy(dist, task_index)
    chief = task == 0
    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    share = (task, n_workers) if n_workers > 1 else None
    n_batches = tr.count_batches(train_data(seed, share=share))
    if n_batches == 0:
        raise tr.TrainingError("the train split has no batches: check data/batches/train "
                               "(did `dvc repro batches` run?)")
    steps = min(n_batches, int(cfg["max_steps_per_epoch"])) if cfg["max_steps_per_epoch"] else n_batches
    epochs = int(cfg["epochs"])
    with strategy.scope():
        model, net = tr.build_and_compile(cfg, len(vocab), steps * epochs)
        model.optimizer.build(model.trainable_variables)
    run = Steps(strategy, model)

    scratch = None if chief else Path(tempfile.mkdtemp(prefix=f"kopitiam-worker{task}-"))
    if scratch is not None:  # same work as the chief, into a folder nobody reads
        checkpoint_dir, csv_path, evolution_path = scratch / "ckpt", scratch / "train.csv", scratch / "evo.jsonl"
        tensorboard_dir = None
    try:
        ckpt = cb.Checkpointer(checkpoint_dir, fingerprint=tr.fingerprint(cfg, vocab.hash, steps))
        state = _resume(ckpt, cfg, model, vocab, steps) if chief else cb.TrainState()
        _agree_on_start(run, model, state)
        if chief and not state.resumes and tensorboard_dir is not None:
            shutil.rmtree(tensorboard_dir, ignore_errors=True)
        evo = cfg["evolution"]
        callbacks = tr.make_callbacks(cfg, state, ckpt, state.step_in_epoch, csv_path=csv_path,
                                      evolution_path=evolution_path,
                                      sample_fn=tr.make_sample_fn(vocab, int(evo["length"]), int(evo["seed"])),
                                      tensorboard_dir=tensorboard_dir) + list(extra_callbacks or [])
        val = _passes(tr.validation_dataset(cfg, lambda: val_data(share=share)))
        log.info("training %s on %d replicas (%d worker%s, this is task %d%s): %d steps per epoch, %d epochs",
                 net, run.replicas, n_workers, "s" if n_workers > 1 else "", task, ", the chief" if chief else "",
                 steps, epochs)
        try:
            _run_epochs(run, cfg, state, callbacks, train_data=lambda s: train_data(s, share=share), val=val,
                        steps=steps, agree=n_workers > 1)
        except tf.errors.OpError as err:
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            raise tr.TrainingError(
                f"worker {task}: a collective with the other workers failed ({type(err).__name__}: {first}); "
                f"a worker stopped or is unreachable. Stop every worker and start them all again: training "
                f"resumes from the chief's last checkpoint in {checkpoint_dir}") from None
        if state.diverged:
            raise tr.TrainingError(state.diverged)
        if not state.history:
            raise tr.TrainingError(f"no epoch finished; checkpoints are in {checkpoint_dir}")
        averaged_val = _average_and_validate(run, val)
        if not chief:
            return model, None
        summary = tr.summarize(state, model, steps, epochs, averaged_val_nats=averaged_val)
        meta = {"network": net.to_dict(), "params": {k: v for k, v in cfg.items() if k != "distribute"},
                "distribute": {"strategy": dist["strategy"], "workers": n_workers, "replicas": run.replicas},
                "history": state.history, **summary}
        save_trained(model_dir, model, vocab, meta)
        if not cfg["keep_checkpoints"]:
            ckpt.clear()
        return model, summary
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def validate(run: Steps, val: Callable[[], Iterator[tuple]]) -> float:
    """Mean nats per real character over one streamed pass of the val split."""
    ce = tokens = 0.0
    for batch in val():
        batch_ce, batch_tokens = run.evaluate(batch)
        ce, tokens = ce + batch_ce, tokens + batch_tokens
    return ce / max(tokens, 1.0)


def _average_and_validate(run: Steps, val: Callable[[], Iterator[tuple]]) -> float | None:
    """With ``ema_momentum``: the moving average put in place (on every worker) and its val nats."""
    if not tr.average_weights(run.model):
        return None
    return validate(run, val)


def _resume(ckpt, cfg: Mapping[str, Any], model, vocab, steps: int):
    """The chief's TrainState, its last checkpoint (if any) copied into ``model``. Keras' weight
    loading creates variables, and creating variables under the strategy is a collective the other
    workers would not join; so the checkpoint is loaded into a twin built outside the strategy."""
    if ckpt.latest() is None:
        return tr.resume_state(ckpt, model, vocab, steps)  # fresh (no load, no variables created)
    twin, _ = tr.build_and_compile(cfg, len(vocab), steps * int(cfg["epochs"]))
    twin.optimizer.build(twin.trainable_variables)
    state = tr.resume_state(ckpt, twin, vocab, steps)
    if state.resumes:
        for dst, src in zip(state_variables(model), state_variables(twin), strict=True):
            if tuple(dst.shape) != tuple(src.shape):
                raise tr.TrainingError(f"checkpoint variable {src.name} has shape {tuple(src.shape)}, "
                                       f"the model's {dst.name} {tuple(dst.shape)}")
            dst.assign(src.numpy())
    return state


def _agree_on_start(run: Steps, model, state) -> None:
    """Every worker takes the chief's weights, optimizer, RNG and position (epoch, step)."""
    import tensorflow as tf

    run.broadcast_from_chief(state_variables(model))
    pos = tf.Variable([state.epoch, state.step_in_epoch, state.global_step], dtype=tf.float64)
    run.broadcast_from_chief([pos])
    state.epoch, state.step_in_epoch, state.global_step = (int(v) for v in pos.numpy())


def _run_epochs(run: Steps, cfg: Mapping[str, Any], state, callbacks: list, *, train_data: Callable[[int], Any],
                val: Callable[[], Iterator[tuple]], steps: int, agree: bool) -> None:
    """The epochs from where ``state`` stands, driving the Keras callbacks as ``fit`` would (batch
    logs ``loss``; epoch logs ``nats``, ``tokens``, ``val_nats``) with the same batch order."""
    import keras

    from model.losses import LN2

    model = run.model
    cbs = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    seed, epochs = int(cfg["seed"]), int(cfg["epochs"])
    cbs.on_train_begin()
    for epoch in range(state.epoch, epochs):
        skip = state.step_in_epoch
        cbs.on_epoch_begin(epoch)
        ce_total = tokens = 0.0
        for i, batch in enumerate(train_data(seed + epoch).take(steps).skip(skip)):
            ce_sum, n_real = run.train(_to_numpy(batch))
            ce_total, tokens = ce_total + ce_sum, tokens + n_real
            cbs.on_train_batch_end(i, {"loss": ce_sum / max(n_real, 1.0)})
            if agree:
                model.stop_training = run.any(model.stop_training)
            if model.stop_training:
                break
        nats, val_nats = ce_total / max(tokens, 1.0), validate(run, val)
        logs = {"loss": nats, "nats": nats, "bpc": nats / LN2, "tokens": tokens,
                "val_loss": val_nats, "val_nats": val_nats, "val_bpc": val_nats / LN2}
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training or state.diverged or state.stop_reason:
            break
    cbs.on_train_end()
