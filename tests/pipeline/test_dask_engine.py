"""The Dask engine (pipeline/dask_engine.py): clean and dedupe on a real cluster match the local engine.

A `dask scheduler` and two `dask worker` processes on 127.0.0.1: the same output bytes as the local
engine, tasks on both workers, a worker killed mid-stage, an unreachable scheduler, a LocalCluster
started by the stage."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.schemas import RAW_SCHEMA
from pipeline import clean, dedupe
from pipeline.dask_engine import DaskConfig, DaskEngine, DaskSchedulerError
from tests.helpers.params import stage_config, write_params
from tests.helpers.raw_posts import SIGNATURE, raw_row, xf_quote

distributed = pytest.importorskip("distributed")


def dask_config(**overrides) -> dict:
    """The repository's ``dask`` section with ``overrides``."""
    return stage_config("dask", DaskConfig, **overrides)

WORDS = ("when shall we three meet again in thunder lightning or rain hurly burly done battle lost won ere set "
         "sun where place upon heath there to meet with macbeth fair foul hover through fog filthy air").split()
OUTPUTS = ["clean/posts.parquet", "clean/dropped.parquet", "dedup/corpus.parquet", "dedup/duplicates.parquet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus_rows(n: int, seed: int = 0) -> list[dict]:
    """Forum posts with quotes, signatures, exact and near copies, repeated ids and bad rows."""
    rng = random.Random(seed)
    rows, texts = [], []
    for i in range(n):
        r = rng.random()
        if texts and r < 0.08:
            text = rng.choice(texts).replace("the", "thy", 1) + " aye"  # a near copy
        elif texts and r < 0.12:
            text = rng.choice(texts).upper()  # an exact copy (casefolded)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 90))).capitalize() + "."
        texts.append(text)
        body = text.replace(". ", ".<br />\n")
        if i and rng.random() < 0.2:
            body = xf_quote(str(i - 1), "Banquo", "earlier words") + body
        if rng.random() < 0.1:
            body += SIGNATURE
        post_id = str(i) if rng.random() > 0.02 else str(max(i - 3, 0))  # a few repeated post ids
        rows.append(raw_row(post_id, body if rng.random() > 0.01 else None, thread_id=f"t{i // 25}",
                            position=i % 25, minutes=rng.randint(0, n), author=f"user{i % 17}",
                            source="demo" if i % 5 else "other"))
    return rows


def write_groups(path: Path, rows: list[dict], group: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA), path, row_group_size=group)
    return path


def run_stages(root: Path, raws: list[Path], engine_name: str, engine: DaskEngine | None = None,
               dask_cfg: dict | None = None) -> dict:
    ccfg = stage_config("clean", clean.CleanConfig, workers=1, batch_rows=64, engine=engine_name)
    dcfg = stage_config("dedupe", dedupe.DedupeConfig, workers=1, batch_rows=50, engine=engine_name)
    cm = clean.run_clean(raws, root / "clean/posts.parquet", root / "clean/dropped.parquet", ccfg,
                         dask_cfg, engine)
    dm = dedupe.run_dedupe(root / "clean/posts.parquet", root / "dedup/corpus.parquet",
                           root / "dedup/duplicates.parquet", dcfg, root / "clean/dropped.parquet", dask_cfg, engine)
    timing = ("seconds", "mb_per_s", "posts_per_s")
    return {"files": {o: hashlib.sha256((root / o).read_bytes()).hexdigest() for o in OUTPUTS},
            "clean": {k: v for k, v in cm.items() if k not in timing},
            "dedupe": {k: v for k, v in dm.items() if k not in timing}}


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("raw")
    rows = corpus_rows(900)
    # row groups of 70 and 110 rows: clean's 64-row batches straddle them
    return [write_groups(root / "demo.parquet", rows[:600], 70), write_groups(root / "extra.parquet", rows[600:], 110)]


