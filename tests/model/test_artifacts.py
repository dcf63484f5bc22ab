"""The trained-model folder (model/artifacts.py) is byte-stable and holds no clock.

Two trainings with the same data, params and seed, in two separate processes, write the same bytes to every
file of ``models/lstm`` (so its DVC hash is reproducible)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from model.artifacts import (
    META_FILE,
    MODEL_FILE,
    TIMING_KEYS,
    ZIP_EPOCH,
    without_timings,
)
from tests.helpers import train_tiny
from tests.helpers.processes import run_side_by_side


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, python_exe, repo_root) -> tuple[Path, Path, dict]:
    outs = [tmp_path_factory.mktemp(name) for name in ("a", "b")]
    # side by side: the same bytes must not depend on what else the machine is doing
    stdouts = run_side_by_side([[python_exe, str(train_tiny.SCRIPT), str(out), "epochs=2"] for out in outs], repo_root)
    summary = json.loads(stdouts[-1].strip().splitlines()[-1])
    return outs[0] / "model", outs[1] / "model", summary


@pytest.mark.slow
def test_two_processes_write_identical_model_folders(two_runs):
    a, b, _ = two_runs
    files_a, files_b = folder_bytes(a), folder_bytes(b)
    assert sorted(files_a) == sorted(files_b) == sorted([MODEL_FILE, META_FILE, "vocab.json"])
    for name in files_a:
        assert files_a[name] == files_b[name], f"{name} differs between two identical trainings"


@pytest.mark.slow
def test_keras_archive_has_fixed_times_and_no_save_date(two_runs):
    a, _, _ = two_runs
    with zipfile.ZipFile(a / MODEL_FILE) as zf:
        names = [i.filename for i in zf.infolist()]
        assert {"metadata.json", "config.json", "model.weights.h5"} <= set(names)
        assert {i.date_time for i in zf.infolist()} == {ZIP_EPOCH}
        metadata = json.loads(zf.read("metadata.json"))
    assert "date_saved" not in metadata and metadata["keras_version"]


@pytest.mark.slow
def test_timings_go_to_the_summary_not_the_model(two_runs):
    a, _, summary = two_runs
    meta = json.loads((a / META_FILE).read_text(encoding="utf-8"))
    assert not TIMING_KEYS & set(meta)
    assert meta["history"] and all(not TIMING_KEYS & set(row) for row in meta["history"])
    assert summary["tokens_per_s"] > 0 and summary["seconds"] > 0  # the trainer still reports them
    assert meta["val_bpc"] == summary["val_bpc"] and meta["steps"] == summary["steps"]


@pytest.mark.slow
def test_reloaded_model_predicts_after_repacking(two_runs):
    import numpy as np

    from model.artifacts import load_trained

    model, vocab, _ = load_trained(two_runs[0])
    out = model.predict(np.array([vocab.encode("the cat")], dtype=np.int32), verbose=0)
    assert out.shape == (1, 7, len(vocab)) and np.isfinite(out).all()


def test_without_timings_strips_top_level_and_history_rows():
    meta = {"seconds": 3.2, "tokens_per_s": 9.0, "steps": 4,
            "history": [{"epoch": 1, "seconds": 1.0, "tokens_per_s": 8.0, "val_bpc": 2.5}]}
    assert without_timings(meta) == {"steps": 4, "history": [{"epoch": 1, "val_bpc": 2.5}]}
    assert meta["seconds"] == 3.2 and "seconds" in meta["history"][0]  # the input is left alone


def test_shared_object_ids_are_renumbered_consistently():
    from model.artifacts import renumber_shared_ids

    config = {"layers": [{"init": {"shared_object_id": 140060349643536}},
                         {"init": {"shared_object_id": 140060349640272}},
                         {"again": {"shared_object_id": 140060349643536}}], "name": "m"}
    assert renumber_shared_ids(config) == {"layers": [{"init": {"shared_object_id": 0}},
                                                      {"init": {"shared_object_id": 1}},
                                                      {"again": {"shared_object_id": 0}}], "name": "m"}
