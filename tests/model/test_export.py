"""Stage export (model/export.py): the self-check, clear errors and a self-contained sampler page."""

from __future__ import annotations

import base64
import json
import re
import subprocess

import numpy as np
import pytest

from model.artifacts import ModelFolderError
from model.export import ExportConfig, check_export, export, main, script_json
from model.webformat import ExportError, decode_model, encode_model
from pipeline.common import ParamsError
from pipeline.vocab import Vocab
from tests.helpers.params import stage_config, write_params


@pytest.fixture(scope="module")
def trained(tiny_lstm):
    return tiny_lstm.path, tiny_lstm.model, tiny_lstm.vocab, tiny_lstm.meta


def test_self_check_catches_a_wrong_gate_order(trained):
    _, model, vocab, meta = trained
    doc = encode_model(model, vocab, meta)
    assert check_export(model, doc, "the dog") < 1e-5
    flat = np.frombuffer(base64.b64decode(doc["weights_base64"]), dtype="<f4").copy()
    entry = next(t for t in doc["tensors"] if t["name"] == "lstm_0/bias")
    hidden = entry["shape"][0] // 4
    bias = flat[entry["offset"]: entry["offset"] + 4 * hidden].reshape(4, hidden)
    flat[entry["offset"]: entry["offset"] + 4 * hidden] = bias[[1, 0, 2, 3]].ravel()  # swap i and f
    blob = flat.tobytes()
    import hashlib
    bad = {**doc, "weights_base64": base64.b64encode(blob).decode(), "weights_sha256": hashlib.sha256(blob).hexdigest()}
    assert check_export(model, bad, "the dog") > 1e-3


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    model_dir, model, vocab, meta = trained
    other = Vocab.from_counts({"a": 3, "b": 2}, n_docs=1)
    with pytest.raises(ExportError, match="vocabulary has 4"):
        encode_model(model, other, {})
    doc = encode_model(model, vocab, meta)
    with pytest.raises(ExportError, match="corrupt"):
        decode_model({**doc, "weights_base64": doc["weights_base64"][:-8]})
    with pytest.raises(ExportError, match="not a kopitiam-char-lstm v1"):
        decode_model({**doc, "version": 2})
    with pytest.raises(ModelFolderError, match="nowhere"):
        export({**stage_config("export", ExportConfig), "model_dir": str(tmp_path / "nowhere")})
    assert "</" not in script_json({"prime": "</script><!-- x"})
    assert json.loads(script_json({"prime": "</script><!-- x"})) == {"prime": "</script><!-- x"}


def test_unknown_params_key_is_an_error(tmp_path, monkeypatch):
    write_params(tmp_path / "params.yaml", {"export": {"model_dri": "models/lstm"}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match="export.model_dri"):
        main([])


@pytest.mark.slow
def test_stage_writes_self_contained_page(trained, tmp_path, python_exe, repo_root):
    model_dir, _, vocab, meta = trained
    write_params(tmp_path / "params.yaml", {"export": {"prime": "the </script> cat", "length": 77}})
    proc = subprocess.run([python_exe, "-m", "model.export", "--model", str(model_dir)], cwd=tmp_path,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(repo_root), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "reports/model.json").read_text(encoding="utf-8"))
    assert doc["vocab_hash"] == meta["vocab_hash"]
    metrics = json.loads((tmp_path / "metrics/export.json").read_text())
    assert metrics["check_max_abs_prob_diff"] <= 1e-4 and metrics["n_params"] == doc["n_params"]

    html = (tmp_path / "reports/sampler.html").read_text(encoding="utf-8")
    assert "__KOPITIAM_" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"https?://|\bsrc\s*=|<link\b|\bimport\s*\(|fetch\(", html), "page must not load anything"
    embedded = re.search(r'<script id="kopitiam-model" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(embedded) == doc
    defaults = re.search(r'<script id="kopitiam-defaults" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(defaults)["prime"] == "the </script> cat" and json.loads(defaults)["length"] == 77
    assert "KopitiamLSTM" in html and "Float32Array" in html
