"""The loader (model/data.py): tf.data batches equal the shards, seeded reshuffles keep content, fit works."""

from __future__ import annotations

import numpy as np
import pytest

from model import data as D
from pipeline import batches as B
from tests.helpers.corpus import make_splits
from tests.helpers.params import stage_config

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    paths, vocab = make_splits(root, n_threads=40)
    B.run(paths, vocab, B.check_params(stage_config("batches", B.BatchesConfig, batch_size=8, max_len=32)),
          root / "out")
    return root / "out", vocab


def as_numpy(ds, n=None):
    out = []
    for x, y, m in ds.take(n) if n else ds:
        out.append((x.numpy(), y.numpy(), m.numpy()))
    return out


def content(batches) -> list[bytes]:
    """Sorted rows (inputs, targets, mask) across batches: the multiset of sequences."""
    return sorted(x[i].tobytes() + y[i].tobytes() + m[i].tobytes() for x, y, m in batches for i in range(len(x)))


def test_dataset_matches_shards_in_stored_order(shards):
    out, _ = shards
    ds = D.make_dataset(out, "train")
    spec = ds.element_spec
    assert [s.dtype for s in spec] == [tf.int32, tf.int32, tf.float32]
    assert all(s.shape.as_list() == [None, None] for s in spec)
    got = as_numpy(ds)
    want = list(D.iter_numpy_batches(out, "train"))
    assert len(got) == len(want) == D.dataset_stats(out, "train")["batches"]
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert int(sum(m.sum() for _, _, m in got)) == D.dataset_stats(out, "train")["real_tokens"]


def test_seeded_order_is_deterministic_and_keeps_content(shards):
    out, _ = shards
    stored = as_numpy(D.make_dataset(out, "train"))
    a = D.make_dataset(out, "train", seed=3)
    first, second = as_numpy(a), as_numpy(a)  # two passes reshuffle
    again = as_numpy(D.make_dataset(out, "train", seed=3))
    assert content(first) == content(second) == content(stored)
    assert [x.tobytes() for x, _, _ in first] == [x.tobytes() for x, _, _ in again]  # same seed, same order
    assert [x.tobytes() for x, _, _ in first] != [x.tobytes() for x, _, _ in second]
    assert [x.tobytes() for x, _, _ in first] != [x.tobytes() for x, _, _ in stored]
    assert sorted(x.shape for x, _, _ in first) == sorted(x.shape for x, _, _ in stored)  # batch shapes kept


def test_repeat_yields_whole_epochs(shards):
    out, _ = shards
    n = D.dataset_stats(out, "val")["batches"]
    stream = as_numpy(D.make_dataset(out, "val", seed=1, repeat=True), 2 * n)
    epoch = as_numpy(D.make_dataset(out, "val"))
    assert content(stream[:n]) == content(stream[n:]) == content(epoch)


def pass_reading(out, monkeypatch, **kw) -> tuple[list, int]:
    """One pass of ``D.pass_batches(out, "train", **kw)`` and the shard bytes it read."""
    read = []
    real_pread = D.os.pread

    def counting_pread(fd, n, offset):
        data = real_pread(fd, n, offset)
        read.append(len(data))
        return data
    monkeypatch.setattr(D.os, "pread", counting_pread)
    try:
        return list(D.pass_batches(out, "train", **kw)), sum(read)
    finally:
        monkeypatch.setattr(D.os, "pread", real_pread)


@pytest.mark.parametrize("seed", [None, 3])
@pytest.mark.parametrize("workers", [2, 3])
def test_shares_stack_to_the_batch_and_each_reads_only_its_rows(shards, monkeypatch, seed, workers):
    out, _ = shards
    whole, whole_bytes = pass_reading(out, monkeypatch, seed=seed, pass_index=1)
    shares = [pass_reading(out, monkeypatch, seed=seed, pass_index=1, share=(w, workers)) for w in range(workers)]
    assert all(len(batches) == len(whole) for batches, _ in shares)  # every worker steps the same batches
    for k, batch in enumerate(whole):
        for column, want in enumerate(batch):
            got = np.concatenate([batches[k][column] for batches, _ in shares])
            assert np.array_equal(got, want), (k, column)
        n = len(batch[0])
        assert [len(batches[k][0]) for batches, _ in shares] == \
            [len(range(n)[D.share_rows(n, w, workers)]) for w in range(workers)]
    # the shares partition the rows, so together they read each stored row exactly once
    assert sum(b for _, b in shares) == whole_bytes
    assert all(b < whole_bytes * 0.6 for _, b in shares)


def test_a_shared_dataset_is_the_share_of_every_batch(shards):
    out, _ = shards
    whole = as_numpy(D.make_dataset(out, "train", seed=5))
    parts = [as_numpy(D.make_dataset(out, "train", seed=5, share=(w, 2))) for w in range(2)]
    for k, batch in enumerate(whole):
        for column, want in enumerate(batch):
            assert np.array_equal(np.concatenate([parts[0][k][column], parts[1][k][column]]), want)
    with pytest.raises(ValueError, match="share must be"):
        D.make_dataset(out, "train", share=(2, 2))


@pytest.mark.slow
def test_fit_accepts_the_dataset_with_mask_as_sample_weight(shards):
    from model.network import NetworkConfig, build_model

    out, vocab = shards
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(NetworkConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=8, num_layers=1, dropout=0.0,
                                        mixed_precision=False))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = D.make_dataset(out, "train", seed=0)
    assert int(ds.cardinality()) == D.dataset_stats(out, "train")["batches"]
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    # padding carries no loss: changing what follows the real targets leaves the weighted loss unchanged
    x, y, m = next(iter(D.make_dataset(out, "val")))
    y2 = np.where(m.numpy() > 0, y.numpy(), len(vocab) - 1)
    l1 = model.evaluate(x, y, sample_weight=m, verbose=0)
    l2 = model.evaluate(x, y2, sample_weight=m, verbose=0)
    assert l1 == pytest.approx(l2, rel=1e-6)


def test_missing_shards_are_clear_errors(shards, tmp_path):
    out, _ = shards
    with pytest.raises(D.BatchesError, match="run `dvc repro batches` first"):
        D.make_dataset(tmp_path, "train")
    import shutil

    broken = tmp_path / "b"
    shutil.copytree(out, broken)
    next((broken / "test").glob("*.tokens.npy")).unlink()
    with pytest.raises(D.BatchesError, match="is missing"):
        list(D.iter_numpy_batches(broken, "test"))


def test_a_truncated_shard_is_a_clear_error_read_in_order_or_by_rows(shards, tmp_path):
    import shutil

    out, _ = shards
    broken = tmp_path / "b"
    shutil.copytree(out, broken)
    shard_path = max((broken / "train").glob("*.tokens.npy"), key=lambda p: p.stat().st_size)
    shard = D.Shard(shard_path)
    whole = shard.rows(0, shard.shape[0]).copy()
    index = np.arange(shard.shape[0])[::-1].copy()
    assert np.array_equal(shard.take(index), whole[index])
    shard.close()
    with open(shard_path, "r+b") as fh:
        fh.truncate(shard_path.stat().st_size - shard.row_bytes // 2)
    shard = D.Shard(shard_path)
    with pytest.raises(D.BatchesError, match=r"truncated .*rerun `dvc repro batches`"):
        shard.take(index)
    with pytest.raises(D.BatchesError, match="truncated"):
        shard.rows(0, shard.shape[0])
    assert np.array_equal(shard.take(index[1:]), whole[index[1:]])  # the rows still whole read fine
    shard.close()
