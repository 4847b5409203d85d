"""The demo sites keep the promises their catalog entries make, over real sockets and real TLS."""

from __future__ import annotations

import contextlib
import csv
import html
import ipaddress
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from cryptography import x509

from leadshop.demo.ca import _reusable, ensure_demo_ca
from leadshop.demo.catalog import (
    CATALOG,
    HEAVY_COPYRIGHT_YEAR,
    HEAVY_PATH,
    HEAVY_SCRIPT_DELAY,
    HEAVY_SCRIPTS,
    LEAN_PATH,
    sri,
)
from leadshop.demo.sites import DemoSites, write_leads_csv

REPO = Path(__file__).resolve().parents[2]
SIX_MONTHS = 15_552_000
SECURITY_HEADERS = (
    "content-security-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
)
SLUGS = [spec.slug for spec in CATALOG]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with DemoSites(tmp_path_factory.mktemp("demo-ca")) as sites:
        yield sites


@pytest.fixture(scope="module")
def client(demo):
    with httpx.Client(verify=demo.ca.client_context(), timeout=5) as c:
        yield c


def home(client: httpx.Client, demo: DemoSites, slug: str) -> httpx.Response:
    response = client.get(demo.site(slug).url, follow_redirects=True)
    assert response.status_code == 200
    return response


def cookies(response) -> dict[str, set[str]]:
    """Cookie name -> its attributes, lower-cased, with values (``samesite=lax``)."""
    parsed = {}
    for raw in response.headers.get_list("set-cookie"):
        name, *attributes = (part.strip() for part in raw.split(";"))
        parsed[name.split("=", 1)[0]] = {a.lower() for a in attributes}
    return parsed


def csp(response) -> dict[str, list[str]]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


def max_age(response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers["strict-transport-security"])
    assert match
    return int(match[1])


def attributes(page: str, tag: str, attribute: str) -> list[str]:
    return re.findall(rf'<{tag}\b[^>]*\b{attribute}="([^"]+)"', page)


def test_catalog_spreads_grades_from_a_to_f():
    assert 5 <= len(CATALOG) <= 7
    assert len(set(SLUGS)) == len(SLUGS)
    assert {spec.grade[0] for spec in CATALOG} == {"A", "B", "C", "D", "F"}
    assert all(spec.expected.startswith(spec.grade + " (") for spec in CATALOG)


@pytest.mark.parametrize("slug", SLUGS)
def test_home_page_is_a_believable_business(client, demo, slug):
    site = demo.site(slug)
    response = home(client, demo, slug)
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert int(response.headers["content-length"]) == len(response.content)
    for text in (site.name, site.phone, site.address.split(",")[0]):
        assert html.escape(text) in page
    assert 'id="services"' in page and 'id="contact"' in page and "<form" in page
    assert re.search(r"&copy; \d{4} " + re.escape(html.escape(site.name)), page)
    assert 'href="tel:+1' in page


def test_https_site_redirects_then_locks_everything_down(client, demo):
    site = demo.site("harborview-dental")
    redirect = client.get(site.url)
    assert redirect.status_code == 301
    target = urlsplit(redirect.headers["location"])
    assert (target.scheme, target.hostname) == ("https", urlsplit(site.url).hostname)

    page = client.get(redirect.headers["location"])
    assert page.status_code == 200
    assert max_age(page) >= SIX_MONTHS
    policy = csp(page)
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in page.headers["permissions-policy"]
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert page.headers["cross-origin-resource-policy"] == "same-origin"
    (session,) = cookies(page).values()
    assert {"secure", "httponly", "samesite=lax"} <= session

    (script,) = re.findall(r"<script [^>]*integrity=[^>]*>", page.text)
    (src,) = attributes(script, "script", "src")
    (integrity,) = attributes(script, "script", "integrity")
    assert urlsplit(src).hostname != target.hostname  # a third-party origin...
    assert src.startswith("https://") and "crossorigin=" in script  # ...loaded securely
    assert src.rsplit("/", 1)[0] in policy["script-src"]
    assert sri(client.get(src).content) == integrity


