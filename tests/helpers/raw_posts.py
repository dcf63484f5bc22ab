"""Realistic XenForo 2 post bodies (.bbWrapper content) and raw-table builders for the clean and
dedupe tests. Written here by hand in XenForo 2's markup; no third-party text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.schemas import RAW_SCHEMA

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def xf_quote(post_id: str, author: str, inner_html: str) -> str:
    return (f'<blockquote data-attributes="member: 42" data-quote="{author}" data-source="post: {post_id}" '
            f'class="bbCodeBlock bbCodeBlock--expandable bbCodeBlock--quote js-expandWatch">'
            f'<div class="bbCodeBlock-title"><a href="/goto/post?id={post_id}" class="bbCodeBlock-sourceJump" '
            f'rel="nofollow" data-xf-click="attribution" data-content-selector="#post-{post_id}">'
            f'{author} said:</a></div>'
            f'<div class="bbCodeBlock-content"><div class="bbCodeBlock-expandContent js-expandContent">{inner_html}'
            f'</div><div class="bbCodeBlock-expandLink js-expandLink"><a role="button" tabindex="0">'
            f'Click to expand...</a></div></div></blockquote>')


SMILIE = ('<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
          'class="smilie smilie--sprite smilie--sprite1" alt=":)" title="Smile    :)" loading="lazy" '
          'data-shortname=":)" />')
SIGNATURE = ('<aside class="message-signature"><div class="bbWrapper">Sent from my quill, '
             'Yours ever, SIGNATURE-MARKER-7 <a href="https://example.org/sig" class="link link--external">my page</a>'
             '</div></aside>')


def link(url: str, text: str) -> str:
    return f'<a href="{url}" target="_blank" class="link link--external" rel="nofollow ugc noopener">{text}</a>'


def raw_row(post_id: str, body: str | None, *, source: str = "demo", thread_id: str = "t1", position: int = 0,
            author: str | None = "Hamlet", minutes: int = 0, body_format: str = "html",
            quoted: list[str] | None = None) -> dict[str, Any]:
    return {"source": source, "url": f"http://127.0.0.1/posts/{post_id}/", "board": "tragedies",
            "thread_id": thread_id, "thread_title": "Act 1 Scene 1", "page": 1, "position": position,
            "post_id": post_id, "author": author, "posted_at": T0 + dt.timedelta(minutes=minutes), "body": body,
            "body_format": body_format, "quoted_post_ids": quoted or [], "fetched_at": T0}


def write_raw(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA), path)
    return path
