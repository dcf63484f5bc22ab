"""Params for tests: the repository's params.yaml with overrides applied, never defaults of the test's
own. The code holds no defaults either, so a test that builds its own params starts from here."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from pipeline.common import Params, load_params
from pipeline.config import section

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: nested mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def repo_params(overrides: Mapping[str, Any] | None = None, *, sources: Mapping[str, Any] | None = None) -> Params:
    """The repository's params.yaml (a fresh copy) with ``overrides`` merged in; ``sources``, if
    given, replaces the whole ``sources`` mapping (a test's own sites only)."""
    params = merged(load_params(REPO_PARAMS), overrides or {})
    if sources is not None:
        params["sources"] = copy.deepcopy(dict(sources))
    return Params(params, REPO_PARAMS)


def stage_config(name: str, schema: type, **overrides: Any) -> dict[str, Any]:
    """Section ``name`` of the repository's params, ``overrides`` applied, checked by ``schema``."""
    return section(name, schema, repo_params({name: overrides}))


def write_params(path: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 sources: Mapping[str, Any] | None = None) -> Path:
    """``repo_params(overrides, sources=sources)`` written to ``path`` (for stage commands)."""
    path = Path(path)
    path.write_text(yaml.safe_dump(dict(repo_params(overrides, sources=sources)), sort_keys=False), encoding="utf-8")
    return path
