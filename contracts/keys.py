"""Names the crawl stage (pipeline/crawl.py, pipeline/crawlstate.py) and the crawler (Scrapy
settings, extensions, spiders) both use: each spelled once, here. Custom Scrapy settings carry the
``KOPITIAM_`` prefix so they never collide with Scrapy's own.
"""

from __future__ import annotations

# Scrapy settings (``scrapy crawl -s NAME=value``)
METRICS_FILE = "KOPITIAM_METRICS_FILE"  # the crawler writes its finished crawl metrics (JSON) here
STATS_FILE = "KOPITIAM_STATS_FILE"  # ... and, when set, Scrapy's full stats dump (debugging)
INCREMENTAL_STATE = "KOPITIAM_INCREMENTAL_STATE"  # threads.json of the previous crawl (incremental)
PARENT_GRACE = "KOPITIAM_PARENT_GRACE"  # seconds between SIGTERM and SIGKILL once the stage is gone
ROW_GROUP_SIZE = "KOPITIAM_PARQUET_ROW_GROUP_SIZE"  # items per row group of the raw Parquet feed
CRAWL_DELAY = "KOPITIAM_ROBOTSTXT_CRAWL_DELAY"  # honour robots.txt Crawl-delay (bool)
CRAWL_DELAY_MAX = "KOPITIAM_ROBOTSTXT_CRAWL_DELAY_MAX"  # cap on a Crawl-delay, seconds
POSTS_PER_PAGE = "KOPITIAM_FORUM_POSTS_PER_PAGE"  # posts per thread page when a page does not number them
CHECK_REPORT = "KOPITIAM_CHECK_REPORT"  # print spider error counters at close (scrapy check)
FRONTIER = "KOPITIAM_FRONTIER"  # the shared frontier's Redis URL without credentials (contracts/frontier.py)
FRONTIER_PREFIX = "KOPITIAM_FRONTIER_PREFIX"  # the crawl's Redis key prefix
FRONTIER_WORKER = "KOPITIAM_FRONTIER_WORKER"  # this worker's id
FRONTIER_SEED = "KOPITIAM_FRONTIER_SEED"  # this worker queues the start URLs (bool)
LEASE_TIMEOUT = "KOPITIAM_LEASE_TIMEOUT"  # seconds without a heartbeat before a worker's requests are requeued

# Environment variables
PARENT_PID_ENV = "KOPITIAM_PARENT_PID"  # the crawl stage's pid: the crawl stops when it is gone
FRONTIER_URL_ENV = "KOPITIAM_FRONTIER_URL"  # the frontier's Redis URL, password included (never logged)

# Finished crawl metrics (the JSON at METRICS_FILE): ``finish_reason`` says whether the crawl
# ran to its end; ``posts`` is how many items the spider yielded past the item pipelines.
FINISHED = "finished"
SHUTDOWN = "shutdown"
