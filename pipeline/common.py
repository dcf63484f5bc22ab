"""Small helpers every stage shares: reading the params file (its sections are checked in
``pipeline.config``), logging set-up, and ``run_main``, which turns a stage's user errors into one
line and exit status 2.

The file helpers (atomic writes, JSON and JSON lines, the Parquet writer) and the first-wins post-id
rule (``SeenIds``) are contracts shared with the crawler: they live in ``contracts`` and are
re-exported here, so stage code has one place to import its helpers from.

Kept deliberately tiny: stage logic lives in the stage modules as pure functions.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from contracts.files import (  # noqa: F401
    atomic_path,
    iter_jsonl,
    parquet_reader,
    parquet_writer,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
    write_parquet,
)
from contracts.ids import SeenIds  # noqa: F401

PARAMS_FILE = Path("params.yaml")


class ParamsError(ValueError):
    """A params file section is missing, has an unknown key, or a value out of range."""


class StageFailed(RuntimeError):
    """The stage ran but could not produce its output for a reason its message explains (a crawl
    that returned too few posts, an interrupted crawl): reported in one line, exit status 1."""


class Params(dict):
    """The parsed params file; ``path`` is the file it was read from, for error messages."""

    def __init__(self, data: Mapping[str, Any], path: str | os.PathLike = PARAMS_FILE) -> None:
        super().__init__(data)
        self.path = Path(path)


def params_name(params: Mapping[str, Any] | None, default: str | os.PathLike = PARAMS_FILE) -> str:
    """The params file ``params`` was read from (``params.yaml`` for a plain mapping)."""
    return str(getattr(params, "path", default))


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root (where params.yaml is) "
                          f"or name the file with --params")
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise ParamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of stage names to sections, got {type(data).__name__}")
    return Params(data, path)


# Exceptions that mean "the user asked for something that cannot be done" (a params value, a
# missing input file): one line and exit status 2, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ParamsError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError)


def run_main(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None, *,
             flag: str = "--verbose") -> None:
    """Run a stage's ``main(argv)`` as a command: user mistakes end in one clear line.

    ``ParamsError`` and missing/unreadable files print ``error: <message>`` on stderr and exit 2;
    ``StageFailed`` prints its message and exits 1. ``flag`` (``--verbose``; anywhere in ``argv``,
    removed before ``main`` sees it; a stage whose own options use that name passes another) or
    ``KOPITIAM_VERBOSE=1`` in the environment (for ``dvc repro``) re-raises them with the full
    traceback. Any other exception is a bug and keeps its traceback. An int returned by ``main``
    is the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = flag in args or os.environ.get("KOPITIAM_VERBOSE", "") not in ("", "0")
    args = [a for a in args if a != flag]
    try:
        status = main(args)
    except USER_ERRORS as exc:
        if verbose:
            raise
        print(f"error: {_one_line(exc)} ({flag} shows the traceback)", file=sys.stderr)
        sys.exit(2)
    except StageFailed as exc:
        if verbose:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, ParamsError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return " ".join(str(exc).split()) or type(exc).__name__


def setup_logging(level: int = logging.INFO) -> None:
    """One format for every stage's command-line entry point."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
