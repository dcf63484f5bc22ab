"""Runs for the compare page (model/compare.py): the workspace, git revisions and DVC experiments,
read as they were stored, without re-running anything.

Which runs: ``dvc exp show --json`` (DVC's documented JSON, from ``python -m dvc``) lists the
workspace, HEAD and the experiments based on HEAD, with their commits and creation times. Names the
user gives are resolved to commits through that listing, then git (``git rev-parse``), then the
experiment refs (``refs/exps/...``).

What each run holds: its files are read with ``dvc.api.DVCFileSystem`` at its commit: git-tracked
files (``metrics/``, ``plots/``, ``params.yaml``) come from the commit, DVC outputs
(``reports/samples.jsonl``, ``reports/novelty.jsonl``) from the DVC cache by the hash in that
commit's ``dvc.lock``. A file that cannot be read is recorded with the reason (absent at that
revision; in dvc.lock but not in the cache; unreadable) and the run stays on the page.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.common import StageFailed

WORKSPACE = "workspace"
# what the compare page reads from each run: name -> (path in the repository, format)
FILES: dict[str, tuple[str, str]] = {
    "headline": ("metrics/headline.json", "json"),
    "eval": ("metrics/eval.json", "json"),
    "train": ("metrics/train.json", "json"),
    "clean": ("metrics/clean.json", "json"),
    "dedupe": ("metrics/dedupe.json", "json"),
    "params": ("params.yaml", "yaml"),
    "curve": ("plots/train.csv", "csv"),
    "samples": ("reports/samples.jsonl", "jsonl"),
    "novelty": ("reports/novelty.jsonl", "jsonl"),
}
CRAWL_DIR = "metrics/crawl"
NOT_CACHED = ("listed in this revision's dvc.lock, but its bytes are not in the DVC cache (`dvc pull`; or "
              "`dvc exp apply` the run and `dvc repro`; outputs declared `cache: false` are never stored)")


class CompareError(StageFailed):
    """The repository cannot be listed (no DVC repository, no git commit): one line, exit 1."""


class Unavailable(Exception):
    """One file of one run cannot be read; the message says why."""


@dataclass
class RunSpec:
    label: str
    rev: str | None  # a commit; None for the workspace
    created: str | None = None
    problem: str | None = None  # why the revision could not be resolved


@dataclass
class Run:
    labels: list[str]
    commit: str | None
    created: str | None
    data: dict[str, Any] = field(default_factory=dict)  # FILES name (and "crawl") -> parsed content
    missing: dict[str, str] = field(default_factory=dict)  # path -> why it is not here

    @property
    def label(self) -> str:
        return " = ".join(self.labels)

    def fingerprint(self) -> str:
        blob = json.dumps([self.data, sorted(self.missing.items())], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


# -- listing ---------------------------------------------------------------------------------------
def _run(cmd: list[str], repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)


def exp_show(repo: Path) -> list[dict[str, Any]]:
    """``dvc exp show --json`` of ``repo``, parsed."""
    proc = _run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise CompareError(f"`dvc exp show --json` failed in {repo} ({why}): is it a DVC repository with a git commit?")
    return json.loads(proc.stdout or "[]")


def experiments(show: list[dict[str, Any]]) -> list[RunSpec]:
    """Finished experiments of every baseline in ``show``, newest first (ties by name)."""
    found = []
    for entry in show[1:]:
        for group in entry.get("experiments") or []:
            if group.get("executor"):  # queued or running: no results yet
                continue
            for rev in group.get("revs") or []:
                name = rev.get("name") or group.get("name") or rev["rev"][:7]
                found.append(RunSpec(name, rev["rev"], (rev.get("data") or {}).get("timestamp")))
    return sorted(found, key=lambda s: (s.created or "", s.label), reverse=True)


def default_specs(show: list[dict[str, Any]], max_experiments: int) -> list[RunSpec]:
    """The workspace, HEAD and up to ``max_experiments`` experiments, newest first."""
    specs = [RunSpec(WORKSPACE, None)]
    if len(show) > 1:
        head = show[1]
        specs.append(RunSpec("HEAD", head["rev"], (head.get("data") or {}).get("timestamp")))
    return specs + experiments(show)[:max_experiments]


def resolve(repo: Path, name: str, show: list[dict[str, Any]]) -> RunSpec:
    """A name the user gave: ``workspace``, an experiment, or anything git resolves to a commit."""
    if name == WORKSPACE:
        return RunSpec(WORKSPACE, None)
    for spec in experiments(show):
        if name in (spec.label, spec.rev) or (len(name) >= 7 and spec.rev.startswith(name)):
            return RunSpec(name, spec.rev, spec.created)
    proc = _run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], repo)
    if proc.returncode == 0:
        return RunSpec(name, proc.stdout.strip())
    refs = _run(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/"], repo).stdout.split("\n")
    for line in refs:
        if line.endswith(f"/{name}"):
            return RunSpec(name, line.split(" ", 1)[0])
    return RunSpec(name, None, problem="unknown revision: not a commit, branch, tag or experiment name here")


# -- reading ---------------------------------------------------------------------------------------
def _csv(text: str) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(io.StringIO(text))]


def _jsonl(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


PARSERS: dict[str, Callable[[str], Any]] = {"json": json.loads, "yaml": yaml.safe_load, "csv": _csv, "jsonl": _jsonl}


def read(fs, path: str, kind: str) -> Any:
    """One file of one run, parsed; ``Unavailable`` says why not."""
    if not fs.exists(path):
        raise Unavailable("absent at this revision (the stage that writes it had not run, or did not exist yet)")
    try:
        text = fs.read_text(path, encoding="utf-8")
    except FileNotFoundError:
        raise Unavailable(NOT_CACHED) from None
    try:
        return PARSERS[kind](text)
    except (ValueError, yaml.YAMLError) as exc:
        raise Unavailable(f"unreadable: {str(exc).splitlines()[0]}") from None


def read_crawl(fs) -> dict[str, Any]:
    """``{source: metrics/crawl/<source>.json}``, sources sorted."""
    if not fs.isdir(CRAWL_DIR):
        raise Unavailable("absent at this revision")
    names = sorted(p for p in fs.ls(CRAWL_DIR, detail=False) if p.endswith(".json"))
    return {Path(p).stem: read(fs, p, "json") for p in names}


def load(repo: Path, spec: RunSpec) -> Run:
    """Everything the compare page reads from one run, with the reason for each missing file."""
    from dvc.api import DVCFileSystem

    run = Run([spec.label], spec.rev, spec.created)
    if spec.problem:
        run.missing["(revision)"] = spec.problem
        return run
    fs = DVCFileSystem(str(repo), rev=spec.rev)
    for name, (path, kind) in FILES.items():
        try:
            run.data[name] = read(fs, path, kind)
        except Unavailable as why:
            run.missing[path] = str(why)
    try:
        run.data["crawl"] = read_crawl(fs)
    except Unavailable as why:
        run.missing[f"{CRAWL_DIR}/"] = str(why)
    return run


def merge_identical(runs: list[Run]) -> list[Run]:
    """Runs whose files are identical become one run named by all their labels (``workspace =
    short`` after ``dvc exp run``), in first-seen order; runs with nothing readable stay apart."""
    out: list[Run] = []
    seen: dict[str, Run] = {}
    for run in runs:
        key = run.fingerprint() if run.data else None
        if key in seen:
            seen[key].labels += [lb for lb in run.labels if lb not in seen[key].labels]
            seen[key].commit = seen[key].commit or run.commit
            seen[key].created = seen[key].created or run.created
            continue
        if key:
            seen[key] = run
        out.append(run)
    return out
