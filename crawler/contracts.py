"""Scrapy contracts for kopitiam spiders (``scrapy check``), usable offline.

``@url`` here extends Scrapy's own: an argument without a scheme is a path relative to the project
root (the folder holding ``scrapy.cfg``) and becomes a ``file://`` URL, so each spider's contract
points at a fixture page shipped in ``tests/fixtures/`` and ``scrapy check`` needs no network.
Absolute URLs (``https://...``, ``file:///...``) behave exactly as in Scrapy. Registered in
settings.py through ``SPIDER_CONTRACTS`` (replacing ``scrapy.contracts.default.UrlContract``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from scrapy.contracts import Contract
from scrapy.utils.conf import closest_scrapy_cfg


def project_root() -> Path:
    """The folder of the nearest ``scrapy.cfg`` (the repository root), else the package's parent."""
    cfg = closest_scrapy_cfg()
    return Path(cfg).parent if cfg else Path(__file__).resolve().parents[1]


def resolve_url(value: str, root: Path | None = None) -> str:
    """``value`` unchanged when it has a scheme; else ``root/value`` as a file:// URL."""
    if urlparse(value).scheme:
        return value
    path = (root or project_root()) / value
    if not path.exists():
        raise FileNotFoundError(f"@url {value}: no such fixture at {path}")
    return path.resolve().as_uri()


class ProjectUrlContract(Contract):
    """``@url URL-or-project-relative-path``: the sample request of a callback's contract."""

    name = "url"

    def adjust_request_args(self, args: dict[str, Any]) -> dict[str, Any]:
        args["url"] = resolve_url(self.args[0])
        return args
