"""Benchmarks on the model stages' own kernels: params.yaml's ``kernels`` section (model/kernels.py)
applied to a bench script's process, or to the processes it starts, so that its tokens/s, weights and
scores are those ``dvc repro`` gets on this CPU (unpinned, TensorFlow leaves its oneDNN rewrites off
on most CPUs: about half the training speed of the pinned AVX2 kernels on an AVX2 machine;
docs/reproducibility.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config(params_path: Path) -> dict:
    from model import kernels
    from pipeline.common import load_params

    return kernels.load_config(load_params(params_path))


def pinned_variables(params_path: Path = ROOT / "params.yaml") -> dict[str, str]:
    """The variables the model stages set for params.yaml's ``kernels`` (none when not portable)."""
    from model import kernels

    return kernels.environment(_config(params_path), os.environ)


def pinned_environment(params_path: Path = ROOT / "params.yaml") -> dict[str, str]:
    """This process's environment with the kernels pinned as the model stages pin theirs (a CPU
    below ``kernels.isa`` is refused as they refuse it): for the processes a bench starts."""
    from model import kernels

    return kernels.pinned(_config(params_path), os.environ)


def restart_pinned(params_path: Path = ROOT / "params.yaml") -> None:
    """Start this script again with the kernels pinned (``os.execve``, same command line), unless its
    environment already pins them: the libraries read the variables when they load."""
    from model import kernels

    if kernels.unpinned(pinned_variables(params_path), os.environ):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], pinned_environment(params_path))
