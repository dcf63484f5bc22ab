"""Distributed training (model/distribute.py): params checks, the replica row split and real runs on CPU.

Mirrored over two logical CPU devices and two multi_worker processes on 127.0.0.1 match a single-process
run with the same global batch and seed; a worker killed mid-run stops the chief with a clear error, and
restarting both resumes from the chief's checkpoint to the uninterrupted run's weights."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import train_tiny

EPOCHS = 2
STEPS = 8  # per epoch (of train_tiny's 13 batches): short runs, two cores
# Dropout draws per-replica masks, so equality with one process holds without it.
OVERRIDES = {"epochs": EPOCHS, "max_steps_per_epoch": STEPS, "model.dropout": 0.0}
COMMON = [f"{k}={json.dumps(v)}" for k, v in OVERRIDES.items()]


def weights_of(model_dir: Path) -> list[np.ndarray]:
    from model.artifacts import load_trained

    return load_trained(model_dir)[0].get_weights()


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def worker_cmd(python_exe: str, repo_root: Path, out: Path, workers: list[str], index: int, *extra: str) -> list[str]:
    return [python_exe, str(train_tiny.SCRIPT), str(out), *COMMON,
            'distribute.strategy="multi_worker"', f"distribute.workers={json.dumps(workers)}",
            "distribute.timeout_s=120", f"task_index={index}", *extra]


def start_cluster(python_exe: str, repo_root: Path, outs: list[Path], *extra: str) -> list[subprocess.Popen]:
    workers = [f"127.0.0.1:{p}" for p in free_ports(len(outs))]
    procs = []
    for i, out in enumerate(outs):
        with open(out.parent / f"{out.name}.log", "w") as log:  # the child keeps its own copy of the handle
            procs.append(subprocess.Popen(worker_cmd(python_exe, repo_root, out, workers, i, *extra), cwd=repo_root,
                                          stdout=log, stderr=subprocess.STDOUT))
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float = 240) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One process, strategy none: the reference every distributed run must match."""
    out = tmp_path_factory.mktemp("single")
    _, summary = train_tiny.run(out, **OVERRIDES)
    return out, summary


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, python_exe, repo_root):
    """An uninterrupted run of two worker processes on 127.0.0.1."""
    base = tmp_path_factory.mktemp("two")
    outs = [base / "w0", base / "w1"]
    codes = wait_all(start_cluster(python_exe, repo_root, outs))
    logs = [(base / f"w{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs
    return outs, json.loads(logs[0].strip().splitlines()[-1])


def assert_close(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def dist_config(**overrides) -> dict:
    """``train.distribute`` of the repository's params.yaml with ``overrides``, checked."""
    from model.train import load_config
    from tests.helpers.params import repo_params

    return load_config(repo_params({"train": {"distribute": overrides}}))["distribute"]


def test_params_are_checked():
    from model.train import load_config
    from pipeline.common import ParamsError
    from tests.helpers.params import repo_params

    assert dist_config() == {"strategy": "none", "workers": [], "cpu_devices": 2, "timeout_s": 300}
    for bad, needle in (({"strategy": "horovod"}, "train.distribute.strategy"),
                        ({"workers": ["localhost"]}, "train.distribute.workers"),
                        ({"cpu_devices": 0}, "train.distribute.cpu_devices"),
                        ({"timeout_s": 0}, "train.distribute.timeout_s"),
                        ({"worker": []}, "train.distribute.worker")):
        with pytest.raises(ParamsError, match=needle):
            load_config(repo_params({"train": {"distribute": bad}}))


def test_replica_rows_cover_the_global_batch_once():
    from model.distribute import replica_rows

    for n in (1, 7, 8, 64):
        for replicas in (1, 2, 3, 4):
            rows = [r for k in range(replicas) for r in range(n)[replica_rows(n, k, replicas)]]
            assert rows == list(range(n))


def test_cluster_from_workers_and_task_index(monkeypatch):
    from model.distribute import tf_config
    from model.train import TrainingError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    dist = dist_config(strategy="multi_worker", workers=["127.0.0.1:1", "127.0.0.1:2"])
    assert tf_config(dist, 1) == {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                  "task": {"type": "worker", "index": 1}}
    with pytest.raises(TrainingError, match="--task-index 0..1"):
        tf_config(dist, 2)
    with pytest.raises(TrainingError, match="workers is empty"):
        tf_config(dist_config(strategy="multi_worker"), 0)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:1", "h:2"]}, "task": {"index": 0}}))
    assert tf_config(dist_config(strategy="multi_worker"), None)["task"]["index"] == 0
    with pytest.raises(TrainingError, match="disagrees with TF_CONFIG"):
        tf_config(dist, 1)


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_equals_one_device(single, tmp_path, python_exe, repo_root):
    out, summary = single
    done = subprocess.run([python_exe, str(train_tiny.SCRIPT), str(tmp_path), *COMMON,
                           'distribute.strategy="mirrored"', "distribute.cpu_devices=2"],
                          cwd=repo_root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads(done.stdout.strip().splitlines()[-1])
    assert mirrored["steps"] == summary["steps"] == EPOCHS * STEPS
    assert mirrored["val_bpc"] == pytest.approx(summary["val_bpc"], rel=1e-5)
    assert_close(weights_of(out / "model"), weights_of(tmp_path / "model"))
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["distribute"] == {"strategy": "mirrored", "workers": 1, "replicas": 2}
    assert "distribute" not in meta["params"]


@pytest.mark.slow
def test_two_workers_match_one_process_and_only_the_chief_writes(single, two_workers):
    out, summary = single
    (chief, other), got = two_workers
    assert got["steps"] == EPOCHS * STEPS and got["epochs"] == EPOCHS
    assert got["val_bpc"] == pytest.approx(summary["val_bpc"], rel=1e-5)
    assert_close(weights_of(out / "model"), weights_of(chief / "model"))
    assert {p.name for p in chief.iterdir()} == {"model", "train.csv", "evolution.jsonl", "tb"}
    assert list((chief / "tb").rglob("events.out.tfevents.*"))
    assert not other.exists()  # the other worker wrote to a temporary folder, deleted at the end
    meta = json.loads((chief / "model" / "meta.json").read_text())
    assert meta["distribute"] == {"strategy": "multi_worker", "workers": 2, "replicas": 2}


@pytest.mark.slow
def test_killed_worker_stops_the_chief_and_a_restart_resumes(two_workers, tmp_path, python_exe, repo_root):
    (ref_chief, _), _ = two_workers
    outs = [tmp_path / "w0", tmp_path / "w1"]
    procs = start_cluster(python_exe, repo_root, outs, "sleep=0.25")
    ckpt = outs[0] / "ckpt"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and procs[0].poll() is None:
            if any(int(p.name.split("-")[1]) > STEPS for p in ckpt.glob("step-*")):
                break
            time.sleep(0.05)
        assert procs[0].poll() is None and procs[1].poll() is None, "training ended before the kill"
        procs[1].kill()  # SIGKILL the non-chief worker mid-epoch
        procs[1].wait()
        code = procs[0].wait(timeout=200)
    finally:
        wait_all(procs, timeout=5)
    log = (tmp_path / "w0.log").read_text()
    assert code != 0 and "Stop every worker and start them all again" in log
    assert not (outs[0] / "model").exists()
    saved = json.loads((max(ckpt.glob("step-*")) / "state.json").read_text())["state"]
    assert saved["global_step"] > STEPS

    codes = wait_all(start_cluster(python_exe, repo_root, outs))  # the same command again, on fresh ports
    assert codes == [0, 0], (tmp_path / "w0.log").read_text()[-3000:]
    summary = json.loads((tmp_path / "w0.log").read_text().strip().splitlines()[-1])
    assert summary["resumes"] >= 1 and summary["steps"] == EPOCHS * STEPS
    for a, b in zip(weights_of(ref_chief / "model"), weights_of(outs[0] / "model"), strict=True):
        assert np.array_equal(a, b)
