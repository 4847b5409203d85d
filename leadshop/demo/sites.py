"""Serve the demo businesses (``catalog.CATALOG``) on loopback, for ``make demo`` and tests.

Each listener is a stdlib ``ThreadingHTTPServer`` on its own thread, so the demo needs nothing
beyond the standard library and ``cryptography`` and runs anywhere the tests run. Real sites
differ in ways scanners look at, so the servers behave like real ones where that matters: HTTP/1.1
keep-alive, ``Content-Length`` on every response, HEAD, OPTIONS (the Observatory's CORS probe),
a plain-HTTP port that redirects to HTTPS, a real 404, and TLS verified through a private CA
(``ca.py``). They stay quiet: scanners hit them thousands of times in a benchmark.

Ports are chosen by the OS unless ``base_port`` is given; then they are consecutive, in catalog
order (each site's plain port, then its HTTPS port), the stand-in third-party widget host last.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

from leadshop.config import DEFAULT_HOME
from leadshop.demo import catalog
from leadshop.demo.ca import SERVER_DNS_NAME, DemoCA, ensure_demo_ca
from leadshop.demo.catalog import CATALOG, Links, SiteSpec

DEFAULT_CA_DIR = DEFAULT_HOME / "demo-ca"
LOOPBACK = "127.0.0.1"
IDLE_TIMEOUT = 15.0  # seconds a keep-alive connection (or a TLS handshake) may sit idle
JOIN_TIMEOUT = 5.0
MAX_FORM_BYTES = 64 * 1024
WIDGETS_SERVER = "AmazonS3"
LEADS_CSV_COLUMNS = ("name", "website", "phone", "address")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSite:
    """A running demo business as a lead list would name it, plus what a scan should find."""

    slug: str
    name: str
    url: str  # where a scan starts: the plain-HTTP URL when the site redirects from one
    phone: str
    address: str
    expected: str  # the posture and the Observatory (MDN) score it earns
    grade: str  # the Observatory (MDN) grade that posture earns


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    origin: str | None  # the Origin header, for CORS

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


App = Callable[[Request], Response]
_Request = socket.socket | tuple[bytes, socket.socket]  # socketserver's type for a connection


class _SiteApp:
    """One business's HTTP behaviour: its files, security headers, cookies and CORS."""

    def __init__(self, spec: SiteSpec, links: Links) -> None:
        fields = links.placeholders()
        self._spec = spec
        self._files = catalog.site_files(spec, links)
        self._security = tuple((k, v.format_map(fields)) for k, v in spec.headers)
        self._not_found = catalog.not_found_page(spec).encode()

    def __call__(self, request: Request) -> Response:
        common = self._security + self._cors(request)
        if request.method == "OPTIONS":
            return Response(204, (("Allow", "GET, HEAD, POST, OPTIONS"), *common))
        if request.method == "POST":
            if request.path == "/contact":
                return Response(303, (("Location", "/#contact"), *common))
            return Response(405, (("Allow", "GET, HEAD, OPTIONS"), *common))
        if request.path not in self._files:
            return Response(404, (("Content-Type", catalog.HTML), *common), self._not_found)
        content_type, body = self._files[request.path]
        time.sleep(catalog.SLOW_PATHS.get(request.path, 0.0))  # this request's thread only
        headers = [("Content-Type", content_type), *common]
        if request.path == "/":
            headers.append(("Cache-Control", "no-cache"))
            for cookie in self._spec.cookies:
                headers.append(("Set-Cookie", cookie.format(token=secrets.token_hex(16))))
        else:
            headers.append(("Cache-Control", "public, max-age=86400"))
        return Response(200, tuple(headers), body)

    def _cors(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The classic misconfiguration: reflect whoever asks, and allow their credentials."""
        if not self._spec.cors_reflect:
            return ()
        headers = [
            ("Access-Control-Allow-Origin", request.origin or "*"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]
        if request.method == "OPTIONS":
            headers += [
                ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
                ("Access-Control-Allow-Headers", "*"),
                ("Access-Control-Max-Age", "86400"),
            ]
        return tuple(headers)


def _redirect_app(origin: str, status: int) -> App:
    """A plain-HTTP port that only sends visitors to the HTTPS site, path kept."""

    def app(request: Request) -> Response:
        location = origin + request.target
        body = catalog.redirect_page(location).encode()
        return Response(status, (("Location", location), ("Content-Type", catalog.HTML)), body)

    return app


def _widgets_app(request: Request) -> Response:
    """A third-party asset host: public files, CORS-readable so SRI checks can run on them."""
    files = catalog.widget_files()
    if request.method not in ("GET", "HEAD") or request.path not in files:
        return Response(404, (("Content-Type", "text/plain; charset=utf-8"),), b"Not Found\n")
    content_type, body = files[request.path]
    headers = (
        ("Content-Type", content_type),
        ("Access-Control-Allow-Origin", "*"),
        ("Cross-Origin-Resource-Policy", "cross-origin"),
        ("Cache-Control", "public, max-age=31536000, immutable"),
    )
    return Response(200, headers, body)


class _Handler(BaseHTTPRequestHandler):
    """Translates HTTP to an ``App`` call; every method goes through ``_serve``."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # here, not in accept(): a slow client blocks only us

    def version_string(self) -> str:
        return self.server.banner

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a scan or a benchmark must not flood stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if self.command == "POST":
            self._discard_body()
        request = Request(self.command, self.path, self.headers.get("Origin"))
        response = self.server.app(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:  # RFC 9110 forbids Content-Length on 204
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _discard_body(self) -> None:
        """Read a form post so the connection can be reused; refuse to keep anything big."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES or "Transfer-Encoding" in self.headers:
            self.close_connection = True
        else:
            self.rfile.read(length)


class _Server(ThreadingHTTPServer):
    """A listener that can be stopped for real: open connections are cut, threads joined."""

    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads
    request_queue_size = 128  # listen() backlog: a benchmark opens many connections at once

    def __init__(self, port: int, tls: ssl.SSLContext | None, banner: str) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.tls = tls
        self.banner = banner
        self.app: App  # set once every port is known: pages and redirects name other ports
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: _Request, address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._lock:
                self._connections.add(request)
        super().process_request(request, address)

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            with self._lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: _Request, address: Any) -> None:
        """Failed handshakes and dropped connections are normal here; keep them off stderr."""
        logger.debug("demo request from %s failed", address, exc_info=True)

    def cut_connections(self) -> None:
        """Wake request threads blocked on idle keep-alive connections so they can be joined."""
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            # OSError: its thread closed it meanwhile. The base-class shutdown on purpose:
            # SSLSocket's own one detaches its TLS state under the feet of the thread reading it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DemoSites:
    """All demo sites, started and stopped together; a context manager, or start()/stop()."""

    def __init__(
        self,
        ca_dir: Path = DEFAULT_CA_DIR,
        *,
        base_port: int | None = None,
    ) -> None:
        self._ca_dir = ca_dir
        self._base_port = base_port
        self._ca: DemoCA | None = None
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._sites: tuple[DemoSite, ...] = ()

    @property
    def sites(self) -> tuple[DemoSite, ...]:
        return self._sites

    @property
    def ca(self) -> DemoCA:
        if self._ca is None:
            raise RuntimeError("DemoSites is not started")
        return self._ca

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port in use, the widget host's included: what stop() must free."""
        return tuple(server.port for server in self._servers)

    def site(self, slug: str) -> DemoSite:
        for site in self._sites:
            if site.slug == slug:
                return site
        raise KeyError(slug)

    @property
    def heavy_page_url(self) -> str:
        """A slow, phone-hostile page (``catalog.heavy_page``): what a weak site looks like."""
        return self._speed_page(catalog.HEAVY_PATH)

    @property
    def lean_page_url(self) -> str:
        """The same business's fast, phone-friendly page (``catalog.lean_page``)."""
        return self._speed_page(catalog.LEAN_PATH)

    def _speed_page(self, path: str) -> str:
        (spec,) = (spec for spec in CATALOG if spec.speed_pages)
        return urljoin(self.site(spec.slug).url, path)

    def start(self) -> Self:
        if self._servers:
            raise RuntimeError("DemoSites is already started")
        self._ca = ensure_demo_ca(self._ca_dir)
        try:
            self._sites = tuple(self._bind_all(self._ca.server_context()))
            for server in self._servers:
                thread = threading.Thread(
                    target=server.serve_forever,
                    name=f"demo-site:{server.port}",
                    daemon=True,  # a forgotten stop() must not hang interpreter exit
                )
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every listening socket and connection, and join every thread."""
        # In parallel, as each shutdown() waits up to a poll interval; and only for started
        # loops, as shutdown() waits for serve_forever to acknowledge.
        stoppers = [
            threading.Thread(target=s.shutdown) for s in self._servers[: len(self._threads)]
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.cut_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        self._servers.clear()
        self._threads.clear()
        self._sites = ()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind_all(self, tls: ssl.SSLContext) -> Iterator[DemoSite]:
        """Bind every port first: pages link to the widget host and redirects name HTTPS ports."""
        ports = iter(range(self._base_port, 65536)) if self._base_port else None

        def bind(secure: bool, banner: str) -> _Server:
            server = _Server(next(ports) if ports else 0, tls if secure else None, banner)
            self._servers.append(server)
            return server

        placed = [
            (
                spec,
                bind(False, spec.server) if spec.http_redirect or not spec.tls else None,
                bind(True, spec.server) if spec.tls else None,
            )
            for spec in CATALOG
        ]
        widgets_http, widgets_https = bind(False, WIDGETS_SERVER), bind(True, WIDGETS_SERVER)
        widgets_http.app = widgets_https.app = _widgets_app
        for spec, plain, secure in placed:
            if secure is not None:
                origin = f"https://{SERVER_DNS_NAME}:{secure.port}"
                url = f"http://{SERVER_DNS_NAME}:{plain.port}/" if plain else f"{origin}/"
            else:
                assert plain is not None
                origin = f"http://{LOOPBACK}:{plain.port}"
                url = f"{origin}/"
            app = _SiteApp(
                spec,
                Links(
                    origin=origin,
                    widgets_http=f"http://{LOOPBACK}:{widgets_http.port}",
                    widgets_https=f"https://{LOOPBACK}:{widgets_https.port}",
                ),
            )
            if secure is not None:
                secure.app = app
            if plain is not None:
                redirect = spec.http_redirect
                plain.app = _redirect_app(origin, redirect) if secure and redirect else app
            yield DemoSite(
                spec.slug, spec.name, url, spec.phone, spec.address, spec.expected, spec.grade
            )


def write_leads_csv(path: Path, sites: Iterable[DemoSite]) -> None:
    """The demo sites as a lead list, in the columns ``leadshop import`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEADS_CSV_COLUMNS)
        writer.writerows((s.name, s.url, s.phone, s.address) for s in sites)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m leadshop.demo.sites",
        description="Serve the LeadShop demo businesses on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--base-port", type=int, help="first of consecutive ports (default: any)")
    parser.add_argument("--ca-dir", type=Path, default=DEFAULT_CA_DIR, help="demo CA cache")
    parser.add_argument("--leads-csv", type=Path, help="also write the sites as a leads CSV")
    args = parser.parse_args(argv)
    with DemoSites(args.ca_dir, base_port=args.base_port) as demo:
        for site in demo.sites:
            print(f"{site.grade:<3} {site.url:<28} {site.name}")
        print(f"\nexport SSL_CERT_FILE={demo.ca.trust_bundle.resolve()}  # trust the demo CA")
        if args.leads_csv:
            write_leads_csv(args.leads_csv, demo.sites)
            print(f"leads written to {args.leads_csv}")
        print("Serving; press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("Stopped.")


if __name__ == "__main__":
    main()
