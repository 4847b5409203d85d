"""The browser's only way out: an HTTP proxy that checks every host before connecting.

Why a proxy: a browser resolves names and follows redirects itself, so checking the lead's URL
before handing it over (``resolve_checked``) guards the first request only. A page can load
subresources from, or redirect to, ``169.254.169.254`` or a name that resolves to loopback.
Chromium started with ``--proxy-server`` pointing here (and ``--proxy-bypass-list=<-loopback>``,
or it would go straight to loopback) sends every request through ``EgressGuard``, which
resolves and checks the host as ``SafeClient`` does and connects to the very address it checked.
Used by both browser assessments: Playwright's contexts (visual) and Lighthouse's Chromium
(pagespeed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from leadshop.errors import FetchError, InvalidURL
from leadshop.net import AddressPolicy, address_kind, resolve_checked

PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
BYPASS_NOTHING = "<-loopback>"  # Chromium's bypass rule that sends loopback through the proxy too


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or PORTS.get(parts.scheme, 0)
    except ValueError as exc:
        raise InvalidURL(f"{url!r} has an invalid port", url) from exc
    return parts.hostname or "", port


@dataclass(frozen=True)
class Egress:
    """Which addresses the browser may reach: ``resolve_checked``'s two knobs. Tests swap the
    policy to stage a public site on loopback, as they do with ``SafeClient``."""

    allow_private: bool
    policy: AddressPolicy = address_kind

    async def resolve(self, host: str, port: int) -> list[str]:
        return await resolve_checked(host, port, self.allow_private, self.policy)


HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"}
)
MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024


class EgressGuard:
    """The HTTP proxy every browser context uses: the only way the browser reaches the network.

    Playwright's routes miss redirect hops, and Chromium resolves names itself after our check;
    here, as in ``SafeClient``, every connection goes to an address ``resolve_checked`` allowed.
    ``CONNECT`` (HTTPS, WebSockets) is tunnelled untouched, so Chromium still verifies TLS; a
    plain-HTTP request is forwarded alone with ``Connection: close``, never followed by another
    on the same upstream connection. A refusal closes the connection without an answer.
    """

    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)

    async def __aenter__(self) -> EgressGuard:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, version, headers = _parse_head(head)
            if method == b"CONNECT":
                host, port = _authority(target.decode("latin-1"))
                upstream_reader, upstream = await self._connect(host, port)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await _splice(reader, writer, upstream_reader, upstream)
            else:
                url = target.decode("latin-1")
                if urlsplit(url).scheme != "http":
                    return
                upstream_reader, upstream = await self._connect(*host_port(url))
                upstream.write(_origin_form(method, url, version, headers))
                length = int(_header(headers, b"content-length") or 0)
                if length:
                    upstream.write(await reader.readexactly(length))
                await _copy(upstream_reader, writer)
        except (OSError, ValueError, TimeoutError, EOFError, FetchError, asyncio.LimitOverrunError):
            pass  # a refusal, a malformed request or a dropped connection: Chromium sees it closed
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()
            self._tasks.discard(task)

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        addresses = await self._egress.resolve(host, port)
        error: OSError | TimeoutError = ConnectionRefusedError(f"{host}:{port}")
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    return await asyncio.open_connection(address, port, limit=CHUNK)
            except (OSError, TimeoutError) as exc:
                error = exc
        raise error


def _parse_head(head: bytes) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]]:
    request_line, *lines = head[:-4].split(b"\r\n")
    method, target, version = request_line.split(b" ")
    headers = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("malformed header line")
        headers.append((name.strip(), value.strip()))
    if _header(headers, b"transfer-encoding"):
        raise ValueError("chunked request bodies are not forwarded")
    return method, target, version, headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _authority(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _origin_form(
    method: bytes, url: str, version: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    lines = [b" ".join((method, path.encode("latin-1"), version))]
    lines += [k + b": " + v for k, v in kept] + [b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(CHUNK):
        sink.write(data)
        await sink.drain()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
) -> None:
    """Both directions until both ends finish: an end that finishes half-closes the other, an
    end that breaks closes both (or the other direction could wait on an idle peer for long)."""

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            await _copy(source, sink)
            if sink.can_write_eof():
                sink.write_eof()
        except OSError:
            writer.close()
            upstream.close()

    await asyncio.gather(pump(reader, upstream), pump(upstream_reader, writer))


def chromium_proxy_flags(proxy_url: str) -> list[str]:
    return [f"--proxy-server={proxy_url}", f"--proxy-bypass-list={BYPASS_NOTHING}"]
