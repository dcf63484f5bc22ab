"""The trained-model folder (``models/lstm/``): what it holds, how to write and read it.

A model describes itself, so sampling, evaluation, export and the report rebuild everything from
these files and never from today's defaults:

- ``model.keras``: the final Keras model (architecture + weights).
- ``vocab.json``: a copy of the vocabulary it was trained with (same format as data/vocab.json).
- ``meta.json``: ``vocab_hash``, ``network`` (NetworkConfig as a dict), ``params`` (the train
  section of params.yaml used), plus whatever the trainer adds (epochs, steps, seconds...).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipeline.common import write_json_atomic
from pipeline.vocab import Vocab

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
META_FILE = "meta.json"
DEFAULT_MODEL_DIR = Path("models/lstm")


class ModelFolderError(RuntimeError):
    """A model folder is missing, incomplete, or does not match the vocabulary given."""


def save_trained(model_dir: str | os.PathLike, model, vocab: Vocab, meta: dict[str, Any]) -> None:
    """Write model, vocabulary copy and meta (with ``vocab_hash``) into ``model_dir``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".model.", suffix=".keras")
    os.close(fd)
    model.save(tmp)
    os.replace(tmp, model_dir / MODEL_FILE)
    vocab.save(model_dir / VOCAB_FILE)
    write_json_atomic(model_dir / META_FILE, {**meta, "vocab_hash": vocab.hash})


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
        raise ModelFolderError(f"{model_path} not found: the model folder is incomplete; retrain with `dvc repro train`")
    vocab_file = Path(vocab_path) if vocab_path is not None else model_dir / VOCAB_FILE
    vocab = Vocab.load(vocab_file)
    if vocab.hash != meta.get("vocab_hash"):
        raise ModelFolderError(
            f"vocabulary {vocab_file} (hash {vocab.hash}) does not match the model in {model_dir} "
            f"(trained with {meta.get('vocab_hash')}): use the vocabulary the model was trained with, or retrain"
        )
    model = keras.models.load_model(model_path, compile=False)
    return model, vocab, meta
