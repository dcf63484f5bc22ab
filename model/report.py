"""Stage `report`: one self-contained HTML page for analysts, and a Markdown summary for review.

Reads (each optional: a missing input is named on the page and the rest still builds):
``metrics/{crawl/*,clean,dedupe,split,vocab,batches,train,eval}.json``, ``data/raw/*.parquet`` (row
counts only), ``data/clean/{posts,dropped}.parquet``, ``data/dedup/{corpus,duplicates}.parquet``,
``data/split/{train,val,test}.parquet``, ``plots/train.csv``, ``reports/{samples,evolution,
novelty}.jsonl`` and ``models/lstm/``. Writes ``reports/index.html`` and ``reports/summary.md``.

Safety: scraped and generated text is untrusted. Every string that reaches the page goes through
``html.escape`` (quotes included) in ``esc``; the page has no script, and a Content-Security-Policy
that forbids scripts and any network access, as a second line of defence. Images are PNG data URIs.

Params (``report`` section): ``snippet_chars`` (validation snippet length), ``analysis_chars``
(validation text used to pick interpretable cells), ``top_k`` (guesses shown per character),
``sample_chars`` (longest sample text shown), ``histogram_bins``.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pyarrow.parquet as pq

from pipeline.common import atomic_path, iter_jsonl, load_params, setup_logging
from pipeline.config import section, setting

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` section of params.yaml (meanings there)."""

    snippet_chars: int = setting(ge=1)
    analysis_chars: int = setting(ge=1)
    top_k: int = setting(ge=1)
    sample_chars: int = setting(ge=1)
    histogram_bins: int = setting(ge=1)


SECTIONS = [("corpus", "Corpus overview"), ("training", "Training"), ("samples", "Samples by temperature"),
            ("evolution", "Sample evolution across epochs"), ("evaluation", "Evaluation against baselines"),
            ("expects", "What the model expects"), ("cells", "What a cell tracks")]


def esc(value: Any) -> str:
    """HTML-escape anything shown on the page (text and attribute values alike)."""
    return html.escape(str(value), quote=True)


def missing(what: str, how: str) -> str:
    return f'<p class="missing">Not available: {esc(what)} is missing ({esc(how)}).</p>'


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested JSON as (dotted key, scalar) pairs; lists of scalars joined."""
    if isinstance(data, dict):
        return [kv for k in sorted(data) for kv in flatten(data[k], f"{prefix}{k}.")]
    if isinstance(data, list):
        if all(not isinstance(x, (dict, list)) for x in data):
            return [(prefix[:-1], ", ".join(fmt(x) for x in data))]
        return [kv for i, x in enumerate(data) for kv in flatten(x, f"{prefix}{i}.")]
    return [(prefix[:-1], data)]


def img(uri: str, alt: str) -> str:
    return f'<img src="{esc(uri)}" alt="{esc(alt)}">'


# -- inputs ----------------------------------------------------------------------------------------
class Inputs:
    """Paths of every input, and tolerant readers: None when a file is missing or unreadable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []

    def path(self, rel: str) -> Path:
        return self.root / rel

    def json(self, rel: str) -> Any:
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

    def column(self, rel: str, name: str) -> list | None:
        p = self.path(rel)
        if not p.exists():
            return None
        try:
            return pq.read_table(p, columns=[name]).column(name).to_pylist()
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            self.problems.append(f"{rel}: cannot read column {name!r} ({exc})")
            log.warning("%s: cannot read column %s: %s", p, name, exc)
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


