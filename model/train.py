"""Stage ``train``: fit the character LSTM on the length-bucketed batches, resumably.

Reads ``data/batches/{train,val}`` (through ``model.data.make_dataset``), ``data/vocab.json`` and,
for the compressor baseline, ``data/split/{train,val}.parquet``. Writes ``models/lstm/`` (model,
vocabulary, meta), ``metrics/train.json``, ``plots/train.csv``, ``reports/evolution.jsonl`` and
``logs/tensorboard/``. Checkpoints go to ``checkpoints/train/``, which is *not* a DVC output
(DVC deletes outputs before a stage runs), so a killed ``dvc repro`` resumes where it stopped.
Params: the ``train`` section (checked by TrainConfig; values in params.yaml, meanings in
docs/model.md#train) and ``kernels`` (model/kernels.py: the CPU kernels, pinned before training starts).

Keras ``fit`` drives training (progress bar, callbacks, TensorBoard); every side effect is a
callback in :mod:`model.callbacks`. Keras' own ``BackupAndRestore`` restarts an interrupted epoch
from its beginning, so resumption here is our own: a checkpoint stores weights, optimizer slots
and the position (epoch, step); a resumed run skips the batches already trained on in that epoch
(each epoch's order is a pure function of ``seed + epoch``), so it sees the same batches in the
same order as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from model import kernels
from model.distribute import DistributeConfig
from model.network import NetworkConfig
from model.training import (
    OPTIMIZERS,
    TrainingError,
    average_weights,
    averaging_deferred,
    build_and_compile,
    count_batches,
    fingerprint,
    make_callbacks,
    make_sample_fn,
    resume_state,
    summarize,
    validation_dataset,
)
from pipeline.common import load_params
from pipeline.config import section, setting

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EvolutionConfig:
    """``train.evolution``: samples after every epoch -> reports/evolution.jsonl."""

    primes: list[str]
    temperatures: list[float] = setting(gt=0)
    length: int = setting(ge=1)  # characters per sample
    seed: int = setting(ge=0)


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section of params.yaml (values and meanings there; ``model`` is checked by
    NetworkConfig)."""

    seed: int = setting(ge=0)
    model: NetworkConfig
    optimizer: str = setting(choices=OPTIMIZERS)
    learning_rate: float = setting(gt=0)
    weight_decay: float = setting(ge=0)  # decoupled (AdamW rule): w -= lr_t * weight_decay * w each step
    weight_decay_exclude: list[str]  # weights whose name holds one of these keep out of the decay
    ema_momentum: float = setting(ge=0, lt=1)  # 0 = off; else the kept model is the weights' moving average
    lr_schedule: str = setting(choices=("cosine", "constant"))
    warmup_steps: int = setting(ge=0)
    min_lr_fraction: float = setting(ge=0, le=1)
    clip_global_norm: float = setting(ge=0)
    deterministic_ops: bool  # TensorFlow op determinism (bit-identical reruns on every device)
    epochs: int = setting(ge=1)
    max_steps_per_epoch: int = setting(ge=0)
    val_max_steps: int = setting(ge=0)
    max_minutes: float = setting(ge=0)
    checkpoint_every_steps: int = setting(ge=0)
    keep_checkpoints: bool
    xz_context_chars: int = setting(ge=0)
    evolution: EvolutionConfig
    distribute: DistributeConfig

    def __post_init__(self) -> None:
        if self.optimizer == "adam" and self.weight_decay:
            raise ValueError(f"train.optimizer adam with train.weight_decay {self.weight_decay}: Adam with "
                             f"decoupled weight decay is adamw; set train.optimizer: adamw")


def load_config(params: Mapping[str, Any] | None = None, path: str = "params.yaml") -> dict[str, Any]:
    """The ``train`` section of ``params`` (or of the file ``path``), checked by TrainConfig, with the
    ``kernels`` section under ``kernels`` (model/kernels.py: they make the weights what they are)."""
    params = load_params(path) if params is None else params
    return {**section("train", TrainConfig, params, path=path), "kernels": kernels.load_config(params)}