def test_https_certificate_verifies_only_with_the_demo_ca(client, demo, monkeypatch):
    https_url = client.get(demo.site("harborview-dental").url).headers["location"]
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    plain_store = ssl.create_default_context(cafile=system if system.exists() else None)
    with (
        httpx.Client(verify=plain_store) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get(https_url)

    monkeypatch.setenv("SSL_CERT_FILE", str(demo.ca.trust_bundle))
    with httpx.Client() as trusting:  # what every LeadShop process does: trust via the env
        assert trusting.get(https_url).status_code == 200


def test_http_only_site_has_no_protection_at_all(client, demo):
    site = demo.site("sunrise-bakery")
    assert site.url.startswith("http://127.0.0.1:")
    response = client.get(site.url)
    assert response.status_code == 200
    assert not [h for h in SECURITY_HEADERS if h in response.headers]
    jar = cookies(response)
    assert "PHPSESSID" in jar
    assert all(not attrs & {"secure", "httponly"} for attrs in jar.values())
    assert not any(a.startswith("samesite") for attrs in jar.values() for a in attrs)
    assert response.headers["x-powered-by"].startswith("PHP/")
    assert 'name="viewport"' not in response.text


def test_mixed_content_site_loads_script_and_image_over_http(client, demo):
    site = demo.site("bella-napoli")
    assert site.url.startswith("https://localhost:")
    response = home(client, demo, "bella-napoli")
    assert "'unsafe-inline'" in csp(response)["default-src"]
    insecure = [
        url
        for tag, attr in (("script", "src"), ("img", "src"))
        for url in attributes(response.text, tag, attr)
        if url.startswith("http://")
    ]
    assert len(insecure) == 2
    assert all(client.get(url).status_code == 200 for url in insecure)
    assert not re.search(r"<script[^>]*integrity", response.text)


def test_middling_site_gets_some_headers_right(client, demo):
    redirect = client.get(demo.site("oak-iron-plumbing").url)
    assert redirect.status_code == 301
    response = client.get(redirect.headers["location"])
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert max_age(response) >= SIX_MONTHS
    assert "content-security-policy" not in response.headers
    assert cookies(response)["sessionid"] == {"path=/", "httponly"}


def test_cors_site_reflects_any_origin_with_credentials(client, demo):
    https_url = client.get(demo.site("greenleaf-landscaping").url).headers["location"]
    evil = "https://evil.example"
    preflight = client.options(
        https_url, headers={"Origin": evil, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == evil
    assert preflight.headers["access-control-allow-credentials"] == "true"
    page = client.get(https_url)
    assert page.headers["access-control-allow-origin"] == "*"
    assert page.headers["access-control-allow-credentials"] == "true"
    assert "content-security-policy" not in page.headers
    assert '<meta http-equiv="Content-Security-Policy"' in page.text


def test_nearly_good_site_falls_short_of_the_bonus(client, demo):
    redirect = client.get(demo.site("northside-auto").url)
    assert redirect.status_code == 302
    response = client.get(redirect.headers["location"])
    assert max_age(response) < SIX_MONTHS
    policy = csp(response)
    assert "'unsafe-inline'" in policy["style-src"]
    assert "'unsafe-inline'" not in policy["default-src"] and "script-src" not in policy
    assert "frame-ancestors" in policy
    assert "x-content-type-options" not in response.headers
    assert all("secure" in attrs for attrs in cookies(response).values())


@pytest.mark.parametrize("slug", SLUGS)
def test_site_serves_its_assets_a_404_head_and_forms(client, demo, slug):
    page = home(client, demo, slug)
    base = str(page.url)
    robots = client.get(urljoin(base, "/robots.txt"))
    assert robots.status_code == 200
    assert robots.headers["content-type"].startswith("text/plain")
    assert "User-agent: *" in robots.text
    icon = client.get(urljoin(base, "/favicon.ico"))
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content.startswith(b"\x00\x00\x01\x00") and len(icon.content) < 1024

    referenced = [
        *attributes(page.text, "img", "src"),
        *attributes(page.text, "script", "src"),
        *attributes(page.text, "link", "href"),
    ]
    for ref in referenced:
        asset = client.get(urljoin(base, ref))
        assert asset.status_code == 200, ref
        assert int(asset.headers["content-length"]) == len(asset.content)
    for img in attributes(page.text, "img", "src"):
        assert client.get(urljoin(base, img)).content.startswith(b"\x89PNG")

    missing = client.get(urljoin(base, "/no-such-page"))
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    assert int(missing.headers["content-length"]) == len(missing.content)

    head = client.head(base)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == page.headers["content-length"]

    sent = client.post(urljoin(base, "/contact"), data={"name": "Ann", "message": "Hi"})
    assert (sent.status_code, sent.headers["location"]) == (303, "/#contact")


def test_speed_pages_sit_beside_one_site_and_no_link_leads_there(client, demo):
    (host,) = [spec for spec in CATALOG if spec.speed_pages]
    origin = urlsplit(demo.site(host.slug).url).netloc
    assert urlsplit(demo.heavy_page_url).netloc == urlsplit(demo.lean_page_url).netloc == origin
    assert urlsplit(demo.heavy_page_url).path == HEAVY_PATH
    assert urlsplit(demo.lean_page_url).path == LEAN_PATH
    for spec in CATALOG:
        page = home(client, demo, spec.slug).text
        assert HEAVY_PATH not in page and LEAN_PATH not in page
    assert [s.slug for s in demo.sites] == SLUGS  # the lead list is unchanged


def test_heavy_page_is_slow_big_and_unfit_for_phones(client, demo):
    response = client.get(demo.heavy_page_url)
    assert response.status_code == 200
    page = response.text
    head, body = page.split("</head>")
    assert 'name="viewport"' not in head
    assert "font: 10px" in head and "width: 1200px" in head  # tiny text, fixed desktop layout
    assert attributes(head, "script", "src") == list(HEAVY_SCRIPTS)
    assert not re.search(r"<script[^>]*\b(async|defer)\b", head)  # all render-blocking
    assert body.index('href="tel:') > body.index("<footer>")  # the number only at the bottom
    assert f"&copy; {HEAVY_COPYRIGHT_YEAR} " in body

    started = time.monotonic()
    script = client.get(urljoin(demo.heavy_page_url, HEAVY_SCRIPTS[0]))
    assert time.monotonic() - started >= HEAVY_SCRIPT_DELAY
    assert len(script.content) > 50_000
    banner = client.get(urljoin(demo.heavy_page_url, HEAVY_SCRIPTS[1])).text
    assert "insertBefore" in banner and "setTimeout" in banner  # content pushed in late

    (img,) = re.findall(r"<img\b[^>]*>", body)
    assert "width=" not in img and "height=" not in img  # no room kept: the page jumps
    (src,) = attributes(img, "img", "src")
    image = client.get(urljoin(demo.heavy_page_url, src)).content
    assert image.startswith(b"\x89PNG") and 1_000_000 < len(image) < 2_000_000


def test_lean_page_is_small_fast_and_made_for_phones(client, demo):
    started = time.monotonic()
    response = client.get(demo.lean_page_url)
    assert time.monotonic() - started < HEAVY_SCRIPT_DELAY
    page = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert len(response.content) < 4096
    for heavy in ("<script", "<img", 'rel="stylesheet"', "@font-face", "@import"):
        assert heavy not in page
    assert page.index('href="tel:') < page.index("</header>")  # call button on the first screen
    assert f"&copy; {datetime.now().year} " in page
    icon = client.get(urljoin(demo.lean_page_url, "/favicon.ico"))
    assert 'rel="icon"' in page and icon.status_code == 200


def test_write_leads_csv(demo, tmp_path):
    path = tmp_path / "out" / "leads.csv"
    write_leads_csv(path, demo.sites)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["name", "website", "phone", "address"]
    assert [(r["name"], r["website"]) for r in rows] == [(s.name, s.url) for s in demo.sites]


def test_stop_frees_ports_and_joins_threads(tmp_path):
    before = set(threading.enumerate())
    demo = DemoSites(tmp_path / "ca").start()
    ports = demo.ports
    idle = httpx.Client(verify=demo.ca.client_context())
    for site in demo.sites:  # leave keep-alive connections open, as browsers do
        idle.get(site.url, follow_redirects=True)
    started = time.monotonic()
    demo.stop()
    assert time.monotonic() - started < 3
    assert set(threading.enumerate()) - before == set()
    assert demo.sites == ()
    for port in ports:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
        with socket.socket() as rebind:
            rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            rebind.bind(("127.0.0.1", port))
    idle.close()


def test_base_port_gives_consecutive_ports(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        base = free.getsockname()[1]
    with DemoSites(tmp_path / "ca", base_port=base) as demo:
        assert demo.ports == tuple(range(base, base + len(demo.ports)))
        assert urlsplit(demo.sites[0].url).port == base


def test_ca_is_created_once_and_reissued_when_unusable(tmp_path):
    first = ensure_demo_ca(tmp_path)
    root = x509.load_pem_x509_certificate(first.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(first.server_cert.read_bytes())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert leaf.not_valid_before_utc <= datetime.now(UTC) < leaf.not_valid_after_utc
    assert first.server_key.stat().st_mode & 0o077 == 0
    bundle = first.trust_bundle.read_bytes()
    assert bundle.endswith(first.ca_cert.read_bytes())
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    if system.exists():
        assert bundle.startswith(system.read_bytes().rstrip(b"\n"))

    cert = first.server_cert.read_bytes()
    assert ensure_demo_ca(tmp_path).server_cert.read_bytes() == cert  # reused
    assert not _reusable(first, datetime.now(UTC) + timedelta(days=400))  # expiry is noticed

    foreign = ensure_demo_ca(tmp_path / "other").server_cert.read_bytes()
    first.server_cert.write_bytes(foreign)
    assert ensure_demo_ca(tmp_path).server_cert.read_bytes() not in (cert, foreign)
    first.server_key.write_text("garbage")
    ensure_demo_ca(tmp_path).server_context()  # reissued: the new key fits the new certificate


def test_servers_stay_quiet_on_bad_clients(client, demo, capfd):
    https_port = urlsplit(str(home(client, demo, "harborview-dental").url)).port
    plain_port = urlsplit(demo.site("sunrise-bakery").url).port
    for port, junk in (
        (https_port, b"GET / HTTP/1.1\r\n\r\n"),
        (plain_port, b"\x16\x03\x01junk\r\n\r\n"),
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(junk)
            with contextlib.suppress(ConnectionResetError):
                sock.recv(4096)
    for slug in SLUGS:
        home(client, demo, slug)
    assert capfd.readouterr().err == ""


def test_entry_point_serves_until_interrupted(tmp_path):
    leads = tmp_path / "leads.csv"
    command = [sys.executable, "-m", "leadshop.demo.sites", "--ca-dir", str(tmp_path / "ca")]
    process = subprocess.Popen(
        [*command, "--leads-csv", str(leads)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("Serving"):
            line = process.stdout.readline()
            assert line, "exited before serving"
            lines.append(line)
        urls = re.findall(r"(https?://\S+)", "".join(lines))
        assert len(urls) == len(CATALOG)
        context = ensure_demo_ca(tmp_path / "ca").client_context()
        assert httpx.get(urls[0], verify=context, follow_redirects=True).status_code == 200
        assert len(leads.read_text().splitlines()) == len(CATALOG) + 1
        assert any(line.startswith("export SSL_CERT_FILE=") for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=10)
        process.stdout.close()
    assert returncode == 0
