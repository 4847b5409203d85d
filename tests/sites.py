"""Small scripted websites on loopback for tests: each path answers from a list of responses.

A route given several responses plays them in order and then repeats the last, which is how a
test stages "503 twice, then 200". GET and POST are served alike; every request is kept in
``Site.requests`` (method, path with query, headers, body) for tests of API clients that assert
what was sent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"<!doctype html><html><head><title>ok</title></head><body>ok</body></html>"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    delay: float = 0.0


NOT_FOUND = Reply(404, b"not found")


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names lower-cased; the last of repeated headers wins
    body: bytes = b""


@dataclass
class Site:
    host: str
    port: int
    routes: dict[str, list[Reply]]
    default: Reply
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(b"")

        def do_POST(self) -> None:
            self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _answer(self, body: bytes) -> None:
            path = self.path.split("?", 1)[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            with lock:
                count = site.hits.get(path, 0)
                site.hits[path] = count + 1
                site.requests.append(Received(self.command, self.path, headers, body))
            replies = site.routes.get(path) or [site.default]
            reply = replies[min(count, len(replies) - 1)]
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            # the client may stop reading on purpose (size caps, timeouts)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(
    routes: dict[str, list[Reply]],
    host: str = "127.0.0.1",
    default: Reply = NOT_FOUND,
) -> Iterator[Site]:
    """Serve ``routes``; any other path gets ``default`` (a 404 unless a test says otherwise)."""
    server = ThreadingHTTPServer((host, 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    site = Site(host, server.server_port, routes, default)
    server.RequestHandlerClass = _handler(site)  # it needs the port the OS picked
    with running(server):
        yield site


@contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[int]:
    """Serve ``server`` in a thread until the block ends; yields its port."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
