"""The exported sampler page (model/export.py, model/web/) in a real headless Chromium.

Drives Debian's Chromium over the DevTools protocol (tests/helpers/browser.py): the page is opened from a
file:// URL, controls are set through the DOM, Generate is pressed with real mouse events, and the
streamed text is read back from the page. Parity is checked against the full Keras model run on
the growing prefix (the ground truth) and against model.sampler.StatefulSampler."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import numpy as np
import pytest

from model.export import ExportConfig, export
from model.webformat import encode_model
from pipeline.vocab import END_ID
from tests.helpers.browser import Browser, find_chromium
from tests.helpers.params import stage_config
from tests.helpers.tiny_model import keras_greedy, keras_probs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEFAULT_PRIME = "the </script> <b>cat</b>"  # the page's default prime: must survive inlining intact


@pytest.fixture(scope="module")
def trained(tiny_lstm):
    return tiny_lstm.model, tiny_lstm.vocab, tiny_lstm.meta


@pytest.fixture(scope="module")
def page_path(tiny_lstm, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    export({**stage_config("export", ExportConfig), "model_dir": str(tiny_lstm.path),
            "json_out": str(out / "model.json"), "html_out": str(out / "sampler.html"), "prime": DEFAULT_PRIME})
    return out / "sampler.html"


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("no Chromium on PATH (install Debian's with `apt-get install chromium`; .ci/run does so as root)")
    with Browser(timeout=120) as b:
        yield b


def click_generate(page, *, prime: str, greedy: bool, length: int, temperature: float = 1.0, seed: int = 0) -> dict:
    """Fill the controls like a user, press Generate with the mouse, wait for the end; returns the
    page's result plus the text read from the output element and how many times it grew."""
    page.evaluate(f"""(() => {{
        const set = (id, v) => {{ const e = document.getElementById(id); e.value = v;
                                  e.dispatchEvent(new Event("input", {{bubbles: true}})); }};
        set("prime", {json.dumps(prime)}); set("length", "{length}"); set("temperature", "{temperature}");
        set("seed", "{seed}");
        const g = document.getElementById("greedy");
        if (g.checked !== {json.dumps(greedy)}) g.click();
        window.__grew = 0;
        new MutationObserver((m) => {{ window.__grew += m.length; }})
            .observe(document.querySelector("#output .gen"), {{childList: true}});
        window.__done = new Promise(
            (r) => document.addEventListener("kopitiam:done", (e) => r(e.detail), {{once: true}}));
    }})()""")
    page.click("#generate")
    result = page.evaluate("window.__done")
    result["shown"] = page.evaluate("document.querySelector('#output').textContent")
    result["grew"] = page.evaluate("new Promise((r) => setTimeout(() => r(window.__grew), 0))")
    return result


def test_page_loads_offline_without_errors(browser, page_path, trained):
    _, vocab, _ = trained
    page = browser.open(page_path.as_uri())
    assert page.errors() == []
    assert page.evaluate("KopitiamSampler.model.engine") == "wasm"  # Chromium has WebAssembly SIMD
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0  # nothing fetched
    assert vocab.hash in page.evaluate("document.getElementById('info').textContent")
    assert page.evaluate("document.getElementById('prime').value") == DEFAULT_PRIME


@pytest.mark.parametrize("engine", ["wasm", "js"])
def test_generate_greedy_equals_python(browser, page_path, trained, engine):
    model, vocab, _ = trained
    from model.sampler import StatefulSampler

    page = browser.open(f"{page_path.as_uri()}?engine={engine}")
    assert page.evaluate("KopitiamSampler.model.engine") == engine
    prime, length = "the c", 160
    result = click_generate(page, prime=prime, greedy=True, length=length)
    expected = keras_greedy(model, vocab, prime, length)
    assert result["text"] == expected
    assert result["shown"] == prime + expected
    assert StatefulSampler.from_model(model, vocab).greedy(prime, length).text == expected
    assert page.errors() == []


