"""The browsers' egress proxy on loopback sockets: refused hosts never see a connection, allowed
ones get exactly the request Chromium sent, one per upstream connection."""

from __future__ import annotations

import asyncio

from leadshop.egress import Egress, EgressGuard, chromium_proxy_flags, host_port
from tests.sites import Reply, serve


async def open_guard(egress: Egress) -> tuple[EgressGuard, str, int]:
    guard = EgressGuard(egress)
    await guard.start()
    host, port = guard.url.removeprefix("http://").split(":")
    return guard, host, int(port)


async def exchange(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_guard_closes_connections_to_refused_addresses():
    with serve({"/": [Reply()]}) as site:
        guard, host, port = await open_guard(Egress(allow_private=False))
        try:
            connect = f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode()
            assert await exchange(host, port, connect) == b""
            get = f"GET {site.url('/')} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            assert await exchange(host, port, get) == b""
        finally:
            await guard.close()
        assert site.hits == {}


async def test_guard_tunnels_and_forwards_one_request_per_connection():
    with serve({"/a": [Reply(body=b"first")], "/b": [Reply(body=b"second")]}) as site:
        guard, host, port = await open_guard(Egress(allow_private=True))
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
            assert (
                await reader.readuntil(b"\r\n\r\n")
                == b"HTTP/1.1 200 Connection established\r\n\r\n"
            )
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"first")).startswith(b"HTTP/1.0 200")
            writer.close()

            two = (
                f"GET {site.url('/a')} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
                f"GET {site.url('/b')} HTTP/1.1\r\nHost: x\r\n\r\n"
            ).encode()
            answer = await exchange(host, port, two)
        finally:
            await guard.close()
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"first")
        assert site.hits == {"/a": 2}  # /b never reached the server the first request chose


def test_host_port_defaults_by_scheme() -> None:
    assert host_port("https://shop.example/x") == ("shop.example", 443)
    assert host_port("ws://[::1]:8080/") == ("::1", 8080)
    assert host_port("http://shop.example") == ("shop.example", 80)


def test_chromium_is_told_to_send_loopback_through_the_proxy_too() -> None:
    assert chromium_proxy_flags("http://127.0.0.1:4000") == [
        "--proxy-server=http://127.0.0.1:4000",
        "--proxy-bypass-list=<-loopback>",
    ]
