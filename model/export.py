"""Stage `export`: the trained model as browser weights and a self-contained sampler page.

Reads ``models/lstm/`` (``model.keras``, ``vocab.json``, ``meta.json``). Writes:

- ``reports/model.json``: weights (float32, base64) + vocabulary + its hash; the format is
  documented in model/webformat.py.
- ``reports/sampler.html``: model/web/sampler.html with model/web/lstm.js and the same model JSON
  inlined, so it runs from ``file://`` with no network (its Content-Security-Policy forbids any).
- ``metrics/export.json``: parameter count, file sizes, and the export self-check.

Before writing, the exported document is decoded again and a NumPy forward pass over it
(``model.lstm_numpy.run``) is compared with the Keras model on ``check_prime``: next-character
probabilities must agree to ``check_tolerance`` at every position, or the stage fails.

Params (``export`` section, checked by ``ExportConfig``): check_prime, check_tolerance, and the
page's initial controls prime, temperature, greedy, seed, length (the page's URL parameters
override them: ``sampler.html?prime=...&greedy=1&length=200&auto=1``).
CLI: ``python -m model.export [--model DIR] [--json PATH] [--html PATH] [--metrics PATH] [--params FILE]``;
dvc.yaml's ``cmd`` names every path.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model import kernels
from model.artifacts import load_trained
from model.lstm_numpy import LayoutError, LstmWeights, run, softmax
from model.webformat import ExportError, decode_model, encode_model
from pipeline.common import atomic_path, load_params, setup_logging, write_json_atomic
from pipeline.config import section, setting
from pipeline.vocab import END_ID

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ExportConfig:
    """The ``export`` section of params.yaml (meanings there); paths come from the command line."""

    check_prime: str
    check_tolerance: float = setting(gt=0)
    prime: str  # the page's initial controls
    temperature: float = setting(ge=0.05, le=2)
    greedy: bool
    seed: int = setting(ge=0)
    length: int = setting(ge=1)


MARKERS = ("__KOPITIAM_MODEL_JSON__", "__KOPITIAM_DEFAULTS_JSON__", "/*__KOPITIAM_LSTM_JS__*/")


def check_export(model, doc: dict[str, Any], prime: str) -> float:
    """Max abs difference of next-character probabilities, Keras vs the decoded document, after
    each token of END + ``prime``."""
    vocab, tensors = decode_model(doc)
    try:
        weights = LstmWeights.from_tensors(tensors)
    except LayoutError as exc:
        raise ExportError(f"exported document: {exc}") from None
    ids = np.concatenate([[END_ID], vocab.encode(prime)]).astype(np.int32)
    keras_probs = softmax(np.asarray(model(ids[None, :], training=False), dtype=np.float64)[0])
    export_probs = softmax(run(weights, ids)[0])
    return float(np.abs(keras_probs - export_probs).max())


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<' can open '</script>' or '<!--'."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def render_page(doc: dict[str, Any], page_defaults: dict[str, Any]) -> str:
    """The template with the model document, the page defaults and lstm.js inlined."""
    web = resources.files("model") / "web"
    template = (web / "sampler.html").read_text(encoding="utf-8")
    lstm_js = (web / "lstm.js").read_text(encoding="utf-8")
    if "</script" in lstm_js.lower():
        raise ExportError("model/web/lstm.js contains '</script': it cannot be inlined")
    for marker in MARKERS:
        if template.count(marker) != 1:
            raise ExportError(f"model/web/sampler.html must contain {marker} exactly once")
    return (template.replace(MARKERS[0], script_json(doc))
            .replace(MARKERS[1], script_json(page_defaults))
            .replace(MARKERS[2], lstm_js))


def write_public(path: str | Path, text: str) -> None:
    """Atomic write, readable by all (the page and the weights are meant to be shared)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)


def export(params: dict[str, Any]) -> dict[str, Any]:
    """Load the model folder, encode, self-check, write both outputs; returns the metrics."""
    model, vocab, meta = load_trained(params["model_dir"])
    doc = encode_model(model, vocab, meta)
    max_diff = check_export(model, doc, params["check_prime"])
    if not max_diff <= params["check_tolerance"]:
        raise ExportError(f"export self-check failed: next-character probabilities differ by {max_diff:.3g} "
                          f"(> check_tolerance {params['check_tolerance']}) between Keras and the exported weights")
    page_defaults = {k: params[k] for k in ("prime", "temperature", "greedy", "seed", "length")}
    write_public(params["json_out"], json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    write_public(params["html_out"], render_page(doc, page_defaults))
    return {
        "n_params": doc["n_params"],
        "vocab_size": doc["network"]["vocab_size"],
        "vocab_hash": doc["vocab_hash"],
        "weights_bytes": 4 * doc["n_params"],
        "json_bytes": Path(params["json_out"]).stat().st_size,
        "html_bytes": Path(params["html_out"]).stat().st_size,
        "check_max_abs_prob_diff": max_diff,
        "check_chars": len(params["check_prime"]) + 1,
    }


def load_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every params value the stage reads: the ``export`` section, and ``kernels`` under ``kernels``."""
    return {**section("export", ExportConfig, params), "kernels": kernels.load_config(params)}


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/lstm", help="trained model folder")
    parser.add_argument("--json", default="reports/model.json", help="model JSON to write")
    parser.add_argument("--html", default="reports/sampler.html", help="sampler page to write")
    parser.add_argument("--metrics", default="metrics/export.json", help="metrics JSON to write")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = {**load_config(load_params(args.params)), "model_dir": args.model, "json_out": args.json,
              "html_out": args.html, "metrics_out": args.metrics}
    kernels.pin(params["kernels"], "model.export")
    metrics = export(params)
    write_json_atomic(params["metrics_out"], metrics)
    log.info("exported %s parameters (%d tokens) to %s (%.2f MB) and %s (%.2f MB); self-check max |dp| %.2g",
             f"{metrics['n_params']:,}", metrics["vocab_size"], params["json_out"], metrics["json_bytes"] / 1e6,
             params["html_out"], metrics["html_bytes"] / 1e6, metrics["check_max_abs_prob_diff"])


if __name__ == "__main__":
    from pipeline.common import run_main  # user errors: one line, exit 2
    run_main(main)
