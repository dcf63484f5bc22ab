"""Stage report (model/report.py): the page from a tiny trained model, with and without its inputs.

The page builds end to end with every section and image, degrades gracefully without inputs, shows
untrusted text as text, and renders in headless Chromium when one is installed."""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from model import report
from tests.helpers.eval_project import XSS_POST, XSS_SAMPLE, shared_project
from tests.helpers.params import stage_config


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.sections: dict[str, list[str]] = {}
        self._section: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            self._section = attrs.get("id")
            self.sections[self._section] = []

    def handle_data(self, data):
        if self._section:
            self.sections[self._section].append(data)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def page(project) -> str:
    return (project[0] / "reports/index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_section_is_present_and_filled(page):
    parsed = _Tags()
    parsed.feed(page)
    assert list(parsed.sections) == [k for k, _ in report.SECTIONS]
    for key, _ in report.SECTIONS:
        text = "".join(parsed.sections[key])
        assert "Not available" not in text, key
    s = {k: "".join(v) for k, v in parsed.sections.items()}
    assert "too_short" in s["corpus"] and "exact" in s["corpus"]
    assert "kneser_ney_4" in s["evaluation"] and "xz_9" in s["evaluation"] and "lstm" in s["evaluation"]
    assert "end of training: 3.1000 bits per character" in s["evaluation"]  # val bpc from metrics/train.json
    assert "greedy" in s["samples"] and "beam" in s["samples"] and "temperature 0.5" in s["samples"]
    assert "epoch 2 text" in s["evolution"]
    assert "next:" in s["expects"]  # the top-k guesses for each character
    assert "position in word: layer" in s["cells"]


@pytest.mark.slow
def test_images_are_embedded_png(page):
    parsed = _Tags()
    parsed.feed(page)
    srcs = [a["src"] for t, a in parsed.tags if t == "img"]
    assert len(srcs) == 4  # length histogram, loss, bits per character, model bars
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page  # nothing to fetch


@pytest.mark.slow
def test_untrusted_text_is_shown_as_text(page, project):
    parsed = _Tags()
    parsed.feed(page)
    assert not [t for t, _ in parsed.tags if t in ("script", "iframe", "object")]
    assert all(not k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert all(a.get("src", "data:").startswith("data:") for t, a in parsed.tags if t == "img")
    # autoescaped by the templates (markupsafe writes quotes as &#34;)
    assert "&lt;img src=x onerror=&#34;document.title=1&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "".join(parsed.sections["samples"]).count(XSS_SAMPLE) == 1  # the browser shows it, as text
    # the validation snippet starts with XSS_POST, escaped character by character: as text in the cells
    shown = XSS_POST[:60].replace(" ", "\u00a0")
    assert shown in "".join(parsed.sections["cells"]) and "<script>" in shown


@pytest.mark.slow
def test_summary_markdown_has_numbers_and_samples(project):
    text = (project[0] / "reports/summary.md").read_text(encoding="utf-8")
    for name in ("lstm", "unigram", "kneser_ney_4", "gzip_9", "bzip2_9", "xz_9"):
        assert f"| {name} |" in text
    order = json.loads((project[0] / "metrics/eval.json").read_text())["models"]["ppmd"]["order"]
    assert f"| ppmd (order {order}) |" in text and report.CONDITIONING in text
    assert "novel_word_share" in text and "teh kopi kopi" in text


def test_page_and_summary_say_how_much_train_text_the_baselines_saw(project):
    from model.report_sections import baseline_note

    ev = json.loads((project[0] / "metrics/eval.json").read_text())
    note = baseline_note(ev)
    n = ev["baseline_train"]["documents"]
    assert note.startswith(f"The baselines were fitted on the whole train split ({n:,} documents")
    assert note in (project[0] / "reports/summary.md").read_text(encoding="utf-8")
    assert html.escape(note) in (project[0] / "reports/index.html").read_text(encoding="utf-8")
    sampled = {"baseline_train": {"documents": 16192, "characters": 3999849, "split_documents": 82701,
                                  "split_characters": 20502708, "max_chars": 4000000, "seed": 0, "sampled": True}}
    assert baseline_note(sampled).startswith("The baselines were fitted on a seeded sample of the train split: "
                                             "16,192 of its 82,701 documents (3,999,849 of 20,502,708 characters")
    assert baseline_note({}) is None


def test_missing_inputs_are_named_on_the_page(tmp_path):
    page, summary = report.build(tmp_path, stage_config("report", report.ReportConfig))
    parsed = _Tags()
    parsed.feed(page)
    assert list(parsed.sections) == [k for k, _ in report.SECTIONS]
    for key, _ in report.SECTIONS:
        assert "Not available" in "".join(parsed.sections[key]), key
    assert "plots/train.csv" in page and "metrics/eval.json" in summary


@pytest.mark.slow
@pytest.mark.browser
def test_renders_in_headless_chromium(project, tmp_path):
    browser = os.environ.get("KOPITIAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("no chromium installed (apt-get install chromium)")
    url = (project[0] / "reports/index.html").resolve().as_uri()
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    dom = out.stdout
    assert "<title>kopitiam report</title>" in dom, out.stderr[-2000:]  # a payload would rewrite the title
    parsed = _Tags()
    parsed.feed(dom)
    assert list(parsed.sections) == [k for k, _ in report.SECTIONS]
    assert len([1 for t, _ in parsed.tags if t == "img"]) == 4
    assert not [t for t, _ in parsed.tags if t == "script"]


def test_verdict_names_the_best_baseline_and_the_margin():
    beaten = {"comparison": {"best_baseline": "kneser_ney_5", "best_baseline_bpc": 2.2, "lstm_bpc": 2.0}}
    assert report.verdict(beaten) == ("The LSTM beats every baseline: 2.0000 bits per character against 2.2000 "
                                      "for the best, kneser_ney_5 (0.2000 fewer, 9.1% less).")
    losing = {"comparison": {"best_baseline": "kneser_ney_5", "best_baseline_bpc": 2.0, "lstm_bpc": 2.1}}
    assert report.verdict(losing).startswith("The LSTM does NOT beat the best baseline, kneser_ney_5: 2.1000")
    assert "5.0% worse" in report.verdict(losing)
    assert report.verdict({}) == "No LSTM result to compare with the baselines."
    ppmd = {"comparison": {"best_baseline": "ppmd", "best_baseline_bpc": 2.2, "lstm_bpc": 2.0},
            "models": {"ppmd": {"bpc": 2.2, "order": 6}}}
    assert "for the best, ppmd (order 6) (0.2000 fewer" in report.verdict(ppmd)


@pytest.mark.slow
def test_by_length_table_says_which_model_wins_each_group(project):
    ev = json.loads((project[0] / "metrics/eval.json").read_text())
    header, rows = report.by_length_rows(ev)
    assert header[3:] == ["LSTM bpc", "kneser_ney_4 bpc", "ppmd bpc", "best"] and len(rows) == len(ev["by_length"]) > 0
    assert sum(r[2] for r in rows) == ev["test"]["targets"]
    for r in rows:
        scores = {"LSTM": r[3], "kneser_ney_4": r[4], "ppmd": r[5]}
        assert r[6] == min(scores, key=scores.__getitem__)
    text = (project[0] / "reports/summary.md").read_text(encoding="utf-8")
    assert "## By document length" in text and report.verdict(ev) in text


def test_the_first_screen_is_a_summary_for_a_reader(page, project):
    ev = json.loads((project[0] / "metrics/eval.json").read_text())
    parsed = _Tags()
    parsed.feed(page)
    assert list(parsed.sections)[0] == "summary"
    text = "".join(parsed.sections["summary"])
    assert report.verdict(ev) in text  # the verdict against the best baseline
    assert f"{round(ev['comparison']['lstm_bpc'], 4):.4f}" in text and "LSTM test bits per character" in text
    summary = page[page.index('<section id="summary">'):page.index("</section>")]
    assert summary.count('<pre class="sample">') == 3
    assert '<a href="compare.html">' in summary  # the comparison with other runs lives there
    corpus = page[page.index('<section id="corpus">'):]
    details = corpus.index("<details><summary>Every crawl metric, per source</summary>")
    assert corpus.index("<td>note</td>") > details  # every crawl metric is folded, below the posts per source
