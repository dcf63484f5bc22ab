"""Stage clean (pipeline/clean.py): HTML to text, normalisation, filters with reasons, accounting, ordering."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from contracts.schemas import CLEAN_SCHEMA, DROPPED_SCHEMA
from pipeline import clean
from pipeline.clean import CleanConfig, doc_id_for, run_clean
from pipeline.htmltext import html_to_text
from pipeline.textnorm import normalize_text
from tests.helpers.params import stage_config, write_params
from tests.helpers.raw_posts import SIGNATURE, SMILIE, link, raw_row, write_raw, xf_quote

QUOTED = "To be, or not to be, that is the question: whether tis nobler in the mind to suffer"
REPLY = "The slings and arrows of outrageous fortune, or to take arms against a sea of troubles."


def run(tmp_path: Path, rows: list[dict], **overrides) -> tuple[list[dict], list[dict], dict]:
    write_raw(tmp_path / "raw" / "demo.parquet", rows)
    cfg = stage_config("clean", CleanConfig, **{"workers": 1, **overrides})
    metrics = run_clean(sorted((tmp_path / "raw").glob("*.parquet")), tmp_path / "clean" / "posts.parquet",
                        tmp_path / "clean" / "dropped.parquet", cfg)
    kept = pq.read_table(tmp_path / "clean" / "posts.parquet")
    dropped = pq.read_table(tmp_path / "clean" / "dropped.parquet")
    assert kept.schema.equals(CLEAN_SCHEMA) and dropped.schema.equals(DROPPED_SCHEMA)
    return kept.to_pylist(), dropped.to_pylist(), metrics


def test_quote_removed_reply_kept_and_quoted_id_recorded(tmp_path):
    body = xf_quote("101", "HAMLET", QUOTED) + REPLY
    kept, dropped, _ = run(tmp_path, [raw_row("102", body)])
    assert len(kept) == 1 and not dropped
    assert kept[0]["text"] == REPLY
    assert "question" not in kept[0]["text"] and "said:" not in kept[0]["text"]
    assert "Click to expand" not in kept[0]["text"]
    assert kept[0]["quoted_post_ids"] == ["101"]
    assert kept[0]["doc_id"] == doc_id_for("demo", "102")


def test_markup_smilies_links_br_entities_signature():
    body = (f"First line &amp; more&nbsp;text<br />\nsecond line {SMILIE} "
            f"see {link('https://x.example/a', 'the folio')}"
            f"<p>New paragraph &lt;3 &#8212; caf&eacute;</p><script>var x = 1;</script><style>.a{{}}</style>"
            f"{SIGNATURE}")
    out = html_to_text(body)
    text, _ = normalize_text(out.text)
    assert text == "First line & more text\nsecond line :) see the folio\nNew paragraph <3 \u2014 caf\u00e9"
    assert "SIGNATURE-MARKER" not in text and out.n_signatures == 1
    assert "<" not in text.replace("<3", "")


def test_nested_quotes_five_deep_keep_only_the_reply(tmp_path):
    inner = "deepest"
    for i in range(5):
        inner = xf_quote(str(10 + i), f"P{i}", inner + f" level {i}")
    kept, _, _ = run(tmp_path, [raw_row("200", inner + "Only this survives, my lord.")])
    assert kept[0]["text"] == "Only this survives, my lord."
    assert kept[0]["quoted_post_ids"] == ["14"]


def test_image_placeholder_param_and_username_mentions(tmp_path):
    body = ('Look <img src="/data/attachments/1/1739620148806.png" alt="1739620148806.png" class="bbImage" /> '
            'here <a href="/members/ophelia.7/" class="username" data-xf-init="member-tooltip" data-user-id="7" '
            'data-username="@Ophelia">@Ophelia</a> my lady')
    kept, _, _ = run(tmp_path, [raw_row("1", body)], image_placeholder="[img]")
    assert kept[0]["text"] == "Look [img] here @user my lady"
    assert "Ophelia" not in kept[0]["text"]


def test_filters_record_their_reason(tmp_path):
    rows = [
        raw_row("1", xf_quote("9", "X", QUOTED)),  # only a quote
        raw_row("2", link("https://a.example/", "https://a.example/")),  # only a link
        raw_row("3", SMILIE + " " + SMILIE),  # only smilies
        raw_row("4", "   <br/> "),  # empty
        raw_row("5", "a"),  # too short
        raw_row("6", "word " * 100),  # too long for max_chars=200
        raw_row("7", "1234 5678 !!!! ???? 2024"),  # low letter ratio
        raw_row("8", None),  # null body
        raw_row("9", REPLY),
    ]
    kept, dropped, metrics = run(tmp_path, rows, max_chars=200)
    reasons = {d["doc_id"]: d["reason"] for d in dropped}
    expect = {"1": "only_quotes", "2": "only_links", "3": "only_smilies", "4": "empty", "5": "too_short",
              "6": "too_long", "7": "low_letters", "8": "null_body"}
    assert {pid: reasons[doc_id_for("demo", pid)] for pid in expect} == expect
    assert [k["post_id"] for k in kept] == ["9"]
    assert all(d["detail"] for d in dropped)
    per = metrics["per_source"]["demo"]
    assert per["raw"] == 9 == per["kept"] + per["dropped_total"]


def test_author_hash_is_salted_and_username_never_in_output(tmp_path):
    kept, _, _ = run(tmp_path, [raw_row("1", REPLY, author="Polonius")], author_salt="s1")
    kept2, _, _ = run(tmp_path, [raw_row("1", REPLY, author="Polonius")], author_salt="s2")
    assert kept[0]["author_hash"] != kept2[0]["author_hash"]
    assert len(kept[0]["author_hash"]) == 16
    data = (tmp_path / "clean" / "posts.parquet").read_bytes()
    assert b"Polonius" not in data


def test_plain_text_source_skips_html_and_keeps_paragraphs(tmp_path):
    text = "ROMEO. But soft, what <light> through yonder window breaks?\n\n\n\nIt is the east &amp; Juliet is the sun."
    kept, _, _ = run(tmp_path, [raw_row("1", text, body_format="text")])
    assert kept[0]["text"] == ("ROMEO. But soft, what <light> through yonder window breaks?\n\n"
                               "It is the east &amp; Juliet is the sun.")


@pytest.mark.parametrize("bad,good", [
    ("The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.", "The Mona Lisa doesn\u2019t have eyebrows."),
    ("cafÃ© au lait, crÃ¨me brÃ»lÃ©e", "caf\u00e9 au lait, cr\u00e8me br\u00fbl\u00e9e"),
    ("zero\u200bwidth\u00adsoft\x07bell   and    spaces", "zerowidthsoftbell and spaces"),
])
def test_known_mojibake_and_invisible_characters_repaired(bad, good):
    assert normalize_text(bad)[0] == good


def test_nfkc_and_lowercase_params():
    assert normalize_text("\uff21\uff22 \ufb01ne", form="NFKC", lowercase=True)[0] == "ab fine"
    assert normalize_text("\uff21\uff22", form="NFC")[0] == "\uff21\uff22"


def test_two_workers_same_output_as_one(tmp_path):
    rows = [raw_row(str(i), f"{REPLY} number {i} " + SMILIE, position=i, minutes=i) for i in range(60)]
    rows[7]["body"] = ""
    kept1, dropped1, m1 = run(tmp_path / "a", rows, batch_rows=7)
    kept2, dropped2, m2 = run(tmp_path / "b", rows, batch_rows=7, workers=2)
    assert kept1 == kept2 and dropped1 == dropped2
    assert [k["post_id"] for k in kept1] == [str(i) for i in range(60) if i != 7]


def test_duplicate_post_id_dropped_with_reason(tmp_path):
    kept, dropped, metrics = run(tmp_path, [raw_row("5", REPLY), raw_row("5", REPLY + " again")])
    assert len(kept) == 1 and [d["reason"] for d in dropped] == ["duplicate_post_id"]
    assert metrics["per_source"]["demo"]["raw"] == 2


def test_stage_main_writes_metrics(tmp_path, monkeypatch):
    write_raw(tmp_path / "data" / "raw" / "demo.parquet", [raw_row("1", f"<p>{REPLY}</p>"), raw_row("2", "")])
    write_params(tmp_path / "params.yaml", {"clean": {"workers": 1}})
    monkeypatch.chdir(tmp_path)
    clean.main([])
    metrics = json.loads((tmp_path / "metrics" / "clean.json").read_text())
    assert metrics["raw"] == 2 and metrics["kept"] == 1 and metrics["dropped_by_reason"] == {"empty": 1}
    assert metrics["bytes_in"] > metrics["bytes_out"] > 0


def test_app_signature_lines_removed_but_similar_prose_kept(tmp_path):
    body = ("I sent from my house a letter to the king.<br />Sent from my iPhone using Tapatalk<br />"
            "more words here<br/>Posted via Mobile Device")
    kept, _, metrics = run(tmp_path, [raw_row("1", body)])
    assert kept[0]["text"] == "I sent from my house a letter to the king.\nmore words here"
    assert metrics["signatures_removed"] == 2
