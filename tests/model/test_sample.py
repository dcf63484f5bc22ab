"""Stage sample (model/sample.py): the command line and the DVC `sample` stage, on a tiny trained model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("keras")

from model import sample as cli  # noqa: E402
from model.sampler import StatefulSampler  # noqa: E402
from pipeline.vocab import Vocab  # noqa: E402
from tests.helpers.params import write_params  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tiny_lstm) -> Path:
    return tiny_lstm.path


@pytest.fixture(scope="module")
def sampler(model_dir) -> StatefulSampler:
    return StatefulSampler.from_dir(model_dir)


@pytest.mark.slow
def test_subprocess_json_lines_match_the_library(model_dir, sampler, repo_root, python_exe):
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.run([python_exe, "-m", "model.sample", "--model", str(model_dir), "--prime", "the ", "--n", "3",
                           "--length", "30", "--temperature", "0.9", "--seed", "4", "--json"],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = sampler.generate("the ", n=3, length=30, temperature=0.9, seed=4)
    assert [r["text"] for r in rows] == [s.text for s in expected]
    assert all(r["prime"] == "the " and r["seed"] == 4 and r["method"] == "sample" for r in rows)
    assert [r["stream"] for r in rows] == [0, 1, 2]


def test_readable_text(model_dir, sampler, capsys):
    assert cli.main(["--model", str(model_dir), "--prime", "a ", "--n", "3", "--length", "20", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== sample ") == 3 and "seed 2" in out
    for s in sampler.generate("a ", n=3, length=20, temperature=0.8, seed=2):
        assert "\n" + s.full_text + "\n" in out


def test_greedy_and_beam_flags(model_dir, sampler, capsys):
    assert cli.main(["--model", str(model_dir), "--prime", "the c", "--greedy", "--length", "30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == sampler.greedy("the c", 30).text
    assert cli.main(["--model", str(model_dir), "--beam", "3", "--length", "30", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["method"] == "beam" and row["beam_width"] == 3 and row["text"] == sampler.beam("", 3, 30).text
    with pytest.raises(SystemExit):
        cli.main(["--model", str(model_dir), "--greedy", "--top-k", "3"])
    with pytest.raises(SystemExit):
        cli.main(["--model", str(model_dir), "--beam", "2", "--n", "3"])


def test_clear_errors_name_the_file(model_dir, tmp_path, capsys):
    assert cli.main(["--model", str(tmp_path / "nowhere")]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    Vocab.from_counts({"q": 2, "z": 1}).save(tmp_path / "vocab.json")
    assert cli.main(["--model", str(model_dir), "--vocab", str(tmp_path / "vocab.json")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "vocab.json") in err and "does not match" in err
    assert cli.main(["--model", str(model_dir), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err


def test_stage_writes_the_report_from_params(model_dir, sampler, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params("params.yaml", {"sample": {"primes": ["", "the "], "temperatures": [0.5, 1.0], "n": 2, "length": 25,
                                            "seed": 100, "beam_width": 2, "top_k": 5}})
    assert cli.main(["--report", "reports/samples.jsonl", "--model", str(model_dir)]) == 0
    rows = [json.loads(line) for line in Path("reports/samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 * (2 * 2 + 2)
    assert [r["method"] for r in rows[:6]] == ["sample"] * 4 + ["greedy", "beam"]
    for r in rows:
        assert {"prime", "method", "temperature", "seed", "text", "mean_logprob"} <= set(r)
        assert r["mean_logprob"] < 0
    # any sample line is reproduced by the library (and the CLI) with its own seed
    r = rows[8]
    assert (r["prime"], r["temperature"], r["seed"], r["top_k"]) == ("the ", 1.0, 103, 5)
    again = sampler.generate("the ", n=2, length=25, temperature=1.0, top_k=5, seed=103)[r["stream"]]
    assert again.text == r["text"]
    assert rows[10]["text"] == sampler.greedy("the ", 25).text


def test_stage_rejects_bad_params(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_params("params.yaml", {"sample": {"temperature": 0.5}})
    assert cli.main(["--report", "out.jsonl", "--model", str(model_dir)]) == 2
    assert "sample.temperature" in capsys.readouterr().err
    write_params("params.yaml", {"sample": {"temperatures": [0.5, -1]}})
    assert cli.main(["--report", "out.jsonl", "--model", str(model_dir)]) == 2
    assert "sample.temperatures" in capsys.readouterr().err
    assert not Path("out.jsonl").exists()
