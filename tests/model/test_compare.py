"""python -m model.compare: runs side by side. Pure parts on hand-made runs (differences, best marks,
params that differ, samples paired with their novelty, hostile text escaped everywhere), then the
real thing in a throwaway DVC repository: ``dvc repro``, ``dvc exp run -S train.epochs=1 -n short``,
and the command's page shows both runs; a run whose output left the DVC cache is listed with why."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from model import compare, compare_view, runs
from model.pages import render
from tests.helpers.compare_project import XSS_SAMPLE, XSS_SOURCE, env, experiment_repo

REPO_ROOT = Path(__file__).resolve().parents[2]


class Page(HTMLParser):
    """Tags with attributes, and the text of each <section> by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.sections: dict[str, str] = {}
        self.title = ""
        self._section: str | None = None
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_title = tag == "title"
        if tag == "section":
            self._section = attrs.get("id")
            self.sections[self._section] = ""

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._section:
            self.sections[self._section] += data


def run_of(label: str, epochs: int, **extra) -> runs.Run:
    """A run as model/runs.py reads one, made by hand."""
    lstm = 3.0 - 0.1 * epochs
    data = {
        "eval": {"models": {"lstm": {"bpc": lstm}, "kneser_ney_5": {"bpc": 2.75}},
                 "comparison": {"best_baseline": "kneser_ney_5", "best_baseline_bpc": 2.75, "lstm_bpc": lstm},
                 "by_length": [{"chars": "0-63", "lstm_bpc": lstm + 0.1}], "novelty": {"novel_word_share": 0.1}},
        "train": {"val_bpc": lstm + 0.01, "steps_per_epoch": 10, "tokens_per_s": 100.0 * epochs},
        "dedupe": {"kept": 90, "exact_duplicates": 1, "near_duplicates": 0},
        "clean": {"kept": 91, "dropped_by_reason": {"too_short": 2}},
        "crawl": {"demo": {"posts": 93}},
        "params": {"train": {"epochs": epochs, "learning_rate": 0.00002}, "sample": {"seed": 1}},
        "curve": [{"epoch": e, "val_bpc": 3.0 - 0.1 * e} for e in range(1, epochs + 1)],
        "samples": [{"prime": "kopi", "method": "sample", "temperature": 0.7, "seed": 1,
                     "text": f" after {epochs} epochs"},
                    {"prime": "teh", "method": "greedy", "temperature": 0.0, "seed": None, "text": " lah"}],
        "novelty": [{"prime": "kopi", "method": "sample", "temperature": 0.7, "seed": 1, "novel_word_share": 0.5,
                     "longest_copy": 4},
                    {"prime": "teh", "method": "greedy", "temperature": 0.0, "seed": None, "novel_word_share": 0.0,
                     "longest_copy": 3}]}
    data.update(extra)
    return runs.Run([label], "a" * 40, None, data)


def cells(row):
    return [(c["value"], c["delta"], c["best"]) for c in row[1:]]


def test_differences_to_the_baseline_and_best_marks():
    got = compare_view.compared([2.0, 2.5, None, 2.0], base=1, better="lower")
    assert [(c["value"], c["delta"], c["best"]) for c in got] == [(2.0, -0.5, True), (2.5, None, False),
                                                                  (None, None, False), (2.0, -0.5, True)]
    assert [c["best"] for c in compare_view.compared([1, 3], 0, "higher")] == [False, True]
    assert not any(c["best"] for c in compare_view.compared([1, 1], 0, "lower"))  # equal: nothing is best
    assert not any(c["best"] for c in compare_view.compared(["kn", "xz"], 0, None))


def test_headline_and_model_tables_read_every_model_of_eval_json():
    a, b = run_of("a", 2), run_of("b", 4)
    b.data["eval"]["models"]["ppmd_5"] = {"bpc": 2.7}  # a baseline only one run has
    header, rows = compare_view.models_table([a, b], base=0)
    assert header == ["run", "kneser_ney_5", "lstm", "ppmd_5"]  # by the baseline run's bpc, then by name
    assert rows[0][0] == "a (baseline)" and cells(rows[0])[0] == (2.75, None, False)
    assert cells(rows[1])[0] == (2.75, 0, False)  # the same in both: no best
    assert rows[1][2]["best"] and rows[1][2]["delta"] == pytest.approx(-0.2)
    assert rows[0][3]["value"] is None and rows[1][3]["value"] == 2.7
    header, rows = compare_view.headline_table([a, b], base=0)
    assert header[1] == "LSTM test bits per character" and rows[1][1]["value"] == pytest.approx(2.6)
    tps = header.index("training tokens per second")
    assert rows[1][tps]["best"] and rows[1][tps]["value"] == 400  # tokens/s: higher is better, rounded
    assert compare_view.standing(b, a) == ("b: LSTM test 2.6000 bits per character, 0.2000 fewer than a (2.8000): "
                                           "better.")


