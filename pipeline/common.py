"""Small helpers every stage shares: reading the params file (its sections are checked in
``pipeline.config``), atomic writes, JSON and JSON-lines files, first-seen ids (post-id dedupe),
logging set-up, and ``run_main``, which turns a stage's user errors into one line and exit status 2.

Kept deliberately tiny: stage logic lives in the stage modules as pure functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import yaml

PARAMS_FILE = Path("params.yaml")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def section(name: str, defaults: Mapping[str, Any], params: Mapping[str, Any] | None = None,
            *, path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """The ``name`` section of the params file merged over ``defaults``.

    Every key must be known (present in ``defaults``): a typo is an error naming the file, the key
    and the keys that exist, never a silently ignored setting.
    """
    params = load_params(path) if params is None else params
    where = params_name(params, path)
    given = params.get(name) or {}
    if not isinstance(given, Mapping):
        raise ParamsError(f"{where}: section '{name}' must be a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
                          f"known keys: {', '.join(sorted(defaults))}")
    return {**defaults, **given}


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write indented, key-sorted JSON atomically (stable bytes for stable DVC hashes)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.write("\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[Any], *, sort_keys: bool = True) -> None:
    """Write one compact JSON value per line, atomically (non-ASCII kept as is)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def iter_jsonl(path: str | os.PathLike,
               on_error: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line. A line that is not JSON is an error naming
    the file and the line, or, with ``on_error``, reported as ``on_error(line number, message)`` and
    skipped (for readers that count bad lines and go on)."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                if on_error is None:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
                on_error(number, exc.msg)
                continue
            yield number, value


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Every value of a JSON-lines file, in file order (see ``iter_jsonl`` for errors)."""
    return [value for _, value in iter_jsonl(path)]


class SeenIds:
    """Ids met so far, for post-id dedupe: the first occurrence of an id wins, later ones are repeats.

    One rule for every place that drops repeated post ids (a batch of rows or one record at a time).
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def first(self, ident: str) -> bool:
        """True the first time ``ident`` is met (and remember it), False after."""
        if ident in self._seen:
            return False
        self._seen.add(ident)
        return True

    def repeats(self, ids: Iterable[str]) -> list[int]:
        """Positions in ``ids`` of ids met before (earlier calls or earlier in ``ids``); remembers all."""
        return [i for i, ident in enumerate(ids) if not self.first(ident)]

    def add(self, ids: Iterable[str]) -> None:
        """Remember ``ids`` without asking (e.g. ids of rows dropped for another reason)."""
        self._seen.update(ids)

    def __contains__(self, ident: object) -> bool:
        return ident in self._seen

    def __len__(self) -> int:
        return len(self._seen)


def setup_logging(level: int = logging.INFO) -> None:
    """One format for every stage's command-line entry point."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
