"""Stage batches (pipeline/batches.py): chunks, buckets, END padding, every token once, identical shards."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from model.data import iter_numpy_batches, load_manifest
from pipeline import batches as B
from pipeline import split as S
from pipeline import vocab as V
from pipeline.common import ParamsError
from tests.helpers.corpus import LONG, make_splits
from tests.helpers.params import stage_config, write_params


def params(**kw) -> B.BatchParams:
    return B.check_params(stage_config("batches", B.BatchesConfig, **{"batch_size": 8, "max_len": 64, **kw}))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("batches")
    paths, vocab = make_splits(root)
    metrics = B.run(paths, vocab, params(carry_state=False), root / "out")
    return root, paths, vocab, metrics


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """The same splits with carry_state: long documents in a stream that carries the LSTM state."""
    root = tmp_path_factory.mktemp("streamed")
    paths, vocab = make_splits(root)
    metrics = B.run(paths, vocab, params(carry_state=True), root / "out")
    return root, paths, vocab, metrics


def shard_rows(out: Path, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tokens [T+1], row [targets, doc, chunk]) for every stored sequence of a split's buckets
    (the stream, whose rows are windows of lanes, is checked on its own)."""
    m = load_manifest(out, split)
    rows = []
    for b in m["buckets"]:
        if b.get("carry"):
            continue
        tokens = np.load(out / split / b["tokens"])
        table = np.load(out / split / b["rows"])
        rows.extend(zip(tokens, table))
    return rows


def test_make_chunks_covers_every_target_once():
    chunks = B.make_chunks(np.array([0, 3, 9, 10, 25]), max_len=5)
    # targets per document: 1, 4, 10, 11, 26 -> chunks 1, 1, 2, 3, 6
    assert chunks["doc"].tolist() == [0, 1, 2, 2, 3, 3, 3] + [4] * 6
    assert chunks["chunk"].tolist() == [0, 0, 0, 1, 0, 1, 2, 0, 1, 2, 3, 4, 5]
    assert chunks["targets"].tolist() == [1, 4, 5, 5, 5, 5, 1, 5, 5, 5, 5, 5, 1]
    assert chunks["start"].tolist() == [0, 1, 5, 10, 15, 20, 25, 26, 31, 36, 41, 46, 51]


@pytest.mark.parametrize("layout", ["built", "streamed"])
@pytest.mark.parametrize("split", S.SPLITS)
def test_every_real_token_appears_exactly_once(request, layout, split):
    root, paths, vocab, _ = request.getfixturevalue(layout)
    texts = pq.read_table(paths[split]).column("text").to_pylist()
    streamed = {}
    if layout == "streamed":  # the long documents: END-separated in the lanes' target sequences
        tokens, rows = stream_of(root / "out", split)
        for lane in range(rows.shape[1]):
            targets = np.concatenate([tokens[j, lane, 1:rows[j, lane, 0] + 1] for j in range(len(rows))])
            cuts = np.flatnonzero(targets == V.END_ID)
            assert len(targets) and cuts[-1] == len(targets) - 1  # a lane ends with a document's END
            for piece, first_doc in zip(np.split(targets, cuts[:-1] + 1), lane_documents(rows[:, lane])):
                streamed[first_doc] = piece
        assert len(streamed) == sum(len(t) + 1 > 64 for t in texts)
        for doc, piece in streamed.items():
            assert np.array_equal(piece, np.append(vocab.encode(texts[doc]), V.END_ID))
    by_doc: dict[int, list] = {}
    for tokens, (n, doc, chunk) in shard_rows(root / "out", split):
        by_doc.setdefault(int(doc), []).append((int(chunk), tokens, int(n)))
    assert sorted([*by_doc, *streamed]) == list(range(len(texts)))
    for doc, chunks in by_doc.items():
        chunks.sort(key=lambda c: c[0])
        assert [c[0] for c in chunks] == list(range(len(chunks)))
        expected = np.append(vocab.encode(texts[doc]), V.END_ID)
        targets = np.concatenate([tok[1:n + 1] for _, tok, n in chunks])
        assert np.array_equal(targets, expected)  # every character then the END, once each
        assert chunks[0][1][0] == V.END_ID  # a document starts from END
        for (_, prev, pn), (_, cur, _) in itertools.pairwise(chunks):
            assert cur[0] == prev[pn] and pn == 64  # continuation: input starts with the previous last char
    if layout == "built" or split != "train":
        assert len(by_doc[0]) == (11 if split == "train" else 1)


