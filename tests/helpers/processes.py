"""Commands run side by side: for tests whose subprocesses mostly wait (start-up, sleeps, servers)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def run_side_by_side(cmds: Sequence[Sequence[str]], cwd: Path, timeout: float = 600) -> list[str]:
    """Start every command at once, wait for all; their stdouts, in order. A command that fails
    fails the test with its stderr's tail; any still running when one fails or times out is killed."""
    procs = [subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in cmds]
    try:
        outs = []
        for cmd, proc in zip(cmds, procs):
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{err[-3000:]}"
            outs.append(out)
        return outs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
