"""Per-batch logic of the clean stage (pure; runs in the worker processes of pipeline.clean).

``clean_batch`` turns one raw record batch into CLEAN_SCHEMA rows, DROPPED_SCHEMA rows and counters;
``clean_body`` is the per-post chain: HTML -> text (pipeline.htmltext), normalisation
(pipeline.textnorm), personal-data scrubbing (pipeline.pii), keep-or-drop rules (pipeline.filters).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pyarrow as pa

from pipeline import filters
from pipeline.htmltext import html_to_text, strip_app_signatures
from pipeline.pii import scrub_pii
from pipeline.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA
from pipeline.textnorm import normalize_text

log = logging.getLogger(__name__)

BODY_FORMATS = ("html", "text")
READ_COLUMNS = ["source", "board", "thread_id", "thread_title", "position", "post_id", "author",
                "posted_at", "body", "body_format", "quoted_post_ids"]


def doc_id_for(source: str, post_id: str) -> str:
    return hashlib.sha256(f"{source}\x1f{post_id}".encode()).hexdigest()[:16]


def author_hash(salt: str, source: str, author: str | None) -> str | None:
    if author is None or author == "":
        return None
    return hashlib.sha256(f"{salt}\x1f{source}\x1f{author}".encode()).hexdigest()[:16]


def clean_body(body: str, body_format: str, cfg: dict[str, Any], stats: dict[str, Any]):
    """One body -> (text, quoted ids, verdict). Pure apart from adding to ``stats`` counters."""
    html = None
    if body_format == "html":
        html = html_to_text(body, image_placeholder=cfg["image_placeholder"], image_alt=cfg["image_alt"],
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


def clean_batch(batch: pa.RecordBatch, name: str, offset: int, cfg: dict[str, Any]):
    """Clean one raw record batch -> (kept rows, dropped rows, stats). Runs in a worker."""
    stats = new_stats()
    cols = {c: batch.column(c).to_pylist() for c in READ_COLUMNS if c != "body"}
    bodies = batch.column("body").cast(pa.binary()).to_pylist()
    kept: dict[str, list] = {f.name: [] for f in CLEAN_SCHEMA}
    dropped: dict[str, list] = {f.name: [] for f in DROPPED_SCHEMA}
    for i in range(batch.num_rows):
        source = cols["source"][i] or name
        per = stats["per_source"].setdefault(source, {"raw": 0, "kept": 0, "dropped": {}})
        per["raw"] += 1
        post_id = cols["post_id"][i]
        body = _decode(bodies[i], stats)
        stats["bytes_in"] += len(bodies[i] or b"")
        verdict = None
        if post_id is None or post_id == "":
            doc_id = doc_id_for(source, f"<missing post_id: {name} row {offset + i}>")
            verdict = ("missing_post_id", f"{name} row {offset + i}")
        else:
            doc_id = doc_id_for(source, post_id)
        if verdict is None and body is None:
            verdict = ("null_body", "body is null")
        elif verdict is None and len(body) > cfg["max_raw_chars"]:
            verdict = ("too_long_raw", f"raw body {len(body)} chars > max_raw_chars {cfg['max_raw_chars']}")
        fmt = cols["body_format"][i] or "html"
        if verdict is None and fmt not in BODY_FORMATS:
            verdict = ("unknown_body_format", f"body_format {fmt!r}, expected one of {BODY_FORMATS}")
        if verdict is None:
            try:
                text, quoted, verdict = clean_body(body, fmt, cfg, stats)
            except Exception as exc:  # a post no rule foresaw: dropped with its error, the stage goes on
                verdict = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
                if not stats["errors_logged"]:
                    log.warning("%s row %d (post %s): %s; dropped as 'error' (further ones only counted)",
                                name, offset + i, post_id, verdict[1])
                stats["errors_logged"] += 1
        if verdict is not None:
            per["dropped"][verdict[0]] = per["dropped"].get(verdict[0], 0) + 1
            for k, v in zip(DROPPED_SCHEMA.names, (doc_id, source, verdict[0], verdict[1])):
                dropped[k].append(v)
            continue
        per["kept"] += 1
        position = cols["position"][i]
        if position is None or cols["thread_id"][i] is None:
            stats["null_fields_filled"] += 1
        quoted = list(dict.fromkeys((cols["quoted_post_ids"][i] or []) + quoted))
        row = (doc_id, source, cols["board"][i], cols["thread_id"][i] or "", cols["thread_title"][i],
               post_id, -1 if position is None else position,
               author_hash(cfg["author_salt"], source, cols["author"][i]), cols["posted_at"][i], text,
               len(text), quoted)
        for k, v in zip(CLEAN_SCHEMA.names, row):
            kept[k].append(v)
        stats["bytes_out"] += len(text.encode("utf-8"))
        stats["chars_kept"] += len(text)
    return (pa.table(kept, schema=CLEAN_SCHEMA), pa.table(dropped, schema=DROPPED_SCHEMA), stats)


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
