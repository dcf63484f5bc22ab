"""The trained-model folder (``models/lstm/``): what it holds, how to write and read it.

A model describes itself, so sampling, evaluation, export and the report rebuild everything from
these files and never from today's defaults:

- ``model.keras``: the final Keras model (architecture + weights).
- ``vocab.json``: a copy of the vocabulary it was trained with (same format as data/vocab.json).
- ``meta.json``: ``vocab_hash``, ``network`` (NetworkConfig as a dict), ``params`` (the train
  section of params.yaml used), plus whatever the trainer adds (epochs, steps, history...).

The folder is byte-identical for the same inputs and params on a CPU, so its DVC hash says whether two
trainings agree: wall-clock fields (``TIMING_KEYS``) are kept out of ``meta.json`` (the trainer
reports them in ``metrics/train.json``), and the ``.keras`` zip that Keras writes is re-packed with
fixed entry timestamps, without the save date Keras puts in its ``metadata.json`` (Keras never
reads it back), and with the ``shared_object_id`` values of ``config.json`` (Python ``id()``s, i.e.
memory addresses, which Keras only matches against each other when loading) renumbered 0, 1, 2...
in order of appearance. The weights file inside is left as h5py wrote it: HDF5 objects carry no
timestamps unless asked to (h5py's ``track_times`` is off by default), which a test checks by
training twice in two processes.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pipeline.common import write_json_atomic
from pipeline.vocab import Vocab

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
META_FILE = "meta.json"
DEFAULT_MODEL_DIR = Path("models/lstm")
# Wall-clock fields the trainer reports (top level and per history row): metrics, never the model.
TIMING_KEYS = frozenset({"seconds", "tokens_per_s"})
# Keras' metadata.json fields that hold the clock.
KERAS_CLOCK_KEYS = ("date_saved",)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


class ModelFolderError(RuntimeError):
    """A model folder is missing, incomplete, or does not match the vocabulary given."""


def without_timings(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` less its wall-clock fields, at the top level and in each ``history`` row."""
    out = {k: v for k, v in meta.items() if k not in TIMING_KEYS}
    if isinstance(out.get("history"), list):
        out["history"] = [{k: v for k, v in row.items() if k not in TIMING_KEYS} if isinstance(row, dict) else row
                          for row in out["history"]]
    return out


def renumber_shared_ids(config: Any, ids: dict[Any, int] | None = None) -> Any:
    """``config`` (a Keras ``config.json`` document) with every ``shared_object_id`` replaced by a
    dense number in order of first appearance; equal ids stay equal, so sharing is kept."""
    ids = {} if ids is None else ids
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key == "shared_object_id" and not isinstance(value, (dict, list)):
                out[key] = ids.setdefault(value, len(ids))
            else:
                out[key] = renumber_shared_ids(value, ids)
        return out
    if isinstance(config, list):
        return [renumber_shared_ids(v, ids) for v in config]
    return config


def repack_keras(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the ``.keras`` zip ``src`` to ``dst`` deterministically: same entries in the same order
    and compression, every timestamp ``ZIP_EPOCH``, fixed permissions, ``metadata.json`` without
    its save date and ``config.json`` with renumbered shared-object ids."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "metadata.json":
                doc = json.loads(data)
                data = json.dumps({k: v for k, v in doc.items() if k not in KERAS_CLOCK_KEYS}, sort_keys=True).encode()
            elif info.filename == "config.json":
                data = json.dumps(renumber_shared_ids(json.loads(data))).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3  # Unix, whatever system wrote it
            zout.writestr(fixed, data)


def save_trained(model_dir: str | os.PathLike, model, vocab: Vocab, meta: dict[str, Any]) -> None:
    """Write model, vocabulary copy and meta (with ``vocab_hash``, without ``TIMING_KEYS``) into
    ``model_dir``, byte-identical for identical weights."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    # the work folder sits beside the model folder, not in the folder DVC hashes
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=f".{model_dir.name}.save.") as work:
        saved, packed = Path(work) / "saved.keras", Path(work) / "packed.keras"
        model.save(saved)
        repack_keras(saved, packed)
        os.replace(packed, model_dir / MODEL_FILE)
    vocab.save(model_dir / VOCAB_FILE)
    write_json_atomic(model_dir / META_FILE, {**without_timings(meta), "vocab_hash": vocab.hash})


def load_meta(model_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(model_dir) / META_FILE
    if not path.exists():
        raise ModelFolderError(f"{path} not found: is {model_dir} a trained model folder? run `dvc repro train` first")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_trained(model_dir: str | os.PathLike = DEFAULT_MODEL_DIR, vocab_path: str | os.PathLike | None = None):
    """Load ``(keras_model, vocab, meta)`` from a model folder.

    With ``vocab_path`` the given vocabulary must have the hash the model was trained with;
    otherwise the folder's own copy is used. Errors name the file at fault.
    """
    import keras

    model_dir = Path(model_dir)
    meta = load_meta(model_dir)
    model_path = model_dir / MODEL_FILE
    if not model_path.exists():
        raise ModelFolderError(f"{model_path} not found: the model folder is incomplete; "
                               f"retrain with `dvc repro train`")
    vocab_file = Path(vocab_path) if vocab_path is not None else model_dir / VOCAB_FILE
    vocab = Vocab.load(vocab_file)
    if vocab.hash != meta.get("vocab_hash"):
        raise ModelFolderError(
            f"vocabulary {vocab_file} (hash {vocab.hash}) does not match the model in {model_dir} "
            f"(trained with {meta.get('vocab_hash')}): use the vocabulary the model was trained with, or retrain"
        )
    model = keras.models.load_model(model_path, compile=False)
    return model, vocab, meta
