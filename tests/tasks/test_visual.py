"""The visual assessment: every result code from evidence builders (no browser), the score table,
the egress guard on loopback sockets, then Debian's Chromium against the demo's pages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from leadshop import errors
from leadshop.config import Settings, get_settings
from leadshop.demo.sites import DemoSites
from leadshop.egress import Egress
from leadshop.models import LeadRecord
from leadshop.net import IPAddress, address_kind
from tasks import visual
from tasks.registry import QUEUED_TIMEOUT_SECONDS
from tasks.visual import (
    BROWSER,
    CHECKS,
    MAX_SCREENSHOT_HEIGHT,
    MOBILE,
    SCORE_TABLE,
    THUMBNAIL_WIDTH,
    ContactAction,
    DeviceView,
    HostCheck,
    Result,
    Screenshot,
    VisualEvidence,
    artifacts_folder,
    assess,
    collect,
    copyright_year,
    error_for,
    judge,
    png_size,
    visual_task,
)
from tests import score_tables
from tests.fixtures_demo import demo_environment
from tests.sites import Reply, serve

R = Result
TODAY = dt.date(2025, 6, 1)
SITE = "https://shop.example/"
CALL = ContactAction(kind="call", label="Call (503) 555-0100", href="tel:+15035550100")


def view(device: str = "mobile", **changes: Any) -> DeviceView:
    """A device's visit that passes every check, with the given things changed."""
    width, height = (412, 823) if device == "mobile" else (1366, 768)
    fields: dict[str, Any] = {
        "device": device,
        "screen_width": width,
        "screen_height": height,
        "document_width": width,
        "document_height": 2000,
        "text_sizes": ((16.0, 900), (24.0, 100)),
        "tap_targets": ((380.0, 48.0), (120.0, 56.0), (48.0, 48.0)),
        "contact_actions": (CALL,),
        "images": 3,
        "screenshot": Screenshot(
            path=f"/artifacts/1/{device}.png",
            width=width,
            height=2000,
            thumbnail=f"/artifacts/1/{device}-thumbnail.png",
            thumbnail_width=THUMBNAIL_WIDTH,
            thumbnail_height=200,
        ),
    }
    return DeviceView(**{**fields, **changes})


def evidence(**changes: Any) -> VisualEvidence:
    """A site that passes every check, with the given things changed."""
    fields: dict[str, Any] = {
        "url": SITE,
        "final_url": SITE,
        "status": 200,
        "checked_on": TODAY,
        "viewport": "width=device-width, initial-scale=1",
        "copyright_text": "\u00a9 2024 Shop Example. All rights reserved.",
        "favicon": f"{SITE}favicon.ico",
        "desktop": view("desktop"),
        "mobile": view("mobile"),
    }
    return VisualEvidence(**{**fields, **changes})


def phone(**changes: Any) -> VisualEvidence:
    return evidence(mobile=view("mobile", **changes))


def desktop(**changes: Any) -> VisualEvidence:
    return evidence(desktop=view("desktop", **changes))


