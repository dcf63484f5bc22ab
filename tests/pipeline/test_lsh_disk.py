"""pipeline/lsh_disk.py: near-duplicate search with signatures, band keys and pairs on disk picks the
same survivors as the in-memory core, however small the partitions."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline import dedupe, dedupe_core, lsh_disk, minhash
from tests.helpers.params import stage_config

WORDS = "the a kopi teh kaya toast queue uncle auntie hawker stall rice chicken laksa rain hot cold".split()


def corpus(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], list[str]]:
    """Texts with planted exact and near copies (a few words changed), and their per-document keys."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(n):
        r = rng.random()
        if texts and r < 0.25:
            words = rng.choice(texts).split()
            for _ in range(rng.randint(0, 3)):
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choices(WORDS, k=rng.randint(5, 60))))
    cfg = stage_config("dedupe", dedupe.DedupeConfig)
    near = [t if len(t) >= cfg["near_min_chars"] else "" for t in texts]
    docs = {"doc_id": np.array([f"{rng.getrandbits(64):016x}".encode() for _ in texts], dtype="S16"),
            "posted": np.array([rng.randrange(50) for _ in texts], dtype=np.int64),
            "exact": np.array([dedupe_core.exact_key(t) for t in texts], dtype=np.uint64),
            "near": np.array([len(t) >= cfg["near_min_chars"] for t in texts]),
            "sig": minhash.signatures(near, shingle=cfg["shingle"], num_perm=cfg["num_perm"], seed=cfg["seed"])}
    return docs, texts


@pytest.mark.parametrize("partition_bytes, sort_bytes, block_rows",
                         [(64 << 20, 8 << 20, 32_768), (1_500, 1_000, 37), (1_500, 64 << 20, 37)])
def test_on_disk_search_finds_the_same_duplicates_as_in_memory(tmp_path, monkeypatch, partition_bytes, sort_bytes,
                                                               block_rows):
    """One partition per band, many small ones, and pair partitions big enough to need splitting."""
    monkeypatch.setattr(lsh_disk, "PARTITION_BYTES", partition_bytes)
    monkeypatch.setattr(lsh_disk, "SORT_BYTES", sort_bytes)
    monkeypatch.setattr(lsh_disk, "BLOCK_ROWS", block_rows)
    cfg = stage_config("dedupe", dedupe.DedupeConfig)
    docs, _ = corpus(700)
    want = dedupe_core.find_duplicates(dict(docs), cfg)
    writer = lsh_disk.SigWriter(tmp_path / "sig", cfg["num_perm"])
    for lo in range(0, len(docs["sig"]), 97):
        writer.write(docs["sig"][lo:lo + 97])
    writer.close()
    work = tmp_path / "work"
    work.mkdir()
    small = {k: v for k, v in docs.items() if k != "sig"}
    got = dedupe.find_duplicates_on_disk(small, tmp_path / "sig", cfg, work)
    for w, g in zip(want, got):
        assert np.array_equal(w, g)
    assert (want[1] == 2).sum() > 20 and (want[1] == 1).sum() > 20  # near and exact copies were found
    assert not list(work.iterdir())  # every partition file consumed


def test_pair_counting_splits_a_partition_that_outgrew_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(lsh_disk, "PARTITION_BYTES", 800)
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 500, size=3000)  # each key about 6 times
    path = tmp_path / "pairs"
    path.write_bytes(keys.astype(np.int64).tobytes())
    values, counts = np.unique(keys, return_counts=True)
    assert np.array_equal(lsh_disk.count_pairs(path, 7), values[counts >= 7])
    assert not list(tmp_path.iterdir())


def test_signature_rows_read_back_by_number(tmp_path):
    sig = np.arange(40 * 8, dtype=np.uint32).reshape(40, 8)
    writer = lsh_disk.SigWriter(tmp_path / "sig", 8)
    writer.write(sig)
    writer.close()
    reader = lsh_disk.SigReader(tmp_path / "sig", 8)
    rows = np.array([0, 1, 2, 7, 20, 21, 39])
    assert reader.n == 40 and np.array_equal(reader.take(rows), sig[rows])
    assert np.array_equal(reader.take(np.array([39, 3, 3, 0])), sig[[39, 3, 3, 0]])
    assert reader.take(np.zeros(0, dtype=np.int64)).shape == (0, 8)
    a, b = np.array([0, 5, 7]), np.array([0, 6, 39])
    assert np.array_equal(lsh_disk.similarity(reader, a, b), minhash.similarity(sig, a, b))
    reader.close()


def test_a_truncated_signature_file_is_an_error_naming_it(tmp_path):
    writer = lsh_disk.SigWriter(tmp_path / "sig", 8)
    writer.write(np.arange(40 * 8, dtype=np.uint32).reshape(40, 8))
    writer.close()
    reader = lsh_disk.SigReader(tmp_path / "sig", 8)
    with open(tmp_path / "sig", "r+b") as fh:
        fh.truncate(39 * 8 * 4 + 5)  # the last row cut short after the reader opened the file
    with pytest.raises(OSError, match=r"sig: signature file truncated .*rerun `dvc repro dedupe`"):
        reader.take(np.array([3, 38, 39]))
    with pytest.raises(OSError, match="truncated"):
        reader.block(32, 40)
    assert reader.take(np.array([38, 3])).shape == (2, 8)
    reader.close()


@pytest.mark.parametrize("n_parts", [1, 6, 256, 257, 70_000])
def test_rows_grouped_by_partition_in_a_stable_order(n_parts):
    part = np.random.default_rng(n_parts).integers(0, n_parts, 50_000)
    order, bounds = minhash.by_partition(part, n_parts)
    assert np.array_equal(order, np.argsort(part, kind="stable"))  # the same order whatever the id type
    assert bounds[0] == 0 and bounds[-1] == len(part) and len(bounds) == n_parts + 1
    for p in np.unique(part)[:50]:
        assert np.all(part[order[bounds[p]:bounds[p + 1]]] == p)


@pytest.mark.parametrize("times", [1, 2, 3, 7])
def test_keys_met_at_least_so_many_times(times):
    keys = np.random.default_rng(times).integers(0, 3_000, 20_000)
    values, counts = np.unique(keys, return_counts=True)
    assert np.array_equal(minhash.met_at_least(keys, times), values[counts >= times])
    assert len(minhash.met_at_least(keys[:times - 1], times)) == 0  # fewer keys than times
    assert len(minhash.met_at_least(np.zeros(0, np.int64), times)) == 0


def test_partitions_of_keys_are_in_range_and_spread():
    keys = np.arange(100_000, dtype=np.int64) * 7919
    for n_parts in (1, 3, 113, 70_000):
        part = minhash.part_of(keys, n_parts)
        assert part.min() >= 0 and part.max() < n_parts
        if n_parts <= 113:
            assert np.bincount(part, minlength=n_parts).min() > 0.8 * len(keys) / n_parts
