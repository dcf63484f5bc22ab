"""Figures for the analysts' report, drawn with matplotlib (Agg, no display) and returned as
base64 PNG data URIs, so the page stays one self-contained file with no network access.

matplotlib is the well-kept standard for static plots; PNG metadata is stripped (no version or
date in the bytes) so the same inputs give the same page.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def length_edges(top: int, bins: int = 40) -> list[float]:
    """Log-spaced bin edges of the post length histogram, up to the longest post ``top``."""
    edges = [10 ** (i * math.log10(max(top, 2) + 1) / bins) for i in range(bins + 1)]
    edges[0] = 0.5
    return edges


def length_histogram(counts_by_split: Mapping[str, tuple[Sequence[float], int]], edges: Sequence[float]) -> str:
    """Post length (characters) histogram per split: ``{split: (posts in each bin of edges, posts)}``
    (counted in a pass over the split: the lengths themselves are never held)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, (counts, posts) in counts_by_split.items():
        if posts:
            ax.hist(list(edges[:-1]), bins=list(edges), weights=list(counts), histtype="step", linewidth=1.5,
                    label=f"{name} ({posts:,})")
    ax.set_xscale("log")
    ax.set_xlabel("characters per post")
    ax.set_ylabel("posts")
    ax.legend()
    return _png(fig)


def training_curves(rows: Sequence[Mapping[str, float]]) -> tuple[str, str]:
    """(loss per epoch in nats, bits per character per epoch) from plots/train.csv rows."""
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3))
    for key in ("train_loss", "val_loss"):
        if all(key in r for r in rows):
            ax.plot(epochs, [r[key] for r in rows], marker="o", label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per character)")
    ax.legend()
    loss = _png(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    if all("train_loss" in r for r in rows):
        ax.plot(epochs, [r["train_loss"] / math.log(2) for r in rows], marker="o", label="train bpc")
    if all("val_bpc" in r for r in rows):
        ax.plot(epochs, [r["val_bpc"] for r in rows], marker="o", label="val bpc")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.legend()
    return loss, _png(fig)


def model_bars(bpc: Mapping[str, float]) -> str:
    """Horizontal bars: test bits per character of the LSTM and every baseline (lower is better)."""
    names = sorted(bpc, key=bpc.__getitem__)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 0.8))
    colours = ["#c0392b" if n == "lstm" else "#7f8c8d" for n in names]
    ax.barh(names, [bpc[n] for n in names], color=colours)
    for i, n in enumerate(names):
        ax.text(bpc[n], i, f" {bpc[n]:.3f}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("test bits per character (lower is better)")
    return _png(fig)


MARKERS = "os^Dv<>p"


def overlay_curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str) -> str:
    """Validation bits per character of several runs in one plot: ``{run label: (xs, ys)}``."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, (label, (xs, ys)) in enumerate(series.items()):
        # hollow markers of different shapes, earlier runs on top: a one-epoch run's single point
        # stays visible where another run passes through it. Run names are untrusted text: a "$"
        # would start matplotlib's math mode.
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], markersize=6, fillstyle="none", zorder=len(series) - i,
                label=label.replace("$", r"\$"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation bits per character")
    ax.legend(fontsize=8)
    return _png(fig)