# One case per result code, each changing one thing from the passing site.
CASES: dict[Result, VisualEvidence] = {
    R.VIEWPORT_RESPONSIVE: evidence(),
    R.VIEWPORT_BLOCKS_ZOOM: evidence(viewport="width=device-width, maximum-scale=1"),
    R.VIEWPORT_FIXED_WIDTH: evidence(viewport="width=1024"),
    R.VIEWPORT_NOT_SET: evidence(viewport=None),
    R.MOBILE_FITS_SCREEN: evidence(),
    R.MOBILE_HORIZONTAL_SCROLL: phone(document_width=980),
    R.TEXT_LEGIBLE: evidence(),
    R.TEXT_PARTLY_TOO_SMALL: phone(text_sizes=((16.0, 700), (11.5, 300))),
    R.TEXT_MOSTLY_TOO_SMALL: phone(text_sizes=((16.0, 200), (10.0, 800))),
    R.TAP_TARGETS_SIZED: evidence(),
    R.TAP_TARGETS_PARTLY_TOO_SMALL: phone(tap_targets=((380.0, 48.0), (90.0, 48.0), (60.0, 30.0))),
    R.TAP_TARGETS_MOSTLY_TOO_SMALL: phone(tap_targets=((380.0, 48.0), (60.0, 30.0), (24.0, 24.0))),
    R.IMAGES_LOAD: evidence(),
    R.IMAGES_BROKEN: desktop(broken_images=(f"{SITE}img/logo.png",)),
    R.CONSOLE_CLEAN: evidence(),
    R.CONSOLE_ERRORS: phone(console_errors=("Uncaught TypeError: menu is undefined",)),
    R.MIXED_CONTENT_NONE: evidence(),
    R.MIXED_CONTENT_PAGE_NOT_HTTPS: evidence(
        url="http://shop.example/",
        final_url="http://shop.example/",
        desktop=view("desktop", insecure_requests=("http://cdn.example/app.js",)),
    ),
    R.MIXED_CONTENT_FOUND: desktop(insecure_requests=("http://cdn.example/app.js",)),
    R.CONTACT_CALL_ABOVE_FOLD: evidence(),
    R.CONTACT_ACTION_ABOVE_FOLD: phone(
        contact_actions=(ContactAction(kind="contact", label="Contact us", href="/contact"),)
    ),
    R.CONTACT_NOT_ABOVE_FOLD: phone(contact_actions=()),
    R.COPYRIGHT_CURRENT: evidence(),
    R.COPYRIGHT_NOT_FOUND: evidence(copyright_text="Shop Example, 1 Main St, Portland"),
    R.COPYRIGHT_OUTDATED: evidence(copyright_text="Copyright \u00a9 2012-2019 Shop Example"),
    R.FAVICON_PRESENT: evidence(),
    R.FAVICON_MISSING: evidence(favicon=None),
}


def owner(result: Result):
    return score_tables.owner(CHECKS, result)


# --- Judge, without a browser -------------------------------------------------------------------


def test_score_table_result_codes_and_checks_match_both_ways():
    score_tables.assert_codes_match(SCORE_TABLE, Result, CHECKS, CASES)


def test_score_table_wording_and_points():
    score_tables.assert_wording_and_points(SCORE_TABLE)


@pytest.mark.parametrize("result", list(Result), ids=str)
def test_each_result_code_from_evidence(result: Result):
    score_tables.assert_only_its_check_changes(result, CASES[result], CHECKS, SCORE_TABLE, judge)


def test_a_site_that_passes_everything():
    envelope = judge(evidence())
    assert (envelope.score, envelope.grade) == (100, "A+")
    assert envelope.assessment == "visual" and envelope.source == "playwright"
    assert envelope.status == "completed" and not envelope.findings
    assert envelope.summary.endswith(f"all {len(CHECKS)} checks pass.")
    shots = envelope.data["mobile"]["screenshot"]
    assert shots["path"].endswith("mobile.png") and shots["thumbnail_width"] == THUMBNAIL_WIDTH


def test_a_site_that_fails_everything_scores_zero_worst_first():
    broken = evidence(
        viewport=None,
        copyright_text="(c) 2009",
        favicon=None,
        desktop=view("desktop", broken_images=("x.png",), insecure_requests=("http://a/",)),
        mobile=view(
            "mobile",
            scale=0.42,
            document_width=980,
            text_sizes=((16.0, 100),),
            tap_targets=((100.0, 40.0),),
            contact_actions=(),
            console_errors=("boom",),
        ),
    )
    envelope = judge(broken)
    assert (envelope.score, envelope.grade) == (0, "F")
    assert len(envelope.findings) == len(CHECKS)
    modifiers = [SCORE_TABLE[Result(finding.id)].modifier for finding in envelope.findings]
    assert modifiers == sorted(modifiers)
    worst = SCORE_TABLE[Result(envelope.findings[0].id)].description
    assert envelope.summary == (
        f"Grade F (0/100) for how the site looks and works on phones and desktops: "
        f"{len(CHECKS)} of {len(CHECKS)} checks fail, most seriously: {worst}"
    )


def test_zoomed_out_desktop_layout_makes_text_and_targets_small():
    """A phone showing a 980 px layout at 0.42 turns 16 px text into 6.7 px."""
    shrunk = phone(scale=0.42)
    assert owner(R.TEXT_LEGIBLE).check(shrunk).result is R.TEXT_MOSTLY_TOO_SMALL
    assert owner(R.TAP_TARGETS_SIZED).check(shrunk).result is R.TAP_TARGETS_MOSTLY_TOO_SMALL


