"""Stateful character sampler: decoding (sampling, greedy, beam) over the NumPy LSTM step of
model/lstm_numpy.py, one step per character, many streams per batch.

Tutorials sample by calling ``model.predict`` on the whole growing prefix for every new
character: O(n) work and a ~30 ms Keras call per character. Here the trained weights are copied
out of the Keras model once and the LSTM state is carried from step to step, so a character
costs one step of the network for every stream in the batch.

Why NumPy rather than a ``tf.function``: measured on the 2-core CPU this project targets, the
fixed cost of calling a compiled TensorFlow function (~400-600 us, ~390 us with XLA) dominates a
one-character step, while the same step in NumPy (BLAS matmuls) takes ~100 us for one stream and
is as fast as TensorFlow for 64 streams (``bench/sample.py`` times a ``tf.function`` step in the
same run). The step matches the Keras model's logits to 1e-5 (tested), decoding (top-k, top-p,
beam search) runs on the host anyway, and the arithmetic is plain enough to mirror in a browser.
BLAS runs on one thread while sampling (``threadpoolctl``, the scikit-learn team's library for
this): these matmuls are too small to split, and on a busy 2-core machine OpenBLAS' threads
competing with TensorFlow's made a 64-stream step 40x slower (measured 66 ms vs 2.6 ms).

Conventions (docs/contracts.md): a document is ``[END, c1..cn, END]``, so generation feeds END
and then the prime to warm the state, and a stream stops when it produces END (not part of the
text) or after ``length`` characters. ``mean_logprob`` is the mean natural-log probability under
the model itself (temperature 1, no truncation) of every generated token, the closing END
included when it was produced; it is comparable across decoding methods.

Decoding: ``temperature`` divides the logits; then ``top_k`` keeps the k most likely tokens and
``top_p`` the smallest most-likely set whose probability reaches p; the rest is renormalised.
``temperature == 0`` means greedy (argmax); a negative temperature is an error. Each stream draws
its random numbers from its own generator seeded by ``(seed, stream index)``, so the same seed
gives the same texts, and ``seed=None`` picks a seed and records it in the result.
Models trained with mixed precision are sampled in float32 (their variables are float32).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from functools import wraps
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from model.lstm_numpy import LayoutError, LstmWeights, State, StepWeights, initial_state, log_softmax, softmax, step
from pipeline.vocab import END_ID, UNK_ID, Vocab

log = logging.getLogger(__name__)


_F = TypeVar("_F", bound=Callable[..., Any])
_controller = None


def _one_blas_thread(method: _F) -> _F:
    """Run a sampler method with BLAS limited to ``self.blas_threads`` threads (None: untouched)."""
    @wraps(method)
    def wrapper(self, *args, **kwargs):
        global _controller
        if self.blas_threads is None:
            ctx = nullcontext()
        else:
            from threadpoolctl import ThreadpoolController

            _controller = _controller or ThreadpoolController()
            ctx = _controller.limit(limits=self.blas_threads, user_api="blas")
        with ctx:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


class SamplerError(ValueError):
    """The model cannot be sampled (wrong layers, vocabulary mismatch) or a decoding argument is invalid."""


@dataclass(frozen=True)
class Sample:
    """One generated text and how it was made."""

    prime: str
    text: str  # the generated continuation: prime and the closing END excluded
    mean_logprob: float  # nats per generated token under the model (END counted when produced)
    n_tokens: int  # generated tokens scored: len(text), + 1 when the stream ended with END
    ended: bool  # True when the stream produced END, False when it hit the length limit
    method: str  # "sample" | "greedy" | "beam"
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stream: int = 0
    beam_width: int | None = None
    length_norm: float | None = None

    @property
    def full_text(self) -> str:
        return self.prime + self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_weights(model) -> StepWeights:
    """The weights of a ``model/network.py`` model laid out for the step (SamplerError if it is not one)."""
    try:
        return StepWeights.from_weights(LstmWeights.from_keras(model))
    except LayoutError as exc:
        raise SamplerError(str(exc)) from None


def decode_probs(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None):
    """Tempered, truncated distributions for a batch of logits, sorted most likely first.

    Returns ``(order, probs)``: ``order[b]`` are token ids by decreasing logit (ties: lowest id
    first, as ``np.argmax``), ``probs[b]`` their renormalised probabilities (zeros after the cut).
    """
    order = np.argsort(-np.asarray(logits, dtype=np.float64), axis=-1, kind="stable")
    p = softmax(np.take_along_axis(np.asarray(logits, dtype=np.float64), order, axis=-1) / temperature)
    if top_k:
        p[:, top_k:] = 0.0
    if top_p is not None and top_p < 1.0:
        before = np.cumsum(p, axis=-1) - p  # mass of the more likely tokens
        p[before >= top_p] = 0.0  # the first token always stays (before = 0)
    p /= p.sum(axis=-1, keepdims=True)
    return order, p


def draw(order: np.ndarray, probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one token per row from ``decode_probs`` output and uniforms ``u`` in [0, 1)."""
    cdf = np.cumsum(probs, axis=-1)
    idx = (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=-1)
    kept = np.count_nonzero(probs, axis=-1)
    idx = np.minimum(idx, kept - 1)
    return order[np.arange(len(order)), idx]