# -- sections --------------------------------------------------------------------------------------
def corpus_section(inp: Inputs, cfg: dict) -> str:
    from model import report_plots

    parts = []
    crawl = sorted(inp.path("metrics/crawl").glob("*.json")) if inp.path("metrics/crawl").is_dir() else []
    if crawl:
        per = {p.stem: dict(flatten(inp.json(f"metrics/crawl/{p.name}") or {})) for p in crawl}
        keys = sorted({k for d in per.values() for k in d})
        rows = [(k, *(per[src].get(k, "") for src in per)) for k in keys]
        parts.append("<h3>Sources</h3>" + table(["metric", *per], rows, "compact"))
    else:
        parts.append("<h3>Sources</h3>" + missing("metrics/crawl/*.json", "run `dvc repro crawl`"))
    stages = []
    raw = sorted(inp.path("data/raw").glob("*.parquet")) if inp.path("data/raw").is_dir() else []
    if raw:
        stages.append(("raw (crawled)", sum(inp.rows(f"data/raw/{p.name}") or 0 for p in raw), None))
    for label, rel in [("clean", "data/clean/posts.parquet"), ("deduplicated", "data/dedup/corpus.parquet"),
                       ("train", "data/split/train.parquet"), ("val", "data/split/val.parquet"),
                       ("test", "data/split/test.parquet")]:
        n = inp.column(rel, "n_chars")
        if n is not None:
            stages.append((label, len(n), sum(x or 0 for x in n)))
    parts.append("<h3>Posts and characters at each stage</h3>" +
                 (table(["stage", "posts", "characters"], [(a, b, "-" if c is None else c) for a, b, c in stages])
                  if stages else missing("data/raw, data/clean, data/dedup and data/split", "run `dvc repro split`")))
    reasons = inp.column("data/clean/dropped.parquet", "reason")
    parts.append("<h3>Dropped by reason</h3>" + (
        table(["reason", "posts"], Counter(reasons).most_common()) if reasons is not None
        else missing("data/clean/dropped.parquet", "run `dvc repro clean`")))
    kinds = inp.column("data/dedup/duplicates.parquet", "kind")
    parts.append("<h3>Duplicates removed</h3>" + (
        table(["kind", "posts"], sorted(Counter(kinds).items())) if kinds is not None
        else missing("data/dedup/duplicates.parquet", "run `dvc repro dedupe`")))
    lengths = {s: inp.column(f"data/split/{s}.parquet", "n_chars") for s in ("train", "val", "test")}
    lengths = {k: [x or 0 for x in v] for k, v in lengths.items() if v is not None}
    parts.append("<h3>Post length</h3>" + (
        img(report_plots.length_histogram(lengths, int(cfg["histogram_bins"])), "post length histogram")
        if any(lengths.values()) else missing("data/split/*.parquet", "run `dvc repro split`")))
    details = []
    for name in ("clean", "dedupe", "split", "vocab", "batches"):
        data = inp.json(f"metrics/{name}.json")
        details.append(f"<details><summary>metrics/{esc(name)}.json</summary>" +
                       (table(["metric", "value"], flatten(data), "compact") if data is not None
                        else missing(f"metrics/{name}.json", f"run `dvc repro {name}`")) + "</details>")
    return "".join(parts) + "<h3>All stage metrics</h3>" + "".join(details)


def training_section(inp: Inputs, cfg: dict) -> str:
    from model import report_plots

    rows = inp.csv("plots/train.csv")
    out = []
    if rows:
        loss, bpc = report_plots.training_curves(rows)
        out.append('<div class="row">' + img(loss, "loss per epoch")
                   + img(bpc, "bits per character per epoch") + "</div>")
    else:
        out.append(missing("plots/train.csv", "run `dvc repro train`"))
    train = inp.json("metrics/train.json")
    out.append(table(["metric", "value"], flatten(train), "compact") if train is not None
               else missing("metrics/train.json", "run `dvc repro train`"))
    return "".join(out)


def sample_text(s: dict, limit: int) -> str:
    """Prime (bold) then the generated continuation (``text`` excludes the prime), escaped."""
    text, prime = str(s.get("text") or ""), str(s.get("prime") or "")
    cut = f' <i class="note">[{len(text) - limit:,} more characters]</i>' if len(text) > limit else ""
    end = ' <i class="note">[END]</i>' if s.get("ended") else ""
    return f'<pre class="sample"><b class="prime">{esc(prime)}</b>{esc(text[:limit])}{cut or end}</pre>'


def samples_section(inp: Inputs, cfg: dict) -> str:
    samples = inp.jsonl("reports/samples.jsonl")
    if not samples:
        return missing("reports/samples.jsonl", "run `dvc repro sample`")
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        groups.setdefault((str(s.get("method")), s.get("temperature")), []).append(s)
    order = sorted(groups, key=lambda k: (k[0] != "sample", k[0], k[1] if isinstance(k[1], (int, float)) else 0))
    out = []
    for method, temp in order:
        title = f"{method}" + (f", temperature {temp}" if temp is not None and method not in ("greedy", "beam") else "")
        out.append(f"<h3>{esc(title)}</h3>")
        for s in groups[(method, temp)]:
            meta = f"prime {s.get('prime')!r} · seed {s.get('seed')} · mean log-prob {fmt(s.get('mean_logprob'))}"
            out.append(f'<p class="meta">{esc(meta)}</p>' + sample_text(s, int(cfg["sample_chars"])))
    return "".join(out)


