"""Errors a user sees from the stages: one clear line naming the params file read, exit status 2.

A mistake in the params or a missing file ends in one clear line naming the params file actually read;
``--verbose`` keeps the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.common import ParamsError, load_params, run_main
from pipeline.config import section
from pipeline.split import SplitConfig
from tests.helpers.params import write_params
from tests.helpers.spider_server import REPO_ROOT


def stage(module: str, *args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("KOPITIAM_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def crawl_params(tmp_path, sources: dict, **crawl) -> str:
    """params.yaml with only ``sources`` as sources, all crawled, and ``crawl`` overrides."""
    path = write_params(tmp_path / "my-params.yaml", {"crawl": {"sources": list(sources), **crawl}}, sources=sources)
    return str(path)


def crawl(tmp_path, params: str, *extra: str) -> subprocess.CompletedProcess:
    return stage("pipeline.crawl", "--params", params, "--raw-dir", str(tmp_path / "raw"),
                 "--metrics-dir", str(tmp_path / "metrics"), *extra)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.slow
@pytest.mark.parametrize("entry, message", [
    ({"spider": "vbulletin", "args": {"start_url": "http://127.0.0.1:9/", "since": "last tuesday"}},
     "sources.s.args: spider argument since='last tuesday': expected an ISO date"),
    ({"spider": "vbulletin", "args": {"start_url": "http://127.0.0.1:9/", "timezone": "Mars/Olympus"}},
     "sources.s.args: spider 'vbulletin': timezone='Mars/Olympus' is not a time zone"),
    ({"spider": "xenforo", "args": {"start_url": "http://127.0.0.1:9/", "max_thread": 3}},
     "sources.s.args: unknown argument(s) max_thread"),
    ({"spider": "xenforo", "args": {"start_url": "http://127.0.0.1:9/"}, "resum": True},
     "sources.s: unknown key(s) resum"),
    ({"reader": "jsonl", "args": {"path": "no/such/*.jsonl"}}, "no input files match path 'no/such/*.jsonl'"),
    ({"spider": "phpbb", "args": {"start_url": "{server}/index.php"},
      "demo_forum": {"plays": ["macbeth"], "engine": "punbb"}},
     "sources.s.demo_forum: demo forum: engine='punbb': expected one of"),
])
def test_crawl_params_mistakes_are_one_line_naming_the_params_file(tmp_path, entry, message):
    params = crawl_params(tmp_path, {"s": entry}, jobs_dir=str(tmp_path / "jobs"))
    proc = crawl(tmp_path, params)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and message in lines[0], proc.stderr[-3000:]
    assert params in lines[0]  # the file actually read, not always params.yaml
    verbose = crawl(tmp_path, params, "--verbose")
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr and message in verbose.stderr


@pytest.mark.slow
def test_missing_params_file_and_crawl_failure(tmp_path):
    proc = crawl(tmp_path, str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error_lines(proc) and "nope.yaml not found" in error_lines(proc)[0]
    # a crawl that ran but got nothing (nothing listens on port 9): one line, exit 1
    params = crawl_params(tmp_path, {"s": {"spider": "xenforo", "throttle": False,
                                           "args": {"start_url": "http://127.0.0.1:9/threads/x.1/"},
                                           "settings": {"RETRY_TIMES": 0}}},
                          jobs_dir=str(tmp_path / "jobs"))
    proc = crawl(tmp_path, params)
    assert proc.returncode == 1  # (Scrapy's own log may show the refused connection's traceback)
    assert f'File "{REPO_ROOT / "pipeline" / "crawl.py"}"' not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: ") and "crawl.min_posts" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("module", ["pipeline.clean", "pipeline.dedupe", "model.evaluate", "model.report"])
def test_other_stages_report_a_missing_params_file_in_one_line(tmp_path, module):
    proc = stage(module, "--params", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "absent.yaml not found" in error_lines(proc)[0]


def test_stage_without_params_option_run_elsewhere(tmp_path):
    """``python -m pipeline.split`` outside the repository root: no params.yaml there."""
    proc = stage("pipeline.split", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "params.yaml not found" in error_lines(proc)[0]


def test_section_names_the_file_read_and_run_main_exit_codes(tmp_path, capsys):
    path = tmp_path / "other.yaml"
    path.write_text("split: {fractionz: 1}\n")
    with pytest.raises(ParamsError, match=r"other\.yaml: unknown key\(s\) split\.fractionz"):
        section("split", SplitConfig, load_params(path))

    def bad(argv):
        raise ParamsError(f"{path}: split.x must be\n  a number")

    with pytest.raises(SystemExit) as exit_:
        run_main(bad, [])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: split.x must be a number")
    with pytest.raises(ParamsError):
        run_main(bad, ["--verbose"])
    with pytest.raises(SystemExit) as exit_:
        run_main(lambda argv: 3 if argv == ["-x"] else 0, ["-x"])
    assert exit_.value.code == 3


BROKEN_SPIDER = '''
from crawler.spiders.xenforo import XenforoSpider


class BrokenXf(XenforoSpider):
    """An engine whose thread id selector no longer matches (the site changed its markup)."""

    name = "brokenxf"

    def thread_info(self, response):
        info = super().thread_info(response)
        info.thread_id = None
        return info

    def parse(self, response, **kwargs):
        """@url tests/fixtures/xenforo/thread_p1.html
        @returns items 1
        """
        yield from super().parse(response, **kwargs)
'''


@pytest.mark.slow
def test_scrapy_check_failure_shows_the_spiders_own_errors(tmp_path):
    package = tmp_path / "myspiders"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text(BROKEN_SPIDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(tmp_path)])}
    proc = subprocess.run([sys.executable, "-m", "scrapy", "check", "brokenxf",
                           "-s", "SPIDER_MODULES=crawler.spiders,myspiders"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Returned 0 items, expected 1..inf" in out
    assert "forum/errors/thread_without_id=1" in out
    assert "thread_p1.html: no thread id found" in out
