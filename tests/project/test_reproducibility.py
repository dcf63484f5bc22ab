"""Reproducibility plumbing: the README commands CI runs, the lock, .ci/check_lock.py, headline metrics.

The commands are the ones CI extracts from README.md; the lock is what they install from; check_lock.py is
CI's dvc.lock comparison."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_check_lock():
    spec = importlib.util.spec_from_file_location("check_lock", ROOT / ".ci" / "check_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_command(n: int) -> str:
    """The same rule as .ci/run: the one line after the line starting with `# (n)`."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    found = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith(f"# ({n})")]
    assert len(found) == 1, f"README.md needs exactly one `# ({n})` line, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("n, last", [(1, "dvc repro"), (2, "pytest")])
def test_readme_commands_install_from_the_lock(n, last):
    cmd = readme_command(n)
    assert cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert "-r requirements.lock" in cmd and "--no-deps" in cmd and "&& pip check &&" in cmd
    assert cmd.endswith(f"&& {last}") and "--upgrade" not in cmd


def test_ci_extracts_the_same_lines_as_this_test():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    awk = re.search(r"awk -v tag=\"# \(\$1\)\" '([^']+)'", script).group(1)
    for n in (1, 2):
        out = subprocess.run(["awk", "-v", f"tag=# ({n})", awk, "README.md"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        assert out == readme_command(n) + "\n"


def test_lock_pins_every_declared_dependency():
    """Every requirement of pyproject (base and extras) has an exact pin in requirements.lock."""
    import tomllib

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: {line!r} is not an exact pin"
            pins[norm(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    for req in reqs:
        name = norm(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
        assert name in pins, f"{req} (pyproject.toml) has no pin in requirements.lock: run .ci/refresh-lock"
    assert "lxml-html-clean" in pins and "setuptools" in pins and "pip" not in pins


def write_lock(path: Path, outs: dict[str, str]) -> Path:
    stages = {f"s{i}": {"cmd": "true", "outs": [{"path": p, "hash": "md5", "md5": h, "size": 1}]}
              for i, (p, h) in enumerate(outs.items())}
    path.write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}), encoding="utf-8")
    return path


def test_check_lock_accepts_unstable_changes_and_rejects_stable_ones(tmp_path, capsys):
    check = load_check_lock()
    committed = {"data/raw/demo.parquet": "a1", "data/clean/posts.parquet": "b1", "metrics/train.json": "c1",
                 "models/lstm": "d1.dir", "logs/tensorboard": "e1.dir"}
    old = write_lock(tmp_path / "old.lock", committed)
    timing_only = write_lock(tmp_path / "t.lock", {**committed, "data/raw/demo.parquet": "a2",
                                                  "metrics/train.json": "c2", "logs/tensorboard": "e2.dir"})
    assert check.main([str(old), str(timing_only)]) == 0
    assert "all 2 stable outputs match" in capsys.readouterr().out

    model_changed = write_lock(tmp_path / "m.lock", {**committed, "models/lstm": "d2.dir"})
    assert check.main([str(old), str(model_changed)]) == 1
    out = capsys.readouterr().out
    assert "models/lstm (stage s3): committed d1.dir, this run d2.dir" in out
    assert "only what the model computes differs" in out  # the data matched: a CPU question

    missing = write_lock(tmp_path / "x.lock", {k: v for k, v in committed.items() if k != "data/clean/posts.parquet"})
    assert check.main([str(old), str(missing)]) == 1
    out = capsys.readouterr().out
    assert "data/clean/posts.parquet (stage s1) is in the committed dvc.lock" in out
    assert "only what the model computes" not in out

    data_changed = write_lock(tmp_path / "d.lock", {**committed, "data/clean/posts.parquet": "b2", "models/lstm": "d2"})
    assert check.main([str(old), str(data_changed)]) == 1
    assert "only what the model computes" not in capsys.readouterr().out  # the data differ too: not the CPU


def test_check_lock_exclusions_are_real_outputs():
    """Each UNSTABLE pattern names an output dvc.yaml declares (no stale entries)."""
    check = load_check_lock()
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    declared = []
    for stage in dvc["stages"].values():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind) or []:
                declared.append(next(iter(out)) if isinstance(out, dict) else out)
    declared = [d.replace("${item}", "demo") for d in declared]
    for pattern in check.UNSTABLE:
        assert any(check.unstable_reason(d) == check.UNSTABLE[pattern] for d in declared), pattern
    assert check.unstable_reason("models/lstm") is None and check.unstable_reason("data/batches") is None


def _timing_keys(node, path=""):
    """Dotted paths of the wall-clock fields (``seconds``, ``*_per_s``) in a metrics JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "seconds" or key.endswith("_per_s"):
                yield here
            else:
                yield from _timing_keys(value, here)


def test_every_metrics_file_with_timings_may_differ_between_runs():
    """A committed metrics file that records wall-clock speed cannot reproduce byte for byte, so
    check_lock.py must list it; a stage that starts reporting its speed fails here, not in CI."""
    check = load_check_lock()
    timed = {}
    for path in sorted((ROOT / "metrics").rglob("*.json")):
        keys = list(_timing_keys(json.loads(path.read_text(encoding="utf-8"))))
        if keys:
            timed[path.relative_to(ROOT).as_posix()] = keys
    assert "metrics/clean.json" in timed  # the scan sees the committed metrics
    unlisted = {p: keys for p, keys in timed.items() if check.unstable_reason(p) is None}
    assert not unlisted, f"record timings but are not in .ci/check_lock.py UNSTABLE: {unlisted}"


def test_headline_stage_reads_three_metrics_files(tmp_path, python_exe):
    evaluation = {"comparison": {"lstm_bpc": 1.912345678, "lstm_beats_all": True, "best_baseline": "ppmd",
                                 "best_baseline_bpc": 2.0049999},
                  "models": {"ppmd": {"bpc": 2.0049999, "order": 6}}, "novelty": {"novel_word_share": 0.0812345}}
    (tmp_path / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")
    (tmp_path / "train.json").write_text(json.dumps({"val_bpc": 1.95, "tokens_per_s": 31234.56}), encoding="utf-8")
    (tmp_path / "dedupe.json").write_text(json.dumps({"kept": 18000}), encoding="utf-8")
    args = ["--eval", str(tmp_path / "eval.json"), "--train", str(tmp_path / "train.json"),
            "--dedupe", str(tmp_path / "dedupe.json"), "--out", str(tmp_path / "m" / "headline.json")]
    subprocess.run([python_exe, "-m", "model.headline", *args], cwd=ROOT, check=True, capture_output=True)
    text = (tmp_path / "m" / "headline.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"lstm_test_bpc": 1.9123, "lstm_beats_all": True, "best_baseline": "ppmd",
                                "best_baseline_test_bpc": 2.005, "ppmd_test_bpc": 2.005, "ppmd_order": 6,
                                "lstm_val_bpc": 1.95, "train_tokens_per_s": 31235, "posts_kept": 18000,
                                "novel_word_share": 0.0812}
    assert next(iter(json.loads(text))) == "lstm_test_bpc"  # file order = dvc exp show column order

    del evaluation["models"]["ppmd"]  # evaluate.ppmd_orders: []: no PPMd, null in the headline
    (tmp_path / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")
    subprocess.run([python_exe, "-m", "model.headline", *args], cwd=ROOT, check=True, capture_output=True)
    got = json.loads((tmp_path / "m" / "headline.json").read_text(encoding="utf-8"))
    assert got["ppmd_test_bpc"] is None and got["ppmd_order"] is None

    (tmp_path / "dedupe.json").write_text(json.dumps({"docs_in": 3}), encoding="utf-8")
    proc = subprocess.run([python_exe, "-m", "model.headline", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1 and f"{tmp_path / 'dedupe.json'} has no key kept" in proc.stderr


def test_headline_is_the_first_metrics_file_in_dvc_yaml():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    first = next(iter(dvc["stages"].values()))
    assert [next(iter(m)) for m in first["metrics"]] == ["metrics/headline.json"]
