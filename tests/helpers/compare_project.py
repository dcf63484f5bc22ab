"""A throwaway DVC repository with one fast stage that writes the files the compare page reads.

``make_repo(root)`` runs git init, dvc init and ``dvc repro`` of a one-stage pipeline (``gen.py``, a
few lines of Python with no project imports) and commits the result; ``exp_run`` runs ``dvc exp run``
in it. The stage writes what the real pipeline writes, in its formats: ``metrics/{eval,train,headline,
clean,dedupe}.json``, ``metrics/crawl/<source>.json`` (cache: false metrics, committed to git),
``plots/train.csv`` (one row per epoch) and ``reports/{samples,novelty}.jsonl`` (DVC-cached outputs).
Its numbers depend on ``train.epochs``, so runs differ. Untrusted text is planted where runs carry it:
a sample's text and a source name (params values: tests/model/test_compare.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

XSS_SAMPLE = '<img src=x onerror="document.title=1"><script>alert(2)</script>'
XSS_SOURCE = 'demo"><img src=y onerror=alert(4)>'

GEN = r'''
import json, math, os, yaml
p = yaml.safe_load(open("params.yaml"))
epochs, sources = p["train"]["epochs"], p["crawl"]["sources"]
for d in ("metrics/crawl", "plots", "reports"):
    os.makedirs(d, exist_ok=True)
def dump(path, doc):
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
val = [round(3.0 - 0.5 * math.log(1 + e), 4) for e in range(1, epochs + 1)]
lstm = round(val[-1] - 0.02, 4)
models = {"lstm": lstm, "kneser_ney_5": 2.3, "xz_9": 2.6, "ppmd_5": 2.25}
best = min((b, n) for n, b in models.items() if n != "lstm")
dump("metrics/eval.json", {
    "models": {n: {"bpc": b, "nats_per_char": b * math.log(2)} for n, b in models.items()},
    "comparison": {"best_baseline": best[1], "best_baseline_bpc": best[0], "lstm_bpc": lstm},
    "by_length": [{"chars": "0-63", "lstm_bpc": lstm + 0.1, "kneser_ney_5_bpc": 2.4},
                  {"chars": "64+", "lstm_bpc": lstm - 0.05, "kneser_ney_5_bpc": 2.2}],
    "novelty": {"novel_word_share": 0.01 * epochs}})
dump("metrics/train.json", {"val_bpc": val[-1], "steps_per_epoch": 50, "tokens_per_s": 1000.0 + epochs})
dump("metrics/dedupe.json", {"kept": 95, "exact_duplicates": 5, "near_duplicates": 0})
dump("metrics/clean.json", {"kept": 100, "dropped_by_reason": {"too_short": 3}})
for src in sources:
    dump(f"metrics/crawl/{src}.json", {"posts": 103, "pages": 9})
dump("metrics/headline.json", {"lstm_test_bpc": lstm, "best_baseline": best[1], "best_baseline_test_bpc": best[0],
                               "lstm_val_bpc": val[-1], "train_tokens_per_s": 1000 + epochs, "posts_kept": 95,
                               "novel_word_share": 0.01 * epochs})
with open("plots/train.csv", "w") as fh:
    fh.write("epoch,train_loss,val_loss,val_bpc\n")
    fh.writelines(f"{e},{v},{v},{v}\n" for e, v in enumerate(val, 1))
samples = [{"prime": "kopi", "method": "sample", "temperature": 0.7, "seed": 1, "text": f" after {epochs} epochs"},
           {"prime": "", "method": "sample", "temperature": 1.0, "seed": 2, "text": p["sample"]["text"]},
           {"prime": "teh", "method": "greedy", "temperature": 0.0, "seed": None, "text": " lah" * epochs}]
with open("reports/samples.jsonl", "w") as fh:
    fh.writelines(json.dumps(s) + "\n" for s in samples)
with open("reports/novelty.jsonl", "w") as fh:
    fh.writelines(json.dumps({**{k: s[k] for k in ("prime", "method", "temperature", "seed")},
                              "novel_word_share": 0.25, "longest_copy": 7 + i}) + "\n" for i, s in enumerate(samples))
'''

DVC_YAML = """stages:
  train:
    cmd: python gen.py
    deps: [gen.py]
    params: [train, crawl, sample]
    outs: [reports/samples.jsonl, reports/novelty.jsonl]
    metrics:
      - metrics/headline.json: {cache: false}
      - metrics/eval.json: {cache: false}
      - metrics/train.json: {cache: false}
      - metrics/clean.json: {cache: false}
      - metrics/dedupe.json: {cache: false}
      - metrics/crawl: {cache: false}
    plots:
      - plots/train.csv: {cache: false}
"""


def env(root: Path) -> dict[str, str]:
    """The environment for git/dvc in the repo: the test's interpreter first on PATH, no analytics."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def sh(root: Path, *cmd: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=root, env=env(root), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(root, sys.executable, "-m", "dvc", *args)


def make_repo(root: Path, epochs: int = 3) -> Path:
    """git init, dvc init, the stage, ``dvc repro``, one commit: a repo whose HEAD is a complete run."""
    root.mkdir(parents=True, exist_ok=True)
    sh(root, "git", "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    dvc(root, "config", "--local", "core.site_cache_dir", str(root.parent / f"{root.name}-site"))
    (root / "gen.py").write_text(GEN, encoding="utf-8")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (root / ".gitignore").write_text("/reports/\n", encoding="utf-8")
    import yaml

    params = {"train": {"epochs": epochs},
              "crawl": {"sources": ["demo", XSS_SOURCE]}, "sample": {"text": XSS_SAMPLE}}
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    dvc(root, "repro", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "baseline run")
    return root


def exp_run(root: Path, name: str, *sets: str) -> None:
    dvc(root, "exp", "run", "-q", "-n", name, *(x for s in sets for x in ("-S", s)))


_SHARED: dict[str, Path] = {}


def experiment_repo(tmp_path_factory) -> Path:
    """``make_repo`` (3 epochs), then ``dvc exp run -S train.epochs=1 -n short``: built once per test
    session and shared by the compare tests (they read it, and write their pages under ``out/`` or
    the git-ignored ``reports/``)."""
    if "repo" not in _SHARED:
        root = make_repo(tmp_path_factory.mktemp("cmp") / "repo", epochs=3)
        exp_run(root, "short", "train.epochs=1")
        _SHARED["repo"] = root
    return _SHARED["repo"]