def run_epochs(model, cfg: Mapping[str, Any], state, *, train_data: Callable[[int], Any], val_ds, steps: int,
               make_callbacks: Callable[[int], list], verbose: int | str) -> None:
    """Keras ``fit`` from where ``state`` stands: the rest of an interrupted epoch first (its done
    batches skipped), then the remaining epochs, each in the order fixed by ``seed + epoch``."""
    import tensorflow as tf

    seed, epochs = int(cfg["seed"]), int(cfg["epochs"])

    def epoch_ds(epoch: int):
        return train_data(seed + epoch).take(steps).apply(tf.data.experimental.assert_cardinality(steps))

    with averaging_deferred(model.optimizer):  # a resumed run fits twice: average the weights once, after
        if state.step_in_epoch and state.epoch < epochs:  # finish the interrupted epoch first
            done = state.step_in_epoch
            rest = epoch_ds(state.epoch).skip(done).apply(tf.data.experimental.assert_cardinality(steps - done))
            model.fit(rest, epochs=state.epoch + 1, initial_epoch=state.epoch,
                      steps_per_epoch=steps - done, validation_data=val_ds, callbacks=make_callbacks(done),
                      verbose=verbose, shuffle=False)
        if state.epoch < epochs and not (state.diverged or state.stop_reason):
            ds = epoch_ds(state.epoch)
            for e in range(state.epoch + 1, epochs):
                ds = ds.concatenate(epoch_ds(e))
            model.fit(ds, epochs=epochs, initial_epoch=state.epoch, steps_per_epoch=steps,
                      validation_data=val_ds, callbacks=make_callbacks(0), verbose=verbose, shuffle=False)


def fit(cfg: Mapping[str, Any], *, vocab, train_data: Callable[..., Any], val_data: Callable[..., Any],
        model_dir: Path, checkpoint_dir: Path, csv_path: Path, evolution_path: Path,
        tensorboard_dir: Path | None = None, verbose: int | str = "auto",
        extra_callbacks: list | None = None, task_index: int | None = None,
        carry_lanes: int = 0) -> tuple[Any, dict[str, Any]]:
    """Train (or resume) and save the model folder. ``train_data(seed)`` yields one epoch of
    ``(inputs, targets, mask)`` batches in an order fixed by ``seed``; ``val_data()`` the val split.
    ``carry_lanes`` > 0: the batches are model/data.py's carried-state kind (inputs a dict) with
    streams of that many rows, and the LSTM state is carried across them (model/carry.py).
    Returns ``(model, summary)``; raises TrainingError on divergence or a foreign checkpoint.
    ``train.distribute.strategy`` other than ``none`` hands over to model/distribute.py (there
    ``task_index`` picks the worker; a non-chief returns ``(model, None)`` and writes nothing; the
    data callables also take ``share=(task, workers)``, and return only that part of every batch)."""
    if cfg.get("distribute", {}).get("strategy", "none") != "none":
        from model.distribute import fit_distributed

        return fit_distributed(cfg, vocab=vocab, train_data=train_data, val_data=val_data, model_dir=model_dir,
                               checkpoint_dir=checkpoint_dir, csv_path=csv_path, evolution_path=evolution_path,
                               tensorboard_dir=tensorboard_dir, extra_callbacks=extra_callbacks,
                               task_index=task_index)
    import keras
    import tensorflow as tf

    from model import callbacks as cb
    from model.artifacts import save_trained

    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    if cfg.get("deterministic_ops", True):
        tf.config.experimental.enable_op_determinism()

    n_batches = count_batches(train_data(seed))
    if n_batches == 0:
        raise TrainingError("the train split has no batches: check data/batches/train (did `dvc repro batches` run?)")
    steps = min(n_batches, int(cfg["max_steps_per_epoch"])) if cfg["max_steps_per_epoch"] else n_batches
    epochs = int(cfg["epochs"])
    model, net = build_and_compile(cfg, len(vocab), steps * epochs, lanes=carry_lanes)

    ckpt = cb.Checkpointer(checkpoint_dir, fingerprint=fingerprint(cfg, vocab.hash, steps))
    state = resume_state(ckpt, model, vocab, steps)
    if not state.resumes and tensorboard_dir is not None:
        import shutil
        shutil.rmtree(tensorboard_dir, ignore_errors=True)

    evo = cfg["evolution"]
    sample_fn = make_sample_fn(vocab, int(evo["length"]), int(evo["seed"]))
    val_ds = validation_dataset(cfg, val_data)

    def callbacks(step_offset: int) -> list:
        return make_callbacks(cfg, state, ckpt, step_offset, csv_path=csv_path, evolution_path=evolution_path,
                              sample_fn=sample_fn, tensorboard_dir=tensorboard_dir) + list(extra_callbacks or [])

    from model.carry import plain_model

    log.info("training %s: %d steps per epoch (%d batches in the split), %d epochs, %s parameters",
             net, steps, n_batches, epochs, f"{plain_model(model).count_params():,}")  # not the kept state
    run_epochs(model, cfg, state, train_data=train_data, val_ds=val_ds, steps=steps, make_callbacks=callbacks,
               verbose=verbose)
    if state.diverged:
        raise TrainingError(state.diverged)
    if not state.history:
        raise TrainingError(f"no epoch finished; checkpoints are in {checkpoint_dir}")

    averaged = average_weights(model)
    val_nats = float(model.evaluate(val_ds, verbose=0, return_dict=True)["nats"]) if averaged else None
    model = plain_model(model)
    summary = summarize(state, model, steps, epochs, averaged_val_nats=val_nats)
    # distribute is how, not what, was trained: the same model folder whatever the strategy
    meta = {"network": net.to_dict(), "params": {k: v for k, v in cfg.items() if k != "distribute"},
            "history": state.history, **summary}
    save_trained(model_dir, model, vocab, meta)
    if not cfg["keep_checkpoints"]:
        ckpt.clear()
    return model, summary


