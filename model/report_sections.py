"""The report's sections as plain data for ``model/templates/report/<section>.html``: one function
per section, each reading its inputs through ``report.Inputs`` and returning a dict (None where an
input is missing: the template names it). No HTML is built here; the templates escape every value.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from model import splits
from model.pages import flatten, fmt, sample_view

SECTIONS = [("summary", "Summary"), ("corpus", "Corpus overview"), ("training", "Training"),
            ("samples", "Samples by temperature"), ("evolution", "Sample evolution across epochs"),
            ("evaluation", "Evaluation against baselines"), ("expects", "What the model expects"),
            ("cells", "What a cell tracks")]
STAGE_METRICS = ("clean", "dedupe", "split", "vocab", "batches")
CRAWL_COLUMNS = ("pages", "posts", "threads", "finish_reason")
SUMMARY_SAMPLES = 3


# -- summary (the first screen) --------------------------------------------------------------------
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


def model_label(name: str, m: dict) -> str:
    """A model's name in tables; PPMd's with the order the val split chose."""
    return f"{name} (order {m['order']})" if isinstance(m.get("order"), int) else name


def sample_order(samples: Sequence[dict]) -> list[tuple[str, Any]]:
    """(method, temperature) groups in reading order: sampled first, by temperature, then the rest."""
    keys = dict.fromkeys((str(s.get("method")), s.get("temperature")) for s in samples)
    return sorted(keys, key=lambda k: (k[0] != "sample", k[0], k[1] if isinstance(k[1], (int, float)) else 0))


def pick_samples(samples: Sequence[dict], n: int) -> list[dict]:
    """The first sample of each of the first ``n`` groups of ``sample_order``."""
    firsts: dict[tuple, dict] = {}
    for s in samples:
        firsts.setdefault((str(s.get("method")), s.get("temperature")), s)
    return [firsts[k] for k in sample_order(samples)[:n]]


def sample_title(s: dict) -> str:
    method, temp = str(s.get("method")), s.get("temperature")
    return method + (f", temperature {temp}" if temp is not None and method not in ("greedy", "beam") else "")


def summary(inp) -> dict[str, Any]:
    from model.headline import LABELS, partial_headline

    docs = {name: inp.json(f"metrics/{name}.json") for name in ("eval", "train", "dedupe")}
    numbers = partial_headline(docs)
    samples = inp.jsonl("reports/samples.jsonl") or []
    return {"headline": [(LABELS[k][0], v) for k, v in numbers.items()] if docs["eval"] or docs["train"] else None,
            "verdict": verdict(docs["eval"]) if docs["eval"] is not None else None,
            "samples": [(sample_title(s), sample_view(s)) for s in pick_samples(samples, SUMMARY_SAMPLES)]}


# -- corpus ----------------------------------------------------------------------------------------
def _stage_rows(inp) -> list[tuple]:
    rows = []
    raw = sorted(inp.path("data/raw").glob("*.parquet")) if inp.path("data/raw").is_dir() else []
    if raw:
        rows.append(("raw (crawled)", sum(inp.rows(f"data/raw/{p.name}") or 0 for p in raw), "-"))
    for label, rel in [("clean", "data/clean/posts.parquet"), ("deduplicated", "data/dedup/corpus.parquet"),
                       ("train", "data/split/train.parquet"), ("val", "data/split/val.parquet"),
                       ("test", "data/split/test.parquet")]:
        got = inp.stat(rel, "column 'n_chars'", splits.column_totals)
        if got is not None:
            rows.append((label, *got))
    return rows


def _length_histogram(inp, bins: int) -> str | None:
    """The post length histogram of the three splits, from two passes over their ``n_chars``."""
    from model import report_plots

    rels = {s: f"data/split/{s}.parquet" for s in ("train", "val", "test")}
    tops = {s: inp.stat(rel, "column 'n_chars'", splits.column_max) for s, rel in rels.items()}
    rows = {s: inp.rows(rels[s]) or 0 for s, top in tops.items() if top is not None}
    if not any(rows.values()):
        return None
    edges = report_plots.length_edges(max((tops[s] for s, n in rows.items() if n), default=1), bins)
    counts = {s: inp.stat(rels[s], "column 'n_chars'", lambda p: splits.histogram(p, edges)) for s in rows}
    return report_plots.length_histogram({s: (c, rows[s]) for s, c in counts.items() if c is not None}, edges)


def corpus(inp, cfg: dict) -> dict[str, Any]:
    crawl = inp.crawl()
    keys = sorted({k for d in crawl.values() for k, _ in flatten(d)})
    per = {src: dict(flatten(d)) for src, d in crawl.items()}
    reasons = inp.stat("data/clean/dropped.parquet", "column 'reason'", lambda p: splits.value_counts(p, "reason"))
    kinds = inp.stat("data/dedup/duplicates.parquet", "column 'kind'", lambda p: splits.value_counts(p, "kind"))
    return {
        "sources": [(src, *(d.get(c) for c in CRAWL_COLUMNS)) for src, d in crawl.items()] or None,
        "source_header": ["source", *CRAWL_COLUMNS],
        "crawl_header": ["metric", *per], "crawl_rows": [(k, *(per[s].get(k, "") for s in per)) for k in keys],
        "stages": _stage_rows(inp) or None,
        "dropped": Counter(reasons).most_common() if reasons is not None else None,
        "duplicates": sorted(Counter(kinds).items()) if kinds is not None else None,
        "histogram": _length_histogram(inp, int(cfg["histogram_bins"])),
        "stage_metrics": [(n, _flat_or_none(inp.json(f"metrics/{n}.json"))) for n in STAGE_METRICS],
    }


def _flat_or_none(data: Any) -> list[tuple[str, Any]] | None:
    return flatten(data) if data is not None else None


# -- training, samples, evolution ------------------------------------------------------------------
def training(inp) -> dict[str, Any]:
    from model import report_plots

    rows = inp.csv("plots/train.csv")
    return {"curves": report_plots.training_curves(rows) if rows else None,
            "metrics": _flat_or_none(inp.json("metrics/train.json"))}


def samples(inp) -> list[dict[str, Any]] | None:
    rows = inp.jsonl("reports/samples.jsonl")
    if not rows:
        return None
    out = []
    for method, temp in sample_order(rows):
        group = [s for s in rows if (str(s.get("method")), s.get("temperature")) == (method, temp)]
        out.append({"title": sample_title(group[0]), "samples": [
            (f"prime {s.get('prime')!r} · seed {s.get('seed')} · mean log-prob {fmt(s.get('mean_logprob'))}",
             sample_view(s)) for s in group]})
    return out


def evolution(inp) -> dict[str, Any] | None:
    rows = inp.jsonl("reports/evolution.jsonl")
    if not rows:
        return None
    keys = sorted({(str(r.get("prime")), str(r.get("temperature"))) for r in rows})
    epochs = sorted({r.get("epoch") for r in rows}, key=lambda e: (e is None, e))
    by = {(r.get("epoch"), str(r.get("prime")), str(r.get("temperature"))): r for r in rows}
    return {"header": [f"prime {p!r}, T={t}" for p, t in keys],
            "rows": [(e, [sample_view(by[(e, p, t)]) if (e, p, t) in by else None for p, t in keys])
                     for e in epochs]}


# -- evaluation ------------------------------------------------------------------------------------
CONDITIONING = ("What each model is given: the LSTM scores every test document on its own, from a zero state and "
                "the END before it; the unigram, Kneser-Ney and PPMd baselines likewise score each document alone "
                "after the train split (PPMd coded from the state it reached reading the train text, model/"
                "baselines.py). gzip, bzip2 and xz read the test split as one stream after the train text, so "
                "they also see (and adapt to) the test documents before each one: an advantage the others lack. "
                "PPMd's cost as one such stream is in metrics/eval.json (models.ppmd.stream_bpc).")


def baseline_note(ev: dict) -> str | None:
    """How much of the train split the baselines were fitted on (eval.json's ``baseline_train``)."""
    b = ev.get("baseline_train")
    if not isinstance(b, dict) or not all(isinstance(b.get(k), int) for k in ("documents", "characters")):
        return None
    if not b.get("sampled"):
        return f"The baselines were fitted on the whole train split ({b['documents']:,} documents, " \
               f"{b['characters']:,} characters)."
    return (f"The baselines were fitted on a seeded sample of the train split: {b['documents']:,} of its "
            f"{b.get('split_documents', 0):,} documents ({b['characters']:,} of {b.get('split_characters', 0):,} "
            f"characters; evaluate.baseline_train_chars {b.get('max_chars', 0):,}, seed {b.get('seed')}). "
            f"Every model, the LSTM included, was scored on the same test documents.")


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


def evaluation(inp) -> dict[str, Any] | None:
    from model import report_plots

    ev = inp.json("metrics/eval.json")
    if ev is None:
        return None
    models = ev.get("models", {})
    train = inp.json("metrics/train.json")
    header, length_rows = by_length_rows(ev)
    novelty = inp.jsonl("reports/novelty.jsonl") or []
    return {
        "test": ev.get("test", {}), "verdict": verdict(ev), "conditioning": CONDITIONING,
        "baseline_note": baseline_note(ev),
        "models": [(model_label(n, m), m.get("bpc"), m.get("nats_per_char"), m.get("perplexity"))
                   for n, m in sorted(models.items(), key=lambda kv: kv[1].get("bpc", 1e9))],
        "val_bpc": train.get("val_bpc") if isinstance(train, dict) and isinstance(train.get("val_bpc"), (int, float))
        else None,
        "bars": report_plots.model_bars({n: m["bpc"] for n, m in models.items() if "bpc" in m}),
        "length_header": header, "length_rows": length_rows,
        "novelty": flatten(ev.get("novelty", {})),
        "novelty_rows": [(r.get("method"), r.get("temperature"), r.get("prime"), r.get("novel_word_share"),
                          r.get("longest_copy"), r.get("longest_copy_text")) for r in novelty],
    }


# -- inside the model ------------------------------------------------------------------------------
def _prob_style(p: float) -> str:
    return f"background: rgba(39, 174, 96, {max(0.0, min(1.0, p)):.3f})"


def _act_style(a: float) -> str:
    colour = "192, 57, 43" if a > 0 else "41, 128, 185"
    return f"background: rgba({colour}, {min(1.0, abs(a)):.3f})"


def _char(ch: str) -> str:
    return {"\n": "\u21b5\n", " ": "\u00a0"}.get(ch, ch)


def val_text(inp, snippet_chars: int, analysis_chars: int) -> tuple[str, list[str]] | None:
    """(the snippet: the first validation document of at least ``snippet_chars`` characters cut to
    that length, else the longest; the first non-empty documents up to ``analysis_chars``
    characters), read from the start of the split only as far as needed; None when it is missing,
    unreadable or has no text."""
    def read(path) -> tuple[str, list[str]] | None:
        snippet, longest, analysis, total = None, "", [], 0
        for t in splits.iter_texts(path):
            if not t:
                continue
            if total < analysis_chars:
                analysis.append(t[: analysis_chars - total])
                total += len(analysis[-1])
            if snippet is None and len(t) >= snippet_chars:
                snippet = t[:snippet_chars]
            longest = t if len(t) > len(longest) else longest
            if snippet is not None and total >= analysis_chars:
                break
        return (snippet or longest[:snippet_chars], analysis) if analysis else None

    return inp.stat("data/split/val.parquet", "column 'text'", read)


def model_sections(inp, cfg: dict, model_dir: str) -> tuple[dict, dict]:
    """(what the model expects, what a cell tracks), from the model and the validation split; each
    ``{"missing": (input, how to make it)}`` when an input is missing."""
    if not (inp.root / model_dir / "meta.json").exists():
        gone = {"missing": (f"{model_dir}/", "run `dvc repro train`")}
        return gone, gone
    val = val_text(inp, int(cfg["snippet_chars"]), int(cfg["analysis_chars"]))
    if val is None:
        gone = {"missing": ("data/split/val.parquet", "run `dvc repro split`")}
        return gone, gone
    from model.artifacts import load_trained

    model, vocab, _ = load_trained(inp.root / model_dir)
    snippet, analysis = val
    return expectations(model, vocab, snippet, int(cfg["top_k"])), cells(model, vocab, snippet, analysis)


def expectations(model, vocab, snippet: str, top_k: int) -> dict[str, Any]:
    """The snippet's characters with their probability shading and the top-k next guesses."""
    from model import interpret

    ex = interpret.expectations(model, vocab, snippet, top_k)
    spans = [{"char": _char(ch), "style": _prob_style(ex["prob_of_char"][i]),
              "context": repr(snippet[max(0, i - 10):i + 1]),
              "guesses": [(repr(g), f"{p:.3f}") for g, p in ex["next_guesses"][i]]} for i, ch in enumerate(snippet)]
    first = [(i, repr(snippet[i]), f'{ex["prob_of_char"][i]:.3f}',
              "  ".join(f"{g!r} {p:.2f}" for g, p in ex["next_guesses"][i])) for i in range(min(30, len(snippet)))]
    return {"missing": None, "spans": spans, "first": first}


def cells(model, vocab, snippet: str, analysis: list[str]) -> dict[str, Any]:
    """The cells most correlated with simple text features over the ``analysis`` texts (the first
    validation characters), each with its activation over the snippet."""
    from model import interpret

    chosen, skipped = interpret.interpretable_cells(model, vocab, analysis)
    acts = interpret.cell_activations(model, vocab, snippet, chosen)
    return {"missing": None, "total": sum(len(t) for t in analysis), "skipped": skipped, "cells": [
        {"title": f"{c.feature}: layer {c.layer}, cell {c.index} (r = {c.r:+.3f})",
         "spans": [(_char(ch), _act_style(v), f"{v:+.3f}") for ch, v in zip(snippet, a)]}
        for c, a in zip(chosen, acts)]}
