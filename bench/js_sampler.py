"""Characters per second of the in-browser sampler (reports/sampler.html) in headless Chromium.

Builds a default-sized model (the `train.model` defaults of model/network.py: Embedding 64,
2 x LSTM(256), a 100-token vocabulary; random weights: speed does not depend on their values) or
takes a trained folder with --model, exports it with model.export, opens the page and measures:

- ``stream``: KopitiamSampler.generate, the code path of the Generate button (chunks of ~25 ms
  handed back to the browser between them, text appended to the page as it streams), for each
  engine of model/web/lstm.js: ``wasm`` (the page's default: SIMD gate kernel) and ``js``;
- ``compute``: the same generation's time inside the forward pass only;
- ``baseline_naive_js``: in the same page and run, a straightforward port (Keras-layout weights
  as nested JS arrays, separate x.W and h.U products per step, fresh arrays every step), the way
  a first JS port tends to look. Timed passes alternate (wasm, js, naive) ROUNDS times and the
  median of each is reported, so load on a shared machine hits all three alike.

Sampling at temperature 1 with END not stopping the stream, so every run makes LENGTH characters.
Prints one JSON object. Usage: python bench/js_sampler.py [--model DIR] [--length N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ---- config ------------------------------------------------------------------------------------
SEED = 0
VOCAB_SIZE = 100  # tokens incl. END and UNK, for the random default-sized model
LENGTH = 3000  # characters per timed pass
WARMUP = 300  # characters generated before timing (JIT warm-up)
BASELINE_LENGTH = 300  # the naive port is slow: fewer characters
ENGINES = ("wasm", "js")
ROUNDS = 3  # alternating timed passes per variant; medians reported

NAIVE_JS = r"""
(function () {
  const doc = JSON.parse(document.getElementById("kopitiam-model").textContent);
  const flat = KopitiamLSTM.decodeWeights(doc);
  const nested = (t) => { const [r, c] = t.shape; const out = [];
    for (let i = 0; i < r; i++) out.push(Array.from(t.data.subarray(i * c, (i + 1) * c))); return out; };
  const emb = nested(flat.embedding), layers = [];
  for (let l = 0; l < doc.network.num_layers; l++)
    layers.push({ W: nested(flat["lstm_" + l + "/kernel"]), U: nested(flat["lstm_" + l + "/recurrent_kernel"]),
                  b: Array.from(flat["lstm_" + l + "/bias"].data) });
  const K = nested(flat["logits/kernel"]), bd = Array.from(flat["logits/bias"].data);
  const matvec = (x, W) => { const out = new Array(W[0].length).fill(0);
    for (let i = 0; i < x.length; i++) for (let j = 0; j < out.length; j++) out[j] += x[i] * W[i][j]; return out; };
  const sig = (v) => 1 / (1 + Math.exp(-v));
  window.naiveGenerate = function (n, seed) {
    const H = layers[0].U.length, rng = KopitiamLSTM.mulberry32(seed);
    let hs = layers.map(() => new Array(H).fill(0)), cs = layers.map(() => new Array(H).fill(0));
    let tok = doc.vocab.end_id, text = "";
    const t0 = performance.now();
    for (let s = 0; s < n; s++) {
      let x = emb[tok].slice();
      layers.forEach((L, l) => {
        const a = matvec(x, L.W), r = matvec(hs[l], L.U), z = a.map((v, j) => v + r[j] + L.b[j]);
        const i = z.slice(0, H).map(sig), f = z.slice(H, 2 * H).map(sig), g = z.slice(2 * H, 3 * H).map(Math.tanh),
              o = z.slice(3 * H).map(sig);
        cs[l] = cs[l].map((c, j) => f[j] * c + i[j] * g[j]);
        hs[l] = cs[l].map((c, j) => o[j] * Math.tanh(c));
        x = hs[l];
      });
      const logits = matvec(x, K).map((v, j) => v + bd[j]);
      const m = Math.max(...logits), e = logits.map((v) => Math.exp(v - m)), z = e.reduce((p, q) => p + q, 0);
      const u = rng() * z; let acc = 0; tok = e.length - 1;
      for (let j = 0; j < e.length; j++) { acc += e[j]; if (u < acc) { tok = j; break; } }
      text += tok === doc.vocab.end_id ? "" : tok === doc.vocab.unk_id ? "\ufffd" : doc.vocab.tokens[tok];
    }
    return { chars: n, ms: performance.now() - t0, text: text };
  };
})();
"""


def build_model_dir(out: Path) -> Path:
    import keras

    from model.artifacts import save_trained
    from model.network import NetworkConfig, build_model
    from model.train import load_config
    from pipeline.vocab import Vocab

    keras.utils.set_random_seed(SEED)
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\u2019", "\u201c"]
    vocab = Vocab.from_counts({c: 1000 - i for i, c in enumerate(chars)}, max_size=VOCAB_SIZE)
    config = NetworkConfig(vocab_size=len(vocab), **load_config()["model"])  # params.yaml's architecture
    save_trained(out, build_model(config), vocab, {"network": config.to_dict(), "params": {}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="trained model folder (default: a random default-sized model)")
    parser.add_argument("--length", type=int, default=LENGTH)
    args = parser.parse_args()

    from model.export import ExportConfig, export
    from pipeline.config import section
    from tests.helpers.browser import Browser

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = Path(args.model) if args.model else build_model_dir(tmp / "model")
        params = {**section("export", ExportConfig), "model_dir": str(model_dir), "json_out": str(tmp / "model.json"),
                  "html_out": str(tmp / "sampler.html")}
        metrics = export(params)
        with Browser() as browser:
            pages = {eng: browser.open(f"{(tmp / 'sampler.html').as_uri()}?engine={eng}") for eng in ENGINES}
            run = ("KopitiamSampler.generate({prime: '', greedy: false, temperature: 1, seed: %d, length: %d,"
                   " stopAtEnd: false}, (p) => document.querySelector('#output .gen').append(p))")
            for page in pages.values():
                page.evaluate(run % (SEED, WARMUP))
            pages["js"].evaluate(NAIVE_JS)
            pages["js"].evaluate("naiveGenerate(%d, %d)" % (WARMUP // 10, SEED))
            runs: dict[str, list[dict]] = {eng: [] for eng in ENGINES}
            naive_runs = []
            for r in range(ROUNDS):
                for eng, page in pages.items():
                    runs[eng].append(page.evaluate(run % (SEED + 1 + r, args.length), timeout=600))
                naive_runs.append(pages["js"].evaluate("naiveGenerate(%d, %d)" % (BASELINE_LENGTH, SEED + 1),
                                                       timeout=600))
            same = {eng: page.evaluate(run % (SEED + 1, BASELINE_LENGTH))["text"] == naive_runs[0]["text"]
                    for eng, page in pages.items()}  # same seed: every variant must write the same text
            version = browser.send("Browser.getVersion")["product"]

    def median(values):
        return round(float(statistics.median(values)), 1)

    result = {
        "bench": "js_sampler",
        "browser": version,
        "model": {"source": args.model or "random default-sized", "n_params": metrics["n_params"],
                  "vocab_size": metrics["vocab_size"], "html_mb": round(metrics["html_bytes"] / 1e6, 2)},
        "length": args.length,
        "rounds": ROUNDS,
    }
    for eng in ENGINES:
        result[f"{eng}_stream_chars_per_s"] = median([r["chars"] / (r["wallMs"] / 1000) for r in runs[eng]])
        result[f"{eng}_compute_chars_per_s"] = median([r["charsPerSecond"] for r in runs[eng]])
    naive = median([r["chars"] / (r["ms"] / 1000) for r in naive_runs])
    result["baseline_naive_js_chars_per_s"] = naive
    result["speedup_wasm_vs_naive"] = round(result["wasm_stream_chars_per_s"] / naive, 2)
    result["speedup_js_vs_naive"] = round(result["js_stream_chars_per_s"] / naive, 2)
    result["same_text_as_naive"] = same
    result["target_chars_per_s"] = 1000
    result["meets_target"] = result["wasm_stream_chars_per_s"] >= 1000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
