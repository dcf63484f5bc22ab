"""bench/scale.py: the forum corpus is seeded and forum-shaped, and a small run through the real stage
entry points prints one JSON object with every stage's time, rates and peak RSS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench import scale
from contracts import markup


def test_corpus_is_seeded_and_forum_shaped(tmp_path: Path):
    a = scale.generate(tmp_path / "a.parquet", 3000, seed=1)
    b = scale.generate(tmp_path / "b.parquet", 3000, seed=1)
    scale.generate(tmp_path / "c.parquet", 3000, seed=2)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes() and a == b
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "c.parquet").read_bytes()
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == a["posts"] == 3000
    assert 0.07 < a["quotes"] / 3000 < 0.13 and 0.02 < a["exact"] / 3000 < 0.04 and 0.03 < a["edited"] / 3000 < 0.05
    per_thread = np.unique(table.column("thread_id").to_numpy(zero_copy_only=False), return_counts=True)[1]
    assert 30 < per_thread[:-1].mean() < 50  # the last thread is cut at n_posts
    bodies = table.column("body").to_pylist()
    assert sum("bbCodeBlock--quote" in body for body in bodies) == a["quotes"]
    assert sum(not body.isascii() for body in bodies) > 100
    lengths = np.array([len(body) for body in bodies])
    assert 200 < np.median(lengths) < 400 and lengths.max() > 5 * np.median(lengths)  # a long tail
    assert [r.name for r in markup.from_metadata(table.schema.metadata)] == ["xenforo"]


def test_growth_is_the_log_log_slope():
    runs = [{"posts": 1000, "stages": {"clean": {"wall_s": 2.0, "cpu_s": 1.0, "peak_rss_mb": 100.0, "exit": 0}}},
            {"posts": 4000, "stages": {"clean": {"wall_s": 8.0, "cpu_s": 4.0, "peak_rss_mb": 100.0, "exit": 0}}}]
    assert scale.growth(runs) == {"clean": {"1000->4000": {"time": 1.0, "cpu": 1.0, "rss": 0.0}}}


def run_bench(python_exe: str, repo_root: Path, workdir: Path, *args: str) -> dict:
    out = subprocess.run([python_exe, "bench/scale.py", "--workdir", str(workdir), *args],
                         cwd=repo_root, check=True, capture_output=True, text=True, timeout=3000).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_small_run_reports_every_stage(tmp_path: Path, python_exe: str, repo_root: Path):
    report = run_bench(python_exe, repo_root, tmp_path, "--posts", "1000", "--train-steps", "3", "--val-steps", "2",
                       "--test-chars", "20000", "--train-workers", "2")
    [run] = report["runs"]
    assert run["posts"] == 1000 and list(run["stages"]) == list(scale.STAGES)
    for name, stage in run["stages"].items():
        assert stage["exit"] == 0 and stage["wall_s"] > 0 and 20 < stage["peak_rss_mb"] < 6000, (name, stage)
    for name in scale.DATA_STAGES:
        assert run["stages"][name]["posts_per_s"] > 0 and run["stages"][name]["mb_per_s"] > 0
    assert run["stages"]["clean"]["docs_in"] == 1000
    # the same shards trained as multi_worker by two processes, each reading its share of every batch
    multi = run["multi_worker_train"]
    assert multi["workers"] == 2 and [p["exit"] for p in multi["processes"]] == [0, 0], multi
    assert all(20 < p["peak_rss_mb"] < 6000 for p in multi["processes"])
    assert multi["chief"]["steps"] == multi["single_process"]["steps"] == 3
    assert abs(multi["chief"]["val_bpc"] - multi["single_process"]["val_bpc"]) < 0.05
    assert report["growth"] == {}  # one size: nothing to grow from
    assert report["targets"]["every_stage_peak_rss<1536MB"] in (True, False)
    assert not list(tmp_path.iterdir())  # scratch folders removed


@pytest.mark.slow
def test_two_sizes_report_the_growth_of_each_stage(tmp_path: Path, python_exe: str, repo_root: Path):
    report = run_bench(python_exe, repo_root, tmp_path, "--posts", "1000,2000", "--stages", "clean,dedupe")
    assert [r["posts"] for r in report["runs"]] == [1000, 2000]
    assert [list(r["stages"]) for r in report["runs"]] == [["clean", "dedupe"]] * 2
    assert report["runs"][1]["stages"]["clean"]["docs_in"] == 2000
    for stage in ("clean", "dedupe"):
        assert set(report["growth"][stage]["1000->2000"]) == {"time", "cpu", "rss"}


@pytest.mark.parametrize("workers", ["-1", "1"])
def test_train_workers_must_be_off_or_a_cluster(workers):
    with pytest.raises(SystemExit):
        scale.parse_args(["--posts", "10", "--train-workers", workers])
