"""Character vocabulary: the codec every later stage shares.

Ids are positions in ``Vocab.tokens``. Two special tokens come first and keep fixed ids:

- ``END`` (id 0): ends every document; right-padding of batches also uses it (see batches).
- ``UNK`` (id 1): any character outside the vocabulary.

Then the characters, most frequent first (ties broken by code point, so the order is stable).
``Vocab.hash`` is a SHA-256 over the token list only: two vocabularies with the same id mapping
have the same hash, whatever their counts. Trained models record it and refuse another.

The JSON file (``data/vocab.json``) is readable on purpose::

    {"specials": {"END": 0, "UNK": 1}, "tokens": ["<END>", "<UNK>", " ", "e", ...],
     "counts": [n_docs, 0, 1234, ...], "hash": "sha256:...", ...}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

END_TOKEN = "<END>"
UNK_TOKEN = "<UNK>"
END_ID = 0
UNK_ID = 1
SPECIALS = {"END": END_ID, "UNK": UNK_ID}


def tokens_hash(tokens: Sequence[str]) -> str:
    """Content hash of an id mapping: ``"sha256:<hex>"`` over the JSON token list."""
    payload = json.dumps(list(tokens), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Vocab:
    """An immutable character <-> id mapping with END and UNK at ids 0 and 1."""

    tokens: tuple[str, ...]
    counts: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.tokens) < 2 or self.tokens[END_ID] != END_TOKEN or self.tokens[UNK_ID] != UNK_TOKEN:
            raise ValueError(f"a vocabulary must start with {END_TOKEN!r}, {UNK_TOKEN!r}; got {self.tokens[:2]!r}")
        chars = self.tokens[2:]
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries after the specials must be single characters; got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary has repeated characters")
        if self.counts and len(self.counts) != len(self.tokens):
            raise ValueError(f"counts has {len(self.counts)} entries for {len(self.tokens)} tokens")
        index = {c: i + 2 for i, c in enumerate(chars)}
        object.__setattr__(self, "_index", index)
        top = max((ord(c) for c in chars), default=0)
        lut = np.full(top + 1, UNK_ID, dtype=np.int32)
        for c, i in index.items():
            lut[ord(c)] = i
        object.__setattr__(self, "_lut", lut)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_counts(cls, char_counts: dict[str, int], *, min_count: int = 1, max_size: int | None = None,
                    n_docs: int = 0) -> "Vocab":
        """Most frequent characters first (ties by code point), filtered by ``min_count`` and
        capped so that the whole vocabulary, specials included, has at most ``max_size`` ids."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < 3:
            raise ValueError(f"max_size must be >= 3 (END, UNK and one character), got {max_size}")
        ranked = sorted(((c, n) for c, n in char_counts.items() if n >= min_count), key=lambda cn: (-cn[1], ord(cn[0])))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        tokens = (END_TOKEN, UNK_TOKEN, *(c for c, _ in ranked))
        counts = (n_docs, 0, *(n for _, n in ranked))
        return cls(tokens, counts)

    # -- codec --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def hash(self) -> str:
        return tokens_hash(self.tokens)

    def id_of(self, char: str) -> int:
        return self._index.get(char, UNK_ID)  # type: ignore[attr-defined]

    def encode(self, text: str) -> np.ndarray:
        """Text -> int32 ids (no END appended). Unknown characters become ``UNK_ID``."""
        if not text:
            return np.zeros(0, dtype=np.int32)
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        lut = self._lut  # type: ignore[attr-defined]
        inside = cps < len(lut)
        ids = np.full(cps.shape, UNK_ID, dtype=np.int32)
        ids[inside] = lut[cps[inside]]
        return ids

    def count_unknown(self, text: str) -> int:
        """How many characters of ``text`` would encode as UNK."""
        return int(np.count_nonzero(self.encode(text) == UNK_ID))

    def decode(self, ids: Iterable[int], *, stop_at_end: bool = False, unk: str = "\ufffd") -> str:
        """Ids -> text. END is dropped (or stops decoding with ``stop_at_end``); UNK shows as ``unk``."""
        out = []
        for i in ids:
            i = int(i)
            if i == END_ID:
                if stop_at_end:
                    break
                continue
            out.append(unk if i == UNK_ID else self.tokens[i])
        return "".join(out)

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "specials": dict(SPECIALS),
            "tokens": list(self.tokens),
            "counts": list(self.counts),
            "size": len(self.tokens),
            "hash": self.hash,
            **self.extra,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write readable JSON atomically (temporary file in the same folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> "Vocab":
        try:
            tokens = tuple(data["tokens"])
        except KeyError:
            raise ValueError(f"{origin}: not a kopitiam vocabulary (no 'tokens' key)") from None
        vocab = cls(tokens, tuple(data.get("counts", ())),
                    {k: v for k, v in data.items() if k not in {"specials", "tokens", "counts", "size", "hash"}})
        stored = data.get("hash")
        if stored is not None and stored != vocab.hash:
            raise ValueError(f"{origin}: stored hash {stored} does not match its tokens ({vocab.hash}); "
                             "the file was edited by hand or is corrupt")
        return vocab

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"vocabulary file {path} not found: run `dvc repro vocab` first")
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh), origin=str(path))