def xz_bpc(train_texts: list[str], val_texts, vocab, context_chars: int | None = 4_000_000) -> dict[str, Any]:
    """Bits per character ``xz -9`` spends on the val text after seeing (the tail of) the train text,
    and alone; texts rendered as the evaluate stage does (``model.baselines.compressor_bpc``: UNK and
    END as their own symbols), so the count (characters + one END per document) is the model's.
    ``val_texts``: a list, or a ``model.baselines.RenderedSplit`` (streamed from its file)."""
    from model.baselines import compressor_bpc

    try:
        got = compressor_bpc("xz_9", train_texts, val_texts, vocab, context_chars)
    except ValueError:
        raise TrainingError("the val split is empty: no baseline to compare against") from None
    return {"xz9_val_bpc": got["bpc"], "xz9_val_alone_bpc": got["alone_bpc"],
            "xz9_context_chars": got["context_chars"], "val_chars": got["targets"]}


def _xz_from_splits(split_dir: Path, vocab, context_chars: int, seed: int) -> dict[str, Any]:
    from model.baselines import RenderedSplit
    from model.splits import sample_texts

    texts, seen = sample_texts(split_dir / "train.parquet", context_chars, seed)
    got = xz_bpc(texts, RenderedSplit(str(split_dir / "val.parquet"), vocab), vocab, None)
    return {**got, "xz9_train_sample": seen.as_dict()}


