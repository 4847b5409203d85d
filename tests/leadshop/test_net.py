"""The safe client against real sockets on loopback: refusals, caps and error types."""

from __future__ import annotations

import gzip
import ipaddress

import pytest

from leadshop import errors
from leadshop.net import IPAddress, SafeClient, address_kind, check_url, lead_url
from tests.sites import Reply, serve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http://", "http://user:pw@example.com/", "not a url at all"]
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(errors.InvalidURL):
        check_url(url)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254"]
)
async def test_private_targets_are_refused_before_any_request(host: str) -> None:
    with serve({"/": [Reply()]}) as site:
        async with SafeClient() as client:
            with pytest.raises(errors.BlockedAddress) as caught:
                await client.get(f"http://{host}:{site.port}/")
        assert site.hits == {}
    assert not caught.value.retryable
    assert "LEADSHOP_ALLOW_PRIVATE_NETWORKS" in str(caught.value)


def _loopback_is_public(ip: IPAddress) -> str | None:
    """Stage 127.0.0.1 as a public site; every other address keeps its real kind."""
    return None if str(ip) == "127.0.0.1" else address_kind(ip)


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/", "http://169.254.169.254/latest"])
async def test_redirect_to_a_private_address_is_refused(target: str) -> None:
    with serve({"/inside": [Reply(body=b"secret")]}, host="127.0.0.2") as inside:
        location = target.format(port=inside.port)
        routes = {"/": [Reply(302, b"", {"Location": location})]}
        with serve(routes) as outside:
            async with SafeClient(address_policy=_loopback_is_public) as client:
                with pytest.raises(errors.BlockedAddress) as caught:
                    await client.get(outside.url())
        assert outside.hits == {"/": 1}
        assert inside.hits == {}
    assert "redirect to" in str(caught.value)


async def test_allowed_private_network_follows_redirects_and_keeps_history() -> None:
    routes = {"/": [Reply(301, b"", {"Location": "/home"})], "/home": [Reply(body=b"hi")]}
    with serve(routes) as site:
        async with SafeClient(allow_private_networks=True) as client:
            response = await client.get(site.url())
    assert response.status_code == 200
    assert response.content == b"hi"
    assert response.url == site.url("/home")
    assert [(hop.url, hop.status_code) for hop in response.history] == [(site.url(), 301)]


async def test_redirect_loop_stops() -> None:
    with serve({"/": [Reply(302, b"", {"Location": "/"})]}) as site:
        async with SafeClient(allow_private_networks=True, max_redirects=3) as client:
            with pytest.raises(errors.TooManyRedirects):
                await client.get(site.url())
        assert site.hits["/"] == 4


async def test_gzip_bomb_is_cut_at_the_decoded_cap() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    with serve({"/": [Reply(body=bomb, headers=headers)]}) as site:
        async with SafeClient(allow_private_networks=True, max_bytes=1_000_000) as client:
            with pytest.raises(errors.ResponseTooLarge):
                await client.get(site.url())


async def test_gzip_body_under_the_cap_is_decoded() -> None:
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
    body = gzip.compress("<p>café</p>".encode())
    with serve({"/": [Reply(body=body, headers=headers)]}) as site:
        async with SafeClient(allow_private_networks=True) as client:
            response = await client.get(site.url())
    assert response.text == "<p>café</p>"


async def test_slow_site_times_out_as_retryable() -> None:
    with serve({"/": [Reply(delay=3)]}) as site:
        async with SafeClient(allow_private_networks=True, timeout=0.5) as client:
            with pytest.raises(errors.FetchTimeout) as caught:
                await client.get(site.url())
    assert caught.value.retryable


async def test_unresolvable_and_refused_hosts() -> None:
    async with SafeClient(allow_private_networks=True) as client:
        with pytest.raises(errors.UnresolvableHost) as unresolvable:
            await client.get("http://no-such-host.invalid/")
        with serve({}) as site:
            port = site.port
        with pytest.raises(errors.ConnectionFailed) as refused:
            await client.get(f"http://127.0.0.1:{port}/")
    assert not unresolvable.value.retryable
    assert refused.value.retryable


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (429, True), (503, True)])
async def test_error_statuses(status: int, retryable: bool) -> None:
    with serve({"/": [Reply(status)]}) as site:
        async with SafeClient(allow_private_networks=True) as client:
            response = await client.get(site.url())
    with pytest.raises(errors.HTTPStatusError) as caught:
        response.raise_for_status()
    assert caught.value.status_code == status
    assert caught.value.retryable is retryable


def test_lead_urls_get_a_scheme_and_are_checked() -> None:
    assert lead_url(" bobsplumbing.example ") == "http://bobsplumbing.example"
    assert lead_url("https://bobsplumbing.example/home") == "https://bobsplumbing.example/home"
    assert lead_url(" shop.example ").startswith("http://shop.example")
    for bad in ("ftp://shop.example/", "http://", "https://user:pw@shop.example/"):
        with pytest.raises(errors.InvalidURL):
            lead_url(bad)
