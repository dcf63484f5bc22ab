"""Progress for long loops: a tqdm bar on a terminal, else one log line every ``every`` seconds
(DVC and CI capture output without a terminal, where a bar would be one endless line)."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, desc: str, unit: str, logger: logging.Logger, every: float = 10.0) -> None:
        self.total, self.desc, self.unit, self.log, self.every = total, desc, unit, logger, every
        self.done = 0
        self.started = self.last = time.monotonic()
        self.bar = tqdm(total=total, desc=desc, unit=unit, mininterval=1) if sys.stderr.isatty() else None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            self.log.info("%s: %d/%d %ss (%.0f/s)", self.desc, self.done, self.total, self.unit, rate)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