def test_params_that_differ_and_only_those():
    a, b, c = run_of("a", 2), run_of("b", 4), run_of("c", 2)
    b.data["params"]["train"]["dropout"] = 0.1
    del c.data["params"]
    assert compare_view.params_diff([a, b, c]) == [("train.dropout", "(absent)", "0.1", "-"),
                                                   ("train.epochs", "2", "4", "-")]
    assert compare_view.flat_params({"x": {"lr": 0.00002, "l": [1, "a"]}}) == {"x.l": '[1, "a"]', "x.lr": "2e-05"}


def test_samples_pair_by_key_with_their_novelty():
    a, b = run_of("a", 2), run_of("b", 4)
    b.data["novelty"][0]["seed"] = 9  # not this sample's row: no novelty shown rather than the wrong one
    b.data["samples"].append({"prime": "x", "method": "sample", "temperature": 1.0, "seed": 5, "text": "only b"})
    side = compare_view.side_by_side([a, b])
    titles = [t for t, _ in side["rows"]]
    assert titles == ["sample, temperature 0.7, seed 1, prime 'kopi'",
                      "greedy, temperature 0.0, seed None, prime 'teh'"]
    (sa, note_a), (sb, note_b) = side["rows"][0][1]
    assert sa["text"] == " after 2 epochs" and sb["text"] == " after 4 epochs" and sa["prime"] == "kopi"
    assert note_a == "novel words 50.0% · longest copy from train 4 chars" and note_b is None
    assert side["rows"][1][1][1][1] == "novel words 0.0% · longest copy from train 3 chars"


def test_identical_runs_merge_under_both_names():
    ws, head, short = run_of("workspace", 1), run_of("HEAD", 3), run_of("short", 1)
    ws.commit, short.created = None, "2026-01-01T00:00:00"
    merged = runs.merge_identical([ws, head, short])
    assert [r.label for r in merged] == ["workspace = short", "HEAD"]
    assert merged[0].commit == "a" * 40 and merged[0].created == "2026-01-01T00:00:00"
    empty = [runs.Run(["x"], None, None), runs.Run(["y"], None, None)]
    assert len(runs.merge_identical(empty)) == 2  # nothing readable: kept apart


def test_data_differences():
    a, b = run_of("a", 2), run_of("b", 2)
    assert not compare_view.data_diff([a, b])["differ"]
    b.data["crawl"] = {"demo": {"posts": 93}, "edmw": {"posts": 5}}
    diff = compare_view.data_diff([a, b])
    assert diff["differ"] and ("posts crawled from edmw", None, 5) in diff["rows"]


HOSTILE = {
    "label": '<b id="label">run</b>',
    "param": '</td><script>alert("param")</script>',
    "source": 'demo"><img src=y onerror=alert("source")>',
    "sample": '<img src=x onerror="document.title=1"><script>alert("sample")</script>',
    "prime": "<svg onload=alert('prime')>",
    "model": "<i onmouseover=alert('model')>m</i>",
    "reason": "<iframe src=javascript:alert('reason')>",
}


def hostile_runs() -> list[runs.Run]:
    a, b = run_of("HEAD", 2), run_of(HOSTILE["label"], 4)
    b.data["params"]["train"]["note"] = HOSTILE["param"]
    b.data["crawl"] = {HOSTILE["source"]: {"posts": 7}}
    for r in (a, b):
        r.data["samples"][0].update(text=HOSTILE["sample"], prime=HOSTILE["prime"])
        r.data["novelty"][0]["prime"] = HOSTILE["prime"]
    b.data["eval"]["models"][HOSTILE["model"]] = {"bpc": 1.0}
    b.missing["reports/novelty.jsonl"] = HOSTILE["reason"]
    return [a, b]


def test_every_field_from_a_run_is_escaped_on_the_compare_page():
    ctx = compare_view.context(hostile_runs(), base=0, sample_chars=600)
    html = render("compare.html", sections=compare.SECTIONS, **ctx)
    page = Page(html)
    assert [t for t, _ in page.tags if t in ("script", "iframe", "svg", "object")] == []
    assert not [a for _, a in page.tags if a.get("id") == "label"]  # the run name's <b id=...> is text
    assert all(not k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in page.tags if t == "img")
    assert page.title == "kopitiam: runs compared"
    s = page.sections
    assert HOSTILE["label"] in s["runs"] and HOSTILE["reason"] in s["runs"]  # shown as text
    assert HOSTILE["param"] in s["params"] and HOSTILE["model"] in s["metrics"] and HOSTILE["source"] in s["data"]
    assert s["samples"].count(HOSTILE["sample"]) == 2 and HOSTILE["prime"] in s["samples"]
    assert "&lt;script&gt;alert(&#34;sample&#34;)&lt;/script&gt;" in html


