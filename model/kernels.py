"""CPU kernels of the model stages: the same bytes on any x86-64 CPU (params section ``kernels``).

TensorFlow, oneDNN, NumPy and OpenBLAS each pick their arithmetic at run time from the CPU they find,
and each choice sums in another order, so the same seeds give other weights, samples and metrics on
another machine. What changes the bytes, measured (docs/reproducibility.md has the table):

- oneDNN's instruction set. TensorFlow's matrix products run oneDNN's sgemm, whose blocking of the
  summed dimension is a constant per instruction set (AVX-512, AVX2, AVX). ``ONEDNN_MAX_CPU_ISA`` caps it.
- TensorFlow's oneDNN rewrites (``TF_ENABLE_ONEDNN_OPTS``), which TensorFlow turns on by itself only
  on CPUs with AVX-512 VNNI/BF16 or AMX. Off, a MatMul is Eigen's contraction (calling oneDNN's sgemm
  per block), and Eigen sizes those blocks from the CPU's L1 cache (48 KB on recent Intel and Zen 5
  cores, 32 KB before): other slices of the summed dimension. On, every MatMul is oneDNN's matmul
  primitive, whose sgemm blocking below AVX2 depends on nothing but the instruction set and the
  thread count. So: on, capped at AVX.
- TensorFlow's intra-op thread count, which defaults to the number of cores: the work is cut into
  that many pieces (1, 2, 4 and 8 threads: four different models). The inter-op count changes nothing.
- NumPy's vector loops (its X86_V3 = AVX2 and X86_V4 = AVX-512 builds) and OpenBLAS's kernels (one
  per CPU family): the sampler, the export check, the report's cell analysis and evaluate run there.
- glibc's libm, which NumPy's baseline loops call for float64 exp, log and tanh: it has FMA builds
  of them, chosen when the CPU has FMA (every AVX2 CPU; AVX-only ones have none).

``kernels.portable: true`` pins all of them to what every CPU that runs TensorFlow has (its x86-64
wheels need AVX): oneDNN rewrites on and capped at AVX, ``kernels.threads`` intra-op threads,
NumPy's baseline loops, OpenBLAS's Sandy Bridge (AVX) kernels on one thread, libm without FMA.
``false`` sets nothing: fastest on this CPU, bytes tied to it. Left to the machine either way: the
glibc version (libm results are stable across glibc >= 2.33, whose tunable names are used here).

The libraries read these variables when they load (NumPy and OpenBLAS at import, which pyarrow
already does; oneDNN and TensorFlow's thread pools at first use), before a stage has read its params.
So :func:`pin`, called by a stage's ``main`` once it knows them, sets the environment and, when NumPy
or TensorFlow is already loaded without it, starts the stage's command line again in the same process
(``os.execv``; once: the new process finds its environment in place). A ``main`` called from other
code (tests) is not restarted: it logs that its kernels are not pinned and runs as it is.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.config import section, setting

log = logging.getLogger(__name__)

# Loaded libraries that have read (or will have read by their first use) the variables below.
LIBRARIES = ("numpy", "tensorflow")
# glibc's dispatch of libm (and string functions) without FMA: kept beside the user's own tunables.
HWCAPS = "glibc.cpu.hwcaps=-FMA,-FMA4"


@dataclass(frozen=True)
class KernelsConfig:
    """The ``kernels`` section of params.yaml (meanings there)."""

    portable: bool
    threads: int = setting(ge=1)


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``kernels`` section of ``params``, checked."""
    return section("kernels", KernelsConfig, params)


def tunables(current: str) -> str:
    """``GLIBC_TUNABLES`` with :data:`HWCAPS` in place of any ``glibc.cpu.hwcaps`` of ``current``."""
    kept = [t for t in current.split(":") if t and not t.startswith("glibc.cpu.hwcaps=")]
    return ":".join([*kept, HWCAPS])


def environment(cfg: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The variables that pin the kernels, given the environment ``env`` (empty when ``portable``
    is false)."""
    if not cfg["portable"]:
        return {}
    return {
        "ONEDNN_MAX_CPU_ISA": "AVX",  # oneDNN's sgemm: AVX code and its blocking on every CPU
        "TF_ENABLE_ONEDNN_OPTS": "1",  # MatMul as oneDNN's matmul, not Eigen's cache-sized contraction
        "TF_NUM_INTRAOP_THREADS": str(int(cfg["threads"])),  # Eigen's cuts of contractions and reductions
        "NPY_ENABLE_CPU_FEATURES": "X86_V2",  # NumPy's baseline (SSE4.2) loops only: no AVX2/AVX-512 builds
        "OPENBLAS_CORETYPE": "Sandybridge",  # OpenBLAS's AVX kernels
        "OPENBLAS_NUM_THREADS": "1",
        "GLIBC_TUNABLES": tunables(env.get("GLIBC_TUNABLES", "")),
    }


def unpinned(want: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``want`` that ``env`` lacks or holds another value for."""
    return {k: v for k, v in want.items() if env.get(k) != v}


def _running_as(module: str) -> bool:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name == module


def pin(cfg: Mapping[str, Any], module: str) -> None:
    """Pin the kernels of this process as ``cfg`` (the ``kernels`` section) says. ``module`` is the
    stage's own module (``model.train``): run as ``python -m module`` with NumPy or TensorFlow
    already loaded, the process starts again with the environment set; called from other code, it
    logs a warning and changes nothing."""
    missing = unpinned(environment(cfg, os.environ), os.environ)
    if not missing:
        return
    loaded = [name for name in LIBRARIES if name in sys.modules]
    if loaded and not _running_as(module):
        log.warning("kernels.portable: %s already loaded in this process (not `python -m %s`): its CPU kernels "
                    "are not pinned (%s unset)", " and ".join(loaded), module, ", ".join(sorted(missing)))
        return
    os.environ.update(missing)
    os.environ.pop("NPY_DISABLE_CPU_FEATURES", None)  # NumPy refuses it beside NPY_ENABLE_CPU_FEATURES
    if loaded:
        log.info("kernels.portable: restarting %s with %s", module, " ".join(f"{k}={v}" for k, v in missing.items()))
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
