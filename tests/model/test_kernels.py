"""model/kernels.py: the variables it pins, the CPU check, the restart, and the bytes of the model
stages run as two different machines would run them.

The second machine is one process whose libraries are capped below what this CPU allows, and whose
CPU set is one core: for ``kernels.isa`` AVX2 a small AVX2 machine (oneDNN at AVX2, NumPy without its
AVX-512 loops, OpenBLAS's Haswell kernels; on a CPU with AVX-512 this is the check that matters), for
AVX a small Sandy Bridge (oneDNN at AVX, NumPy's baseline loops, OpenBLAS's Sandy Bridge kernels,
glibc without FMA). Both keep TensorFlow's oneDNN rewrites off, as TensorFlow does on such CPUs. The
other process runs as the machine is. With ``kernels.portable`` the model folder, evolution samples,
samples.jsonl, eval.json, novelty.jsonl (and, for AVX2, the export) are the same bytes in both;
without it they differ wherever the two machines do (on a CPU with AVX2 and more than one core:
always).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model import kernels
from pipeline.common import ParamsError
from tests.helpers.params import write_params

SMALL_MACHINES = {
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0",
             "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"},
    "AVX": {"ONEDNN_MAX_CPU_ISA": "AVX", "TF_ENABLE_ONEDNN_OPTS": "0",
            "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Sandybridge",
            "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4"},
}
# what this test sets itself (a developer's own settings of them would blur the two machines)
CLEARED = {k for env in SMALL_MACHINES.values() for k in env} | {"TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                                                  "NPY_ENABLE_CPU_FEATURES", "OPENBLAS_NUM_THREADS"}
FLAGS = kernels.cpu_flags()
HERE = "AVX2" if FLAGS is None or all(f in FLAGS for f in kernels.LEVELS["AVX2"].flags) else "AVX"


def portable(isa: str = HERE, threads: int = 2) -> dict:
    return {"portable": True, "isa": isa, "threads": threads}


WORDS = "the cat sat on a mat and the dog ran to the big red barn while birds sang".split()
TINY = {
    "batches": {"batch_size": 8, "max_len": 32, "buckets": [16, 32]},
    "train": {"seed": 1, "model": {"embedding_dim": 8, "hidden_size": 32, "num_layers": 2, "dropout": 0.0},
              "epochs": 1, "max_steps_per_epoch": 12, "checkpoint_every_steps": 0, "max_minutes": 0,
              "evolution": {"primes": ["the "], "temperatures": [1.0], "length": 20, "seed": 2}},
    "sample": {"primes": ["", "the "], "temperatures": [0.8], "n": 2, "length": 40, "beam_width": 2},
}


def test_environment_pins_everything_or_nothing():
    env = kernels.environment(portable("AVX2", 3), {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTRAOP_THREADS": "3",
                   "NPY_ENABLE_CPU_FEATURES": "X86_V3", "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}
    env = kernels.environment(portable("AVX", 1), {})
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX" and env["NPY_ENABLE_CPU_FEATURES"] == "X86_V2"
    assert env["OPENBLAS_CORETYPE"] == "Sandybridge" and env["GLIBC_TUNABLES"] == kernels.HWCAPS
    assert kernels.environment({"portable": False, "isa": "AVX2", "threads": 3}, {}) == {}


def test_a_pinned_environment_keeps_the_rest_and_drops_numpys_opposite_switch():
    user = {"HOME": "/home/u", "NPY_DISABLE_CPU_FEATURES": "AVX2"}
    env = kernels.pinned(portable("AVX", 1), user)
    assert env == {"HOME": "/home/u", **kernels.environment(portable("AVX", 1), user)}
    assert kernels.pinned({"portable": False, "isa": "AVX2", "threads": 3}, user) == user  # nothing taken away


def test_glibc_tunables_of_the_user_are_kept():
    got = kernels.tunables("glibc.malloc.arena_max=2:glibc.cpu.hwcaps=-AVX512F")
    assert got == f"glibc.malloc.arena_max=2:{kernels.HWCAPS}"
    assert kernels.tunables("") == kernels.HWCAPS


def test_a_level_the_cpu_lacks_is_refused(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx popcnt\n\nprocessor\t: 1\n", encoding="utf-8")
    flags = kernels.cpu_flags(info)
    assert flags == {"fpu", "sse4_2", "avx", "popcnt"}
    kernels.check_cpu("AVX", flags)
    with pytest.raises(ParamsError, match=r"kernels.isa = AVX2: this CPU lacks avx2, bmi1.*Set kernels.isa to AVX"):
        kernels.check_cpu("AVX2", flags)
    kernels.check_cpu("AVX2", None)  # no /proc/cpuinfo: nothing to check
    assert kernels.cpu_flags(tmp_path / "nowhere") is None


def test_pin_in_a_process_that_already_loaded_numpy_warns_and_changes_nothing(monkeypatch, caplog):
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("restarted the test process"))
    before = dict(os.environ)
    with caplog.at_level(logging.WARNING, logger="model.kernels"):
        kernels.pin(portable(), "model.train")
    assert dict(os.environ) == before
    assert "not pinned" in caplog.text and "ONEDNN_MAX_CPU_ISA" in caplog.text


def test_pin_is_quiet_when_pinned_or_not_portable(monkeypatch, caplog):
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("restarted"))
    with caplog.at_level(logging.WARNING, logger="model.kernels"):
        kernels.pin({**portable(), "portable": False}, "model.train")
        for name, value in kernels.environment(portable(), os.environ).items():
            monkeypatch.setenv(name, value)
        kernels.pin(portable(), "model.train")
    assert [r for r in caplog.records if r.name == "model.kernels"] == []


def test_the_stage_command_restarts_itself_with_the_kernels_pinned(tmp_path, python_exe):
    """``python -m`` a module that loads NumPy before it reads its params, as the stages do: it starts
    again once, and the second start finds every variable in place."""
    write_params(tmp_path / "params.yaml", {"kernels": portable(threads=3)})
    (tmp_path / "probe.py").write_text(
        "import json, os\nimport numpy  # noqa: F401\nfrom pipeline.common import load_params\n"
        "from model import kernels\ncfg = kernels.load_config(load_params('params.yaml'))\n"
        "print('start', flush=True)\nkernels.pin(cfg, 'probe')\n"
        "print(json.dumps({k: os.environ.get(k) for k in kernels.environment(cfg, {})}))\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    proc = subprocess.run([python_exe, "-m", "probe"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines.count("start") == 2  # the first start, then the restart
    assert json.loads(lines[-1]) == kernels.environment(portable(threads=3), {})


# -- two machines ------------------------------------------------------------------------------------
def _split(path: Path, texts: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from contracts.schemas import CLEAN_SCHEMA

    n = len(texts)
    cols = {"doc_id": [hashlib.sha256(f"k{i}".encode()).hexdigest()[:16] for i in range(n)], "source": ["k"] * n,
            "board": [None] * n, "thread_id": [str(i // 4) for i in range(n)], "thread_title": [None] * n,
            "post_id": [str(i) for i in range(n)], "position": [i % 4 for i in range(n)],
            "author_hash": [None] * n, "posted_at": [None] * n, "text": texts, "n_chars": [len(t) for t in texts],
            "quoted_post_ids": [[] for _ in range(n)]}
    pq.write_table(pa.table(cols, schema=CLEAN_SCHEMA), path)


def _texts(n: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 14)))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """data/split, data/vocab.json and data/batches of a small corpus, made by the real stages."""
    from pipeline import batches, vocab

    root = tmp_path_factory.mktemp("kernels")
    (root / "data" / "split").mkdir(parents=True)
    for name, n, seed in (("train", 160, 0), ("val", 24, 1), ("test", 24, 2)):
        _split(root / "data" / "split" / f"{name}.parquet", _texts(n, seed))
    write_params(root / "params.yaml", TINY)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        vocab.main([])
        batches.main([])
    finally:
        os.chdir(cwd)
    return root


def _run_both(root: Path, cfg: dict, stage: str, args: dict[str, list[str]]) -> None:
    """``python -m model.<stage>`` with the ``kernels`` section ``cfg``, as this machine
    (``args["here"]``) and as the small machine of ``cfg["isa"]`` (``args["small"]``), side by side."""
    params = root / f"params-{cfg['portable']}-{cfg['isa']}.yaml"
    if not params.exists():
        write_params(params, {**TINY, "kernels": cfg})
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), base.get("PYTHONPATH", "")])
    cpus = sorted(os.sched_getaffinity(0))
    small = {**base, **SMALL_MACHINES[cfg["isa"]]}
    procs = []
    for machine, env, preexec in (("here", base, None), ("small", small, lambda: os.sched_setaffinity(0, cpus[:1]))):
        cmd = [sys.executable, "-m", f"model.{stage}", "--params", str(params), *args[machine]]
        procs.append((cmd, subprocess.Popen(cmd, cwd=root, env=env, preexec_fn=preexec, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)))
    for cmd, proc in procs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{out[-3000:]}"


def _train(root: Path, cfg: dict) -> dict[str, Path]:
    out = {m: root / f"run-{cfg['portable']}-{cfg['isa']}-{m}" for m in ("here", "small")}
    _run_both(root, cfg, "train", {m: [
        "--verbose", "0", "--model-dir", str(d / "model"), "--checkpoints", str(d / "ckpt"),
        "--metrics", str(d / "train.json"), "--plots", str(d / "train.csv"), "--evolution", str(d / "evolution.jsonl"),
        "--tensorboard", str(d / "tb")] for m, d in out.items()})
    return out


def _sample_and_evaluate(root: Path, cfg: dict, models: dict[str, Path], out: dict[str, Path]) -> None:
    _run_both(root, cfg, "sample", {m: ["--report", str(out[m] / "samples.jsonl"), "--model", str(models[m])]
                                    for m in out})
    _run_both(root, cfg, "evaluate", {m: [
        "--model", str(models[m]), "--split-dir", "data/split", "--samples", str(out[m] / "samples.jsonl"),
        "--out", str(out[m] / "eval.json"), "--novelty-out", str(out[m] / "novelty.jsonl")] for m in out})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _eval_bytes(path: Path) -> bytes:
    doc = json.loads(path.read_bytes())
    doc.pop("seconds")  # wall-clock
    return json.dumps(doc, sort_keys=True).encode()


needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")


@pytest.mark.slow
@needs_affinity
@pytest.mark.parametrize("isa", ["AVX2", "AVX"])
def test_portable_kernels_give_the_same_bytes_on_both_machines(project, isa):
    if isa == "AVX2" and HERE != "AVX2":
        pytest.skip("this CPU has no AVX2")
    runs = _train(project, portable(isa))
    here, small = (runs[m] for m in ("here", "small"))
    assert _files(here / "model") == _files(small / "model")
    assert (here / "evolution.jsonl").read_bytes() == (small / "evolution.jsonl").read_bytes()

    _sample_and_evaluate(project, portable(isa), {m: runs[m] / "model" for m in runs}, runs)
    assert (here / "samples.jsonl").read_bytes() == (small / "samples.jsonl").read_bytes()
    assert _eval_bytes(here / "eval.json") == _eval_bytes(small / "eval.json")
    assert (here / "novelty.jsonl").read_bytes() == (small / "novelty.jsonl").read_bytes()
    if isa != "AVX2":
        return
    _run_both(project, portable(isa), "export", {m: [
        "--model", str(runs[m] / "model"), "--json", str(runs[m] / "model.json"),
        "--html", str(runs[m] / "sampler.html"), "--metrics", str(runs[m] / "export.json")] for m in runs})
    for name in ("model.json", "sampler.html", "export.json"):
        assert (here / name).read_bytes() == (small / name).read_bytes(), name


@pytest.mark.slow
@needs_affinity
def test_without_portable_kernels_the_machines_disagree(project):
    """The small Sandy Bridge against this machine, nothing pinned."""
    if HERE != "AVX2" and len(os.sched_getaffinity(0)) == 1:
        pytest.skip("this machine has one core and no AVX2: the small machine is the same machine")
    cfg = {**portable("AVX"), "portable": False}
    runs = _train(project, cfg)
    assert _files(runs["here"] / "model") != _files(runs["small"] / "model")

    # one model sampled and evaluated by both: the NumPy and TensorFlow inference paths alone
    out = {m: project / f"infer-False-{m}" for m in runs}
    for d in out.values():
        d.mkdir()
    _sample_and_evaluate(project, cfg, {m: runs["here"] / "model" for m in runs}, out)
    assert (out["here"] / "samples.jsonl").read_bytes() != (out["small"] / "samples.jsonl").read_bytes()
    assert _eval_bytes(out["here"] / "eval.json") != _eval_bytes(out["small"] / "eval.json")


def test_the_kernels_bench_offers_each_level_of_this_cpu_and_the_native_kernels():
    from bench.kernels import settings

    levels = ["AVX2", "AVX"] if HERE == "AVX2" else ["AVX"]
    found = settings(3)
    assert list(found) == [*(f"portable_{isa}" for isa in levels), "native", "native_onednn"]
    assert found["portable_AVX"] == kernels.environment(portable("AVX", 3), {})
    assert found["native"] == {} and found["native_onednn"] == {"TF_ENABLE_ONEDNN_OPTS": "1"}


@pytest.mark.slow
def test_the_kernels_bench_reports_speed_and_hashes(project):
    params = project / "params-bench.yaml"
    write_params(params, {**TINY, "kernels": portable()})
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "kernels.py"),
                           "--steps", "6", "--warmup", "2", "--repeats", "1", "--batches",
                           str(project / "data" / "batches"), "--params", str(params), "--settings", "portable_AVX"],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert set(out["settings"]) == {"portable_AVX", "native"}  # the one asked for, and the baseline
    assert out["settings"]["native"]["vs_native"] == 1.0
    assert out["settings"]["portable_AVX"]["env"] == kernels.environment(portable("AVX"), {})
    for row in out["settings"].values():
        assert row["tokens_per_s_median"] > 0 and len(row["hashes"]) == 1