@pytest.mark.parametrize(
    ("content", "result"),
    [
        ("width=device-width, initial-scale=1", R.VIEWPORT_RESPONSIVE),
        ("initial-scale=1.0", R.VIEWPORT_RESPONSIVE),
        ("width=device-width; initial-scale=1; maximum-scale=5", R.VIEWPORT_RESPONSIVE),
        ("width=device-width, maximum-scale=2.0", R.VIEWPORT_RESPONSIVE),
        ("WIDTH=DEVICE-WIDTH, USER-SCALABLE=NO", R.VIEWPORT_BLOCKS_ZOOM),
        ("width=device-width, user-scalable=0", R.VIEWPORT_BLOCKS_ZOOM),
        ("width=device-width, maximum-scale=1.5", R.VIEWPORT_BLOCKS_ZOOM),
        ("width=1200, initial-scale=1", R.VIEWPORT_FIXED_WIDTH),
        ("", R.VIEWPORT_NOT_SET),
        ("shrink-to-fit=no", R.VIEWPORT_NOT_SET),
    ],
)
def test_viewport_tags(content: str, result: Result):
    assert owner(result).check(evidence(viewport=content)).result is result


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("\u00a9 2017 Sunrise Bakery & Cafe. All rights reserved.", 2017),
        ("Copyright 2009 - 2023 Oak & Iron", 2023),
        ("copyright \u00a9 2014\u20132019", 2019),
        ("(c) 2021 Shop. Also (C) 2016 a partner.", 2021),
        ("Open since 1987. Call 555-2024.", None),
    ],
)
def test_copyright_year(text: str, year: int | None):
    assert copyright_year(text) == year


def test_copyright_counts_years_from_the_day_checked():
    notice = evidence(copyright_text="\u00a9 2022 Shop")
    assert owner(R.COPYRIGHT_CURRENT).check(notice).result is R.COPYRIGHT_OUTDATED
    next_year = notice.model_copy(update={"checked_on": dt.date(2024, 1, 2)})
    assert owner(R.COPYRIGHT_CURRENT).check(next_year).result is R.COPYRIGHT_CURRENT


def test_mixed_content_merges_both_visits():
    both = evidence(
        desktop=view("desktop", insecure_requests=("http://a/x.js",)),
        mobile=view("mobile", insecure_requests=("http://a/x.js", "http://a/y.png")),
    )
    outcome = owner(R.MIXED_CONTENT_FOUND).check(both)
    assert outcome.data == ["http://a/x.js", "http://a/y.png"]


@pytest.mark.parametrize(
    ("message", "kind", "retryable"),
    [
        ("net::ERR_NAME_NOT_RESOLVED at http://x/", errors.UnresolvableHost, False),
        ("net::ERR_BLOCKED_BY_CLIENT at http://x/", errors.BlockedAddress, False),
        ("net::ERR_CERT_AUTHORITY_INVALID at https://x/", errors.TLSError, False),
        ("net::ERR_SSL_PROTOCOL_ERROR at https://x/", errors.TLSError, False),
        ("net::ERR_TOO_MANY_REDIRECTS at http://x/", errors.TooManyRedirects, False),
        ("net::ERR_CONNECTION_REFUSED at http://x/", errors.ConnectionFailed, True),
        ("net::ERR_CONNECTION_RESET at http://x/", errors.ConnectionFailed, True),
        ("net::ERR_EMPTY_RESPONSE at http://x/", errors.ConnectionFailed, True),
        ("net::ERR_TUNNEL_CONNECTION_FAILED at https://x/", errors.ConnectionFailed, True),
        ("net::ERR_TIMED_OUT at http://x/", errors.FetchTimeout, True),
        ("net::ERR_CONNECTION_TIMED_OUT at http://x/", errors.FetchTimeout, True),
        ("Target page, context or browser has been closed", errors.ConnectionFailed, True),
        ("net::ERR_INVALID_RESPONSE at http://x/", errors.FetchError, False),
    ],
)
def test_navigation_errors_say_whether_to_retry(message: str, kind: type, retryable: bool):
    error = error_for(message, "http://x/")
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.url == "http://x/"


