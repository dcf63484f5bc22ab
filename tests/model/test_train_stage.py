"""Stage train (model/train.py) end to end through `python -m model.train` on contract files.

Split Parquet -> vocab -> batches (the real upstream stages) -> train main(): model folder, metrics with
the xz baseline, plots, samples."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import pytest

from tests.helpers import train_tiny
from tests.helpers.params import write_params

# params.yaml with a tiny model; learning_rate 0.002 and no time cap: what this test was tuned with
TINY_PARAMS = {
    "batches": {"batch_size": 8, "max_len": 32, "buckets": [16, 32]},
    "train": {"seed": 1, "model": {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1, "dropout": 0.0},
              "epochs": 2, "max_steps_per_epoch": 6, "checkpoint_every_steps": 4, "learning_rate": 0.002,
              "max_minutes": 0, "evolution": {"primes": ["the "], "temperatures": [1.0], "length": 10, "seed": 2}},
}


def write_split(path: Path, texts: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from contracts.schemas import CLEAN_SCHEMA

    n = len(texts)
    ids = [hashlib.sha256(f"t\x1f{i}".encode()).hexdigest()[:16] for i in range(n)]
    cols = {"doc_id": ids, "source": ["t"] * n, "board": [None] * n, "thread_id": ["1"] * n,
            "thread_title": [None] * n, "post_id": [str(i) for i in range(n)], "position": list(range(n)),
            "author_hash": [None] * n, "posted_at": [None] * n, "text": texts, "n_chars": [len(t) for t in texts],
            "quoted_post_ids": [[] for _ in range(n)]}
    pq.write_table(pa.table(cols, schema=CLEAN_SCHEMA), path)


@pytest.mark.slow
def test_train_stage_main_on_real_batches(tmp_path, monkeypatch):
    from model import train
    from model.artifacts import load_trained
    from pipeline import batches, vocab

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", TINY_PARAMS)
    split = tmp_path / "data" / "split"
    split.mkdir(parents=True)
    for name, n, seed in (("train", 120, 0), ("val", 30, 1), ("test", 20, 2)):
        write_split(split / f"{name}.parquet", train_tiny.corpus(n, seed))
    vocab.main([])
    batches.main([])

    assert train.main(["--verbose", "0"]) == 0
    metrics = json.loads(Path("metrics/train.json").read_text())
    assert metrics["epochs"] == 2 and metrics["steps"] == 12 and metrics["steps_per_epoch"] == 6
    assert metrics["val_bpc"] == pytest.approx(metrics["val_nats"] / math.log(2))
    assert metrics["xz9_val_bpc"] > 0 and metrics["beats_xz9"] == (metrics["val_bpc"] < metrics["xz9_val_bpc"])
    assert metrics["val_chars"] == sum(len(t) + 1 for t in train_tiny.corpus(30, 1))
    assert len(list(csv.DictReader(open("plots/train.csv")))) == 2
    assert len(Path("reports/evolution.jsonl").read_text().splitlines()) == 2
    _, v, meta = load_trained("models/lstm", "data/vocab.json")
    assert meta["params"]["max_steps_per_epoch"] == 6 and meta["network"]["num_layers"] == 1
    assert not Path("checkpoints/train").exists()

    # batches encoded with another vocabulary than data/vocab.json: refused, nothing trained
    other = type(v)((*v.tokens[:2], *reversed(v.tokens[2:])))
    other.save("data/other_vocab.json")
    assert train.main(["--verbose", "0", "--vocab", "data/other_vocab.json", "--model-dir", "other"]) == 1
    assert not Path("other").exists()
