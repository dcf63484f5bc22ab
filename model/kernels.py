"""CPU kernels of the model stages: the same bytes on any x86-64 CPU (params section ``kernels``).

TensorFlow, oneDNN, NumPy, OpenBLAS and glibc's libm each pick their arithmetic at run time from the
CPU they find, and each choice sums in another order, so the same seeds give other weights, samples
and metrics on another machine. What changes the bytes (measured on one CPU where settings could
show it, read in the libraries' sources where only another CPU would; docs/reproducibility.md):

- oneDNN's instruction set. TensorFlow's matrix products run oneDNN's sgemm, whose blocking of the
  summed dimension is a constant per instruction set (AVX-512, AVX2, AVX). ``ONEDNN_MAX_CPU_ISA`` caps it.
- TensorFlow's oneDNN rewrites (``TF_ENABLE_ONEDNN_OPTS``), which TensorFlow turns on by itself only
  on CPUs with AVX-512 VNNI/BF16 or AMX. Off, a MatMul is Eigen's contraction calling oneDNN's sgemm
  per block, and Eigen sizes those blocks from the CPU's L1 cache (48 KB on recent Intel and Zen 5
  cores, 32 KB before). On, every MatMul is one call of oneDNN's sgemm, blocked by nothing but the
  instruction set, the sizes and the thread count. So: on.
- TensorFlow's intra-op thread count, which defaults to the number of cores: the work is cut into
  that many pieces (1, 2, 4 and 8 threads: four different models). The inter-op count changes nothing.
  With more than one, oneDNN's sgemm at the AVX2 level (TensorFlow runs it on its own thread pool)
  also lowers its thread count to the product's memory over the L2 cache per core, so a 512 KB L2
  (AMD EPYC) and a 2 MB one (Intel Xeon) cut the same product differently: other weights. With one
  thread that choice is gone, hence the default ``threads: 1``.
- NumPy's vector loops (its X86_V3 = AVX2 and X86_V4 = AVX-512 builds) and OpenBLAS's kernels (one
  per CPU family): the sampler, the export check, the report's cell analysis and evaluate run there.
- glibc's libm, which NumPy's baseline loops call for float64 exp, log and tanh: it has FMA builds,
  chosen on CPUs with FMA and AVX2 (FMA4 ones on old AMD).

``kernels.portable: true`` pins all of them to one instruction-set level, ``kernels.isa``, and the
intra-op threads to ``kernels.threads``, so every CPU of that level computes the same bytes:

- ``AVX2`` (x86-64-v3: Intel since Haswell, 2013; AMD since Excavator, 2015, every Zen): oneDNN
  capped at AVX2, NumPy's X86_V3 loops, OpenBLAS's Haswell kernels. Every such CPU has FMA, so libm
  is left as it is. Costs an AVX-512 machine its wider vectors, an AVX2 machine nothing.
- ``AVX`` (every CPU TensorFlow's x86-64 wheels run on): oneDNN at AVX, NumPy's baseline loops,
  OpenBLAS's Sandy Bridge kernels, libm without FMA (``GLIBC_TUNABLES``; glibc >= 2.33's names).
  About half the training speed of AVX2 on an AVX2 machine.

OpenBLAS runs on one thread either way. ``false`` sets nothing: the fastest kernels of this CPU,
bytes tied to it. A stage refuses a level the CPU lacks (it would crash or compute otherwise).

The libraries read these variables when they load (NumPy and OpenBLAS at import, which pyarrow
already does; glibc at process start; oneDNN and TensorFlow's thread pools at first use), before a
stage has read its params. So :func:`pin`, called by a stage's ``main`` once it knows them, sets the
environment and, when NumPy or TensorFlow is already loaded without it, starts the stage's command
line again in the same process (``os.execv``; once: the new process finds its environment in place).
A ``main`` called from other code (tests) is not restarted: it logs that its kernels are not pinned
and runs as it is.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline.common import ParamsError
from pipeline.config import section, setting

log = logging.getLogger(__name__)

# Loaded libraries that have read (or will have read by their first use) the variables below.
LIBRARIES = ("numpy", "tensorflow")
# glibc's dispatch of libm (and string functions) without FMA: kept beside the user's own tunables.
HWCAPS = "glibc.cpu.hwcaps=-FMA,-FMA4"


@dataclass(frozen=True)
class Level:
    """What pins the libraries to one instruction-set level, and the CPU flags (as /proc/cpuinfo
    names them) it needs."""

    numpy: str  # NPY_ENABLE_CPU_FEATURES: NumPy's loops of this level and below only
    openblas: str  # OPENBLAS_CORETYPE
    fma: bool  # libm's FMA builds: every CPU of the level has them (else they are turned off)
    flags: tuple[str, ...]


LEVELS = {
    "AVX2": Level("X86_V3", "Haswell", True, ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe")),
    "AVX": Level("X86_V2", "Sandybridge", False, ("avx",)),
}


@dataclass(frozen=True)
class KernelsConfig:
    """The ``kernels`` section of params.yaml (meanings there)."""

    portable: bool
    isa: str = setting(choices=tuple(LEVELS))
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
    level = LEVELS[cfg["isa"]]
    out = {
        "ONEDNN_MAX_CPU_ISA": cfg["isa"],  # oneDNN's sgemm code and blocking
        "TF_ENABLE_ONEDNN_OPTS": "1",  # a MatMul is one oneDNN sgemm, not Eigen's cache-sized contraction
        "TF_NUM_INTRAOP_THREADS": str(int(cfg["threads"])),  # how matrix products and reductions are cut
        "NPY_ENABLE_CPU_FEATURES": level.numpy,
        "OPENBLAS_CORETYPE": level.openblas,
        "OPENBLAS_NUM_THREADS": "1",
    }
    if not level.fma:
        out["GLIBC_TUNABLES"] = tunables(env.get("GLIBC_TUNABLES", ""))
    return out


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str] | None:
    """The first CPU's feature flags (Linux), or None where the file is not there."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def check_cpu(isa: str, flags: set[str] | None) -> None:
    """ParamsError when the CPU lacks a flag of level ``isa`` (nothing to check without ``flags``)."""
    missing = [f for f in LEVELS[isa].flags if flags is not None and f not in flags]
    if missing:
        others = [name for name, level in LEVELS.items() if all(f in flags for f in level.flags)]
        raise ParamsError(f"kernels.isa = {isa}: this CPU lacks {', '.join(missing)}. Set kernels.isa to "
                          f"{' or '.join(others) or 'a level it has'} on every machine whose outputs must agree "
                          f"(another level, other bytes), or kernels.portable: false")


def unpinned(want: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``want`` that ``env`` lacks or holds another value for."""
    return {k: v for k, v in want.items() if env.get(k) != v}


def pinned(cfg: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the kernels pinned as ``cfg`` says (``env`` itself when ``portable`` is false):
    ``environment``'s variables set, NumPy's ``NPY_DISABLE_CPU_FEATURES`` dropped (NumPy refuses it
    beside ``NPY_ENABLE_CPU_FEATURES``). A CPU below ``kernels.isa`` is a ParamsError."""
    want = environment(cfg, env)
    if not want:
        return dict(env)
    check_cpu(cfg["isa"], cpu_flags())
    out = {**env, **want}
    out.pop("NPY_DISABLE_CPU_FEATURES", None)
    return out


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
    env = pinned(cfg, os.environ)
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)
    if loaded:
        log.info("kernels.portable: restarting %s with %s", module, " ".join(f"{k}={v}" for k, v in missing.items()))
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
