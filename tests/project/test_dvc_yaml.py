"""dvc.yaml against the code: each stage lists exactly the params keys its ``load_config`` reads, and
its code deps cover every project module its entry module can import (DVC reruns only what it is told
about, so a missing dep is an experiment that silently reuses stale outputs)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.common import Params, load_params
from tests.helpers.imports import REPO_ROOT, closure, module_file

# Keys a stage reads that are deliberately no dependency of it, with the reason.
NOT_DEPS = {
    # crawl@X crawls the source X; the list of sources says which crawl@ stages exist, not what X yields
    ("crawl", "crawl.sources"): "the list of sources",
}


class RecordingParams(Params):
    """A params mapping that writes down the dotted path of every value read from it."""

    def __init__(self, data: Mapping[str, Any], reads: set[str], prefix: str = "", path: Path | None = None):
        super().__init__(data, path or REPO_ROOT / "params.yaml")
        self.reads, self.prefix = reads, prefix

    def _wrap(self, key: str, value: Any) -> Any:
        dotted = f"{self.prefix}{key}"
        self.reads.add(dotted)
        return RecordingParams(value, self.reads, dotted + ".", self.path) if isinstance(value, Mapping) else value

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self):
        return [(k, self[k]) for k in self]

    def values(self):
        return [self[k] for k in self]


def stage_instances() -> list[tuple[str, str, dict[str, Any]]]:
    """(stage name, base name, definition) for every stage, ``foreach`` stages expanded over their
    items (``${item}`` substituted)."""
    params = load_params(REPO_ROOT / "params.yaml")
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    found = []
    for name, stage in stages.items():
        if "foreach" not in stage:
            found.append((name, name, stage))
            continue
        source = re.fullmatch(r"\$\{(.+)\}", stage["foreach"]).group(1)
        items = params
        for key in source.split("."):
            items = items[key]
        for item in items:
            text = yaml.safe_dump(stage["do"]).replace("${item}", str(item))
            found.append((f"{name}@{item}", name, yaml.safe_load(text)))
    return found


STAGES = stage_instances()


def entry_module(stage: dict[str, Any]) -> str:
    match = re.match(r"python -m ([\w.]+)", stage["cmd"])
    assert match, f"cmd does not run a module with python -m: {stage['cmd']!r}"
    return match.group(1)


def listed_params(stage: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for entry in stage.get("params", []):
        if isinstance(entry, dict):  # {file: [keys]}: only params.yaml is read by the stages
            for keys_of_file in entry.values():
                keys |= set(keys_of_file)
        else:
            keys.add(entry)
    return keys


def params_read(module: str, name: str) -> set[str]:
    """The dotted keys the stage's ``load_config`` reads from the repository's params.yaml; leaves
    only (a key whose value is a section counts when nothing below it was read)."""
    mod = importlib.import_module(module)
    if not hasattr(mod, "load_config"):
        source = module_file(module).read_text(encoding="utf-8")
        assert not re.search(r"\b(section|load_params)\(", source), \
            f"{module} reads params but has no load_config(params) to say which"
        return set()
    reads: set[str] = set()
    recording = RecordingParams(load_params(REPO_ROOT / "params.yaml"), reads)
    if "@" in name:
        mod.load_config(recording, name.split("@", 1)[1])
    else:
        mod.load_config(recording)
    return {r for r in reads if not any(o.startswith(r + ".") for o in reads)}


def covered(key: str, listed: set[str]) -> bool:
    return any(key == entry or key.startswith(entry + ".") for entry in listed)


@pytest.mark.parametrize("name,base,stage", STAGES, ids=[s[0] for s in STAGES])
def test_params_listed_are_the_params_read(name, base, stage):
    read = params_read(entry_module(stage), name)
    read -= {key for (stage_name, key) in NOT_DEPS if stage_name == base}
    listed = listed_params(stage)
    missing = sorted(k for k in read if not covered(k, listed))
    unread = sorted(entry for entry in listed
                    if not any(k == entry or k.startswith(entry + ".") or entry.startswith(k + ".") for k in read))
    assert not missing, f"stage {name} reads {missing} but dvc.yaml does not list them under params"
    assert not unread, f"stage {name} lists {unread} under params but never reads them"


def code_deps(stage: dict[str, Any]) -> list[str]:
    return [d.rstrip("/") for d in stage.get("deps", []) if (REPO_ROOT / d).exists()]


@pytest.mark.parametrize("name,base,stage", STAGES, ids=[s[0] for s in STAGES])
def test_code_deps_cover_the_import_closure(name, base, stage):
    deps = code_deps(stage)
    files = sorted(str(module_file(m).relative_to(REPO_ROOT)) for m in closure(entry_module(stage)))
    uncovered = [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]
    stale = [d for d in deps if d.endswith(".py") and d not in files]
    assert not uncovered, f"stage {name} can import {uncovered}, which dvc.yaml does not list under deps"
    assert not stale, f"stage {name} lists {stale} under deps but never imports them"


def test_the_recorder_sees_nested_reads_and_leaves_only():
    reads: set[str] = set()
    params = RecordingParams({"a": {"b": 1, "c": {"d": 2}}, "e": 3}, reads)
    assert params["a"]["c"]["d"] == 2 and params.get("e") == 3 and params.get("zz") is None
    assert reads == {"a", "a.c", "a.c.d", "e"}
