"""Stage clean (pipeline/clean.py): it reads the raw files of the sources in crawl.sources, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.clean import select_raw_files


def _touch(raw: Path, *names: str) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        (raw / f"{name}.parquet").write_bytes(b"")


def test_listed_sources_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    _touch(raw, "demo", "babynames")
    with caplog.at_level("INFO"):
        paths = select_raw_files(raw, None, ["babynames"])
    assert paths == [raw / "babynames.parquet"]
    assert "demo.parquet" in caplog.text  # the stale file is named, not silently skipped


def test_flag_overrides_params_and_star_means_all(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _touch(raw, "demo", "babynames")
    assert select_raw_files(raw, "demo", ["babynames"]) == [raw / "demo.parquet"]
    assert select_raw_files(raw, "*", ["babynames"]) == [
        raw / "babynames.parquet", raw / "demo.parquet"]
    assert select_raw_files(raw, None, None) == [raw / "babynames.parquet", raw / "demo.parquet"]


def test_listed_source_without_file_names_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _touch(raw, "demo")
    with pytest.raises(SystemExit, match="edmw.parquet"):
        select_raw_files(raw, None, ["demo", "edmw"])
    with pytest.raises(SystemExit, match="empty"):
        select_raw_files(raw, None, [])