def test_artifacts_go_under_the_lead_id_or_the_host(tmp_path: Path):
    settings = Settings(artifacts_dir=tmp_path)
    lead = LeadRecord(id=7, name="Shop", website="shop.example")
    assert artifacts_folder(settings, lead, "http://shop.example/") == tmp_path / "7"
    unsaved = lead.model_copy(update={"id": 0})
    folder = artifacts_folder(settings, unsaved, "https://localhost:8443/x")
    assert folder == tmp_path / "localhost-8443"


def test_visual_task_is_registered_with_the_shared_policy():
    assert visual_task.name == "visual"
    assert visual_task.retries == 3
    assert visual_task.timeout_seconds == QUEUED_TIMEOUT_SECONDS  # it queues for the browser


# --- The private-address guards, on loopback sockets ----------------------------------------------


async def test_host_check_refuses_private_and_unresolvable_hosts():
    strict = HostCheck(Egress(allow_private=False))
    assert isinstance(await strict.refusal("http://127.0.0.1:9/"), errors.BlockedAddress)
    assert isinstance(await strict.refusal("https://[::1]/"), errors.BlockedAddress)
    assert isinstance(await strict.refusal("http://x.invalid/"), errors.UnresolvableHost)
    assert isinstance(await strict.refusal("ftp://127.0.0.1/"), errors.InvalidURL)
    assert await strict.refusal("data:image/png;base64,AAAA") is None
    assert await HostCheck(Egress(allow_private=True)).refusal("http://127.0.0.1:9/") is None


# --- Debian's Chromium against real pages (slow) --------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSites]:
    """The demo sites, trusted and reachable the way ``make demo`` sets things up."""
    folder = tmp_path_factory.mktemp("demo")
    with demo_environment(folder) as sites, pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEADSHOP_ARTIFACTS_DIR", str(folder / "artifacts"))
        get_settings.cache_clear()
        BROWSER.shutdown()  # the browser takes SSL_CERT_FILE at launch
        yield sites
        BROWSER.shutdown()


@pytest.fixture(autouse=True)
def no_context_left_open() -> Iterator[None]:
    """After every test, whatever it did, the shared browser holds no context."""
    yield
    browser = BROWSER.browser
    deadline = time.monotonic() + 10
    while browser is not None and browser.is_connected() and browser.contexts:
        assert time.monotonic() < deadline, f"{len(browser.contexts)} contexts left open"
        time.sleep(0.1)


def lead(url: str, number: int = 1) -> LeadRecord:
    return LeadRecord(id=number, name="Demo lead", website=url)


def check_screenshots(data: dict[str, Any]) -> None:
    """Files exist with the pixel sizes the envelope names: full pages as each device shows
    them (desktop 1366 px, phone 412 px at 1.75x), thumbnails 320 px wide."""
    for device, width in (("desktop", 1366), ("mobile", round(412 * MOBILE.scale_factor))):
        shot = data[device]["screenshot"]
        assert png_size(Path(shot["path"]).read_bytes()) == (shot["width"], shot["height"])
        assert shot["width"] == width and 0 < shot["height"] <= MAX_SCREENSHOT_HEIGHT
        thumbnail = png_size(Path(shot["thumbnail"]).read_bytes())
        assert thumbnail == (THUMBNAIL_WIDTH, shot["thumbnail_height"])


@pytest.mark.slow
async def test_lean_and_heavy_demo_pages_grade_far_apart(demo: DemoSites):
    started = time.monotonic()
    lean = await assess(lead(demo.lean_page_url, 1))
    heavy = await assess(lead(demo.heavy_page_url, 2))
    print(f"lean + heavy, launch included: {time.monotonic() - started:.1f} s")
    assert (lean.score, lean.grade) == (100, "A+"), lean.findings
    assert heavy.score is not None and heavy.score <= 20 and heavy.grade == "F"
    assert {
        "viewport-not-set",
        "mobile-horizontal-scroll",
        "text-mostly-too-small",
        "tap-targets-mostly-too-small",
        "contact-not-above-fold",
        "copyright-outdated",
    } <= {finding.id for finding in heavy.findings}
    for envelope in (lean, heavy):
        check_screenshots(envelope.data)
        assert Path(envelope.data["desktop"]["screenshot"]["path"]).parent.name in ("1", "2")
    assert heavy.data["mobile"]["scale"] < 0.5  # the phone shrank a 1200 px layout
    assert heavy.data["desktop"]["load_ms"] > 800  # its scripts held the page back