@pytest.fixture(scope="module")
def local_result(raw_files, tmp_path_factory) -> dict:
    result = run_stages(tmp_path_factory.mktemp("local"), raw_files, "local")
    assert result["dedupe"]["near_duplicates"] > 10 and result["dedupe"]["exact_duplicates"] > 10
    assert result["clean"]["dropped_by_reason"].get("duplicate_post_id")
    return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` + two `dask worker` (each under a nanny, which restarts a killed worker)."""
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # A worker fetching a killed peer's results retries the connection until this timeout (30 s by
    # default) before the scheduler has it recompute them; on 127.0.0.1 a connection takes milliseconds.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "5s"}
    dask = [sys.executable, "-m", "dask"]  # the `dask` command of this interpreter
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT, env=env)]
    for i in range(2):
        procs.append(subprocess.Popen(
            dask + ["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nanny",
                    "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}"],
            stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT, env=env))
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_cluster_gives_local_bytes_and_both_workers_run_tasks(cluster, raw_files, local_result, tmp_path):
    with DaskEngine(dask_config(scheduler=cluster)) as engine:
        result = run_stages(tmp_path, raw_files, "dask", engine)
    assert result == local_result
    assert len(engine.tasks_by_worker) == 2 and all(n > 0 for n in engine.tasks_by_worker.values())
    with distributed.Client(cluster) as client:
        listeners = [w["host"] for w in client.scheduler_info(n_workers=-1)["workers"].values()]
    assert listeners == ["127.0.0.1", "127.0.0.1"]


@pytest.mark.slow
@pytest.mark.parametrize("lsh_partitions", [5, 70])
def test_lsh_partitions_do_not_change_the_result(cluster, raw_files, local_result, tmp_path, lsh_partitions):
    """Fewer partitions than bands (several bands per piece) and more (bands split by key range)."""
    with DaskEngine(dask_config(scheduler=cluster, lsh_partitions=lsh_partitions)) as engine:
        result = run_stages(tmp_path, raw_files, "dask", engine)
    assert result["files"] == local_result["files"]


@pytest.mark.slow
def test_band_rounds_do_not_change_the_result(cluster, raw_files, local_result, tmp_path, monkeypatch, caplog):
    """A band-record budget too small for one round: the bands are hashed and paired in rounds."""
    from pipeline import dedupe_dask

    monkeypatch.setattr(dedupe_dask, "ROUND_BYTES_PER_THREAD", 64 << 10)
    with caplog.at_level("INFO", logger="pipeline.dedupe_dask"):
        with DaskEngine(dask_config(scheduler=cluster)) as engine:
            result = run_stages(tmp_path, raw_files, "dask", engine)
    rounds = [int(m) for m in re.findall(r"in (\d+) round", caplog.text)]
    assert rounds and rounds[0] > 1
    assert result["files"] == local_result["files"]


@pytest.mark.slow
@pytest.mark.parametrize("during", [("clean_rows",), ("lsh_pairs", "count_pairs", "gather_signatures", "verify")],
                         ids=["clean", "dedupe-shuffle"])
def test_worker_killed_mid_stage_same_bytes(cluster, raw_files, local_result, tmp_path, during):
    """SIGKILL a worker process as it starts a clean task, or a dedupe task after the hash pass (the
    band records it held are lost with it): Dask reruns and recomputes, the bytes do not change."""
    from tests.helpers.dask_kill import KillOnTask

    marker = tmp_path / "killed"
    with distributed.Client(cluster) as observer:
        observer.register_plugin(KillOnTask(during, str(marker)))
        try:
            with DaskEngine(dask_config(scheduler=cluster)) as engine:
                result = run_stages(tmp_path, raw_files, "dask", engine)
        finally:
            observer.unregister_worker_plugin(KillOnTask.name)
        assert marker.exists(), "no worker was killed during the stage"
        observer.wait_for_workers(2, timeout=120)  # the nanny restarts it for the next tests
    assert result == local_result


@pytest.mark.slow
def test_unreachable_scheduler_names_the_key(tmp_path, raw_files):
    address = f"tcp://127.0.0.1:{free_port()}"
    cfg = dask_config(scheduler=address, connect_timeout=2)
    with pytest.raises(DaskSchedulerError, match=rf"dask\.scheduler = '{address}'"):
        with DaskEngine(cfg):
            pass
    params = write_params(tmp_path / "cluster.yaml", {"clean": {"engine": "dask"},
                                                      "dask": {"scheduler": address, "connect_timeout": 2}})
    with pytest.raises(SystemExit, match=r"clean: \S*cluster\.yaml: dask\.scheduler"):  # the file it was told
        clean.main(["--raw-dir", str(raw_files[0].parent), "--out-dir", str(tmp_path / "c"),
                    "--metrics", str(tmp_path / "m.json"), "--params", str(params)])


def test_bad_engine_and_dask_params_are_named(tmp_path, raw_files):
    with pytest.raises(ValueError, match="clean.engine must be local or dask, got 'spark'"):
        clean.run_clean(raw_files, tmp_path / "p.parquet", tmp_path / "d.parquet",
                        {**stage_config("clean", clean.CleanConfig), "engine": "spark"})
    with pytest.raises(ValueError, match=r"dask\.scheduler = '127\.0\.0\.1:8786': expected \"\" or an address"):
        DaskEngine({**dask_config(), "scheduler": "127.0.0.1:8786"})
    with pytest.raises(ValueError, match=r"dask\.lsh_partitions = -1: expected an integer >= 0"):
        DaskEngine({**dask_config(), "lsh_partitions": -1})
    with pytest.raises(ValueError, match=r"params.yaml: missing key\(s\) dask\.window"):
        DaskEngine({k: v for k, v in dask_config().items() if k != "window"})
    params = write_params(tmp_path / "params.yaml", {"dedupe": {"engine": "spark"}})
    with pytest.raises(ValueError, match=r"dedupe\.engine = 'spark': expected one of 'local', 'dask'"):
        dedupe.main(["--posts", str(tmp_path / "p.parquet"), "--out-dir", str(tmp_path / "o"),
                     "--metrics", str(tmp_path / "m.json"), "--params", str(params)])


@pytest.mark.slow
def test_local_cluster_started_and_stopped_by_the_stage(raw_files, local_result, tmp_path):
    result = run_stages(tmp_path, raw_files, "dask", None, dask_config(n_workers=2))
    assert result == local_result


def test_worker_reads_rows_by_path_or_fsspec_url_as_local_batches(raw_files, tmp_path):
    """A clean task's rows (straddling row groups) equal the local engine's batch; file:// URLs read alike."""
    cfg = stage_config("clean", clean.CleanConfig, batch_rows=64)
    name, offset, batch, rules = list(clean.raw_batches(raw_files[:1], 64))[3]  # rows 192..255: groups 2 and 3
    want = clean.clean_batch(batch, name, offset, cfg, rules)
    for location in (str(raw_files[0]), raw_files[0].resolve().as_uri()):
        got = clean.clean_rows(location, offset, offset + batch.num_rows, name, cfg, rules)
        assert got[0].equals(want[0]) and got[1].equals(want[1]) and got[2] == want[2]
    posts = tmp_path / "posts.parquet"
    clean.run_clean(raw_files[:1], posts, tmp_path / "dropped.parquet", {**cfg, "workers": 1})
    dcfg = stage_config("dedupe", dedupe.DedupeConfig)
    by_path = dedupe.hash_row_groups(posts, [1, 2], dcfg)
    by_url = dedupe.hash_row_groups(posts.resolve().as_uri(), [1, 2], dcfg)
    assert len(by_url["doc_id"]) > 100
    assert all((by_url[k] == by_path[k]).all() for k in by_path)
