"""The compare page's content as plain data (pure functions of the runs that model/runs.py read):
headline metrics with differences to the baseline run and the best value marked, test bits per
character of every model eval.json lists (baselines read generically, not from a fixed list), the
params that differ, validation curves overlaid, bits per character by document length, samples side
by side with their novelty, and the data each run was trained on when that differs.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from model.headline import LABELS, partial_headline
from model.pages import cell, sample_view
from model.report_sections import verdict
from model.runs import Run

Getter = Callable[[Run], Any]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def headline_of(run: Run) -> dict[str, Any]:
    """metrics/headline.json of the run, or the same numbers from eval/train/dedupe when absent."""
    stored = run.data.get("headline")
    if isinstance(stored, dict) and stored:
        return {k: stored.get(k) for k in LABELS}
    return partial_headline({n: run.data.get(n) for n in ("eval", "train", "dedupe")})


def compared(values: Sequence[Any], base: int, better: str | None) -> list[dict[str, Any]]:
    """Cells of one column (or row) across runs: the difference to run ``base`` and, when
    ``better`` is "lower" or "higher" and the numbers differ, the best value marked."""
    nums = [v for v in values if _number(v)]
    best = None
    if better and len(set(nums)) > 1:
        best = min(nums) if better == "lower" else max(nums)
    ref = values[base]
    return [cell(v, v - ref if i != base and _number(v) and _number(ref) else None, best is not None and v == best)
            for i, v in enumerate(values)]


def metric_table(runs: Sequence[Run], base: int, columns: Sequence[tuple[str, Getter, str | None]]
                 ) -> tuple[list[str], list[list[Any]]]:
    """One row per run, one column per (label, getter, better)."""
    cols = [compared([get(r) for r in runs], base, better) for _, get, better in columns]
    rows = [[run.label + (" (baseline)" if i == base else ""), *(col[i] for col in cols)] for i, run in enumerate(runs)]
    return ["run", *(label for label, _, _ in columns)], rows


def headline_table(runs: Sequence[Run], base: int) -> tuple[list[str], list[list[Any]]]:
    columns = [(label, (lambda r, k=key: headline_of(r).get(k)), better) for key, (label, better) in LABELS.items()]
    return metric_table(runs, base, columns)


def model_names(runs: Sequence[Run], base: int) -> list[str]:
    """Every model of every run's eval.json: by the baseline run's bpc, then by name."""
    models = [(r.data.get("eval") or {}).get("models") or {} for r in runs]
    names = {n for m in models for n in m}
    ref = {n: (models[base].get(n) or {}).get("bpc") for n in names}
    return sorted(names, key=lambda n: (not _number(ref[n]), ref[n] if _number(ref[n]) else 0, n))


def models_table(runs: Sequence[Run], base: int) -> tuple[list[str], list[list[Any]]]:
    def bpc(name: str) -> Getter:
        return lambda r: (((r.data.get("eval") or {}).get("models") or {}).get(name) or {}).get("bpc")

    return metric_table(runs, base, [(n, bpc(n), "lower") for n in model_names(runs, base)])


def standing(run: Run, ref: Run) -> str:
    """One sentence: the run's LSTM test bits per character against the baseline run's."""
    a, b = headline_of(run).get("lstm_test_bpc"), headline_of(ref).get("lstm_test_bpc")
    if not (_number(a) and _number(b)):
        return f"{run.label}: no LSTM test result to set against {ref.label}."
    d = a - b
    word = "better" if d < 0 else "worse" if d > 0 else "the same"
    return (f"{run.label}: LSTM test {a:.4f} bits per character, {abs(d):.4f} {'fewer' if d < 0 else 'more'} "
            f"than {ref.label} ({b:.4f}): {word}.")


def runs_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [{"label": r.label, "commit": (r.commit or "")[:7] or "working tree", "created": r.created or "-",
             "verdict": verdict(r.data["eval"]) if isinstance(r.data.get("eval"), dict) else "-",
             "missing": sorted(r.missing.items())} for r in runs]


# -- params ----------------------------------------------------------------------------------------
def flat_params(data: Any, prefix: str = "") -> dict[str, str]:
    """params.yaml as dotted keys; values as YAML would print them (lists whole)."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for k in sorted(data, key=str):
            out.update(flat_params(data[k], f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}


def params_diff(runs: Sequence[Run]) -> list[tuple[str, ...]]:
    """(key, value per run) for every params key whose value differs between the runs that have
    params.yaml; "-" where a run lacks the file, "(absent)" where it lacks the key."""
    flat = [flat_params(r.data["params"]) if isinstance(r.data.get("params"), dict) else None for r in runs]
    keys = sorted({k for f in flat if f for k in f})
    rows = []
    for k in keys:
        values = [f.get(k, "(absent)") if f is not None else "-" for f in flat]
        if len({v for v, f in zip(values, flat) if f is not None}) > 1:
            rows.append((k, *values))
    return rows


# -- curves, lengths, data -------------------------------------------------------------------------
def curves(runs: Sequence[Run]) -> dict[str, Any]:
    """Validation bpc of every run overlaid, by epoch and by optimizer step (a ``step`` column of
    plots/train.csv, else epoch x steps_per_epoch from metrics/train.json)."""
    from model import report_plots

    by_epoch, by_step, without = {}, {}, []
    for r in runs:
        rows = [row for row in r.data.get("curve") or [] if "val_bpc" in row and "epoch" in row]
        if not rows:
            without.append(r.label)
            continue
        ys = [row["val_bpc"] for row in rows]
        by_epoch[r.label] = ([row["epoch"] for row in rows], ys)
        per = (r.data.get("train") or {}).get("steps_per_epoch")
        if all("step" in row for row in rows):
            by_step[r.label] = ([row["step"] for row in rows], ys)
        elif _number(per):
            by_step[r.label] = ([row["epoch"] * per for row in rows], ys)
    return {"epoch": report_plots.overlay_curves(by_epoch, "epoch") if by_epoch else None,
            "step": report_plots.overlay_curves(by_step, "optimizer step") if by_step else None,
            "without": without}


def by_length(runs: Sequence[Run], base: int) -> list[list[Any]]:
    """Rows of (document length group, LSTM test bpc of each run): best per row, difference to base."""
    per = [{str(g.get("chars")): g.get("lstm_bpc") for g in (r.data.get("eval") or {}).get("by_length") or []
            if isinstance(g, dict)} for r in runs]
    groups = list(dict.fromkeys(k for p in per for k in p))
    return [[g, *compared([p.get(g) for p in per], base, "lower")] for g in groups]


def data_facts(run: Run) -> dict[str, Any]:
    """Posts per source, kept and dropped by reason, duplicates: what a run's data was."""
    out: dict[str, Any] = {}
    for src, doc in sorted((run.data.get("crawl") or {}).items()):
        out[f"posts crawled from {src}"] = (doc or {}).get("posts")
    clean, dedupe = run.data.get("clean") or {}, run.data.get("dedupe") or {}
    out["posts kept by clean"] = clean.get("kept")
    for reason, n in sorted((clean.get("dropped_by_reason") or {}).items()):
        out[f"dropped by clean: {reason}"] = n
    out["exact duplicates"] = dedupe.get("exact_duplicates")
    out["near duplicates"] = dedupe.get("near_duplicates")
    out["posts kept after dedupe"] = dedupe.get("kept")
    return out


def data_diff(runs: Sequence[Run]) -> dict[str, Any]:
    """Every data fact per run, and whether the runs that have any data metrics differ (a source
    crawled by one run only is a difference)."""
    per = [data_facts(r) for r in runs]
    keys = list(dict.fromkeys(k for p in per for k in p))
    rows = [(k, *(p.get(k) for p in per)) for k in keys]
    having = [i for i, p in enumerate(per) if any(v is not None for v in p.values())]
    differ = any(len({json.dumps(row[1 + i]) for i in having}) > 1 for row in rows)
    return {"rows": rows, "differ": differ}


# -- samples ---------------------------------------------------------------------------------------
def sample_key(s: dict) -> tuple[str, str, str, str]:
    return str(s.get("prime")), str(s.get("method")), str(s.get("temperature")), str(s.get("seed"))


def _key_order(key: tuple[str, str, str, str]) -> tuple:
    prime, method, temp, seed = key
    return method != "sample", method, temp, prime, seed


def novelty_note(n: Any) -> str | None:
    if not isinstance(n, dict) or not _number(n.get("novel_word_share")):
        return None
    return f"novel words {100 * n['novel_word_share']:.1f}% · longest copy from train {n.get('longest_copy')} chars"


def run_samples(run: Run) -> dict[tuple, tuple[dict, str | None]]:
    """{key: (sample for the macro, novelty note)}; novelty rows pair with samples by position
    (reports/novelty.jsonl holds one per sample, in order) and must carry the same key."""
    rows = [s for s in run.data.get("samples") or [] if isinstance(s, dict)]
    novelty = run.data.get("novelty") or []
    out: dict[tuple, tuple[dict, str | None]] = {}
    for i, s in enumerate(rows):
        n = novelty[i] if i < len(novelty) and isinstance(novelty[i], dict) else None
        n = n if n is not None and sample_key(n) == sample_key(s) else None
        out.setdefault(sample_key(s), (sample_view(s), novelty_note(n)))
    return out


def side_by_side(runs: Sequence[Run]) -> dict[str, Any]:
    """For each (prime, method, temperature, seed) that at least two runs share (or every key when
    only one run has samples), each run's sample."""
    per = [run_samples(r) for r in runs]
    having = sum(1 for p in per if p)
    keys = sorted({k for p in per for k in p}, key=_key_order)
    shared = [k for k in keys if sum(k in p for p in per) >= min(2, having)]
    return {"rows": [(_key_title(k), [p.get(k) for p in per]) for k in shared],
            "without": [r.label for r, p in zip(runs, per) if not p]}


def _key_title(key: tuple[str, str, str, str]) -> str:
    prime, method, temp, seed = key
    return f"{method}, temperature {temp}, seed {seed}, prime {prime!r}"


def context(runs: Sequence[Run], base: int, sample_chars: int) -> dict[str, Any]:
    """Everything compare.html and compare.md show."""
    ref = runs[base]
    return {"baseline": ref.label, "labels": [r.label for r in runs], "sample_chars": sample_chars,
            "standing": [standing(r, ref) for i, r in enumerate(runs) if i != base],
            "runs": runs_rows(runs), "headline": headline_table(runs, base), "models": models_table(runs, base),
            "params": params_diff(runs), "curves": curves(runs), "by_length": by_length(runs, base),
            "samples": side_by_side(runs), "data": data_diff(runs)}