def evolution_section(inp: Inputs, cfg: dict) -> str:
    rows = inp.jsonl("reports/evolution.jsonl")
    if not rows:
        return missing("reports/evolution.jsonl", "run `dvc repro train`")
    keys = sorted({(str(r.get("prime")), str(r.get("temperature"))) for r in rows})
    epochs = sorted({r.get("epoch") for r in rows}, key=lambda e: (e is None, e))
    by = {(r.get("epoch"), str(r.get("prime")), str(r.get("temperature"))): r for r in rows}
    head = "<tr><th>epoch</th>" + "".join(f"<th>prime {esc(repr(p))}, T={esc(t)}</th>" for p, t in keys) + "</tr>"
    body = ""
    for e in epochs:
        cells = "".join(f'<td>{sample_text(by[(e, p, t)], int(cfg["sample_chars"])) if (e, p, t) in by else ""}</td>'
                        for p, t in keys)
        body += f"<tr><td>{esc(e)}</td>{cells}</tr>"
    return f'<table class="evolution"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _val_note(train: Any) -> str:
    if not isinstance(train, dict) or not isinstance(train.get("val_bpc"), (int, float)):
        return ""
    return (f'<p class="note">For comparison, the LSTM\'s validation loss at the end of training: '
            f'{train["val_bpc"]:.4f} bits per character (metrics/train.json).</p>')


def verdict(ev: dict) -> str:
    """One plain sentence: which baseline is best and whether, by how much, the LSTM beats it."""
    c = ev.get("comparison")
    numbers = ("lstm_bpc", "best_baseline_bpc")
    if not isinstance(c, dict) or not all(isinstance(c.get(k), (int, float)) for k in numbers):
        return "No LSTM result to compare with the baselines."
    margin = c["best_baseline_bpc"] - c["lstm_bpc"]
    share = 100.0 * abs(margin) / c["best_baseline_bpc"]
    best = model_label(str(c["best_baseline"]), (ev.get("models") or {}).get(c["best_baseline"]) or {})
    if margin > 0:
        return (f"The LSTM beats every baseline: {c['lstm_bpc']:.4f} bits per character against "
                f"{c['best_baseline_bpc']:.4f} for the best, {best} "
                f"({margin:.4f} fewer, {share:.1f}% less).")
    return (f"The LSTM does NOT beat the best baseline, {best}: {c['lstm_bpc']:.4f} bits per character "
            f"against {c['best_baseline_bpc']:.4f} ({-margin:.4f} more, {share:.1f}% worse).")


def by_length_rows(ev: dict) -> tuple[list[str], list[tuple]]:
    """Header and rows of the LSTM's bits per character by document length beside each baseline
    measured per document there (Kneser-Ney, PPMd), and which of them is best in each group."""
    groups = ev.get("by_length") or []
    others = sorted({k[:-4] for g in groups for k in g if k.endswith("_bpc") and k != "lstm_bpc"})
    rows = []
    for g in groups:
        scores = {"LSTM": g.get("lstm_bpc"), **{o: g.get(f"{o}_bpc") for o in others}}
        known = {k: v for k, v in scores.items() if isinstance(v, float)}
        better = min(known, key=known.__getitem__) if len(known) > 1 and "LSTM" in known else ""
        rows.append((g.get("chars"), g.get("documents"), g.get("targets"), *scores.values(), better))
    return (["document length (chars)", "documents", "characters measured", "LSTM bpc",
             *(f"{o} bpc" for o in others), "best"], rows)


def model_label(name: str, m: dict) -> str:
    """A model's name in tables; PPMd's with the order the val split chose."""
    return f"{name} (order {m['order']})" if isinstance(m.get("order"), int) else name


CONDITIONING = ("What each model is given: the LSTM scores every test document on its own, from a zero state and "
                "the END before it; the unigram, Kneser-Ney and PPMd baselines likewise score each document alone "
                "after the train split (PPMd coded from the state it reached reading the train text, model/"
                "baselines.py). gzip, bzip2 and xz read the test split as one stream after the train text, so "
                "they also see (and adapt to) the test documents before each one: an advantage the others lack. "
                "PPMd's cost as one such stream is in metrics/eval.json (models.ppmd.stream_bpc).")