def test_long_document_is_chunked(built):
    root, paths, vocab, _ = built
    docs = [int(doc) for _, (n, doc, chunk) in shard_rows(root / "out", "train") if chunk > 0]
    texts = pq.read_table(paths["train"]).column("text").to_pylist()
    assert texts[0] == LONG and docs.count(0) == 10  # 701 targets -> 11 chunks (10 beyond the first)


def test_batches_hold_one_bucket_length_padding_is_end_and_masked(built):
    root, _, _, metrics = built
    for split in S.SPLITS:
        m = load_manifest(root / "out", split)
        lengths = {b["length"] for b in m["buckets"]}
        sizes: dict[int, list[int]] = {}
        n_batches = real = 0
        for inputs, targets, mask in iter_numpy_batches(root / "out", split):
            n_batches += 1
            assert inputs.shape == targets.shape == mask.shape and inputs.dtype == np.int32 and mask.dtype == np.float32
            t = inputs.shape[1]
            assert t in lengths
            sizes.setdefault(t, []).append(inputs.shape[0])
            n = mask.sum(axis=1).astype(int)
            assert np.array_equal(mask, (np.arange(t)[None, :] < n[:, None]).astype(np.float32))  # a real prefix
            assert (targets[mask == 0] == V.END_ID).all() and (inputs[:, 1:][mask[:, :-1] == 0] == V.END_ID).all()
            assert (n >= 1).all() and (n <= t).all()
            real += int(mask.sum())
        assert n_batches == m["batches"] == metrics["splits"][split]["batches"]
        assert real == m["real_tokens"] == metrics["splits"][split]["real_tokens"]
        for t, s in sizes.items():  # full batches, then at most one smaller batch per bucket
            assert sum(x < 8 for x in s) <= 1 and all(x <= 8 for x in s)


def test_first_end_is_a_real_target(built):
    root, _, _, _ = built
    inputs, targets, mask = next(iter_numpy_batches(root / "out", "train"))
    for row in range(len(targets)):
        n = int(mask[row].sum())
        last = targets[row, n - 1]
        if n < 64:  # a document's last chunk (shorter than max_len) ends with its END target
            assert last == V.END_ID


def test_metrics_count_real_and_pad_tokens(built):
    root, paths, _, metrics = built
    for split in S.SPLITS:
        s = metrics["splits"][split]
        n_chars = pq.read_table(paths[split]).column("n_chars").to_numpy()
        assert s["real_tokens"] == int((n_chars + 1).sum()) and s["documents"] == len(n_chars)
        total = sum(b["sequences"] * b["length"] for b in s["buckets"])
        assert s["pad_tokens"] == total - s["real_tokens"]
        assert s["efficiency"] == pytest.approx(s["real_tokens"] / total, abs=1e-6)
        assert s["pad_to_max_efficiency"] == pytest.approx(s["real_tokens"] / (s["sequences"] * 64), abs=1e-6)
        assert s["pad_to_max_efficiency"] < s["efficiency"]
    assert metrics["splits"]["val"]["unk_tokens"] >= 2  # "ü" and "ŋ" are not in the train vocabulary
    assert metrics["efficiency"] == pytest.approx(
        metrics["real_tokens"] / (metrics["real_tokens"] + metrics["pad_tokens"]), abs=1e-6)


