"""The only way LeadShop fetches an untrusted URL (every lead's website).

Why a client of our own: a lead list is attacker-controllable input. A website field, or a
redirect it answers with, can point at ``127.0.0.1``, ``169.254.169.254`` or a name that resolves
there. The check therefore happens where the socket is opened, for the first request and every
redirect hop, against every address the name resolves to, and the connection goes to the
address that was checked (no second lookup to race). Sizes are counted after decompression, which
we do ourselves in bounded steps, so a small gzip bomb cannot grow past ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpcore
import httpx

from leadshop import __version__
from leadshop.config import Settings
from leadshop.errors import (
    BlockedAddress,
    ConnectionFailed,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    ResponseTooLarge,
    TLSError,
    TooManyRedirects,
    UnresolvableHost,
)

DEFAULT_TIMEOUT = 20.0  # seconds for a whole fetch, redirects included
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # decoded body
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = f"Mozilla/5.0 (compatible; LeadShopAssessor/{__version__})"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched ("loopback", "private", ...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if flag:
            return kind
    return None


def check_url(url: str) -> httpx.URL:
    """Parse ``url`` and refuse what we never fetch: other schemes, no host, credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidURL(f"{url!r} is not a valid URL: {exc}", url) from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidURL(f"{url!r}: only http and https URLs are fetched", url)
    if not parsed.host:
        raise InvalidURL(f"{url!r} has no host", url)
    if parsed.userinfo:
        raise InvalidURL(f"{url!r}: URLs with credentials are not fetched", url)
    return parsed


AddressPolicy = Callable[[IPAddress], str | None]


def lead_url(website: str) -> str:
    """A lead's website as a checked URL: lead lists often give a bare domain, taken as
    http:// (which sites redirect to https:// themselves)."""
    text = website.strip()
    return str(check_url(text if "://" in text else f"http://{text}"))


