"""A Dask worker plugin that kills its worker's process the moment a chosen task starts there."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from distributed.diagnostics.plugin import WorkerPlugin


class KillOnTask(WorkerPlugin):
    """SIGKILL the worker process that first starts executing a task whose key contains one of
    ``names``: once per cluster (the first worker to create ``marker`` is the one killed), so the
    worker its nanny restarts, and the other one, run on. Registered on every worker: whichever gets
    such a task first is killed, and nothing depends on timing. The kill comes from inside the worker
    while the task is executing, as a crash would."""

    name = "kill-on-task"

    def __init__(self, names: Sequence[str], marker: str) -> None:
        self.names, self.marker = tuple(names), marker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or not any(name in str(key) for name in self.names):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # a worker was killed already
        os.kill(os.getpid(), signal.SIGKILL)
