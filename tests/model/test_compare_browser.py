"""The report and the compare page in a real headless Chromium (DevTools protocol, tests/helpers/browser.py):
no console errors (Content-Security-Policy violations included), every section present and filled,
every plot decoded and on screen, no script element, the title a payload would rewrite intact; the
report's summary links to the compare page, and following the link with the mouse opens it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import compare
from model.report_sections import SECTIONS
from tests.helpers.browser import Browser, find_chromium
from tests.helpers.compare_project import XSS_SAMPLE, env, experiment_repo
from tests.helpers.eval_project import shared_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO_ROOT = Path(__file__).resolve().parents[2]

STATE = """(() => ({
  title: document.title,
  location: location.href,
  scripts: document.scripts.length,
  foreign: document.querySelectorAll('img:not([src^="data:"]), iframe, object, embed').length,
  sections: Array.from(document.querySelectorAll('section')).map((s) => ({
    id: s.id, heading: (s.querySelector('h2') || {}).textContent, text: s.innerText,
    height: s.getBoundingClientRect().height})),
  images: Array.from(document.images).map((i) => ({
    decoded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width,
    height: i.getBoundingClientRect().height})),
}))()"""


def console_errors(browser: Browser, session: str) -> list[str]:
    """Errors the page logged: exceptions, console.error, and browser log entries at level error
    (CSP violations, failed loads); ``Log.enable`` replays the entries collected before it."""
    browser.send("Log.enable", session=session)
    browser.send("Runtime.evaluate", {"expression": "1"}, session)  # a round trip: replayed events are in
    out = []
    for ev in browser.events:
        if ev.get("sessionId") != session:
            continue
        params = ev.get("params", {})
        if ev.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            out.append(params["entry"]["text"])
        elif ev.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            out.append(str(params.get("args")))
        elif ev.get("method") == "Runtime.exceptionThrown":
            out.append(str(params.get("exceptionDetails")))
    return out


def check_page(state: dict, sections: list[tuple[str, str]], title: str, images: int) -> None:
    assert state["title"] == title  # a payload would rewrite it
    assert state["scripts"] == 0 and state["foreign"] == 0
    assert [(s["id"], s["heading"]) for s in state["sections"]] == sections
    for s in state["sections"]:
        assert s["height"] > 0 and "Not available" not in s["text"], s["id"]
    assert len(state["images"]) == images
    assert all(i["decoded"] and i["width"] > 50 and i["height"] > 50 for i in state["images"]), state["images"]


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (install Debian's with `apt-get install chromium`; .ci/run does so as root)")
    with Browser(timeout=120) as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """reports/index.html of the tiny evaluate+report project, and beside it the compare page of a
    DVC repo after ``dvc repro`` and ``dvc exp run -S train.epochs=1 -n short``."""
    project, _ = shared_project(tmp_path_factory)
    repo = experiment_repo(tmp_path_factory)
    out = tmp_path_factory.mktemp("pages")
    shutil.copy(project / "reports/index.html", out / "index.html")
    proc = subprocess.run([sys.executable, "-m", "model.compare", "--out", str(out / "compare.html"),
                           "--markdown", str(out / "compare.md")], cwd=repo,
                          env={**env(repo), "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_report_and_compare_page_render_cleanly(browser, pages):
    page = browser.open((pages / "index.html").as_uri())
    state = page.evaluate(STATE)
    check_page(state, SECTIONS, "kopitiam report", images=4)
    summary = state["sections"][0]["text"]
    assert "LSTM test bits per character" in summary and "three samples" in summary.lower()
    assert XSS_SAMPLE in summary  # a hostile sample among the three, shown as text
    assert console_errors(browser, page.session) == []

    page.click('a[href="compare.html"]')  # the summary's link, followed with the mouse
    browser.wait_event("Page.loadEventFired", page.session)
    state = page.evaluate(STATE)
    assert state["location"].endswith("/compare.html")
    check_page(state, [(k, t) for k, t in compare.SECTIONS], "kopitiam: runs compared", images=2)
    text = {s["id"]: s["text"] for s in state["sections"]}
    assert "workspace = short" in text["runs"] and "HEAD" in text["runs"]
    assert "after 1 epochs" in text["samples"] and "after 3 epochs" in text["samples"]
    assert text["samples"].count(XSS_SAMPLE) == 2
    assert console_errors(browser, page.session) == []
