"""What the crawler and the data stages agree on, in one leaf package that imports neither.

Import graph: ``contracts`` <- ``crawler``; ``contracts`` <- ``pipeline`` <- ``model``;
``demoforum`` (the offline demo website) imports no project package: it is a website, not part
of the crawler. Stages meet only at files: the schemas of those files, how they are written
(atomically; Parquet with one writer), the timestamp rule, the post-id dedupe rule, the names of the
Scrapy settings and metrics the crawl stage and the crawler share, and each forum engine's markup
(what the clean stage removes) live here, so neither side restates them.

- ``schemas``: pyarrow schemas of every Parquet file the stages exchange, and the column check.
- ``files``: atomic writes, JSON / JSON lines, the Parquet writer.
- ``timestamps``: the one UTC timestamp parser.
- ``ids``: ``SeenIds``, the first-wins post-id dedupe rule.
- ``keys``: Scrapy setting names and environment variables the crawl stage passes to the crawler.
- ``frontier``: the shared crawl frontier's Redis keys, Lua scripts and client (needs ``redis``).
- ``markup``: ``EngineMarkup`` records (quote, signature, "Click to expand" classes, quote-id
  patterns) of the forum engines, the registry the clean stage reads, and quoted-id extraction.
"""