async def resolve_checked(
    host: str, port: int, allow_private: bool, policy: AddressPolicy = address_kind
) -> list[str]:
    """Every address ``host`` resolves to, refused as a whole if any one is not public.

    Refusing on any (not only the first) closes the trick of a name with one public and one
    private address. Browser-based assessments call this before handing a URL to Chromium.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{host} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            kind = policy(ipaddress.ip_address(address.split("%", 1)[0]))
            if kind is not None:
                raise BlockedAddress(
                    f"{host} resolves to {address}, a {kind} address; refused "
                    "(set LEADSHOP_ALLOW_PRIVATE_NETWORKS=true to allow)"
                )
    return addresses


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to checked addresses; TLS still verifies the host name."""

    def __init__(self, allow_private: bool, policy: AddressPolicy) -> None:
        self._allow_private = allow_private
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, self._allow_private, self._policy)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise InvalidURL("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@lru_cache(maxsize=1)
def trust_context() -> ssl.SSLContext:
    """The system's trust store, extended (not replaced) by ``SSL_CERT_FILE`` when set."""
    context = ssl.create_default_context()
    defaults = ssl.get_default_verify_paths()
    if defaults.openssl_cafile and os.path.exists(defaults.openssl_cafile):
        context.load_verify_locations(cafile=defaults.openssl_cafile)
    extra = os.environ.get("SSL_CERT_FILE")
    if extra and os.path.exists(extra):
        context.load_verify_locations(cafile=extra)
    return context


@dataclass(frozen=True)
class Hop:
    """One redirect answered on the way to the final response."""

    url: str
    status_code: int
    headers: httpx.Headers


@dataclass(frozen=True)
class FetchResponse:
    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    history: tuple[Hop, ...] = ()
    elapsed_ms: int = 0
    http_version: str = "HTTP/1.1"
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def raise_for_status(self) -> FetchResponse:
        if self.status_code >= 400:
            raise HTTPStatusError(
                f"{self.url} answered HTTP {self.status_code}", self.url, self.status_code
            )
        return self


class _BoundedDecoder:
    """gzip/deflate decoding that never produces more than ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int, url: str) -> None:
        self._limit = limit
        self._url = url
        self._size = 0
        self._chunks: list[bytes] = []
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        else:
            raise FetchError(f"{url} used content-encoding {encoding!r}, which was not asked", url)

    def feed(self, data: bytes) -> None:
        if self._zlib is None:
            self._append(data)
            return
        while data:
            try:
                out = self._zlib.decompress(data, self._limit - self._size + 1)
            except zlib.error as exc:
                raise FetchError(f"{self._url}: corrupt compressed body: {exc}", self._url) from exc
            self._append(out)
            data = self._zlib.unconsumed_tail

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise ResponseTooLarge(f"{self._url}: body over {self._limit} bytes", self._url)
        self._chunks.append(data)

    def result(self) -> bytes:
        return b"".join(self._chunks)


class SafeClient:
    """An async HTTP client for untrusted URLs. Use as ``async with SafeClient(...) as client``."""

    def __init__(
        self,
        *,
        allow_private_networks: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        address_policy: AddressPolicy = address_kind,
    ) -> None:
        """``address_policy`` says why an address is refused; tests swap it to stage a public
        site on loopback."""
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        transport = httpx.AsyncHTTPTransport(verify=trust_context())
        # httpx has no public hook for the network backend; the pool is rebuilt with ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=trust_context(),
            network_backend=_CheckedBackend(allow_private_networks, address_policy),
            max_connections=20,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT)),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SafeClient:
        return cls(allow_private_networks=settings.allow_private_networks, **overrides)

    async def __aenter__(self) -> SafeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self, url: str, *, headers: dict[str, str] | None = None, follow_redirects: bool = True
    ) -> FetchResponse:
        """GET ``url``, following redirects (each hop checked), within ``timeout`` overall."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url, headers or {}, follow_redirects, started)
        except TimeoutError as exc:
            raise FetchTimeout(f"{url}: no complete answer within {self.timeout:g} s", url) from exc

    async def _follow(
        self, url: str, headers: dict[str, str], follow: bool, started: float
    ) -> FetchResponse:
        history: list[Hop] = []
        current = check_url(url)
        while True:
            response = await self._fetch_one(current, headers, started, tuple(history))
            location = response.headers.get("location")
            if not follow or response.status_code not in REDIRECT_STATUSES or not location:
                return response
            if len(history) >= self.max_redirects:
                raise TooManyRedirects(f"{url}: more than {self.max_redirects} redirects", url)
            history.append(Hop(str(current), response.status_code, response.headers))
            try:
                current = check_url(str(current.join(location)))
            except InvalidURL as exc:
                raise InvalidURL(f"{url} redirected to an invalid URL: {exc}", url) from exc

    async def _fetch_one(
        self, url: httpx.URL, headers: dict[str, str], started: float, history: tuple[Hop, ...]
    ) -> FetchResponse:
        text_url = str(url)
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                decoder = _BoundedDecoder(
                    response.headers.get("content-encoding", ""), self.max_bytes, text_url
                )
                async for chunk in response.aiter_raw():
                    decoder.feed(chunk)
                return FetchResponse(
                    url=text_url,
                    status_code=response.status_code,
                    headers=response.headers,
                    content=decoder.result(),
                    history=history,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                    http_version=response.http_version,
                )
        except FetchError as exc:
            exc.url = exc.url or text_url
            if isinstance(exc, BlockedAddress | UnresolvableHost) and history:
                raise type(exc)(f"redirect to {text_url}: {exc}", text_url) from exc
            raise
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"{text_url}: timed out ({type(exc).__name__})", text_url) from exc
        except httpx.ConnectError as exc:
            if _is_certificate_error(exc):
                raise TLSError(f"{text_url}: TLS certificate not valid: {exc}", text_url) from exc
            raise ConnectionFailed(f"{text_url}: cannot connect: {exc}", text_url) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise InvalidURL(f"{text_url}: {exc}", text_url) from exc
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"{text_url}: {type(exc).__name__}: {exc}", text_url) from exc


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc)
