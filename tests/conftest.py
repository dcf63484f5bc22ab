"""Fixtures every test module may use. Stage-specific fixtures live beside their tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

# Quieter TensorFlow in every subprocess a test starts (it still logs some lines; never assert on stderr).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def python_exe() -> str:
    """The interpreter running the tests: use it for subprocesses (crawls, training runs)."""
    return sys.executable


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the project; tests that need it skip cleanly when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} is absent (optional developer material)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def forum_pages(shared_dir: Path) -> Path:
    pages = shared_dir / "data" / "forum-pages"
    if not pages.is_dir():
        pytest.skip(f"{pages} is absent")
    return pages


class TinyLstm(NamedTuple):
    path: Path  # the saved model folder (model.keras, vocab.json, meta.json)
    model: Any
    vocab: Any
    meta: dict


@pytest.fixture(scope="session")
def tiny_lstm(tmp_path_factory) -> TinyLstm:
    """The one tiny trained character LSTM of the model tests (tests/helpers/tiny_model.py), trained
    once per session and loaded back as the stages do."""
    pytest.importorskip("keras")
    from model.artifacts import load_trained
    from tests.helpers.tiny_model import tiny_lstm_dir

    path = tiny_lstm_dir(tmp_path_factory.mktemp("models"))
    return TinyLstm(path, *load_trained(path))
