"""Compare the stable outputs of a fresh ``dvc repro`` with the committed ``dvc.lock``.

    python .ci/check_lock.py COMMITTED_LOCK NEW_LOCK

Every ``outs`` entry of every stage (metrics and plots included: DVC lists them as outs) must have
the same hash in both files, except the paths matched by ``UNSTABLE`` below: the one place that says
which outputs may differ between two runs of the same code on the same params, and why. An out that
is in one file and not the other is an error too (dvc.yaml changed without a new dvc.lock). Exit
status 1 names each difference; 0 prints how many outputs matched.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import yaml

# path pattern (fnmatch, as written in dvc.yaml) -> why it is allowed to differ between runs
UNSTABLE: dict[str, str] = {
    "data/raw/*": "raw pages carry fetch times and the demo forum's port",
    "metrics/crawl/*": "crawl seconds, pages/s and posts/s",
    "metrics/clean.json": "seconds and MB/s",
    "metrics/dedupe.json": "seconds and MB/s",
    "metrics/split.json": "seconds, posts/s and MB/s",
    "metrics/vocab.json": "seconds, posts/s and MB/s",
    "metrics/batches.json": "seconds, posts/s and MB/s",
    "metrics/train.json": "training seconds and tokens/s",
    "metrics/eval.json": "seconds per model",
    "metrics/headline.json": "tokens/s",
    "plots/train.csv": "tokens/s per epoch",
    "logs/tensorboard": "TensorBoard event files carry wall-clock times",
    "reports/index.html": "shows the training timings",
    "reports/summary.md": "lists metrics/train.json, timings included",
}


def unstable_reason(path: str) -> str | None:
    return next((why for pattern, why in UNSTABLE.items() if fnmatch.fnmatchcase(path, pattern)), None)


def out_hashes(lock_path: str | Path) -> dict[str, tuple[str, str]]:
    """``{out path: (stage, hash)}`` of every out in a dvc.lock file."""
    with open(lock_path, encoding="utf-8") as fh:
        lock = yaml.safe_load(fh) or {}
    if not isinstance(lock.get("stages"), dict):
        raise SystemExit(f"{lock_path}: no `stages` mapping: is this a dvc.lock file?")
    outs: dict[str, tuple[str, str]] = {}
    for stage, entry in lock["stages"].items():
        for out in entry.get("outs") or []:
            digest = out.get("md5") or out.get(out.get("hash", "md5")) or ""
            outs[out["path"]] = (stage, digest)
    return outs


def compare(committed: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> tuple[list[str], int]:
    """(problems, number of stable outputs that matched)."""
    problems, matched = [], 0
    for path in sorted(set(committed) | set(new)):
        if path not in new:
            problems.append(f"{path} (stage {committed[path][0]}) is in the committed dvc.lock but the run did not "
                            f"produce it: run `dvc repro` and commit dvc.lock with dvc.yaml")
        elif path not in committed:
            problems.append(f"{path} (stage {new[path][0]}) is not in the committed dvc.lock: run `dvc repro` and "
                            f"commit dvc.lock with dvc.yaml")
        elif unstable_reason(path) is None:
            if committed[path][1] != new[path][1]:
                problems.append(f"{path} (stage {new[path][0]}): committed {committed[path][1]}, this run "
                                f"{new[path][1]}: the committed dvc.lock is not what this code produces (or "
                                f"the output is not deterministic)")
            else:
                matched += 1
    return problems, matched


def model_only_hint(committed: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> str | None:
    """A hint when the stable outputs that differ all come after the data stages (none under
    ``data/``) while the data outputs match: the model's arithmetic followed this machine's CPU."""
    both = committed.keys() & new.keys()
    differ = [p for p in both if unstable_reason(p) is None and committed[p][1] != new[p][1]]
    data_matched = [p for p in both if p.startswith("data/") and unstable_reason(p) is None
                    and committed[p][1] == new[p][1]]
    if not differ or not data_matched or any(p.startswith("data/") for p in differ):
        return None
    return ("every data output matches and only what the model computes differs: the model's arithmetic "
            "followed this machine's CPU (the `ci: machine:` line names it). See docs/reproducibility.md, "
            "'The same bytes on every x86-64 CPU'")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    committed, new = out_hashes(args[0]), out_hashes(args[1])
    problems, matched = compare(committed, new)
    for line in problems:
        print(f"check-lock: {line}")
    if problems:
        print(f"check-lock: {len(problems)} difference(s) from the committed dvc.lock")
        hint = model_only_hint(committed, new)
        if hint:
            print(f"check-lock: {hint}")
        return 1
    print(f"check-lock: all {matched} stable outputs match the committed dvc.lock "
          f"(not compared: {', '.join(UNSTABLE)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