def evaluation_section(inp: Inputs, cfg: dict) -> str:
    from model import report_plots

    ev = inp.json("metrics/eval.json")
    if ev is None:
        return missing("metrics/eval.json", "run `dvc repro evaluate`")
    models = ev.get("models", {})
    rows = [(model_label(n, m), m.get("bpc"), m.get("nats_per_char"), m.get("perplexity"))
            for n, m in sorted(models.items(), key=lambda kv: kv[1].get("bpc", 1e9))]
    test = ev.get("test", {})
    out = [f'<p>Test split: {fmt(test.get("documents"))} documents, {fmt(test.get("targets"))} characters measured '
           "(every character plus one END per document; the same symbols for every model).</p>",
           f'<p class="verdict"><strong>{esc(verdict(ev))}</strong></p>',
           table(["model", "bits per char", "nats per char", "perplexity"], rows),
           f'<p class="note">{esc(CONDITIONING)}</p>',
           _val_note(inp.json("metrics/train.json")),
           img(report_plots.model_bars({n: m["bpc"] for n, m in models.items() if "bpc" in m}),
               "bits per character by model")]
    header, length_rows = by_length_rows(ev)
    if length_rows:
        out.append("<h3>By document length (where the LSTM wins and loses)</h3>")
        out.append("<p>Test documents grouped by their length; bits per character of each group's characters. "
                   "Long documents are scored with the LSTM state carried across windows when "
                   "<code>evaluate.carry_state</code> is on.</p>")
        out.append(table(header, length_rows, "compact"))
    nov = ev.get("novelty", {})
    out.append("<h3>Novelty (does the model invent or copy?)</h3>")
    out.append(table(["metric", "value"], flatten(nov), "compact"))
    rows = inp.jsonl("reports/novelty.jsonl") or []
    if rows:
        out.append(table(["method", "T", "prime", "novel word share", "longest copy", "copied text"],
                         [(r.get("method"), r.get("temperature"), r.get("prime"), r.get("novel_word_share"),
                           r.get("longest_copy"), r.get("longest_copy_text")) for r in rows], "novelty"))
    return "".join(out)


def _prob_style(p: float) -> str:
    return f"background: rgba(39, 174, 96, {max(0.0, min(1.0, p)):.3f})"


def _act_style(a: float) -> str:
    colour = "192, 57, 43" if a > 0 else "41, 128, 185"
    return f"background: rgba({colour}, {min(1.0, abs(a)):.3f})"


def _char(ch: str) -> str:
    return {"\n": "\u21b5\n", " ": "\u00a0"}.get(ch, ch)


def model_sections(inp: Inputs, cfg: dict, model_dir: str) -> tuple[str, str]:
    """(what the model expects, what a cell tracks), from the model and the validation split."""
    texts = inp.column("data/split/val.parquet", "text")
    if not (inp.root / model_dir / "meta.json").exists():
        m = missing(f"{model_dir}/", "run `dvc repro train`")
        return m, m
    if not texts:
        m = missing("data/split/val.parquet", "run `dvc repro split`")
        return m, m
    from model.artifacts import load_trained

    model, vocab, _ = load_trained(inp.root / model_dir)
    texts = [t for t in texts if t]
    n = int(cfg["snippet_chars"])
    snippet = next((t for t in texts if len(t) >= n), max(texts, key=len))[:n]
    return expectations_section(model, vocab, snippet, int(cfg["top_k"])), \
        cells_section(model, vocab, snippet, texts, int(cfg["analysis_chars"]))


def expectations_section(model, vocab, snippet: str, top_k: int) -> str:
    """The snippet shaded by the probability of each character, with the top-k next guesses."""
    from model import interpret

    ex = interpret.expectations(model, vocab, snippet, top_k)
    spans = []
    for i, ch in enumerate(snippet):
        guesses = "".join(f"<li><code>{esc(repr(g))}</code> {p:.3f}</li>" for g, p in ex["next_guesses"][i])
        spans.append(f'<span class="c" style="{_prob_style(ex["prob_of_char"][i])}">{esc(_char(ch))}'
                     f'<span class="tip">after {esc(repr(snippet[max(0, i - 10):i + 1]))}, next:'
                     f'<ol>{guesses}</ol></span></span>')
    first = [(i, repr(snippet[i]), f'{ex["prob_of_char"][i]:.3f}',
              "  ".join(f"{g!r} {p:.2f}" for g, p in ex["next_guesses"][i])) for i in range(min(30, len(snippet)))]
    return ("<p>Each character is shaded by the probability the model gave it before seeing it (darker = "
            "expected). Hover a character for the model's top guesses for the character after it.</p>"
            f'<div class="snippet">{"".join(spans)}</div><details><summary>Guesses for the first characters'
            "</summary>" + table(["#", "char", "p(char)", "top guesses for the next char"], first, "compact")
            + "</details>")


