# Scrapy settings for kopitiam: HTTP behaviour and wiring only. Everything a user tunes per run
# (sources, spider arguments, the User-Agent, throttling per source) lives in params.yaml and
# reaches Scrapy as `-a`/`-s` options from pipeline/crawl.py. Defaults here are polite enough
# for a real site: robots.txt obeyed, AutoThrottle on, retries honouring Retry-After.
"""Scrapy project settings (``scrapy.cfg`` points here)."""

from pathlib import Path

BOT_NAME = "kopitiam"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
COMMANDS_MODULE = "crawler.commands"  # `scrapy checkargs` (the crawl stage's params check)

# Identify ourselves honestly; the crawl stage overrides this with params.yaml crawl.user_agent.
USER_AGENT = "kopitiam/0.1 (character-LSTM research crawler; +https://github.com/kopitiam)"

# Politeness: obey robots.txt, one site at a time, AutoThrottle adapts the delay to the server.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2  # at most two requests in flight per site
DOWNLOAD_DELAY = 1.0  # seconds between requests to one site (AutoThrottle's minimum)
AUTOTHROTTLE_ENABLED = True  # adapt the delay to the server's latency
AUTOTHROTTLE_START_DELAY = 2.0  # seconds, before the first latencies are known
AUTOTHROTTLE_MAX_DELAY = 60.0  # seconds, the slowest we ever go
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0  # mean requests in flight per site
DOWNLOAD_TIMEOUT = 60  # seconds per request

# Retries: transient server errors and rate limits, waiting as long as Retry-After asks.
RETRY_ENABLED = True
RETRY_TIMES = 3  # retries after the first attempt
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_AFTER_MAX = 120.0  # seconds; a longer Retry-After gives the request up instead
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,  # replaced by the one below
    "crawler.middlewares.RetryAfterMiddleware": 550,
    "crawler.encoding.EncodingRepairMiddleware": 580,  # after decompression (590): fix a wrong charset
    "crawler.crawldelay.CrawlDelayMiddleware": 101,  # after RobotsTxtMiddleware (100): apply Crawl-delay
    "crawler.sitelimit.SharedSiteLimit": 102,  # shared frontier only: per-site limits across all workers
}
KOPITIAM_ROBOTSTXT_CRAWL_DELAY = True  # honour robots.txt Crawl-delay as each site's minimum delay
KOPITIAM_ROBOTSTXT_CRAWL_DELAY_MAX = 60.0  # seconds; a longer Crawl-delay is capped (and logged)

# A forum page is well under 1 MB; refuse anything absurd.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024  # bytes, hard cap per response
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024  # bytes, log a warning above this

# Nothing listens on our machine: no telnet console, no remote-control HTTP server.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Cookies are not needed to read public forums logged out.
COOKIES_ENABLED = False

# Item pipelines: checks only (spiders extract, the clean stage cleans).
ITEM_PIPELINES = {
    "crawler.pipelines.RequiredFieldsPipeline": 100,
    "crawler.pipelines.UniquePostPipeline": 200,
    "crawler.pipelines.PostDatePipeline": 300,
    "crawler.frontierworker.FrontierItemStore": 900,  # shared frontier only: posts into Redis
}

# Shared frontier (crawler/frontier.py, frontierworker.py, sitelimit.py): off unless KOPITIAM_FRONTIER is set.
SPIDER_MIDDLEWARES = {
    "crawler.frontierworker.FrontierSeed": 50,  # one worker queues the start URLs
    "crawler.guard.CallbackErrors": 950,  # next to the spider: a callback's exception is counted and logged
}

# Finished crawl metrics as JSON for the crawl stage (on when KOPITIAM_METRICS_FILE is set);
# the full stats dump for debugging and tests (on when KOPITIAM_STATS_FILE is set).
EXTENSIONS = {
    "crawler.extensions.CrawlMetrics": 890,
    "crawler.extensions.StatsFile": 900,
    "crawler.extensions.ParentWatch": 910,  # the crawl stage's child dies with the stage
    "crawler.extensions.CheckReport": 920,  # logging off (`scrapy check`): the spider's own error counters
    "crawler.frontierworker.FrontierWorker": 930,  # shared frontier only: leases, heartbeat, "done" rule
}
KOPITIAM_METRICS_FILE = None
KOPITIAM_FRONTIER = None  # redis://HOST:PORT/DB without credentials, set per worker by pipeline/crawlworkers.py
KOPITIAM_STATS_FILE = None

# Feeds: `-O out.parquet` writes the raw schema with zstd; local files are written atomically.
FEED_EXPORTERS = {"parquet": "crawler.exporters.ParquetItemExporter"}
FEED_STORAGES = {
    "": "crawler.exporters.AtomicFileFeedStorage",
    "file": "crawler.exporters.AtomicFileFeedStorage",
}
FEED_EXPORT_ENCODING = "utf-8"
KOPITIAM_PARQUET_ROW_GROUP_SIZE = 5000  # items per Parquet row group (memory bound of the exporter)

# Posts per thread page when a page does not number its posts (XenForo's default is 20).
KOPITIAM_FORUM_POSTS_PER_PAGE = 20

LOG_LEVEL = "INFO"

# HTTP cache for development (off by default; params crawl/sources switch it on per run):
# re-running a crawl then reads pages from .scrapy/httpcache instead of the site.
HTTPCACHE_ENABLED = False
HTTPCACHE_DIR = "httpcache"  # under the project's .scrapy/ folder (git-ignored)
HTTPCACHE_EXPIRATION_SECS = 0  # 0 = cached pages never expire
HTTPCACHE_IGNORE_HTTP_CODES = [429, 500, 502, 503, 504]  # never cache transient errors

# `scrapy check`: @url also takes a project-relative fixture path (offline contracts).
SPIDER_CONTRACTS = {
    "scrapy.contracts.default.UrlContract": None,
    "crawler.contracts.ProjectUrlContract": 1,
}

# `scrapy genspider -t forum NAME URL`: project templates (a ForumSpider subclass skeleton).
TEMPLATES_DIR = str(Path(__file__).resolve().parent / "templates")  # holds spiders/forum.tmpl
