"""Stage `report`: one self-contained HTML page for analysts, and a Markdown summary for review.

Reads (each optional: a missing input is named on the page and the rest still builds):
``metrics/{crawl/*,clean,dedupe,split,vocab,batches,train,eval}.json``, ``data/raw/*.parquet`` (row
counts only), ``data/clean/{posts,dropped}.parquet``, ``data/dedup/{corpus,duplicates}.parquet``,
``data/split/{train,val,test}.parquet``, ``plots/train.csv``, ``reports/{samples,evolution,
novelty}.jsonl`` and ``models/lstm/``. Writes ``reports/index.html`` and ``reports/summary.md``.
The corpus files are read in bounded passes over one column at a time (model/splits.py: counts,
sums, value counts and a histogram; the validation text only up to what the model sections use),
so the stage's memory does not grow with the corpus.

The page is rendered from Jinja2 templates (``model/templates/report.html`` and ``report/<section>.html``,
sharing the stylesheet and macros of the compare page; model/pages.py); the section data comes from
model/report_sections.py. It opens on a summary for a reader (headline numbers, the verdict against the
best baseline, three samples, a link to the compare page); per-stage metrics are folded further down.

How this run stands against the previous commit's run is NOT on this page: that needs git history and
the DVC cache, which are no tracked inputs of this stage, and the page must be a function of its
inputs (``dvc.lock`` pins its bytes). ``python -m model.compare`` (not a stage) writes that comparison
to ``reports/compare.html``, which the summary links to.

Safety: scraped and generated text is untrusted. The templates autoescape every value (quotes
included); the page has no script, and a Content-Security-Policy that forbids scripts and any network
access, as a second line of defence. Images are PNG data URIs.

Params (``report`` section): ``snippet_chars`` (validation snippet length), ``analysis_chars``
(validation text used to pick interpretable cells), ``top_k`` (guesses shown per character),
``sample_chars`` (longest sample text shown), ``histogram_bins``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pyarrow.parquet as pq

from model import kernels
from model.pages import fence, flatten, fmt, render
from model.report_sections import CONDITIONING, SECTIONS, baseline_note, by_length_rows, model_label, verdict
from pipeline.common import atomic_path, iter_jsonl, load_params, setup_logging
from pipeline.config import section, setting

__all__ = ["CONDITIONING", "SECTIONS", "ReportConfig", "build", "by_length_rows", "main", "model_label",
           "summary_markdown", "verdict"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` section of params.yaml (meanings there)."""

    snippet_chars: int = setting(ge=1)
    analysis_chars: int = setting(ge=1)
    top_k: int = setting(ge=1)
    sample_chars: int = setting(ge=1)
    histogram_bins: int = setting(ge=1)