@pytest.mark.parametrize("layout", ["built", "streamed"])
def test_same_seed_gives_byte_identical_shards_new_seed_changes_order_only(request, layout, tmp_path):
    root, paths, vocab, _ = request.getfixturevalue(layout)
    carry = layout == "streamed"
    B.run(paths, vocab, params(carry_state=carry), tmp_path / "again")
    B.run(paths, vocab, params(seed=7, carry_state=carry), tmp_path / "other")
    files = sorted(p.relative_to(root / "out") for p in (root / "out").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for f in files:
        assert (root / "out" / f).read_bytes() == (tmp_path / "again" / f).read_bytes(), f
    for split in S.SPLITS:
        a, b = shard_rows(root / "out", split), shard_rows(tmp_path / "other", split)
        as_bytes = lambda rows: [t.tobytes() + r.tobytes() for t, r in rows]  # noqa: E731
        assert as_bytes(a) != as_bytes(b)  # order changed
        assert sorted(as_bytes(a)) == sorted(as_bytes(b))  # content did not
    assert any((root / "out" / s / "order.npy").read_bytes() != (tmp_path / "other" / s / "order.npy").read_bytes()
               for s in S.SPLITS)


def test_rerun_replaces_old_shards(built, tmp_path):
    root, paths, vocab, _ = built
    out = tmp_path / "b"
    B.run(paths, vocab, params(buckets=[16, 32]), out)
    B.run(paths, vocab, params(buckets=[8, 64]), out)
    names = {p.name for p in (out / "train").iterdir()}
    assert "bucket_00016.tokens.npy" not in names and "bucket_00008.tokens.npy" in names
    assert [b["length"] for b in load_manifest(out, "train")["buckets"] if not b.get("carry")] == [8, 64]


def brute_force_padding(lengths: np.ndarray, batch_size: int, max_buckets: int) -> int:
    values = np.unique(lengths)
    best = None
    for k in range(0, max_buckets):
        for cuts in itertools.combinations(values[:-1], k):
            bounds = [*cuts, values[-1]]
            idx = np.searchsorted(bounds, lengths)
            if np.bincount(idx, minlength=len(bounds)).min() < batch_size:
                continue
            cost = int(np.asarray(bounds)[idx].sum())
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_buckets_minimise_padding_with_a_full_batch_each(seed):
    rng = np.random.default_rng(seed)
    lengths = np.minimum(40, rng.geometric(0.12, size=300))
    bounds = B.auto_buckets(lengths, batch_size=16, max_buckets=4)
    assert len(bounds) <= 4 and bounds[-1] == lengths.max()
    idx = np.searchsorted(bounds, lengths)
    assert np.bincount(idx, minlength=len(bounds)).min() >= 16
    assert int(np.asarray(bounds)[idx].sum()) == brute_force_padding(lengths, 16, 4)
    assert B.auto_buckets(np.array([3, 5, 9]), batch_size=16, max_buckets=4) == [9]  # too few for two buckets


def test_listed_buckets_are_used_and_max_len_appended():
    p = params(buckets=[32, 8, 16])
    assert p.buckets == (8, 16, 32, 64)


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "batches.batch_size = 0: expected an integer >= 1"),
    ({"max_len": -3}, "batches.max_len = -3: expected an integer >= 1"),
    ({"buckets": [0, 16]}, "batches.buckets = [0, 16]: expected every item to be an integer >= 1"),
    ({"buckets": [128]}, "batches.buckets must hold integers in [1, max_len=64], got [128]"),
    ({"buckets": "fixed"}, "'auto' or a non-empty list"),
    ({"seed": -1}, "batches.seed = -1: expected an integer >= 0"),
    ({"seed": True}, "batches.seed = True: expected an integer"),
])
def test_bad_params_are_clear_errors(override, message):
    with pytest.raises(ParamsError) as err:
        params(**override)
    assert message in str(err.value)


