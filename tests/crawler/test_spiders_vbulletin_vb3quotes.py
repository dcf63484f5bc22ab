"""vBulletin 3 quotes told by structure (the vbulletin record's ``quote_cell`` / ``quote_label``), on a
vB 3.8 default-style page built from its postbit_legacy and bbcode_quote/bbcode_code templates:
the spider reads the quoted post id from "Originally Posted by" (outer quote only), and the clean
stage removes every quote with its "Quote:" label, nested or unattributed, keeps code blocks, and
counts the quotes."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from contracts import markup
from contracts.schemas import RAW_SCHEMA
from crawler.spiders.vbulletin import MARKUP, VbulletinSpider
from pipeline.clean import CleanConfig, run_clean
from pipeline.htmltext import html_to_text
from tests.helpers.params import stage_config
from tests.helpers.raw_posts import raw_row
from tests.helpers.spider_server import fixture_bytes

QUOTED = "Every morning the same question at the stall"
REPLY = "Teh-c siew dai, always. The evaporated milk is the whole point of it."


@pytest.fixture(scope="module")
def posts():
    spider = VbulletinSpider.from_crawler(get_crawler(VbulletinSpider), start_url="http://f.test/",
                                          timezone="Asia/Singapore")
    page = HtmlResponse("http://f.test/showthread.php?t=6107",
                        body=fixture_bytes("vbulletin", "vb3_default_thread.html"))
    assert spider.page_kind(page) == "thread" and spider.thread_info(page).title == "Kopi-o or teh-c?"
    return spider.posts(page)


def text(body: str):
    return html_to_text(body, markup=markup.for_file([MARKUP]))


def test_quoted_ids_from_the_attribution(posts):
    assert [p.post_id for p in posts] == ["91001", "91002", "91003", "91004"]
    assert [p.quoted_post_ids for p in posts] == [[], ["91001"], ["91002"], []]  # nested: the outer quote's only
    assert posts[0].posted_at == datetime(2009, 3, 14, 0, 5, tzinfo=UTC)  # 08:05 AM in +0800


def test_quote_tables_removed_with_their_label(posts):
    plain = [" ".join(text(p.body).text.split()) for p in posts]
    assert plain[1] == REPLY
    assert plain[2] == "Both of you are wrong: Milo dinosaur wins every single time, no contest."
    assert plain[3].startswith("Quoting my late wife there.")  # an unattributed quote: removed all the same
    for line in plain:
        assert "Quote:" not in line and "Originally Posted by" not in line and "View Post" not in line
    assert "Milo dinosaur is for children" not in plain[3]
    assert "kopi-o kosong, peng, take away" in plain[0] and "$sugar = 0;" in plain[3]  # code blocks stay
    outs = [text(p.body) for p in posts]
    assert [o.n_quotes for o in outs] == [0, 1, 1, 1]
    assert [o.quoted_post_ids for o in outs] == [[], ["91001"], ["91002"], []]


def test_without_the_structural_rule_quotes_leak(posts):
    """The same body under plain HTML rules keeps the quote: the record's quote_cell is what removes it."""
    leaked = html_to_text(posts[1].body, markup=markup.HTML).text
    assert QUOTED in leaked and "Quote:" in leaked


def test_clean_stage_removes_and_counts(tmp_path, posts):
    rows = [raw_row(p.post_id, p.body, source="vb3", position=i) for i, p in enumerate(posts)]
    raw = tmp_path / "raw" / "vb3.parquet"
    raw.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA.with_metadata(markup.to_metadata([MARKUP]))), raw)
    metrics = run_clean([raw], tmp_path / "posts.parquet", tmp_path / "dropped.parquet",
                        stage_config("clean", CleanConfig, workers=1))
    kept = {r["post_id"]: r for r in pq.read_table(tmp_path / "posts.parquet").to_pylist()}
    assert metrics["quotes_removed"] == 3
    assert QUOTED not in kept["91002"]["text"] and QUOTED not in kept["91003"]["text"]
    assert REPLY not in kept["91003"]["text"] and "Quote:" not in kept["91004"]["text"]
    assert kept["91002"]["quoted_post_ids"] == ["91001"]
