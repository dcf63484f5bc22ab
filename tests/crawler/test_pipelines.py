"""Post dates: vBulletin 3's header-cell dates (``30th Apr 2011, 17:10``, ``Today``, ``Yesterday``)
in the forum's time zone, and, for every spider, posts whose date cannot be read are counted
(``errors.post_without_date``) and warned about once with their URL, never a silent null."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from crawler.extensions import summarize
from demoforum import pages
from demoforum.site import DemoForum
from tests.helpers.spider_server import FixtureServer, Page, run_spider

SGT = ZoneInfo("Asia/Singapore")


def vb3_post(post_id: int, number: int, date: str) -> str:
    """One post as vBulletin 3's default postbit_legacy renders it: a table whose header cell
    holds the status icon, the date and (floated right) the post number."""
    return f"""<div id="edit{post_id}"><table id="post{post_id}" class="tborder" width="100%">
<tr><td class="thead" style="font-weight:normal">
  <div class="normal" style="float:right">&nbsp;#<a href="showpost.php?p={post_id}&amp;postcount={number}"
     id="postcount{post_id}" name="{number}"><strong>{number}</strong></a>&nbsp;</div>
  <div class="normal"><a name="post{post_id}"><img class="inlineimg" src="images/statusicon/post_old.gif"
     alt="Old" /></a> {date}</div>
</td></tr>
<tr valign="top"><td class="alt2" width="175"><div id="postmenu_{post_id}">
  <a class="bigusername" href="member.php?u={number}">user{number}</a></div></td>
<td class="alt1" id="td_post_{post_id}"><div id="post_message_{post_id}">Post number {number} here.</div></td></tr>
</table></div>"""


def vb3_thread(dates: list[str]) -> str:
    posts = "\n".join(vb3_post(90000 + i, i + 1, d) for i, d in enumerate(dates))
    return f"""<html><head><title>Kopi talk - Old Forum</title></head><body>
<table class="tborder"><tr><td class="navbar"><a href="forumdisplay.php?f=3">Makan</a>
<strong>Kopi talk</strong></td></tr></table>
<input type="hidden" name="t" value="4242" />
<div id="posts">{posts}</div></body></html>"""


def test_vbulletin3_header_cell_dates_in_the_forum_time_zone(tmp_path):
    dates = [f"{d}th Apr 2011, 17:{d:02d}" for d in range(4, 30)] + \
            ["30th Apr 2011, 17:10", "Today, 17:10", "Yesterday, 09:05", "no date shown"]
    assert len(dates) == 30
    with FixtureServer({"/showthread.php?t=4242": Page(vb3_thread(dates))}) as server:
        url = server.url("/showthread.php?t=4242")
        result = run_spider("vbulletin", {"start_url": url, "timezone": "Asia/Singapore",
                                          "date_order": "DMY"}, tmp_path)
    when = {item["position"]: item["posted_at"] for item in result.items}
    assert len(when) == 30
    assert when[0] == datetime(2011, 4, 4, 9, 4, tzinfo=timezone.utc)  # 17:04 SGT = 09:04 UTC
    assert when[26] == datetime(2011, 4, 30, 9, 10, tzinfo=timezone.utc)
    fetched = min(item["fetched_at"] for item in result.items).astimezone(SGT).date()
    today = datetime(fetched.year, fetched.month, fetched.day, 17, 10, tzinfo=SGT)
    assert when[27] in (today.astimezone(timezone.utc), (today + timedelta(days=1)).astimezone(timezone.utc))
    yesterday = datetime(fetched.year, fetched.month, fetched.day, 9, 5, tzinfo=SGT) - timedelta(days=1)
    assert when[28] in (yesterday.astimezone(timezone.utc), (yesterday + timedelta(days=1)).astimezone(timezone.utc))
    # the one post without a date: kept, counted, warned about once with its URL
    assert when[29] is None
    assert result.stats["kopitiam/errors/post_without_date"] == 1
    assert summarize(result.stats)["errors"]["post_without_date"] == 1
    warnings = [line for line in result.log.splitlines() if "no date could be read" in line]
    assert len(warnings) == 1 and f"{url.split('/showthread')[0]}/showpost.php?p=90029" in warnings[0]


def test_xenforo_posts_without_a_date_are_counted_and_warned_once(tmp_path):
    forum = DemoForum(plays=["a-midsummer-night-s-dream"], posts_per_page=20)
    thread = next(t for t in forum.crawlable_threads() if len(t.posts) >= 5)
    html = pages.thread_page(forum, thread, 1)
    # a theme that shows no machine-readable time: every <time> element removed
    html = re.sub(r"<time[^>]*>.*?</time>", "", html, flags=re.S)
    with FixtureServer({thread.path: Page(html)}) as server:
        result = run_spider("xenforo", {"start_url": server.url(thread.path), "max_pages": 1}, tmp_path)
    n = len(result.items)
    assert n == min(20, len(thread.posts)) and all(item["posted_at"] is None for item in result.items)
    assert result.stats["kopitiam/errors/post_without_date"] == n
    assert summarize(result.stats)["errors"] == {"post_without_date": n}
    warnings = [line for line in result.log.splitlines() if "no date could be read" in line]
    assert len(warnings) == 1 and thread.path in warnings[0]


def test_crawl_metrics_count_robots_txt_apart_from_pages():
    stats = {"response_received_count": 12, "robotstxt/response_count": 1, "forum/pages/board": 2,
             "forum/pages/thread": 9, "forum/errors/unknown_page": 1, "elapsed_time_seconds": 2.0,
             "item_scraped_count": 100, "finish_reason": "finished"}
    metrics = summarize(stats)
    assert metrics["pages"] == 11 and metrics["robots_txt"] == 1
    assert metrics["pages_by_kind"] == {"board": 2, "thread": 9}
    assert metrics["pages_per_s"] == 5.5