def test_compare_markdown_keeps_hostile_text_inert():
    ctx = compare_view.context(hostile_runs(), base=0, sample_chars=600)
    md = compare.markdown(ctx)
    fenced = md.split("```")
    outside = "".join(fenced[0::2])  # text outside code fences, where a renderer would pass HTML through
    assert "<" not in outside.replace("&lt;", "")
    assert HOSTILE["sample"] in "".join(fenced[1::2])  # inside fences: shown as written
    assert "&lt;/td&gt;&lt;script&gt;alert(\"param\")&lt;/script&gt;" in outside


# -- a real DVC repository -------------------------------------------------------------------------
def compare_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "model.compare", *args]
    e = {**env(repo), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(cmd, cwd=repo, env=e, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """``dvc repro`` (3 epochs) committed, then ``dvc exp run -S train.epochs=1 -n short``."""
    return experiment_repo(tmp_path_factory)


@pytest.fixture(scope="module")
def default_page(repo) -> tuple[str, str]:
    proc = compare_cli(repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ((repo / "reports/compare.html").read_text(encoding="utf-8"),
            (repo / "reports/compare.md").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_after_an_experiment_the_page_shows_both_runs(default_page):
    html, md = default_page
    page = Page(html)
    assert list(page.sections) == [k for k, _ in compare.SECTIONS]
    s = page.sections
    assert "workspace = short" in s["runs"] and "HEAD" in s["runs"]  # the workspace holds the experiment
    assert "Not available" not in "".join(s.values())
    assert "2.6334" in s["metrics"] and "2.2869" in s["metrics"]  # both runs' LSTM test bpc
    assert "+0.3465" in s["metrics"] and "ppmd_5" in s["metrics"]  # difference to HEAD; every eval.json model
    assert "train.epochs" in s["params"] and "crawl.sources" not in s["params"]  # only what differs
    imgs = [a["src"] for t, a in page.tags if t == "img"]
    assert len(imgs) == 2  # val bpc by epoch and by step, both runs in each
    assert all(base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG" for src in imgs)
    assert "after 1 epochs" in s["samples"] and "after 3 epochs" in s["samples"]  # side by side
    assert s["samples"].count(XSS_SAMPLE) == 2 and "longest copy from train 8 chars" in s["samples"]
    assert "every run read the same data" in s["data"].lower() and XSS_SOURCE in s["data"]
    assert "workspace = short: LSTM test 2.6334 bits per character, 0.3465 more than HEAD" in html
    assert "| workspace = short | 2.6334 (+0.3465) |" in md


@pytest.mark.slow
def test_explicit_runs_baseline_and_an_unknown_revision(repo):
    proc = compare_cli(repo, "HEAD", "short", "no-such-run", "--baseline", "short",
                       "--out", "out/c.html", "--markdown", "out/c.md")
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = Page((repo / "out/c.html").read_text(encoding="utf-8"))
    assert "Baseline: short" in (repo / "out/c.md").read_text(encoding="utf-8")
    assert "short (baseline)" in page.sections["metrics"]
    assert "no-such-run" in page.sections["runs"] and "unknown revision" in page.sections["runs"]


@pytest.mark.slow
def test_a_run_missing_from_the_cache_is_listed_with_the_reason(repo, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    lock = subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=copy, capture_output=True, text=True).stdout
    md5 = next(o["md5"] for o in __import__("yaml").safe_load(lock)["stages"]["train"]["outs"]
               if o["path"] == "reports/samples.jsonl")
    (copy / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()
    proc = compare_cli(copy, "HEAD", "short")
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = Page((copy / "reports/compare.html").read_text(encoding="utf-8"))
    runs_text = " ".join(page.sections["runs"].split())
    assert "reports/samples.jsonl: listed in this revision's dvc.lock, but its bytes are not in the DVC cache" \
        in runs_text
    assert "2.2869" in page.sections["metrics"]  # HEAD stays, with what it has
    assert "after 1 epochs" in page.sections["samples"] and "No samples for: HEAD" in page.sections["samples"]


@pytest.mark.slow
def test_outside_a_dvc_repository_one_line_error(tmp_path):
    proc = compare_cli(tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "dvc exp show --json` failed" in proc.stderr and "is it a DVC repository" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_exp_show_listing_newest_first():
    show = json.loads(json.dumps([
        {"rev": "workspace", "data": {}},
        {"rev": "h" * 40, "name": "main", "data": {"timestamp": "2026-01-01T00:00:00"}, "experiments": [
            {"revs": [{"rev": "1" * 40, "name": "old", "data": {"timestamp": "2026-01-02T00:00:00"}}]},
            {"revs": [{"rev": "2" * 40, "name": "new", "data": {"timestamp": "2026-01-03T00:00:00"}}]},
            {"executor": "dvc-task", "revs": [{"rev": "3" * 40, "name": "queued", "data": {}}]}]}]))
    specs = runs.default_specs(show, max_experiments=1)
    assert [(s.label, s.rev) for s in specs] == [("workspace", None), ("HEAD", "h" * 40), ("new", "2" * 40)]
    assert [s.label for s in runs.default_specs(show, 5)] == ["workspace", "HEAD", "new", "old"]
