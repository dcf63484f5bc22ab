"""contracts/ids.py: the first occurrence of an id wins however many ids were met (keys flushed into
sorted runs and merged), and memory is 8 bytes per id."""

from __future__ import annotations

import random

from contracts.ids import SeenIds


def test_repeats_are_found_across_flushed_and_merged_runs():
    rng = random.Random(0)
    seen, plain = SeenIds(flush_at=7), set()
    for _ in range(300):
        batch = [f"post-{rng.randrange(2000)}" for _ in range(rng.randint(0, 25))]
        want = []
        for pos, ident in enumerate(batch):
            if ident in plain:
                want.append(pos)
            plain.add(ident)
        assert seen.repeats(batch) == want
    assert len(seen) == len(plain) and len(seen._runs) < 12
    for ident in ["post-1", "post-1999", "never"]:
        assert (ident in seen) == (ident in plain)
        assert seen.first(ident) == (ident not in plain)
        plain.add(ident)
    seen.add(["late", "post-5"])
    assert "late" in seen and not seen.first("late") and len(seen) == len(plain) + 1


def test_memory_is_eight_bytes_per_id():
    seen = SeenIds(flush_at=1000)
    seen.add(f"a-much-longer-post-identifier-{i}" for i in range(50_000))
    assert len(seen) == 50_000
    assert seen.nbytes() + 8 * len(seen._recent) == 8 * 50_000
