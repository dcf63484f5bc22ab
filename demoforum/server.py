"""HTTP server for the demo forum (stdlib ``http.server``: no extra dependency, threads per request).

With ``engine: vbulletin``, ``vbulletin5``, ``phpbb``, ``discourse``, ``mybb``, ``invision``, ``smf``,
``nodebb`` or ``flarum`` the same forum speaks that engine (demoforum/<engine>.py: their own routes);
``xenforo1`` serves XenForo 1 pages (demoforum/xenforo1.py) at the XenForo routes. Routes, as on a
XenForo 2 site (the default): ``/`` (board index),
``/forums/<slug>.<id>/[page-N]``,
``/threads/<slug>.<id>/[page-N]`` (a wrong slug redirects 301 to the canonical URL, as XenForo
does), ``/threads/<slug>.<id>/post-<pid>`` and ``/goto/post?id=N`` (302 to the post's page),
``/robots.txt``. Anything else is 404.

Failure injection for tests (constructor arguments, or CLI flags):
- ``fail_once``: paths answered ``503`` (the JSON APIs of Discourse, NodeBB and Flarum: ``429``)
  with ``Retry-After: 1`` on their first request, then 200;
- ``broken``: thread page paths served with damaged markup (see ``pages.broken_thread_page``);
- ``gone``: paths (or exact targets, query included) answered ``404`` every time (a Discourse
  topic's ``/t/N/posts.json`` chunks).
Every request's path is recorded in ``requests`` (so tests can prove robots.txt was obeyed).

Run by hand: ``python -m demoforum.server --port 8080 [--genres tragedies]``, then
``scrapy crawl xenforo -a start_url=http://127.0.0.1:8080/forums/tragedies.6/ -O out.parquet``.
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from demoforum import discourse, flarum, invision, mybb, nodebb, pages, phpbb, smf, vbulletin, vbulletin5, xenforo1
from demoforum.site import ENGINES, DemoForum

logger = logging.getLogger(__name__)
# engine -> module with respond(forum, target); xenforo and xenforo1: the routes below, with their pages
ENGINE_PAGES = {"vbulletin": vbulletin, "vbulletin5": vbulletin5, "phpbb": phpbb, "discourse": discourse,
                "mybb": mybb, "invision": invision, "smf": smf, "nodebb": nodebb, "flarum": flarum}
XENFORO_PAGES = {"xenforo": pages, "xenforo1": xenforo1}
RATE_LIMITED = ("discourse", "nodebb", "flarum")  # their APIs answer 429 when a client is too fast

BOARD_RE = re.compile(r"^/forums/(?P<slug>[^/]*)\.(?P<id>\d+)/(?:page-(?P<page>\d+))?$")
THREAD_RE = re.compile(r"^/threads/(?:(?P<slug>[^/]*)\.)?(?P<id>\d+)/"
                       r"(?:page-(?P<page>\d+)|post-(?P<post>\d+)|(?P<latest>latest))?$")


class DemoForumServer:
    """The demo forum on ``127.0.0.1`` and a free port (or the one given), in a daemon thread."""

    def __init__(self, forum: DemoForum, *, host: str = "127.0.0.1", port: int = 0,
                 fail_once: list[str] | tuple[str, ...] = (), broken: list[str] | tuple[str, ...] = (),
                 gone: list[str] | tuple[str, ...] = ()) -> None:
        self.forum = forum
        self.fail_once = set(fail_once)
        self.broken = set(broken)
        self.gone = set(gone)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "DemoForumServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="demo-forum", daemon=True)
        self.thread.start()
        logger.info("demo forum serving %d threads at %s", len(self.forum.threads), self.base_url)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread:
            self.thread.join(timeout=5)

    def __enter__(self) -> "DemoForumServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- routing ------------------------------------------------------------------------------
    def respond(self, target: str) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) for a request target; pure apart from the failure switches."""
        path = urlsplit(target).path
        with self._lock:
            self.requests.append(target)
            if path in self.fail_once:
                self.fail_once.discard(path)
                # the JSON APIs rate-limit with 429; the others answer an overloaded 503
                status = 429 if self.forum.engine in RATE_LIMITED else 503
                return status, {"Retry-After": "1"}, "<html><body>Service unavailable: try again</body></html>"
        if path in self.gone or target in self.gone:
            return self._not_found()
        if self.forum.engine in ENGINE_PAGES:  # the same forum in another engine's markup
            return ENGINE_PAGES[self.forum.engine].respond(self.forum, target)
        return self._xenforo_response(target, path)

    @property
    def _pages(self):
        """The page renderer of this XenForo version (2: demoforum/pages.py, 1: demoforum/xenforo1.py)."""
        return XENFORO_PAGES[self.forum.engine]

    def _xenforo_response(self, target: str, path: str) -> tuple[int, dict[str, str], str]:
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, pages.ROBOTS_TXT
        if path == "/":
            return 200, {}, self._pages.index_page(self.forum)
        if path == "/goto/post":
            post = self.forum.posts.get(int((parse_qs(urlsplit(target).query).get("id") or ["0"])[0] or 0))
            return self._to_post(post.thread_id, post.post_id) if post else self._not_found()
        if (m := BOARD_RE.match(path)):
            return self._board_response(m)
        if (m := THREAD_RE.match(path)):
            return self._thread_response(m, path)
        return self._not_found()

    def _board_response(self, m: re.Match) -> tuple[int, dict[str, str], str]:
        board = next((b for b in self.forum.boards if b.node_id == int(m["id"])), None)
        page = int(m["page"] or 1)
        if board is None or not 1 <= page <= self.forum.board_pages(board):
            return self._not_found()
        if m["slug"] != board.slug:
            return 301, {"Location": pages.page_path(board.path, page)}, ""
        return 200, {}, self._pages.board_page(self.forum, board, page)

    def _thread_response(self, m: re.Match, path: str) -> tuple[int, dict[str, str], str]:
        thread = self.forum.threads.get(int(m["id"]))
        if thread is None:
            return self._not_found()
        if m["post"]:
            return self._to_post(thread.thread_id, int(m["post"]))
        if m["latest"]:
            return 302, {"Location": pages.page_path(thread.path, self.forum.thread_pages(thread))}, ""
        page = int(m["page"] or 1)
        if not 1 <= page <= self.forum.thread_pages(thread):
            return self._not_found()
        if m["slug"] != thread.slug:
            return 301, {"Location": pages.page_path(thread.path, page)}, ""
        if path in self.broken and self.forum.engine == "xenforo":
            return 200, {}, pages.broken_thread_page(self.forum, thread, page)
        return 200, {}, self._pages.thread_page(self.forum, thread, page)

    def _to_post(self, thread_id: int, post_id: int) -> tuple[int, dict[str, str], str]:
        thread = self.forum.threads[thread_id]
        post = self.forum.posts.get(post_id)
        if post is None or post.thread_id != thread_id:
            return self._not_found()
        page = post.position // self.forum.posts_per_page + 1
        return 302, {"Location": f"{pages.page_path(thread.path, page)}#post-{post_id}"}, ""

    @staticmethod
    def _not_found() -> tuple[int, dict[str, str], str]:
        return 404, {}, "<html><body><h1>Oops! We ran into some problems.</h1></body></html>"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                status, headers, body = server.respond(self.path)
                headers = dict(headers)  # the engines' modules may return shared constants
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "text/html; charset=utf-8"))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: object) -> None:
                logger.debug("demo forum: " + fmt, *args)

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the offline demo forum.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--genres", nargs="*", help="only these genres (default: all)")
    parser.add_argument("--plays", nargs="*", help="only these plays (slugs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=ENGINES, default="xenforo", help="whose markup to speak")
    parser.add_argument("--fail-once", nargs="*", default=[], help="paths answering 503 (JSON APIs: 429) once")
    parser.add_argument("--broken", nargs="*", default=[], help="thread page paths with broken markup")
    parser.add_argument("--gone", nargs="*", default=[], help="paths answering 404 every time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    forum = DemoForum(genres=args.genres, plays=args.plays, seed=args.seed, engine=args.engine)
    server = DemoForumServer(forum, port=args.port, fail_once=args.fail_once, broken=args.broken, gone=args.gone)
    print(f"demo forum at {server.base_url}/ ({len(forum.threads)} threads, {len(forum.posts)} posts)",
          flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
