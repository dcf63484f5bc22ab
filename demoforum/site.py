"""The demo forum's content and pages: XenForo 2 markup rendered from Shakespeare's plays.

One board per genre (thread lists paginated, newest activity first, plus a sticky
robots-disallowed "backstage" thread), one thread per scene, one post per speech with the speaker
as author, ``posts_per_page`` posts per page. Everything is a pure function of the plays and
``seed``: the same options give byte-identical pages (no clock, no process-dependent hashes).

Noise that real forum posts carry, chosen per post from ``random.Random(f"{seed}:{post_id}")``:
quotes of earlier posts in the thread (XenForo quote blocks with "Click to expand...", sometimes
nested), signatures (``aside.message-signature``, for some authors), smilies
(``<img class="smilie" alt=":)">``), external links, ``<br />`` line breaks, HTML entities
(``&#039;``, ``&amp;``, ``&quot;``), ``<i>`` stage directions, and ad scripts between posts.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import escape as _escape

from demoforum.plays import Play, load_plays

GENRE_TITLES = {"comedies": "Comedies", "histories": "Histories", "problems": "Problem Plays",
                "roman": "Roman Plays", "romances": "Romances", "tragedies": "Tragedies"}
# markup the server can speak (demoforum/<engine>.py; xenforo: pages.py)
ENGINES = ("xenforo", "xenforo1", "vbulletin", "vbulletin5", "phpbb", "discourse", "mybb", "invision", "smf",
           "nodebb", "flarum")
BASE_EPOCH = 1704067200  # 2024-01-01T00:00:00Z: first thread's start
SGT = timezone(timedelta(hours=8))  # times are rendered +0800, like HardwareZone
BACKSTAGE_PREFIX = "/threads/backstage-"  # robots.txt disallows it; the spider must never go there
SMILIES = [(":)", "smile"), (":(", "frown"), (":D", "biggrin"), (";)", "wink"), (":p", "tongue"),
           (":o", "oops"), (":cool:", "cool"), (":rolleyes:", "rolleyes")]
SIGNATURES = [
    "~ {author} ~ <i>all the world&#039;s a stage</i>",
    "Sent from my quill using the Globe Theatre app",
    "<b>{author}</b> | member of the King&#039;s Men since 1603",
    "Visit my <a href=\"https://www.gutenberg.org/\" target=\"_blank\" class=\"link link--external\" "
    "rel=\"nofollow ugc noopener\">folio collection</a> :: PM for trades",
    "-- {author}<br />\n&quot;Brevity is the soul of wit&quot;",
]
LINKS = ["https://en.wikipedia.org/wiki/{title}", "https://www.folger.edu/explore/shakespeares-works/",
         "https://www.gutenberg.org/ebooks/author/65"]


def esc(text: str) -> str:
    """HTML-escape the way XenForo does (apostrophes as ``&#039;``)."""
    return _escape(text, quote=True).replace("&#x27;", "&#039;")


def slugify(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "thread"


@dataclass
class Post:
    post_id: int
    thread_id: int
    position: int  # 0-based index in the thread
    author: str
    user_id: int
    epoch: int
    body: str  # the .bbWrapper inner HTML
    signature: str | None  # signature inner HTML, or None
    quoted_post_ids: list[int] = field(default_factory=list)
    text_chars: int = 0  # characters of speech text in the post (for size accounting)
    # The same noise in engine-neutral form, for the other engines' renderers (demoforum/phpbb.py, discourse.py):
    lines: list[tuple[str, bool]] = field(default_factory=list)  # (text, is a stage direction)
    tail: tuple[str, str] | None = None  # ("smilie", code) or ("link", url) after the speech
    quote_nested: bool = False  # the quote of quoted_post_ids[0] keeps that post's own quote


@dataclass
class Thread:
    thread_id: int
    slug: str
    title: str
    board: "Board"
    posts: list[Post] = field(default_factory=list)
    backstage: bool = False

    @property
    def path(self) -> str:
        return f"/threads/{self.slug}.{self.thread_id}/"


@dataclass
class Board:
    node_id: int
    slug: str
    title: str
    threads: list[Thread] = field(default_factory=list)  # display order: sticky, then by activity

    @property
    def path(self) -> str:
        return f"/forums/{self.slug}.{self.node_id}/"


def user_id(name: str) -> int:
    return 1000 + zlib.crc32(name.encode("utf-8")) % 900000


def author_name(speaker: str) -> str:
    return " ".join(w.capitalize() if w.isupper() else w for w in speaker.split())


def sgt_time(epoch: int) -> tuple[str, str, str]:
    """(ISO with +0800, date string, time string) the way XenForo renders ``<time>``."""
    when = datetime.fromtimestamp(epoch, tz=timezone.utc).astimezone(SGT)
    return (when.strftime("%Y-%m-%dT%H:%M:%S%z"), f"{when:%b} {when.day}, {when.year}",
            when.strftime("%I:%M %p").lstrip("0"))


def time_tag(epoch: int) -> str:
    iso, date, clock = sgt_time(epoch)
    return (f'<time class="u-dt" dir="auto" datetime="{iso}" data-time="{epoch}" '
            f'data-date-string="{date}" data-time-string="{clock}" title="{date} at {clock}" '
            f'itemprop="datePublished">{date}</time>')


class DemoForum:
    """The whole forum in memory (about 31,000 posts for all plays; built in about a second)."""

    def __init__(self, genres: list[str] | None = None, plays: list[str] | None = None, *,
                 seed: int = 0, posts_per_page: int = 20, threads_per_page: int = 20,
                 engine: str = "xenforo", loaded: list[Play] | None = None) -> None:
        if posts_per_page < 1 or threads_per_page < 1:
            raise ValueError("demo forum: posts_per_page and threads_per_page must be >= 1")
        if engine not in ENGINES:
            raise ValueError(f"demo forum: engine={engine!r}: expected one of {', '.join(ENGINES)}")
        self.engine = engine  # whose markup the server speaks; the content is the same for all
        self.seed = seed
        self.posts_per_page = posts_per_page
        self.threads_per_page = threads_per_page
        self.boards: list[Board] = []
        self.threads: dict[int, Thread] = {}
        self.posts: dict[int, Post] = {}
        self._build(loaded if loaded is not None else load_plays(genres=genres, plays=plays))

    # ---- content ------------------------------------------------------------------------------
    def _build(self, plays: list[Play]) -> None:
        next_thread, next_post = 1, 100001
        by_genre: dict[str, list[Play]] = {}
        for play in plays:
            by_genre.setdefault(play.genre, []).append(play)
        order = list(GENRE_TITLES) + sorted(set(by_genre) - set(GENRE_TITLES))
        for genre in sorted(by_genre, key=order.index):
            node_id = order.index(genre) + 1  # fixed per genre, whatever subset is served
            board = Board(node_id, slugify(genre), GENRE_TITLES.get(genre, genre.title()))
            self.boards.append(board)
            scenes: list[Thread] = []
            for play in by_genre[genre]:
                for scene in play.scenes:
                    title = f"{play.title}: {scene.act}, {scene.title}" if scene.act else \
                        f"{play.title}: {scene.title}"
                    thread = Thread(next_thread, slugify(title), title, board)
                    next_thread += 1
                    epoch = BASE_EPOCH + thread.thread_id * 5400 + \
                        random.Random(f"{self.seed}:t{thread.thread_id}").randint(0, 3600)
                    for speech in scene.speeches:
                        epoch += random.Random(f"{self.seed}:e{next_post}").randint(20, 900)
                        self._add_post(thread, next_post, speech.speaker, speech.lines, epoch,
                                       play.title)
                        next_post += 1
                    scenes.append(thread)
                    self.threads[thread.thread_id] = thread
            scenes.sort(key=lambda t: (-t.posts[-1].epoch, t.thread_id))
            backstage = Thread(900000 + node_id, f"backstage-moderators-only-{board.slug}",
                               f"Backstage: moderators only ({board.title})", board, backstage=True)
            self._add_post(backstage, 990000 + node_id, "STAGE MANAGER",
                           [("Nobody outside the company may read this thread.", False)],
                           BASE_EPOCH, "Backstage")
            self.threads[backstage.thread_id] = backstage
            board.threads = [backstage] + scenes

    def _add_post(self, thread: Thread, post_id: int, speaker: str,
                  lines: list[tuple[str, bool]], epoch: int, play_title: str) -> None:
        rng = random.Random(f"{self.seed}:{post_id}")
        author = author_name(speaker)
        parts = [f"<i>{esc(text)}</i>" if stage else esc(text) for text, stage in lines]
        body = "<br />\n".join(parts)
        text_chars = sum(len(text) for text, _ in lines)
        quoted: list[int] = []
        nested, tail = False, None
        earlier = thread.posts[-6:]
        if earlier and rng.random() < 0.15:
            target = earlier[rng.randrange(len(earlier))]
            quoted.append(target.post_id)
            nested = bool(target.quoted_post_ids) and rng.random() < 0.5
            body = self._quote(target, nested) + body
        roll = rng.random()
        if roll < 0.08:
            smiley, name = SMILIES[rng.randrange(len(SMILIES))]
            tail = ("smilie", smiley)
            body += (f' <img src="/styles/default/xenforo/smilies/{name}.png" class="smilie" '
                     f'loading="lazy" alt="{esc(smiley)}" title="{name.title()}    {esc(smiley)}" '
                     f'data-shortname="{esc(smiley)}" />')
        elif roll < 0.12:
            url = LINKS[rng.randrange(len(LINKS))].format(title=slugify(play_title).replace("-", "_"))
            tail = ("link", url)
            body += (f'<br />\n<br />\nMore here: <a href="{esc(url)}" target="_blank" '
                     f'class="link link--external" rel="nofollow ugc noopener">{esc(url)}</a>')
        signature = None
        if random.Random(f"{self.seed}:sig:{author}").random() < 0.25:
            pick = random.Random(f"{self.seed}:sigpick:{author}").randrange(len(SIGNATURES))
            signature = SIGNATURES[pick].format(author=esc(author))
        post = Post(post_id, thread.thread_id, len(thread.posts), author, user_id(author), epoch,
                    body, signature, quoted, text_chars, list(lines), tail, nested)
        thread.posts.append(post)
        self.posts[post_id] = post

    def _quote(self, target: Post, nested: bool) -> str:
        inner = target.body
        if nested:
            pass  # keep the target's own quote: a nested quote, as XenForo allows
        else:
            inner = re.sub(r"^<blockquote.*?</blockquote>", "", inner, flags=re.S)
        return (f'<blockquote data-attributes="member: {target.user_id}" data-quote="{esc(target.author)}" '
                f'data-source="post: {target.post_id}" '
                f'class="bbCodeBlock bbCodeBlock--expandable bbCodeBlock--quote js-expandWatch">\n'
                f'\t<div class="bbCodeBlock-title">\n'
                f'\t\t<a href="/goto/post?id={target.post_id}" class="bbCodeBlock-sourceJump" '
                f'rel="nofollow" data-xf-click="attribution" data-content-selector="#post-{target.post_id}">'
                f'{esc(target.author)} said:</a>\n\t</div>\n'
                f'\t<div class="bbCodeBlock-content">\n'
                f'\t\t<div class="bbCodeBlock-expandContent js-expandContent ">\n\t\t\t{inner}\n\t\t</div>\n'
                f'\t\t<div class="bbCodeBlock-expandLink js-expandLink"><a role="button" tabindex="0">'
                f'Click to expand...</a></div>\n\t</div>\n</blockquote>')

    # ---- queries ------------------------------------------------------------------------------
    def thread_pages(self, thread: Thread) -> int:
        return max(1, -(-len(thread.posts) // self.posts_per_page))

    def board_pages(self, board: Board) -> int:
        return max(1, -(-len(board.threads) // self.threads_per_page))

    def crawlable_threads(self) -> list[Thread]:
        """Threads a robots.txt-obeying crawler may read (all but backstage), by id."""
        return [t for _, t in sorted(self.threads.items()) if not t.backstage]

    def post_text_chars(self) -> int:
        return sum(p.text_chars for t in self.crawlable_threads() for p in t.posts)
