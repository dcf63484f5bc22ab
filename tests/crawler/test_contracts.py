"""Every spider's Scrapy contracts pass offline on the fixture pages (crawler/contracts.py)."""

from __future__ import annotations

import pytest

from tests.helpers.spider_server import REPO_ROOT, run_scrapy

pytestmark = pytest.mark.slow


def test_spider_contracts_pass_offline():
    check = run_scrapy(["check"], REPO_ROOT)  # every spider; all contracts use file:// fixtures
    assert check.returncode == 0 and "OK" in check.stderr, check.stderr[-3000:]
