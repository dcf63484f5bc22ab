"""The headline stage: a handful of numbers that say how a run went, in ``metrics/headline.json``.

Reads ``metrics/eval.json`` (test bits per character of the LSTM, of the best baseline and of PPMd,
whether the LSTM beats every baseline, novelty of the samples), ``metrics/train.json`` (val bits per
character, training tokens/s) and ``metrics/dedupe.json`` (posts kept after cleaning and deduplication). No params.

``dvc exp show`` orders metric columns by their declaration in dvc.yaml, so this stage is declared
first there: the headline is the leftmost block of every experiment table, and the other metrics
files stay one ``dvc metrics show`` away. Key names are unique across all metrics files, so the
table shows them without a file prefix.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from pipeline.common import atomic_path, setup_logging

log = logging.getLogger(__name__)

# headline key -> (metrics file, path of keys inside it); the order here is the column order
FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lstm_test_bpc": ("eval", ("comparison", "lstm_bpc")),
    "lstm_beats_all": ("eval", ("comparison", "lstm_beats_all")),
    "best_baseline": ("eval", ("comparison", "best_baseline")),
    "best_baseline_test_bpc": ("eval", ("comparison", "best_baseline_bpc")),
    "ppmd_test_bpc": ("eval", ("models", "ppmd", "bpc")),
    "ppmd_order": ("eval", ("models", "ppmd", "order")),
    "lstm_val_bpc": ("train", ("val_bpc",)),
    "train_tokens_per_s": ("train", ("tokens_per_s",)),
    "posts_kept": ("dedupe", ("kept",)),
    "novel_word_share": ("eval", ("novelty", "novel_word_share")),
}
# headline key -> (what readers see, which way is better: "lower", "higher" or None for neither);
# the report's summary and the compare page (model/compare_view.py) label the numbers with it
LABELS: dict[str, tuple[str, str | None]] = {
    "lstm_test_bpc": ("LSTM test bits per character", "lower"),
    "lstm_beats_all": ("LSTM beats every baseline", None),
    "best_baseline": ("best baseline", None),
    "best_baseline_test_bpc": ("best baseline's test bits per character", None),
    "ppmd_test_bpc": ("PPMd test bits per character", None),
    "ppmd_order": ("PPMd order (chosen on validation)", None),
    "lstm_val_bpc": ("LSTM validation bits per character", "lower"),
    "train_tokens_per_s": ("training tokens per second", "higher"),
    "posts_kept": ("posts kept after cleaning and deduplication", None),
    "novel_word_share": ("share of generated words not in train", None),
}
# keys of baselines params can switch off (evaluate.ppmd_orders: []): null in the headline when absent
OPTIONAL = {"ppmd_test_bpc", "ppmd_order"}


class HeadlineError(RuntimeError):
    """A metrics file or one of its keys is missing."""


def pick(doc: dict[str, Any], keys: tuple[str, ...], path: Path) -> Any:
    value: Any = doc
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise HeadlineError(f"{path} has no key {'.'.join(keys[:i + 1])}: rerun the stage that writes it "
                                f"(`dvc repro`)")
        value = value[key]
    return value


def rounded(key: str, value: Any) -> Any:
    """Floats rounded for reading: bits per character and shares to 4 decimals, tokens/s whole."""
    if isinstance(value, float):
        return round(value) if key == "train_tokens_per_s" else round(value, 4)
    return value


def headline(metrics: dict[str, tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """The headline dict from ``{name: (path, parsed metrics file)}``, rounded."""
    out: dict[str, Any] = {}
    for key, (name, keys) in FIELDS.items():
        path, doc = metrics[name]
        if key in OPTIONAL and keys[1] not in doc.get(keys[0], {}):
            out[key] = None
            continue
        out[key] = rounded(key, pick(doc, keys, path))
    return out


def partial_headline(docs: dict[str, Any]) -> dict[str, Any]:
    """The headline from ``{name: parsed metrics file or None}``, None where a file or key is
    missing (pages show what there is; the stage itself insists on everything)."""
    out: dict[str, Any] = {}
    for key, (name, keys) in FIELDS.items():
        value = docs.get(name)
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        out[key] = rounded(key, value)
    return out


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise HeadlineError(f"{path} not found: run `dvc repro` (the headline summarises it)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.headline", description=__doc__.split("\n")[0])
    ap.add_argument("--eval", type=Path, default=Path("metrics/eval.json"))
    ap.add_argument("--train", type=Path, default=Path("metrics/train.json"))
    ap.add_argument("--dedupe", type=Path, default=Path("metrics/dedupe.json"))
    ap.add_argument("--out", type=Path, default=Path("metrics/headline.json"))
    args = ap.parse_args(argv)
    setup_logging()
    try:
        sources = {name: (path, read_json(path)) for name, path in
                   (("eval", args.eval), ("train", args.train), ("dedupe", args.dedupe))}
        result = headline(sources)
    except HeadlineError as err:
        log.error("%s", err)
        return 1
    with atomic_path(args.out) as tmp:  # FIELDS order, not sorted: it is the table's column order
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log.info("headline: %s", ", ".join(f"{k} {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