@pytest.mark.slow
async def test_https_demo_site_is_trusted_through_ssl_cert_file(demo: DemoSites):
    site = demo.site("harborview-dental")  # http:// redirects to https://localhost
    envelope = await assess(lead(site.url))
    assert envelope.data["url"].startswith("https://localhost:")
    assert envelope.data["checks"]["mixed-content"]["result"] == "mixed-content-none"

    mixed = await assess(lead(demo.site("bella-napoli").url))
    insecure = mixed.data["checks"]["mixed-content"]["data"]
    assert {url.rsplit("/", 1)[1] for url in insecure} == {"chat-widget.js", "trust-badge.png"}


@pytest.mark.slow
async def test_https_demo_site_fails_without_its_ca(demo: DemoSites, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE")
    BROWSER.shutdown()
    try:
        with pytest.raises(errors.TLSError, match="ERR_CERT_AUTHORITY_INVALID") as refused:
            await assess(lead(demo.site("harborview-dental").url))
        assert not refused.value.retryable
    finally:
        BROWSER.shutdown()


@pytest.mark.slow
async def test_page_height_is_bounded(demo: DemoSites):
    tall = b'<!doctype html><meta name="viewport" content="width=device-width">' + (
        b'<div style="height: 30000px">tall</div>'
    )
    with serve({"/": [Reply(body=tall)]}) as site:
        envelope = await assess(lead(site.url("/")))
    check_screenshots(envelope.data)
    assert envelope.data["desktop"]["screenshot"]["height"] == MAX_SCREENSHOT_HEIGHT
    assert envelope.data["mobile"]["screenshot"]["height"] == MAX_SCREENSHOT_HEIGHT


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.mark.slow
async def test_private_address_is_refused_before_the_browser(demo: DemoSites, public_only):
    with pytest.raises(errors.BlockedAddress, match="loopback") as refused:
        await assess(lead(demo.lean_page_url))
    assert not refused.value.retryable


def only_127_0_0_1_is_public(ip: IPAddress) -> str | None:
    """Stages a public site on 127.0.0.1; 127.0.0.2 stays what it is, a loopback address."""
    return None if ip == ipaddress.ip_address("127.0.0.1") else address_kind(ip)


@pytest.mark.slow
async def test_redirects_and_requests_to_private_addresses_never_leave(
    demo: DemoSites, public_only: Settings, tmp_path: Path
):
    """Playwright's route never sees redirect hops; the egress proxy stops them."""
    with serve({}, host="127.0.0.2", default=Reply(body=b"internal")) as internal:
        page = (
            f'<!doctype html><img src="/pixel.png"><img src="{internal.url("/direct.png")}">'
        ).encode()
        routes = {
            "/": [Reply(body=page)],
            "/pixel.png": [Reply(302, b"", {"Location": internal.url("/redirected.png")})],
            "/away": [Reply(302, b"", {"Location": internal.url("/admin")})],
        }
        with serve(routes) as public:
            evidence = await collect(
                public.url("/"), public_only, tmp_path, only_127_0_0_1_is_public
            )
            with pytest.raises(errors.BlockedAddress, match=r"127\.0\.0\.2") as refused:
                await collect(public.url("/away"), public_only, tmp_path, only_127_0_0_1_is_public)
    assert internal.hits == {}
    assert not refused.value.retryable
    assert evidence.desktop.blocked_requests == (internal.url("/direct.png"),)
    assert len(evidence.desktop.broken_images) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reply", "kind", "retryable"),
    [
        (Reply(404, b"<h1>Not here</h1>"), errors.HTTPStatusError, False),
        (Reply(404, b""), errors.HTTPStatusError, False),
        (Reply(503, b"<h1>Busy</h1>"), errors.HTTPStatusError, True),
    ],
)
async def test_error_statuses_fail_the_visit(demo: DemoSites, reply: Reply, kind, retryable):
    with serve({"/": [reply]}) as site, pytest.raises(kind) as failed:
        await assess(lead(site.url("/")))
    assert failed.value.retryable is retryable