def xz_baseline(split_dir: Path, vocab, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``xz_bpc`` of the split files in bounded memory: the train text is a seeded sample of whole
    documents holding at most ``xz_context_chars`` characters (``model.splits.sample_texts`` with
    ``train.seed``: the whole split when it fits), the val split is streamed through xz, and it all
    runs in a spawned process, so xz's memory (up to 0.7 GB) is never added to TensorFlow's."""
    from model.baselines import spawn_pool

    with spawn_pool(1) as pool:
        return pool.submit(_xz_from_splits, Path(split_dir), vocab, int(cfg["xz_context_chars"]),
                           int(cfg["seed"])).result()


def carried_state(stats: Mapping[str, Any], cfg: Mapping[str, Any]) -> bool:
    """Whether to carry the LSTM state across stream batches: the batches were built for it
    (``batches.carry_state``) and training runs on one device (the distributed loop starts every
    chunk from zero: said once in the log)."""
    if not stats.get("carry_state"):
        return False
    strategy = (cfg.get("distribute") or {}).get("strategy", "none")
    if strategy != "none":
        log.warning("train.distribute.strategy %s does not carry the LSTM state across chunks: long documents' "
                    "chunks start from a zero state", strategy)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    from pipeline.common import setup_logging, write_json_atomic
    from pipeline.vocab import Vocab

    ap = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=Path, default=Path("data/batches"))
    ap.add_argument("--vocab", type=Path, default=Path("data/vocab.json"))
    ap.add_argument("--splits", type=Path, default=Path("data/split"), help="split Parquet files (xz baseline)")
    ap.add_argument("--model-dir", type=Path, default=Path("models/lstm"))
    ap.add_argument("--checkpoints", type=Path, default=Path("checkpoints/train"))
    ap.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    ap.add_argument("--plots", type=Path, default=Path("plots/train.csv"))
    ap.add_argument("--evolution", type=Path, default=Path("reports/evolution.jsonl"))
    ap.add_argument("--tensorboard", type=Path, default=Path("logs/tensorboard"))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--verbose", default="auto", help="Keras fit verbosity: auto (progress bar), 0, 1, 2")
    ap.add_argument("--task-index", type=int, default=None,
                    help="train.distribute.strategy multi_worker: this worker's index in train.distribute.workers "
                         "(0 = the chief, which alone writes outputs); TF_CONFIG's when unset")
    args = ap.parse_args(argv)
    setup_logging()
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    if verbose == "auto" and not sys.stdout.isatty():
        verbose = 2  # one line per epoch in logs instead of thousands of progress-bar redraws

    cfg = load_config(path=args.params)
    kernels.pin(cfg["kernels"], "model.train")
    from model.data import dataset_stats, make_dataset

    vocab = Vocab.load(args.vocab)
    for split in ("train", "val"):
        stats = dataset_stats(args.batches, split)
        if stats["vocab_hash"] != vocab.hash:
            log.error("%s/%s was encoded with vocabulary %s, but %s is %s: rerun `dvc repro batches`",
                      args.batches, split, stats["vocab_hash"], args.vocab, vocab.hash)
            return 1
    carry = carried_state(stats, cfg)
    try:
        model, summary = fit(
            cfg, vocab=vocab,
            train_data=lambda s, share=None: make_dataset(args.batches, "train", seed=s, carry=carry, share=share),
            val_data=lambda share=None: make_dataset(args.batches, "val", carry=carry, share=share),
            model_dir=args.model_dir, checkpoint_dir=args.checkpoints, csv_path=args.plots,
            evolution_path=args.evolution, tensorboard_dir=args.tensorboard, verbose=verbose,
            task_index=args.task_index, carry_lanes=stats["batch_size"] if carry else 0)
    except TrainingError as err:
        log.error("%s", err)
        return 1
    if summary is None:
        log.info("done: worker %s finished; the chief writes the model and metrics", args.task_index)
        return 0
    base = xz_baseline(args.splits, vocab, cfg)
    summary.update(base)
    summary["beats_xz9"] = bool(summary["val_bpc"] < base["xz9_val_bpc"])
    write_json_atomic(args.metrics, summary)
    verdict = "beats" if summary["beats_xz9"] else "does NOT beat"
    log.info("done: %d epochs, %d steps in %.0f s (%.0f tokens/s); val %.4f nats = %.4f bpc (perplexity %.2f); "
             "xz -9: %.4f bpc given the train text (%.4f alone): the model %s xz",
             summary["epochs"], summary["steps"], summary["seconds"], summary["tokens_per_s"], summary["val_nats"],
             summary["val_bpc"], summary["val_perplexity"], base["xz9_val_bpc"], base["xz9_val_alone_bpc"], verdict)
    print(f"val bpc: model {summary['val_bpc']:.4f}, xz -9 {base['xz9_val_bpc']:.4f}")
    return 0


if __name__ == "__main__":
    from pipeline.common import (
        run_main,  # user errors: one line, exit 2 (--verbose is Keras')
    )
    run_main(main, flag="--traceback")
