"""Progress (pipeline/progress.py): a line every `every` seconds when stderr is not a terminal (DVC, CI)."""

from __future__ import annotations

import io
import logging
import sys

from pipeline.progress import Progress


def test_progress_logs_periodically_without_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, whatever pytest was given
    caplog.set_level(logging.INFO)
    log = logging.getLogger("kopitiam.test.progress")
    with Progress(10, "clean", "post", log, every=0.0) as bar:
        bar.update(4)
        bar.update(6)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("clean: 4/10 posts") and lines[-1].startswith("clean: 10/10 posts")