@pytest.mark.slow
async def test_refused_connection_is_worth_a_retry(demo: DemoSites):
    with serve({}) as site:
        closed = site.url("/")
    with pytest.raises(errors.ConnectionFailed) as refused:
        await assess(lead(closed))
    assert refused.value.retryable


async def test_a_close_left_unanswered_is_abandoned_and_the_browser_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(visual, "CLOSE_TIMEOUT", 0.2)
    monkeypatch.setattr(BROWSER, "_wedged", False)
    never = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    await visual._close(never)
    assert time.monotonic() - started < 5
    assert never.cancelled()
    assert BROWSER.is_wedged  # the next visit launches a new browser

    monkeypatch.setattr(BROWSER, "_wedged", False)
    await visual._close(asyncio.sleep(0))  # an answered close leaves the browser alone
    assert not BROWSER.is_wedged


def processes(name: str) -> list[psutil.Process]:
    """This process's living descendants called ``name`` (exited ones may linger as zombies)."""
    found = []
    for process in psutil.Process(os.getpid()).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if name in process.name() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def chromium_processes(kind: str = "") -> list[psutil.Process]:
    """Chromium's processes; ``kind`` "renderer", "zygote"..., or "main": the one Playwright
    drives over a pipe."""
    found = []
    for process in processes("chromium"):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.cmdline())
            own = command.split("--type=")[1].split()[0] if "--type=" in command else ""
            own = "main" if "--remote-debugging-pipe" in command else own
            if kind in ("", own):
                found.append(process)
    return found


def renderers() -> int:
    return len(chromium_processes("renderer"))


async def eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.fixture
async def warm_browser(demo: DemoSites) -> AsyncIterator[None]:
    await assess(lead(demo.lean_page_url))
    yield


@pytest.mark.slow
async def test_nothing_stays_open_after_errors_cancellation_and_shutdown(warm_browser):
    browser = BROWSER.browser
    assert browser is not None and browser.contexts == []
    baseline = renderers()

    with (
        serve({"/": [Reply(500, b"<h1>Oops</h1>")]}) as broken,
        pytest.raises(errors.HTTPStatusError),
    ):
        await assess(lead(broken.url("/")))
    assert browser.contexts == []

    with serve({"/": [Reply(delay=10)]}) as slow:
        visit = asyncio.create_task(assess(lead(slow.url("/"))))
        assert await eventually(lambda: len(browser.contexts) == 2)
        visit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await visit
        assert await eventually(lambda: browser.contexts == [])
    assert await eventually(lambda: renderers() <= baseline)

    BROWSER.shutdown()
    assert BROWSER.browser is None
    assert await eventually(lambda: not chromium_processes())
    assert processes("node") == []  # Playwright's driver


@pytest.mark.slow
async def test_browser_is_reused_and_relaunched_after_it_died(warm_browser, demo: DemoSites):
    first = BROWSER.browser
    await assess(lead(demo.lean_page_url))
    assert BROWSER.browser is first  # one browser per process, reused
    (main,) = chromium_processes("main")
    main.kill()
    assert await eventually(lambda: first is not None and not first.is_connected())
    envelope = await assess(lead(demo.lean_page_url))
    assert envelope.status == "completed"
    assert BROWSER.browser is not first


@pytest.mark.slow
async def test_one_browser_serves_every_event_loop_of_the_process(warm_browser, demo: DemoSites):
    """Dask worker threads and ``leadshop check`` each run their own loop; they share one
    Chromium, which the loops' own ends do not close."""
    first = BROWSER.browser
    urls = [demo.lean_page_url, demo.site("northside-auto").url, demo.site("bella-napoli").url]
    threads = [
        asyncio.to_thread(asyncio.run, assess(lead(url, number)))
        for number, url in enumerate(urls, 10)
    ]
    envelopes = await asyncio.gather(*threads)
    assert [envelope.status for envelope in envelopes] == ["completed"] * len(urls)
    assert BROWSER.browser is first and first is not None and first.is_connected()
    assert len(chromium_processes("main")) == 1
