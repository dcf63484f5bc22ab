"""Engine markup records (contracts/markup.py): checked, stored in raw files, applied by the clean stage.

A record is stored in a raw file's schema metadata, read back by the clean stage and applied per file: a new
engine's quote class is removed only because its record says so; the crawl-state merge keeps the records;
quoted ids follow one rule."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts import markup
from contracts.markup import GENERIC, HTML, EngineMarkup
from contracts.schemas import RAW_SCHEMA
from crawler.spiders.vbulletin import MARKUP as VBULLETIN
from crawler.spiders.xenforo import MARKUP as XENFORO
from pipeline.clean import CleanConfig, RawInputError, run_clean
from pipeline.crawlstate import merge_posts
from pipeline.htmltext import html_to_text
from tests.helpers.params import stage_config
from tests.helpers.raw_posts import raw_row

KAYA = EngineMarkup(name="kaya", quote=("kf-q",), quote_attrs=("data-post",), quote_source_ids=(r"^(\d+)$",),
                    signature=("kf-sig",))
QUOTED = "Thin toast, always, with a thick slab of cold butter on top of the kaya"
REPLY = "Thick toast lah, the kaya soaks in and nobody needs butter at all my friend"
BODY = f'<div class="kf-q" data-post="501">{QUOTED}</div>{REPLY}<div class="kf-sig">Toast is life</div>'


def write(path, rows, records=()):
    schema = RAW_SCHEMA.with_metadata(markup.to_metadata(records)) if records else RAW_SCHEMA
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def clean(tmp_path, records=()):
    write(tmp_path / "raw" / "kaya.parquet", [raw_row("502", BODY, source="kaya")], records)
    run_clean([tmp_path / "raw" / "kaya.parquet"], tmp_path / "posts.parquet", tmp_path / "dropped.parquet",
              stage_config("clean", CleanConfig, workers=1))
    return pq.read_table(tmp_path / "posts.parquet").to_pylist()


def test_the_files_record_decides_what_is_a_quote(tmp_path):
    with_record = clean(tmp_path / "a", [KAYA])[0]
    assert with_record["text"] == REPLY and with_record["quoted_post_ids"] == ["501"]
    without = clean(tmp_path / "b")[0]  # no record: the generic one, which knows no kf-q
    assert QUOTED in without["text"] and "Toast is life" in without["text"] and without["quoted_post_ids"] == []


def test_metadata_round_trip_and_errors():
    meta = markup.to_metadata([XENFORO, VBULLETIN, XENFORO])
    assert markup.from_metadata(meta) == [XENFORO, VBULLETIN]
    assert markup.from_metadata(None) == [] and markup.from_metadata({b"other": b"x"}) == []
    with pytest.raises(ValueError, match=r"f\.parquet: schema metadata kopitiam\.markup is not JSON"):
        markup.from_metadata({markup.METADATA_KEY: b"{"}, origin="f.parquet")
    with pytest.raises(ValueError, match=r"unknown markup key\(s\) quotes; known: .*quote,"):
        markup.from_metadata({markup.METADATA_KEY: b'[{"name": "x", "quotes": ["a"]}]'})
    with pytest.raises(ValueError, match=r"EngineMarkup 'x': quote must be a list of strings"):
        EngineMarkup(name="x", quote="bbcode_quote")
    with pytest.raises(ValueError, match=r"quote_link_ids '#post' needs a group"):
        EngineMarkup(name="x", quote_link_ids=("#post",))


def test_a_bad_record_in_a_raw_file_names_the_file(tmp_path):
    path = tmp_path / "raw" / "x.parquet"
    path.parent.mkdir()
    table = pa.Table.from_pylist([raw_row("1", "hi")], schema=RAW_SCHEMA)
    pq.write_table(table.replace_schema_metadata({markup.METADATA_KEY: b"[1]"}), path)
    with pytest.raises(RawInputError, match=r"x\.parquet: schema metadata kopitiam\.markup: expected a list"):
        run_clean([path], tmp_path / "p.parquet", tmp_path / "d.parquet", stage_config("clean", CleanConfig, workers=1))


def test_combined_records_and_the_generic_one():
    both = HTML.combine(XENFORO, VBULLETIN)
    assert both.name == "html+xenforo+vbulletin" and set(both.quote) == {"quote", *XENFORO.quote, *VBULLETIN.quote}
    assert markup.for_file([]) is GENERIC and markup.for_file([XENFORO]) == HTML.combine(XENFORO)
    # the generic record knows every class the project's engines name: user datasets clean as before
    for record in (XENFORO, VBULLETIN):
        for field in ("quote", "not_quote", "quote_title", "signature", "expander", "smilie", "mention"):
            assert set(getattr(record, field)) <= set(getattr(GENERIC, field)), (record.name, field)


def test_quote_ids_one_rule_for_spider_and_clean():
    attrs = {"data-source": "post: 7", "class": "bbCodeBlock--quote"}
    links = [{"href": "/goto/post?id=9", "data-content-selector": "#post-9"}]
    assert XENFORO.quote_ids(attrs, links) == ["7", "9"]
    assert VBULLETIN.quote_ids({}, [{"href": "showthread.php?p=80001#post80001"}]) == ["80001"]
    html = ('<blockquote class="bbCodeBlock--quote" data-source="post: 7"><div class="bbCodeBlock-title">'
            '<a href="/goto/post?id=9">x said:</a></div>old</blockquote>new')
    out = html_to_text(html, markup=markup.for_file([XENFORO]))
    assert out.quoted_post_ids == ["7", "9"] and out.text.strip() == "new"


def test_crawl_state_merge_keeps_the_records():
    rows = [raw_row("1", "a"), raw_row("2", "b", position=1)]
    part = pa.Table.from_pylist(rows, schema=RAW_SCHEMA.with_metadata(markup.to_metadata([XENFORO])))
    merged = merge_posts([part, pa.Table.from_pylist(rows[:1], schema=RAW_SCHEMA)])
    assert merged.num_rows == 2 and markup.from_metadata(merged.schema.metadata) == [XENFORO]
    assert merge_posts([]).schema.metadata is None