def test_empty_split_is_a_clear_error(tmp_path):
    paths, vocab = make_splits(tmp_path, n_threads=30)
    pq.write_table(pq.read_table(paths["test"]).slice(0, 0), paths["test"])
    with pytest.raises(ValueError, match="split 'test' holds no documents"):
        B.run(paths, vocab, params(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_main_reads_params_and_writes_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths, vocab = make_splits(tmp_path / "data", n_threads=30)
    vocab.save("data/vocab.json")
    write_params("params.yaml", {"batches": {"batch_size": 4, "max_len": 32, "buckets": [8, 16]}})
    B.main([])
    metrics = json.loads(Path("metrics/batches.json").read_text())
    assert metrics["boundaries"] == [8, 16, 32] and metrics["batch_size"] == 4
    assert load_manifest("data/batches", "val")["vocab_hash"] == vocab.hash
    write_params("params.yaml", {"batches": {"batch_size": 0}})
    with pytest.raises(ParamsError, match="batch_size"):
        B.main([])


def stream_of(out: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The stream's tokens and rows as ``[batches, batch_size, ...]``."""
    m = load_manifest(out, split)
    entry = next(b for b in m["buckets"] if b.get("carry"))
    tokens, rows = np.load(out / split / entry["tokens"]), np.load(out / split / entry["rows"])
    return tokens.reshape(-1, m["batch_size"], tokens.shape[1]), rows.reshape(-1, m["batch_size"], 4)


def lane_documents(lane_rows: np.ndarray) -> list[int]:
    """The documents of one lane in order, from its rows' first-target documents (a document that
    starts and ends inside one window is not listed there: only used where every document is long)."""
    docs: list[int] = []
    for targets, doc, _, _ in lane_rows:
        if targets and (not docs or docs[-1] != doc):
            docs.append(int(doc))
    return docs


def test_stream_rows_continue_the_same_row_of_the_previous_stream_batch(streamed):
    root, paths, _, metrics = streamed
    tokens, rows = stream_of(root / "out", "train")
    assert rows.shape[1] == 8 and tokens.shape[2] == 65  # batch_size lanes of max_len targets
    for j in range(len(rows)):
        real = rows[j, :, 0] > 0
        carried = rows[j, :, 3] == 1
        assert (rows[j, ~real, 1] == -1).all() and not carried[~real].any()  # empty lanes carry nothing
        assert np.array_equal(carried[real], rows[j, real, 2] > 0)  # every window but a lane's first carries
        if j == 0:
            continue
        c = np.flatnonzero(carried)
        assert np.array_equal(rows[j, c, 2], rows[j - 1, c, 2] + 1)  # the lane's next window
        assert (rows[j - 1, c, 0] == 64).all()  # continued windows are full
        assert np.array_equal(tokens[j, c, 0], tokens[j - 1, c, 64])  # input continues the lane's sequence
    # lanes are balanced: they differ by less than a window plus the longest document
    per_lane = rows[..., 0].sum(axis=0)
    texts = pq.read_table(paths["train"]).column("text").to_pylist()
    assert per_lane.max() - per_lane.min() <= max(len(t) + 1 for t in texts)
    s = metrics["splits"]["train"]
    assert s["stream_batches"] == len(rows) and s["carried_rows"] == int(rows[..., 3].sum()) > 0
    assert s["stream_real_tokens"] == int(rows[..., 0].sum()) == sum(len(t) + 1 for t in texts if len(t) + 1 > 64)
    m = load_manifest(root / "out", "train")
    assert m["carry_state"] and m["stream_batches"] == len(rows) and m["carried_rows"] == s["carried_rows"]


def test_stream_keeps_its_order_in_the_loader_even_when_reshuffled(streamed):
    from model.data import make_dataset

    root, _, _, _ = streamed
    tokens, rows = stream_of(root / "out", "train")
    for seed in (None, 3):
        got = []
        for x, _, mask in make_dataset(root / "out", "train", seed=seed, carry=True):
            if float(x["stream"].numpy().max()) > 0:
                assert (x["stream"].numpy() == 1).all() and x["tokens"].shape[0] == 8
                got.append((x["tokens"].numpy(), x["carry"].numpy()))
            else:
                assert not x["carry"].numpy().any()
        assert len(got) == len(rows)
        for (x, carry), want_tokens, want_rows in zip(got, tokens, rows):
            assert np.array_equal(x, want_tokens[:, :-1]) and np.array_equal(carry, want_rows[:, 3])
