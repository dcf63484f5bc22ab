"""bench/pinning.py: a bench trains on the kernels the train stage pins (params.yaml ``kernels``), in
its own process (started again with them) and in the processes it starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.pinning import pinned_environment, pinned_variables
from model import kernels
from pipeline.common import load_params

PINNED = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "NPY_ENABLE_CPU_FEATURES")


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PINNED and k != "NPY_DISABLE_CPU_FEATURES"}


def test_the_variables_are_the_stages_own(repo_root: Path, monkeypatch):
    for name in PINNED:
        monkeypatch.delenv(name, raising=False)
    cfg = kernels.load_config(load_params(repo_root / "params.yaml"))
    assert pinned_variables() == kernels.environment(cfg, os.environ)
    monkeypatch.setenv("NPY_DISABLE_CPU_FEATURES", "AVX2")
    env = pinned_environment()
    if cfg["portable"]:
        assert env["NPY_ENABLE_CPU_FEATURES"] == kernels.LEVELS[cfg["isa"]].numpy
        assert "NPY_DISABLE_CPU_FEATURES" not in env  # NumPy refuses both at once
    else:
        assert env["NPY_DISABLE_CPU_FEATURES"] == "AVX2"  # nothing pinned, nothing taken away


def test_a_script_starts_again_pinned_and_runs_once_pinned(tmp_path: Path, python_exe: str, repo_root: Path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(repo_root)!r})\n"
        "print('started', flush=True)\n"
        "from bench.pinning import restart_pinned\n"
        "restart_pinned()\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('TF_NUM_INTRAOP_THREADS'))\n",
        encoding="utf-8")
    out = subprocess.run([python_exe, str(script)], cwd=repo_root, env=clean_environment(),
                         capture_output=True, text=True, check=True).stdout.split()
    cfg = kernels.load_config(load_params(repo_root / "params.yaml"))
    if cfg["portable"]:
        assert out == ["started", "started", "1", str(cfg["threads"])]  # once unpinned, then once pinned
    else:
        assert out == ["started", "None", "None"]