# -- inputs ----------------------------------------------------------------------------------------
class Inputs:
    """Paths of every input, and tolerant readers: None when a file is missing or unreadable (each
    problem noted once: JSON files are read once and remembered)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []
        self._read: dict[str, Any] = {}

    def path(self, rel: str) -> Path:
        return self.root / rel

    def json(self, rel: str) -> Any:
        if rel not in self._read:
            self._read[rel] = self._json(rel)
        return self._read[rel]

    def _json(self, rel: str) -> Any:
        p = self.path(rel)
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            self.problems.append(f"{rel}: unreadable ({exc})")
            log.warning("%s unreadable: %s", p, exc)
            return None

    def jsonl(self, rel: str) -> list[dict] | None:
        if rel not in self._read:
            self._read[rel] = self._jsonl(rel)
        return self._read[rel]

    def _jsonl(self, rel: str) -> list[dict] | None:
        p = self.path(rel)
        if not p.exists():
            return None
        bad: list[int] = []
        rows = [row for _, row in iter_jsonl(p, on_error=lambda number, msg: bad.append(number))]
        bad = len(bad)
        if bad:
            self.problems.append(f"{rel}: {bad} line(s) are not JSON and were skipped")
            log.warning("%s: %d bad lines skipped", p, bad)
        return rows

    def crawl(self) -> dict[str, Any]:
        """``{source: metrics/crawl/<source>.json}`` in source order; unreadable files left out (noted)."""
        folder = self.path("metrics/crawl")
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        docs = {p.stem: self.json(f"metrics/crawl/{p.name}") for p in files}
        return {src: d for src, d in docs.items() if d is not None}

    def stat(self, rel: str, what: str, read: Callable[[Path], Any]) -> Any:
        """``read(path)`` of a Parquet file (a bounded pass: model/splits.py), or None when it is
        missing or unreadable (noted)."""
        p = self.path(rel)
        if not p.exists():
            return None
        try:
            return read(p)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            self.problems.append(f"{rel}: cannot read {what} ({exc})")
            log.warning("%s: cannot read %s: %s", p, what, exc)
            return None

    def rows(self, rel: str) -> int | None:
        p = self.path(rel)
        return pq.ParquetFile(p).metadata.num_rows if p.exists() else None

    def csv(self, rel: str) -> list[dict[str, float]] | None:
        p = self.path(rel)
        if not p.exists():
            return None
        with open(p, newline="", encoding="utf-8") as fh:
            out = []
            for r in csv.DictReader(fh):
                try:
                    out.append({k: float(v) for k, v in r.items() if v not in (None, "")})
                except ValueError as exc:
                    self.problems.append(f"{rel}: row skipped ({exc})")
            return out


def build(root: Path, cfg: dict[str, Any], model_dir: str = "models/lstm") -> tuple[str, str]:
    """(index.html, summary.md) from the files under ``root``."""
    from model import report_sections as rs

    inp = Inputs(root)
    expects, cells = rs.model_sections(inp, cfg, model_dir)
    page = render("report.html", sections=SECTIONS, summary=rs.summary(inp), corpus=rs.corpus(inp, cfg),
                  training=rs.training(inp), samples=rs.samples(inp), evolution=rs.evolution(inp),
                  evaluation=rs.evaluation(inp), expects=expects, cells=cells, sample_chars=int(cfg["sample_chars"]),
                  problems=inp.problems)
    return page, summary_markdown(inp)


def summary_markdown(inp: Inputs) -> str:
    """Key numbers and a few samples as Markdown (stable text for diffs in review)."""
    out = ["# kopitiam summary", ""]
    ev = inp.json("metrics/eval.json")
    if ev:
        out += ["## Test set, bits per character (lower is better)", "", verdict(ev), "",
                "| model | bpc | nats/char | perplexity |", "|---|---|---|---|"]
        for n, m in sorted(ev.get("models", {}).items(), key=lambda kv: kv[1].get("bpc", 1e9)):
            out.append(f"| {model_label(n, m)} | {m.get('bpc', 0):.4f} | {m.get('nats_per_char', 0):.4f} "
                       f"| {m.get('perplexity', 0):.3f} |")
        out += ["", CONDITIONING] + (["", note] if (note := baseline_note(ev)) else [])
        header, length_rows = by_length_rows(ev)
        if length_rows:
            out += ["", "## By document length", "", "| " + " | ".join(header) + " |",
                    "|" + "---|" * len(header)]
            out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in length_rows]
        nov = ev.get("novelty", {})
        out += ["", "## Novelty", ""] + [f"- {k}: {fmt(v)}" for k, v in flatten(nov)]
    else:
        out += ["metrics/eval.json missing: run `dvc repro evaluate`."]
    train = inp.json("metrics/train.json")
    if train:
        out += ["", "## Training", ""] + [f"- {k}: {fmt(v)}" for k, v in flatten(train)]
    samples = inp.jsonl("reports/samples.jsonl") or []
    seen, picked = set(), []
    for s in samples:
        key = (s.get("method"), s.get("temperature"))
        if key not in seen:
            seen.add(key)
            picked.append(s)
    if picked:
        out += ["", "## Samples (the first per method and temperature)", ""]
        for s in picked:
            out += [f"**{s.get('method')}, T={s.get('temperature')}, prime {s.get('prime')!r}**", "",
                    fence((str(s.get("prime") or "") + str(s.get("text") or ""))[:500]), ""]
    return "\n".join(out).rstrip() + "\n"


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``report`` section, and ``kernels`` under ``kernels``."""
    return {**section("report", ReportConfig, params), "kernels": kernels.load_config(params)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="folder holding metrics/, data/, plots/, reports/, models/")
    parser.add_argument("--model", default="models/lstm", help="model folder, relative to --root")
    parser.add_argument("--out", default="reports/index.html")
    parser.add_argument("--summary", default="reports/summary.md")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = load_config(load_params(args.params))
    kernels.pin(cfg["kernels"], "model.report")
    page, summary = build(Path(args.root), cfg, args.model)
    for path, text in ((args.out, page), (args.summary, summary)):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s (%d KB, %d images) and %s", args.out, len(page) // 1024, page.count("<img "), args.summary)


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
