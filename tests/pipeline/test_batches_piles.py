"""Batches in bounded memory: the external (piles) shuffle is seeded, deterministic and keeps every
row; the loader streams the shards and gives the batches an in-memory loader gives."""

from __future__ import annotations

import numpy as np
import pytest

from model import data as D
from pipeline import batches as B
from pipeline import split as S
from pipeline.vocab import iter_texts
from tests.helpers.corpus import make_splits
from tests.helpers.params import stage_config

TINY_MB = 0.002  # ~2 KB of rows per pile: every bucket of the test corpus is cut into several piles


def params(**kw) -> B.BatchParams:
    return B.check_params(stage_config("batches", B.BatchesConfig, **{"batch_size": 8, "max_len": 64, **kw}))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("piles")
    paths, vocab = make_splits(root, n_threads=80)
    return root, paths, vocab


def bucket_rows(out, split) -> dict[int, list[bytes]]:
    """Per bucket length, its stored rows (tokens + row table) in stored order."""
    m = D.load_manifest(out, split)
    return {b["length"]: [t.tobytes() + r.tobytes() for t, r in
                          zip(np.load(out / split / b["tokens"]), np.load(out / split / b["rows"]))]
            for b in m["buckets"]}


def test_piles_keep_every_row_and_change_only_the_order(corpus):
    root, paths, vocab = corpus
    whole = B.run(paths, vocab, params(), root / "whole")
    piled = B.run(paths, vocab, params(shuffle_mb=TINY_MB), root / "piled")
    assert piled["splits"] == whole["splits"]  # counts, buckets, efficiency: the same
    for split in S.SPLITS:
        a, b = bucket_rows(root / "whole", split), bucket_rows(root / "piled", split)
        assert a.keys() == b.keys()
        for length in a:
            assert sorted(a[length]) == sorted(b[length])
        rows = np.load(root / "piled" / split / D.load_manifest(root / "piled", split)["buckets"][-1]["rows"])
        if len(rows) > 20:  # shuffled: documents do not come out in file order
            assert not np.all(np.diff(rows[:, 1]) >= 0)
    plans = B.plan_buckets(B.survey("train", paths["train"], 64, False).hist, whole["boundaries"], np.dtype(np.uint8),
                           TINY_MB)
    assert max(p.piles for p in plans) > 1


def test_piles_are_seeded_and_deterministic(corpus, tmp_path):
    root, paths, vocab = corpus
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        B.run(paths, vocab, params(shuffle_mb=TINY_MB, seed=seed), tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)
    assert not list(tmp_path.glob(".*"))  # no pile, lane or permutation file left behind


def test_one_pile_buckets_get_the_permutation_of_the_whole_bucket(corpus):
    """With every bucket in one pile, bucket b's rows are its chunks (document order) permuted by the
    split generator's b-th draw: what a stage holding the split in memory would write."""
    root, paths, vocab = corpus
    metrics = B.run(paths, vocab, params(), root / "one")
    stream, n_chars = B.encode_group(list(iter_texts(paths["val"])), vocab)
    chunks = B.make_chunks(n_chars, 64)
    rng = np.random.default_rng([0, S.SPLITS.index("val")])
    bucket_of = np.searchsorted(metrics["boundaries"], chunks["targets"])
    m = D.load_manifest(root / "one", "val")
    for entry in m["buckets"]:
        b = metrics["boundaries"].index(entry["length"])
        sel = np.flatnonzero(bucket_of == b)
        sel = sel[rng.permutation(len(sel))]
        want = B.windows(stream, chunks["start"][sel], chunks["targets"][sel], entry["length"], np.dtype(np.uint8))
        assert np.array_equal(np.load(root / "one" / "val" / entry["tokens"]), want)




# -- the loader ---------------------------------------------------------------------------------
def in_memory_batches(out, split):
    """A loader holding the split: whole shards loaded, batches taken in the stored order."""
    m = D.load_manifest(out, split)
    arrays = [(np.load(out / split / b["tokens"]), np.load(out / split / b["rows"])) for b in m["buckets"]]
    order = np.load(out / split / m["order"])
    cursor = [0] * len(arrays)
    for b in order:
        tokens, rows = arrays[b]
        lo = cursor[b]
        cursor[b] += m["batch_size"]
        yield D.split_window(tokens[lo:lo + m["batch_size"]], rows[lo:lo + m["batch_size"], 0])


@pytest.mark.parametrize("carry", [False, True])
def test_streamed_batches_equal_an_in_memory_loader_in_stored_order(corpus, tmp_path, carry):
    root, paths, vocab = corpus
    B.run(paths, vocab, params(carry_state=carry, shuffle_mb=TINY_MB), tmp_path / "b")
    for split in S.SPLITS:
        got, want = list(D.iter_numpy_batches(tmp_path / "b", split)), list(in_memory_batches(tmp_path / "b", split))
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):
            assert all(np.array_equal(x, y) for x, y in zip(g, w))


def rows_of(batches) -> list[bytes]:
    return sorted(t[i].tobytes() + n[i].tobytes() for t, n, _, _ in batches for i in range(len(t)))


def test_seeded_passes_deal_every_row_once_in_the_stored_batch_sizes(corpus, tmp_path):
    root, paths, vocab = corpus
    B.run(paths, vocab, params(), tmp_path / "b")
    stored = list(D.pass_batches(tmp_path / "b", "train"))
    sizes = lambda batches: sorted((t.shape, len(t)) for t, _, _, _ in batches)  # noqa: E731
    passes = [list(D.pass_batches(tmp_path / "b", "train", seed=3, pass_index=p, block_batches=2)) for p in (0, 1)]
    again = list(D.pass_batches(tmp_path / "b", "train", seed=3, pass_index=0, block_batches=2))
    for one in passes:
        assert rows_of(one) == rows_of(stored) and sizes(one) == sizes(stored)
    as_bytes = lambda batches: [t.tobytes() for t, _, _, _ in batches]  # noqa: E731
    assert as_bytes(passes[0]) == as_bytes(again) != as_bytes(passes[1])
    # blocks of one batch: the rows of each batch are a stored batch's (order within it aside)
    whole = {frozenset(t[i].tobytes() for i in range(len(t))) for t, _, _, _ in stored}
    single = D.pass_batches(tmp_path / "b", "train", seed=3, block_batches=1)
    assert all(frozenset(t[i].tobytes() for i in range(len(t))) in whole for t, _, _, _ in single)


def test_the_tf_dataset_streams_the_same_batches(corpus, tmp_path):
    pytest.importorskip("tensorflow")
    root, paths, vocab = corpus
    B.run(paths, vocab, params(), tmp_path / "b")
    ds = D.make_dataset(tmp_path / "b", "val")
    got = [(x.numpy(), y.numpy(), m.numpy()) for x, y, m in ds]
    want = list(in_memory_batches(tmp_path / "b", "val"))
    assert len(got) == len(want) == int(ds.cardinality())
    assert all(np.array_equal(a, b) for g, w in zip(got, want) for a, b in zip(g, w))
    seeded = D.make_dataset(tmp_path / "b", "train", seed=1)
    first = [x.numpy().tobytes() for x, _, _ in seeded]
    second = [x.numpy().tobytes() for x, _, _ in seeded]
    want_first = [split_inputs(t) for t, _, _, _ in D.pass_batches(tmp_path / "b", "train", seed=1, pass_index=0)]
    assert first == want_first and second != first  # each iteration over the dataset is the next pass


def split_inputs(tokens: np.ndarray) -> bytes:
    return tokens.astype(np.int32)[:, :-1].tobytes()
