"""Per-batch logic of the clean stage (pure; runs in the worker processes of pipeline.clean).

``clean_batch`` turns one raw record batch into CLEAN_SCHEMA rows, DROPPED_SCHEMA rows and counters;
``clean_row`` decides one record: the raw-record rules of pipeline.filters, then ``clean_body``, the
per-post chain: HTML -> text (pipeline.htmltext), normalisation (pipeline.textnorm), personal-data
scrubbing (pipeline.pii), keep-or-drop rules (pipeline.filters). ``drop_repeated_posts`` runs in
the parent, in input order, and drops a post whose id was seen in an earlier batch.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pyarrow as pa

from contracts.markup import GENERIC, EngineMarkup
from contracts.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA
from pipeline import filters
from pipeline.common import SeenIds
from pipeline.htmltext import html_to_text, strip_app_signatures
from pipeline.pii import scrub_pii
from pipeline.textnorm import normalize_text

log = logging.getLogger(__name__)

READ_COLUMNS = ["source", "board", "thread_id", "thread_title", "position", "post_id", "author",
                "posted_at", "body", "body_format", "quoted_post_ids"]


def doc_id_for(source: str, post_id: str) -> str:
    return hashlib.sha256(f"{source}\x1f{post_id}".encode()).hexdigest()[:16]


def author_hash(salt: str, source: str, author: str | None) -> str | None:
    if author is None or author == "":
        return None
    return hashlib.sha256(f"{salt}\x1f{source}\x1f{author}".encode()).hexdigest()[:16]


def clean_body(body: str, body_format: str, cfg: dict[str, Any], stats: dict[str, Any],
               markup: EngineMarkup = GENERIC):
    """One body -> (text, quoted ids, verdict), HTML read under ``markup`` (its engine's record).
    Pure apart from adding to ``stats`` counters."""
    html = None
    if body_format == "html":
        html = html_to_text(body, markup=markup, image_placeholder=cfg["image_placeholder"], image_alt=cfg["image_alt"],
                            mention_placeholder=cfg["mention_placeholder"])
        stats["quotes_removed"] += html.n_quotes
        body, n_app_signatures = strip_app_signatures(html.text)  # forum posts only, never books
        stats["signatures_removed"] += html.n_signatures + n_app_signatures
    text, repaired = normalize_text(body, form=cfg["unicode_form"], lowercase=cfg["lowercase"])
    stats["mojibake_repaired"] += repaired
    text = scrub_pii(text, urls=cfg["scrub_urls"], counts=stats["pii"])
    verdict = filters.content_filter(html) \
        or filters.length_filter(text, cfg["min_chars"], cfg["max_chars"]) \
        or filters.letter_filter(text, cfg["min_letter_ratio"])
    return text, (html.quoted_post_ids if html else []), verdict


def _decode(raw: bytes | None, stats: dict[str, Any]) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats["invalid_utf8"] += 1
        return raw.decode("utf-8", errors="replace")


def new_stats() -> dict[str, Any]:
    return {"per_source": {}, "bytes_in": 0, "bytes_out": 0, "chars_kept": 0, "quotes_removed": 0,
            "signatures_removed": 0, "mojibake_repaired": 0, "invalid_utf8": 0, "pii": {},
            "null_fields_filled": 0, "errors_logged": 0}


def _count_drop(per: dict[str, Any], reason: str) -> None:
    per["dropped"][reason] = per["dropped"].get(reason, 0) + 1


def _clean_guarded(body: str, fmt: str, where: str, post_id: str, cfg: dict[str, Any], stats: dict[str, Any],
                   markup: EngineMarkup):
    """``clean_body``, with a post no rule foresaw dropped as ``error`` (the stage goes on)."""
    try:
        return clean_body(body, fmt, cfg, stats, markup)
    except Exception as exc:
        verdict = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
        if not stats["errors_logged"]:  # warn once; the rest are counted
            log.warning("%s (post %s): %s; dropped as 'error' (further ones only counted)", where, post_id, verdict[1])
        stats["errors_logged"] += 1
        return "", [], verdict


def clean_row(row: dict[str, Any], raw_body: bytes | None, name: str, index: int, cfg: dict[str, Any],
              stats: dict[str, Any], markup: EngineMarkup = GENERIC) -> tuple[bool, tuple]:
    """One raw record -> (True, CLEAN_SCHEMA row) or (False, DROPPED_SCHEMA row); counts into ``stats``."""
    source = row["source"] or name
    per = stats["per_source"].setdefault(source, {"raw": 0, "kept": 0, "dropped": {}})
    per["raw"] += 1
    post_id, where = row["post_id"], f"{name} row {index}"
    body = _decode(raw_body, stats)
    stats["bytes_in"] += len(raw_body or b"")
    fmt = row["body_format"] or "html"
    verdict = filters.post_id_filter(post_id, where) \
        or filters.raw_body_filter(body, cfg["max_raw_chars"]) \
        or filters.body_format_filter(fmt)
    doc_id = doc_id_for(source, f"<missing post_id: {where}>" if verdict and verdict[0] == "missing_post_id"
                        else post_id)
    if verdict is None:
        text, quoted, verdict = _clean_guarded(body, fmt, where, post_id, cfg, stats, markup)
    if verdict is not None:
        _count_drop(per, verdict[0])
        return False, (doc_id, source, verdict[0], verdict[1])
    per["kept"] += 1
    position = row["position"]
    if position is None or row["thread_id"] is None:
        stats["null_fields_filled"] += 1
    stats["bytes_out"] += len(text.encode("utf-8"))
    stats["chars_kept"] += len(text)
    quoted = list(dict.fromkeys((row["quoted_post_ids"] or []) + quoted))
    return True, (doc_id, source, row["board"], row["thread_id"] or "", row["thread_title"], post_id,
                  -1 if position is None else position, author_hash(cfg["author_salt"], source, row["author"]),
                  row["posted_at"], text, len(text), quoted)


def clean_batch(batch: pa.RecordBatch, name: str, offset: int, cfg: dict[str, Any],
                markup: EngineMarkup = GENERIC):
    """Clean one raw record batch -> (kept rows, dropped rows, stats). Runs in a worker; ``markup``
    is the raw file's (``contracts.markup.for_file``)."""
    stats = new_stats()
    cols = {c: batch.column(c).to_pylist() for c in READ_COLUMNS if c != "body"}
    bodies = batch.column("body").cast(pa.binary()).to_pylist()
    kept: dict[str, list] = {f.name: [] for f in CLEAN_SCHEMA}
    dropped: dict[str, list] = {f.name: [] for f in DROPPED_SCHEMA}
    for i in range(batch.num_rows):
        row = {c: values[i] for c, values in cols.items()}
        keep, values = clean_row(row, bodies[i], name, offset + i, cfg, stats, markup)
        out = kept if keep else dropped
        for column, value in zip(out, values):
            out[column].append(value)
    return pa.table(kept, schema=CLEAN_SCHEMA), pa.table(dropped, schema=DROPPED_SCHEMA), stats


def drop_repeated_posts(kept: pa.Table, dropped: pa.Table, stats: dict[str, Any],
                        seen: SeenIds) -> tuple[pa.Table, pa.Table]:
    """Move kept posts whose doc_id (source, post_id) came earlier, kept or dropped, to the dropped
    rows as ``duplicate_post_id``, fixing ``stats``; ``seen`` carries the ids across batches."""
    dup = seen.repeats(kept.column("doc_id").to_pylist())
    seen.add(dropped.column("doc_id").to_pylist())
    if not dup:
        return kept, dropped
    rows = kept.take(dup)
    dup_dropped = pa.table({"doc_id": rows["doc_id"], "source": rows["source"],
                            "reason": ["duplicate_post_id"] * len(dup),
                            "detail": [f"post_id {p} seen before" for p in rows["post_id"].to_pylist()]},
                           schema=DROPPED_SCHEMA)
    for src, text in zip(rows["source"].to_pylist(), rows["text"].to_pylist()):
        per = stats["per_source"][src]
        per["kept"] -= 1
        _count_drop(per, "duplicate_post_id")
        stats["bytes_out"] -= len(text.encode("utf-8"))
        stats["chars_kept"] -= len(text)
    dup_set = set(dup)
    keep_mask = pa.array([i not in dup_set for i in range(kept.num_rows)])
    return kept.filter(keep_mask), pa.concat_tables([dropped, dup_dropped])


def merge_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "per_source":
            for src, p in value.items():
                t = total["per_source"].setdefault(src, {"raw": 0, "kept": 0, "dropped": {}})
                t["raw"] += p["raw"]
                t["kept"] += p["kept"]
                for r, n in p["dropped"].items():
                    t["dropped"][r] = t["dropped"].get(r, 0) + n
        elif key == "pii":
            for k, n in value.items():
                total["pii"][k] = total["pii"].get(k, 0) + n
        else:
            total[key] += value