def check_decoding(temperature: float, top_k: int | None, top_p: float | None, length: int) -> None:
    if temperature is None or not math.isfinite(temperature) or temperature < 0:
        raise SamplerError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None and (int(top_k) != top_k or top_k < 0):
        raise SamplerError(f"top_k must be a whole number >= 0 (0 or None: off), got {top_k!r}")
    if top_p is not None and not (0.0 < top_p <= 1.0):
        raise SamplerError(f"top_p must be in (0, 1] (1 or None: off), got {top_p!r}")
    if int(length) != length or length < 0:
        raise SamplerError(f"length must be a whole number >= 0, got {length!r}")


class StatefulSampler:
    """Generate text from a trained character LSTM, carrying its state one character at a time."""

    def __init__(self, weights: StepWeights, vocab: Vocab, *, blas_threads: int | None = 1) -> None:
        if weights.vocab_size != len(vocab):
            raise SamplerError(f"vocabulary has {len(vocab)} tokens but the model's embedding has "
                               f"{weights.vocab_size} rows: use the vocabulary the model was trained with")
        if weights.dense_w.shape[1] != len(vocab):
            raise SamplerError(f"vocabulary has {len(vocab)} tokens but the model's logits layer has "
                               f"{weights.dense_w.shape[1]} outputs")
        self.weights = weights
        self.vocab = vocab
        self.blas_threads = blas_threads
        self._warned: set[str] = set()  # primes already warned about (warn once per prime)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, vocab: Vocab) -> "StatefulSampler":
        return cls(extract_weights(model), vocab)

    @classmethod
    def from_dir(cls, path: str | os.PathLike = "models/lstm",
                 vocab_path: str | os.PathLike | None = None) -> "StatefulSampler":
        """Load ``models/lstm/`` (or another model folder); errors name the file at fault."""
        from model.artifacts import load_trained

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"model folder {path} not found: train one with `dvc repro train` "
                                    f"or pass another folder")
        model, vocab, _ = load_trained(path, vocab_path)
        try:
            return cls.from_model(model, vocab)
        except SamplerError as exc:
            raise SamplerError(f"{vocab_path or path / 'vocab.json'} vs {path / 'model.keras'}: {exc}") from None

    # -- the step -----------------------------------------------------------------------------
    def initial_state(self, batch: int) -> State:
        return initial_state(self.weights, batch)

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed one token per stream: ``(logits (B, V) float32, new state)``. Pure: ``state`` is untouched."""
        return step(self.weights, tokens, state)

    def prime_ids(self, prime: str) -> np.ndarray:
        """END followed by the prime's ids; characters outside the vocabulary become UNK (warned once)."""
        ids = self.vocab.encode(prime)
        unknown = int(np.count_nonzero(ids == UNK_ID))
        if unknown and prime not in self._warned:
            self._warned.add(prime)
            chars = sorted({ch for ch, i in zip(prime, ids) if i == UNK_ID})
            log.warning("prime has %d character(s) outside the vocabulary %s: fed to the model as %s",
                        unknown, repr("".join(chars)[:40]), self.vocab.tokens[UNK_ID])
        return np.concatenate([[END_ID], ids]).astype(np.int32)

    def warm(self, prime: str, batch: int = 1) -> tuple[np.ndarray, State]:
        """Run END + prime through the network: logits for the next token (B, V) and the state, tiled to ``batch``."""
        state = self.initial_state(1)
        for tok in self.prime_ids(prime):
            logits, state = self.step(np.array([tok]), state)
        if batch != 1:
            logits = np.repeat(logits, batch, axis=0)
            state = [(np.repeat(h, batch, axis=0), np.repeat(c, batch, axis=0)) for h, c in state]
        return logits, state

    # -- public API ---------------------------------------------------------------------------
    @_one_blas_thread
    def next_probs(self, prime: str = "") -> np.ndarray:
        """Model probabilities (V,) of the next token after END + ``prime`` (temperature 1)."""
        logits, _ = self.warm(prime)
        return np.exp(log_softmax(logits[0]))

    @_one_blas_thread
    def generate(self, prime: str = "", n: int = 1, length: int = 400, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 *, min_length: int = 0, progress: bool = False) -> list[Sample]:
        """``n`` independent samples in one batch; each stops at END or after ``length`` characters.

        ``min_length`` forbids END for the first ``min_length`` characters (the log-probabilities
        reported stay the model's own).
        """
        check_decoding(temperature, top_k, top_p, length)
        if int(n) != n or n < 1:
            raise SamplerError(f"n must be a whole number >= 1, got {n!r}")
        if temperature == 0:
            log.info("temperature 0: greedy decoding, so the %d stream(s) are identical", n)
            first = self._decode_greedy(prime, length, min_length)
            return [replace(first, stream=i) for i in range(n)]
        top_k = int(top_k) if top_k else None
        if seed is None:
            seed = secrets.randbits(31)
        rngs = [np.random.default_rng([seed, i]) for i in range(n)]
        logits, state = self.warm(prime, n)
        buf = np.full((n, length), END_ID, dtype=np.int32)  # generated ids; END where a stream stopped
        lengths = np.full(n, length)
        logp = np.zeros(n)
        active = np.arange(n)
        for t in _progress(range(length), progress, f"sampling {n} x {length}"):
            order, probs = decode_probs(_no_end(logits) if t < min_length else logits, temperature, top_k, top_p)
            tokens = draw(order, probs, np.array([rngs[s].random() for s in active]))
            logp[active] += log_softmax(logits)[np.arange(len(active)), tokens]
            buf[active, t] = tokens
            done = tokens == END_ID
            if done.any():
                lengths[active[done]] = t
                keep = ~done
                active, tokens = active[keep], tokens[keep]
                state = [(h[keep], c[keep]) for h, c in state]
                if not len(active):
                    break
            if t + 1 < length:
                logits, state = self.step(tokens, state)
        ended = lengths < length
        samples = []
        for s in range(n):
            n_tok = int(lengths[s]) + int(ended[s])
            samples.append(Sample(prime, self.vocab.decode(buf[s, :lengths[s]]), _mean(logp[s], n_tok), n_tok,
                                  bool(ended[s]), "sample", float(temperature), top_k,
                                  float(top_p) if top_p is not None and top_p < 1 else None, int(seed), s))
        log.info("sampled %d stream(s), %d characters in all, %d ended with END", n, int(lengths.sum()),
                 int(ended.sum()))
        return samples

    @_one_blas_thread
    def greedy(self, prime: str = "", length: int = 400, *, min_length: int = 0) -> Sample:
        """Most likely next character at every step (deterministic); END is barred before ``min_length``."""
        check_decoding(0.0, None, None, length)
        return self._decode_greedy(prime, length, min_length)

    def _decode_greedy(self, prime: str, length: int, min_length: int = 0) -> Sample:
        logits, state = self.warm(prime)
        out: list[int] = []
        total, ended = 0.0, False
        for t in range(length):
            tok = int(np.argmax(_no_end(logits)[0] if t < min_length else logits[0]))
            total += float(log_softmax(logits[0])[tok])
            if tok == END_ID:
                ended = True
                break
            out.append(tok)
            if t + 1 < length:
                logits, state = self.step(np.array([tok]), state)
        n_tok = len(out) + int(ended)
        return Sample(prime, self.vocab.decode(out), _mean(total, n_tok), n_tok, ended, "greedy", 0.0)

    @_one_blas_thread
    def beam(self, prime: str = "", width: int = 4, length: int = 400, length_norm: float = 1.0) -> Sample:
        """Beam search; the winner maximises ``sum log p / n_tokens ** length_norm``.

        Hypotheses are ranked by their summed log-probability while searching; one that produces
        END leaves the beam as finished, and the search stops once ``width`` hypotheses have
        finished, none is left, or ``length`` characters were generated. ``length_norm`` 0 compares
        raw sums (favours short texts), 1 compares mean log-probability per token. Width 1 is greedy.
        """
        check_decoding(0.0, None, None, length)
        if int(width) != width or width < 1:
            raise SamplerError(f"beam width must be a whole number >= 1, got {width!r}")
        if not math.isfinite(length_norm) or length_norm < 0:
            raise SamplerError(f"length_norm must be >= 0, got {length_norm!r}")
        logits, state = self.warm(prime)
        seqs: list[list[int]] = [[]]
        scores = np.zeros(1)
        finished: list[tuple[list[int], float, bool]] = []  # (ids, summed log p, ended)
        V = self.weights.vocab_size
        for _ in range(length):
            cand = (scores[:, None] + log_softmax(logits)).ravel()
            best = np.argsort(-cand, kind="stable")[:width]
            beams, toks = best // V, best % V
            keep = []
            for j, (b, t) in enumerate(zip(beams, toks)):
                if t == END_ID:
                    finished.append((seqs[b], float(cand[best[j]]), True))
                else:
                    keep.append(j)
            if len(finished) >= width or not keep:
                seqs = []
                break
            beams, toks, best = beams[keep], toks[keep], best[keep]
            seqs = [seqs[b] + [int(t)] for b, t in zip(beams, toks)]
            scores = cand[best]
            state = [(h[beams], c[beams]) for h, c in state]
            logits, state = self.step(toks.astype(np.int32), state)
        finished.extend((s, float(sc), False) for s, sc in zip(seqs, scores))
        norm = lambda ids, total, end: total / max(len(ids) + int(end), 1) ** length_norm  # noqa: E731
        ids, total, end = max(finished, key=lambda f: norm(*f))
        n_tok = len(ids) + int(end)
        return Sample(prime, self.vocab.decode(ids), _mean(total, n_tok), n_tok, end, "beam",
                      beam_width=int(width), length_norm=float(length_norm))


def _no_end(logits: np.ndarray) -> np.ndarray:
    barred = np.array(logits, dtype=np.float64)
    barred[:, END_ID] = -np.inf
    return barred


def _mean(total: float, n: int) -> float:
    return float(total / n) if n else 0.0


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, unit="step", leave=False)