def cells_section(model, vocab, snippet: str, texts: list[str], analysis_chars: int) -> str:
    """The cells most correlated with simple text features over the first ``analysis_chars``
    validation characters, each shown as its activation over the snippet."""
    from model import interpret

    analysis, total = [], 0
    for t in texts:
        if total >= analysis_chars:
            break
        analysis.append(t[: analysis_chars - total])
        total += len(analysis[-1])
    cells, skipped = interpret.interpretable_cells(model, vocab, analysis)
    acts = interpret.cell_activations(model, vocab, snippet, cells)
    out = [f"<p>Cells chosen automatically over {total:,} validation characters: for each feature, the cell "
           "whose activation tanh(c) correlates most with it (red positive, blue negative).</p>"]
    if skipped:
        out.append(f'<p class="note">Features constant on this text, skipped: {esc(", ".join(skipped))}.</p>')
    for cell, a in zip(cells, acts):
        spans = "".join(f'<span class="c" style="{_act_style(v)}" title="{v:+.3f}">{esc(_char(ch))}</span>'
                        for ch, v in zip(snippet, a))
        out.append(f"<h3>{esc(cell.feature)}: layer {cell.layer}, cell {cell.index} (r = {cell.r:+.3f})</h3>"
                   f'<div class="snippet">{spans}</div>')
    return "".join(out)


# -- page ------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{margin-bottom:0}h2{border-bottom:2px solid #ddd;margin-top:2em}nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;vertical-align:top;text-align:left}
th{background:#f4f4f4}table.compact td{font-size:12px}pre.sample{white-space:pre-wrap;background:#fafafa;
border-left:3px solid #ccc;padding:.4em .8em;margin:.2em 0 1em}b.prime{color:#c0392b}.meta,.note{color:#666;font-size:12px}
.missing{color:#a04000;background:#fff4e5;padding:.4em .8em;border-left:3px solid #e67e22}
.snippet{font:13px/1.9 ui-monospace,monospace;white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:.6em}
.c{position:relative}.c .tip{display:none;position:absolute;left:0;top:1.6em;z-index:9;background:#fff;border:1px solid #999;
padding:.3em .6em;white-space:pre;font-size:12px;line-height:1.3}.c:hover .tip{display:block}
.row img{max-width:49%}img{max-width:100%}table.evolution pre{margin:0;max-width:30em}
"""  # noqa: E501 (the CSS goes into the report as written: wrapping it would change the report's bytes)


def build(root: Path, cfg: dict[str, Any], model_dir: str = "models/lstm") -> tuple[str, str]:
    """(index.html, summary.md) from the files under ``root``."""
    inp = Inputs(root)
    builders: dict[str, Callable[[], str]] = {
        "corpus": lambda: corpus_section(inp, cfg), "training": lambda: training_section(inp, cfg),
        "samples": lambda: samples_section(inp, cfg), "evolution": lambda: evolution_section(inp, cfg),
        "evaluation": lambda: evaluation_section(inp, cfg)}
    bodies = {k: f() for k, f in builders.items()}
    bodies["expects"], bodies["cells"] = model_sections(inp, cfg, model_dir)
    nav = "".join(f'<a href="#{k}">{esc(t)}</a>' for k, t in SECTIONS)
    problems = ("".join(f'<p class="missing">{esc(p)}</p>' for p in inp.problems))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\"><meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>kopitiam report</title><style>{CSS}</style></head><body><h1>kopitiam: corpus and model report</h1>"
            f"<nav>{nav}</nav>{problems}" +
            "".join(f'<section id="{k}"><h2>{esc(t)}</h2>{bodies[k]}</section>' for k, t in SECTIONS) +
            "</body></html>\n")
    return page, summary_markdown(inp)


def _fence(text: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside ``text``."""
    ticks = "`" * max(3, max((len(x) for x in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}\n{text}\n{ticks}"


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
        out += ["", CONDITIONING]
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
                    _fence((str(s.get("prime") or "") + str(s.get("text") or ""))[:500]), ""]
    return "\n".join(out).rstrip() + "\n"


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``report`` section."""
    return section("report", ReportConfig, params)


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
    page, summary = build(Path(args.root), cfg, args.model)
    for path, text in ((args.out, page), (args.summary, summary)):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s (%d KB, %d images) and %s", args.out, len(page) // 1024, page.count("<img "), args.summary)


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