@pytest.mark.parametrize("engine", ["wasm", "js"])
def test_next_char_probabilities_match_python(browser, page_path, trained, engine):
    model, vocab, _ = trained
    from model.sampler import StatefulSampler

    sampler = StatefulSampler.from_model(model, vocab)
    page = browser.open(f"{page_path.as_uri()}?engine={engine}")
    assert page.evaluate("KopitiamSampler.model.engine") == engine
    for prime in ("", "the cat sat on the m", "she sells sea shells by the sea shore; the", "z\u00e9\u4e2d!"):
        js = np.array(page.evaluate(f"KopitiamSampler.nextProbs({json.dumps(prime)})"))
        ids = np.concatenate([[END_ID], vocab.encode(prime)])
        assert js.shape == (len(vocab),) and abs(js.sum() - 1) < 1e-9
        np.testing.assert_allclose(js, keras_probs(model, ids)[-1], atol=1e-4, rtol=0, err_msg=repr(prime))
        np.testing.assert_allclose(js, sampler.next_probs(prime), atol=1e-4, rtol=0, err_msg=repr(prime))


def test_sampling_is_seeded_and_streams(browser, page_path):
    page = browser.open(page_path.as_uri())
    page.evaluate("KopitiamSampler.chunkMs = 0")  # one character per chunk: every step reaches the page
    a = click_generate(page, prime="the ", greedy=False, length=120, temperature=1.0, seed=7)
    b = click_generate(page, prime="the ", greedy=False, length=120, temperature=1.0, seed=7)
    c = click_generate(page, prime="the ", greedy=False, length=120, temperature=1.0, seed=8)
    assert a["text"] == b["text"] and a["text"] != c["text"]
    assert a["chars"] > 10 and a["chunks"] == len(a["text"]) == a["grew"]  # streamed, one append per chunk
    assert a["options"]["temperature"] == 1.0 and a["options"]["seed"] == 7


def test_url_parameters_prefill_and_autostart(browser, page_path, trained):
    model, vocab, _ = trained
    query = urlencode({"prime": "she s", "greedy": "1", "length": "60", "auto": "1"})
    page = browser.open(f"{page_path.as_uri()}?{query}")
    text = page.evaluate("""new Promise((r) => { const f = () => KopitiamSampler.lastResult
        ? r(KopitiamSampler.lastResult.text) : setTimeout(f, 20); f(); })""")
    assert text == keras_greedy(model, vocab, "she s", 60)


def test_load_another_model_json_from_disk(browser, page_path, tmp_path):
    import keras

    from model.network import NetworkConfig, build_model
    from pipeline.vocab import Vocab

    vocab = Vocab.from_counts({c: 10 + i for i, c in enumerate("kopitiam teh-c")}, n_docs=1)
    keras.utils.set_random_seed(3)
    model = build_model(NetworkConfig(vocab_size=len(vocab), embedding_dim=5, hidden_size=6, num_layers=1, dropout=0.0,
                                        mixed_precision=False))  # 11 inputs: padded to 12
    (tmp_path / "other.json").write_text(json.dumps(encode_model(model, vocab)), encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"format": "something else"}', encoding="utf-8")
    page = browser.open(page_path.as_uri())
    wait = """new Promise((r) => document.addEventListener("kopitiam:model", (e) => r(e.detail), {once: true}))"""

    page.evaluate(f"window.__loaded = {wait}; null")
    page.set_file("#model-file", tmp_path / "broken.json")
    detail = page.evaluate("window.__loaded")
    assert "not a kopitiam-char-lstm v1 model" in detail["error"] and detail["vocabHash"] != vocab.hash
    assert "broken.json not loaded" in page.evaluate("document.getElementById('warning').textContent")

    page.evaluate(f"window.__loaded = {wait}; null")
    page.set_file("#model-file", tmp_path / "other.json")
    detail = page.evaluate("window.__loaded")
    assert detail["error"] is None and detail["vocabHash"] == vocab.hash
    js = np.array(page.evaluate("KopitiamSampler.nextProbs('teh ')"))
    np.testing.assert_allclose(js, keras_probs(model, np.concatenate([[END_ID], vocab.encode("teh ")]))[-1], atol=1e-4)
    result = click_generate(page, prime="kopi", greedy=True, length=40)
    assert result["text"] == keras_greedy(model, vocab, "kopi", 40)
