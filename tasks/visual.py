"""The visual assessment: how the site looks and works on a phone and on a desktop.

A lead's customers mostly meet its website on a phone, so the salesperson's question is "does
this site work on my phone, and does it look cared for?". Debian's Chromium, driven by Playwright,
opens the site as a desktop (1366x768) and as a phone (412x823 at 1.75x, touch, mobile user
agent), takes full-page screenshots and thumbnails for the report, and reads what a visitor would
notice: a desktop layout shrunk onto the phone, sideways scrolling, tiny text and links, broken
images, script errors, insecure content, no way to call from the first screen, a stale copyright
year, no favicon.

Shape, as in the security assessment: ``collect`` does all the I/O and returns ``VisualEvidence``
(plain data); one pure check per concern turns evidence into a result code; points and wording
live only in ``SCORE_TABLE``; ``judge`` adds them up: 100 plus every check's modifier (all zero or
negative), clamped to 0..100, graded on the product's chart.

The browser (one per worker process):

* Playwright's objects belong to the event loop that made them, and every Dask worker thread, like
  every ``asyncio.run`` of ``leadshop check``, brings its own loop. So one Chromium lives on a loop
  of its own thread (``BrowserHost``); assessments hand it their work and await the answer. It is
  launched on first use under an asyncio lock, relaunched when it has died, closed at exit.
* A lead's desktop and phone visits run side by side, each in a fresh context (the two need
  different ones), closed with its page in ``finally`` whatever happens, cancellation included;
  ``LEADS_AT_ONCE`` bounds the pages open in one browser.

Keeping the browser away from private addresses (unless ``allow_private_networks``):

* the lead's host is checked with ``resolve_checked`` before Chromium sees the URL;
* every request the page makes passes a route handler that checks its host (once per host per
  visit) and aborts refused ones, which are listed in ``data``;
* Playwright does not route redirect hops, and Chromium would resolve names again after our check.
  So each context also uses ``EgressGuard`` as its proxy, which resolves and checks every host
  itself and connects to the address it checked, as ``SafeClient`` does.

``data``: ``url`` and ``status_code`` of the page graded; ``checks``: per check its ``result``
code, ``pass``, ``score_modifier`` and what it measured; ``desktop`` and ``mobile``: the
``screenshot`` (PNG ``path``, ``width`` and ``height`` in pixels, up to ``MAX_SCREENSHOT_HEIGHT``
tall, and a ``thumbnail`` of the first screen ``THUMBNAIL_WIDTH`` wide, rendered by Chromium at
a smaller scale), ``document_width``/``document_height`` in CSS pixels, the ``scale`` the page
opened at, ``load_ms``, ``layout_shift`` (cumulative) and ``blocked_requests``. Screenshots go
to ``settings.artifacts_dir/<lead id>/{desktop,mobile}[-thumbnail].png``.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import datetime as dt
import re
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    CDPSession,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from pydantic import BaseModel, ConfigDict

from leadshop.browser import chromium_path, launch_env, launch_flags
from leadshop.config import Settings, get_settings
from leadshop.egress import PORTS, Egress, EgressGuard, host_port
from leadshop.errors import (
    BlockedAddress,
    ConnectionFailed,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    TLSError,
    TooManyRedirects,
    UnresolvableHost,
)
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.net import AddressPolicy, address_kind, lead_url
from leadshop.scoring import Check, Outcome, Score, grade_for, judge_checks
from tasks.registry import QUEUED_TIMEOUT_SECONDS, assessment_task

ALGORITHM_VERSION = "visual/1"
BASE_SCORE = 100

MIN_TEXT_PX = 12  # smaller text, as a phone shows it, is hard to read
MIN_TAP_PX = 48  # Android's and Lighthouse's minimum touch target
SOME_SMALL_TEXT = 0.2  # shares of the page's characters
MOST_SMALL_TEXT = 0.5
SOME_SMALL_TAPS = 0.25  # shares of the visible tap targets
MOST_SMALL_TAPS = 0.5
MIN_ZOOM_LIMIT = 2.0  # a maximum-scale below this stops people with poor sight from zooming
COPYRIGHT_STALE_YEARS = 2  # a notice older than this many years makes the site look abandoned

MAX_SCREENSHOT_HEIGHT = 10_000  # image pixels: a 1366 px wide page that tall is ~55 MB to render
THUMBNAIL_WIDTH = 320
NAVIGATION_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 15_000
SETTLE_MS = 3_000  # after "load", how long to wait for the network to go quiet
LAUNCH_TIMEOUT_MS = 30_000
LEADS_AT_ONCE = 2  # in one browser: each lead opens two pages at once
# A lead's own bound once it has its browser slot; the task allows QUEUED_TIMEOUT_SECONDS in all,
# as the wait for a slot is a queue, not a hang. A slow site ends as our FetchTimeout.
LEAD_TIMEOUT_SECONDS = 80.0
SHUTDOWN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0  # for one page or context to close; longer means the browser is wedged
MAX_LISTED = 20  # URLs or messages kept per list in the evidence
MAX_TEXT = 300  # characters kept per message

T = TypeVar("T")


# --- Result codes and the score table ---------------------------------------------------------


class Result(StrEnum):
    VIEWPORT_RESPONSIVE = "viewport-responsive"
    VIEWPORT_BLOCKS_ZOOM = "viewport-blocks-zoom"
    VIEWPORT_FIXED_WIDTH = "viewport-fixed-width"
    VIEWPORT_NOT_SET = "viewport-not-set"

    MOBILE_FITS_SCREEN = "mobile-fits-screen"
    MOBILE_HORIZONTAL_SCROLL = "mobile-horizontal-scroll"

    TEXT_LEGIBLE = "text-legible"
    TEXT_PARTLY_TOO_SMALL = "text-partly-too-small"
    TEXT_MOSTLY_TOO_SMALL = "text-mostly-too-small"

    TAP_TARGETS_SIZED = "tap-targets-sized"
    TAP_TARGETS_PARTLY_TOO_SMALL = "tap-targets-partly-too-small"
    TAP_TARGETS_MOSTLY_TOO_SMALL = "tap-targets-mostly-too-small"

    IMAGES_LOAD = "images-load"
    IMAGES_BROKEN = "images-broken"

    CONSOLE_CLEAN = "console-clean"
    CONSOLE_ERRORS = "console-errors"

    MIXED_CONTENT_NONE = "mixed-content-none"
    MIXED_CONTENT_PAGE_NOT_HTTPS = "mixed-content-page-not-https"
    MIXED_CONTENT_FOUND = "mixed-content-found"

    CONTACT_CALL_ABOVE_FOLD = "contact-call-above-fold"
    CONTACT_ACTION_ABOVE_FOLD = "contact-action-above-fold"
    CONTACT_NOT_ABOVE_FOLD = "contact-not-above-fold"

    COPYRIGHT_CURRENT = "copyright-current"
    COPYRIGHT_NOT_FOUND = "copyright-not-found"
    COPYRIGHT_OUTDATED = "copyright-outdated"

    FAVICON_PRESENT = "favicon-present"
    FAVICON_MISSING = "favicon-missing"


_VIEWPORT_TAG = '<meta name="viewport" content="width=device-width, initial-scale=1">'
_TAP_ADVICE = (
    "Give buttons and menu links at least 48x48 px on phones (padding counts), with space "
    "between them."
)
_TEXT_ADVICE = "Use at least 16 px for body text and never less than 12 px, with a viewport tag."
_CALL_ADVICE = "Put a large click-to-call button (a tel: link) at the top of the page on phones."

SCORE_TABLE: dict[Result, Score] = {
    Result.VIEWPORT_RESPONSIVE: Score(
        True, 0, "The page declares a mobile viewport and lets visitors zoom."
    ),
    Result.VIEWPORT_BLOCKS_ZOOM: Score(
        False,
        -5,
        "The page stops visitors from zooming in (user-scalable=no or a low maximum-scale).",
        f"Remove user-scalable=no and maximum-scale from the viewport tag: {_VIEWPORT_TAG}.",
    ),
    Result.VIEWPORT_FIXED_WIDTH: Score(
        False,
        -15,
        "The viewport tag fixes a page width instead of following the phone's screen.",
        f"Use {_VIEWPORT_TAG} and a layout that adapts to narrow screens.",
    ),
    Result.VIEWPORT_NOT_SET: Score(
        False,
        -20,
        "No mobile viewport: phones show the desktop page shrunk to fit, too small to read.",
        f"Add {_VIEWPORT_TAG} and a layout that adapts to narrow screens.",
    ),
    Result.MOBILE_FITS_SCREEN: Score(True, 0, "On a phone the page fits the screen's width."),
    Result.MOBILE_HORIZONTAL_SCROLL: Score(
        False,
        -15,
        "On a phone the page is wider than the screen, so visitors must scroll sideways.",
        "Let content shrink to the screen (max-width: 100% on images, no fixed pixel widths).",
    ),
    Result.TEXT_LEGIBLE: Score(True, 0, "Text on a phone is large enough to read."),
    Result.TEXT_PARTLY_TOO_SMALL: Score(
        False, -10, "Part of the text on a phone is smaller than 12 px.", _TEXT_ADVICE
    ),
    Result.TEXT_MOSTLY_TOO_SMALL: Score(
        False,
        -20,
        "Most of the text on a phone is smaller than 12 px: visitors must zoom to read it.",
        _TEXT_ADVICE,
    ),
    Result.TAP_TARGETS_SIZED: Score(True, 0, "Links and buttons are large enough to tap."),
    Result.TAP_TARGETS_PARTLY_TOO_SMALL: Score(
        False, -5, "Some links and buttons are too small to tap reliably on a phone.", _TAP_ADVICE
    ),
    Result.TAP_TARGETS_MOSTLY_TOO_SMALL: Score(
        False,
        -10,
        "Most links and buttons are too small to tap reliably on a phone.",
        _TAP_ADVICE,
    ),
    Result.IMAGES_LOAD: Score(True, 0, "Every image loads."),
    Result.IMAGES_BROKEN: Score(
        False,
        -10,
        "Some images are broken: visitors see empty boxes or broken-image icons.",
        "Fix or remove the broken image links listed in the detail.",
    ),
    Result.CONSOLE_CLEAN: Score(True, 0, "No script errors while the page loads."),
    Result.CONSOLE_ERRORS: Score(
        False,
        -5,
        "The page reports errors while loading: menus, forms or widgets may not work.",
        "Have the site's developer fix the errors listed in the detail (browser console).",
    ),
    Result.MIXED_CONTENT_NONE: Score(True, 0, "Everything on this HTTPS page loads over HTTPS."),
    Result.MIXED_CONTENT_PAGE_NOT_HTTPS: Score(
        True,
        0,
        "The page is plain HTTP, so mixed content does not arise (the security assessment "
        "covers HTTPS).",
    ),
    Result.MIXED_CONTENT_FOUND: Score(
        False,
        -10,
        "This HTTPS page loads content over plain http://: browsers block it or warn visitors.",
        "Load every script, image and stylesheet over https://.",
    ),
    Result.CONTACT_CALL_ABOVE_FOLD: Score(
        True, 0, "A click-to-call link is visible on a phone without scrolling."
    ),
    Result.CONTACT_ACTION_ABOVE_FOLD: Score(
        True,
        0,
        "A contact link or button is visible on a phone without scrolling, but no click-to-call.",
        _CALL_ADVICE,
    ),
    Result.CONTACT_NOT_ABOVE_FOLD: Score(
        False,
        -15,
        "A phone's first screen has no way to call or contact the business.",
        _CALL_ADVICE,
    ),
    Result.COPYRIGHT_CURRENT: Score(True, 0, "The copyright notice is current."),
    Result.COPYRIGHT_NOT_FOUND: Score(True, 0, "No copyright year found."),
    Result.COPYRIGHT_OUTDATED: Score(
        False,
        -5,
        "The copyright year is out of date, so the site looks abandoned.",
        "Update the footer's year (or have the site fill it in automatically).",
    ),
    Result.FAVICON_PRESENT: Score(True, 0, "The site has a favicon (the icon in browser tabs)."),
    Result.FAVICON_MISSING: Score(
        False,
        -5,
        "No favicon: browser tabs and bookmarks show a blank icon.",
        'Add the business\'s logo as favicon (<link rel="icon" href="/favicon.ico">).',
    ),
}


# --- Evidence: what collect saw, as plain data -----------------------------------------------


class _Plain(BaseModel):
    model_config = ConfigDict(frozen=True)


class Screenshot(_Plain):
    path: str
    width: int  # image pixels
    height: int
    thumbnail: str
    thumbnail_width: int
    thumbnail_height: int


class ContactAction(_Plain):
    kind: str  # "call" (tel:), "email" (mailto:) or "contact" (a link or button about contact)
    label: str
    href: str = ""


class DeviceView(_Plain):
    """One device's visit. Sizes are CSS pixels; ``scale`` is the zoom the page opened at."""

    device: str
    screen_width: int
    screen_height: int
    scale: float = 1.0  # below 1 when a phone shrinks a desktop layout to fit
    document_width: int
    document_height: int
    text_sizes: tuple[tuple[float, int], ...] = ()  # (font-size px, characters at that size)
    tap_targets: tuple[tuple[float, float], ...] = ()  # (width, height) of links and buttons
    contact_actions: tuple[ContactAction, ...] = ()  # visible in the first screen
    images: int = 0
    broken_images: tuple[str, ...] = ()
    console_errors: tuple[str, ...] = ()
    insecure_requests: tuple[str, ...] = ()  # http:// requests of an https:// page
    blocked_requests: tuple[str, ...] = ()  # refused by the private-address check
    load_ms: int | None = None
    layout_shift: float | None = None  # cumulative, as the page settled
    screenshot: Screenshot


class VisualEvidence(_Plain):
    url: str  # where the visit started
    final_url: str
    status: int
    checked_on: dt.date  # copyright years are judged against this day
    viewport: str | None  # the viewport meta tag's content; None when there is none
    copyright_text: str = ""  # the footer's text, else the end of the page's text
    favicon: str | None = None  # the icon that loaded; None when none did
    desktop: DeviceView
    mobile: DeviceView

    @property
    def secure(self) -> bool:
        return self.final_url.startswith("https:")


# --- Checks: evidence in, result code out, no points -----------------------------------------


def parse_viewport(content: str) -> dict[str, str]:
    """``width=device-width, initial-scale=1`` as a dict; browsers also accept ``;``."""
    pairs = (part.partition("=") for part in re.split(r"[,;]", content))
    return {key.strip().lower(): value.strip().lower() for key, _, value in pairs if key.strip()}


def _zoom_limit(directives: dict[str, str]) -> float | None:
    try:
        return float(directives["maximum-scale"])
    except (KeyError, ValueError):
        return None


def check_viewport(evidence: VisualEvidence) -> Outcome[Result]:
    if evidence.viewport is None:
        return Outcome(Result.VIEWPORT_NOT_SET, 'No <meta name="viewport"> tag.')
    directives = parse_viewport(evidence.viewport)
    detail = f'<meta name="viewport" content="{evidence.viewport}">'
    width = directives.get("width")
    if width is None and "initial-scale" not in directives:  # browsers ignore such a tag
        return Outcome(Result.VIEWPORT_NOT_SET, detail, directives)
    if width not in (None, "device-width"):
        return Outcome(Result.VIEWPORT_FIXED_WIDTH, detail, directives)
    limit = _zoom_limit(directives)
    if directives.get("user-scalable") in ("no", "0") or (
        limit is not None and limit < MIN_ZOOM_LIMIT
    ):
        return Outcome(Result.VIEWPORT_BLOCKS_ZOOM, detail, directives)
    return Outcome(Result.VIEWPORT_RESPONSIVE, detail, directives)


def check_horizontal_scroll(evidence: VisualEvidence) -> Outcome[Result]:
    """Wider than the phone's screen at 100 % zoom: what a visitor pans across once zoomed in."""
    phone = evidence.mobile
    data = {"document_width": phone.document_width, "screen_width": phone.screen_width}
    if phone.document_width > phone.screen_width:
        detail = f"The page is {phone.document_width} px wide on a {phone.screen_width} px screen."
        return Outcome(Result.MOBILE_HORIZONTAL_SCROLL, detail, data)
    return Outcome(Result.MOBILE_FITS_SCREEN, "", data)


def small_text_share(view: DeviceView) -> float:
    """The share of characters shown smaller than ``MIN_TEXT_PX``, after the page's zoom."""
    total = sum(count for _, count in view.text_sizes)
    small = sum(count for size, count in view.text_sizes if size * view.scale < MIN_TEXT_PX)
    return small / total if total else 0.0


def check_text_size(evidence: VisualEvidence) -> Outcome[Result]:
    share = small_text_share(evidence.mobile)
    data = {"small_share": round(share, 3), "scale": evidence.mobile.scale}
    detail = f"{share:.0%} of the text is shown smaller than {MIN_TEXT_PX} px on a phone."
    if share > MOST_SMALL_TEXT:
        return Outcome(Result.TEXT_MOSTLY_TOO_SMALL, detail, data)
    if share > SOME_SMALL_TEXT:
        return Outcome(Result.TEXT_PARTLY_TOO_SMALL, detail, data)
    return Outcome(Result.TEXT_LEGIBLE, detail if share else "", data)


def check_tap_targets(evidence: VisualEvidence) -> Outcome[Result]:
    """Links in running text are exempt (WCAG 2.5.8's inline exception); the gatherer skips
    them, so what is left is menus, buttons, form fields and stand-alone links."""
    phone = evidence.mobile
    small = [
        (width, height)
        for width, height in phone.tap_targets
        if min(width, height) * phone.scale < MIN_TAP_PX
    ]
    total = len(phone.tap_targets)
    share = len(small) / total if total else 0.0
    data = {"targets": total, "too_small": len(small)}
    detail = f"{len(small)} of {total} links and buttons are smaller than {MIN_TAP_PX} px."
    if share > MOST_SMALL_TAPS:
        return Outcome(Result.TAP_TARGETS_MOSTLY_TOO_SMALL, detail, data)
    if share > SOME_SMALL_TAPS:
        return Outcome(Result.TAP_TARGETS_PARTLY_TOO_SMALL, detail, data)
    return Outcome(Result.TAP_TARGETS_SIZED, detail if small else "", data)


def _merged(*lists: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def check_images(evidence: VisualEvidence) -> Outcome[Result]:
    broken = _merged(evidence.desktop.broken_images, evidence.mobile.broken_images)
    if broken:
        return Outcome(Result.IMAGES_BROKEN, "Broken: " + ", ".join(broken), broken)
    return Outcome(Result.IMAGES_LOAD, "", [])


def check_console(evidence: VisualEvidence) -> Outcome[Result]:
    errors = _merged(evidence.desktop.console_errors, evidence.mobile.console_errors)
    if errors:
        return Outcome(Result.CONSOLE_ERRORS, " | ".join(errors), errors)
    return Outcome(Result.CONSOLE_CLEAN, "", [])


def check_mixed_content(evidence: VisualEvidence) -> Outcome[Result]:
    if not evidence.secure:
        return Outcome(Result.MIXED_CONTENT_PAGE_NOT_HTTPS, "", [])
    insecure = _merged(evidence.desktop.insecure_requests, evidence.mobile.insecure_requests)
    if insecure:
        return Outcome(Result.MIXED_CONTENT_FOUND, "Over http://: " + ", ".join(insecure), insecure)
    return Outcome(Result.MIXED_CONTENT_NONE, "", [])


def check_contact(evidence: VisualEvidence) -> Outcome[Result]:
    actions = evidence.mobile.contact_actions
    data = [action.model_dump() for action in actions]
    calls = [action for action in actions if action.kind == "call"]
    if calls:
        return Outcome(Result.CONTACT_CALL_ABOVE_FOLD, f"{calls[0].label} ({calls[0].href})", data)
    if actions:
        return Outcome(Result.CONTACT_ACTION_ABOVE_FOLD, actions[0].label, data)
    return Outcome(Result.CONTACT_NOT_ABOVE_FOLD, "", data)


COPYRIGHT_NOTICE = re.compile(
    r"(?:©|\(c\)|copyright)[\s©]*((?:19|20)\d\d)(?:\s*[-\u2013\u2014]\s*((?:19|20)\d\d))?",
    re.IGNORECASE,
)


def copyright_year(text: str) -> int | None:
    """The latest year in the text's copyright notices (a range counts by its end)."""
    years = [int(end or start) for start, end in COPYRIGHT_NOTICE.findall(text)]
    return max(years, default=None)


def check_copyright(evidence: VisualEvidence) -> Outcome[Result]:
    year = copyright_year(evidence.copyright_text)
    if year is None:
        return Outcome(Result.COPYRIGHT_NOT_FOUND, "", None)
    if evidence.checked_on.year - year > COPYRIGHT_STALE_YEARS:
        return Outcome(Result.COPYRIGHT_OUTDATED, f"The footer says \u00a9 {year}.", year)
    return Outcome(Result.COPYRIGHT_CURRENT, f"\u00a9 {year}", year)


def check_favicon(evidence: VisualEvidence) -> Outcome[Result]:
    if evidence.favicon is None:
        return Outcome(Result.FAVICON_MISSING, "", None)
    return Outcome(Result.FAVICON_PRESENT, evidence.favicon, evidence.favicon)


VisualCheck = Check[VisualEvidence, Result]

R = Result
CHECKS: tuple[VisualCheck, ...] = (
    VisualCheck(
        "viewport",
        "Mobile viewport",
        check_viewport,
        (
            R.VIEWPORT_RESPONSIVE,
            R.VIEWPORT_BLOCKS_ZOOM,
            R.VIEWPORT_FIXED_WIDTH,
            R.VIEWPORT_NOT_SET,
        ),
    ),
    VisualCheck(
        "horizontal-scroll",
        "Fits a phone's screen",
        check_horizontal_scroll,
        (R.MOBILE_FITS_SCREEN, R.MOBILE_HORIZONTAL_SCROLL),
    ),
    VisualCheck(
        "text-size",
        "Readable text",
        check_text_size,
        (R.TEXT_LEGIBLE, R.TEXT_PARTLY_TOO_SMALL, R.TEXT_MOSTLY_TOO_SMALL),
    ),
    VisualCheck(
        "tap-targets",
        "Tap targets",
        check_tap_targets,
        (
            R.TAP_TARGETS_SIZED,
            R.TAP_TARGETS_PARTLY_TOO_SMALL,
            R.TAP_TARGETS_MOSTLY_TOO_SMALL,
        ),
    ),
    VisualCheck("images", "Images", check_images, (R.IMAGES_LOAD, R.IMAGES_BROKEN)),
    VisualCheck("console", "Script errors", check_console, (R.CONSOLE_CLEAN, R.CONSOLE_ERRORS)),
    VisualCheck(
        "mixed-content",
        "Mixed content",
        check_mixed_content,
        (R.MIXED_CONTENT_NONE, R.MIXED_CONTENT_PAGE_NOT_HTTPS, R.MIXED_CONTENT_FOUND),
    ),
    VisualCheck(
        "contact",
        "Call or contact from the first screen",
        check_contact,
        (R.CONTACT_CALL_ABOVE_FOLD, R.CONTACT_ACTION_ABOVE_FOLD, R.CONTACT_NOT_ABOVE_FOLD),
    ),
    VisualCheck(
        "copyright",
        "Copyright year",
        check_copyright,
        (R.COPYRIGHT_CURRENT, R.COPYRIGHT_NOT_FOUND, R.COPYRIGHT_OUTDATED),
    ),
    VisualCheck("favicon", "Favicon", check_favicon, (R.FAVICON_PRESENT, R.FAVICON_MISSING)),
)


# --- Judge: pure --------------------------------------------------------------------------------


def _view_data(view: DeviceView) -> dict[str, Any]:
    return {
        "screenshot": view.screenshot.model_dump(),
        "document_width": view.document_width,
        "document_height": view.document_height,
        "scale": view.scale,
        "load_ms": view.load_ms,
        "layout_shift": view.layout_shift,
        "blocked_requests": list(view.blocked_requests),
    }


def judge(evidence: VisualEvidence) -> AssessmentResult:
    """Grade the evidence; pure, so tests need no browser."""
    judgement = judge_checks(CHECKS, evidence, SCORE_TABLE)
    score = judgement.score(BASE_SCORE)
    grade = grade_for(score)
    opening = f"Grade {grade} ({score}/100) for how the site looks and works on phones and desktops"
    return AssessmentResult(
        assessment="visual",
        status="completed",
        source="playwright",
        score=score,
        grade=grade,
        summary=judgement.summary(opening),
        findings=judgement.findings(),
        data={
            "url": evidence.final_url,
            "status_code": evidence.status,
            "checks": judgement.entries(),
            "desktop": _view_data(evidence.desktop),
            "mobile": _view_data(evidence.mobile),
        },
        algorithm_version=ALGORITHM_VERSION,
    )


# --- Collect: the browser and its guards ---------------------------------------------------------


@dataclass(frozen=True)
class Device:
    name: str
    width: int
    height: int
    scale_factor: float
    mobile: bool

    def user_agent(self, browser_version: str) -> str:
        """Chrome's own (reduced) UA for the platform: some sites refuse "HeadlessChrome"."""
        major = browser_version.split(".", 1)[0]
        if self.mobile:
            return (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{major}.0.0.0 Mobile Safari/537.36"
            )
        return (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.0.0 Safari/537.36"
        )


DESKTOP = Device("desktop", 1366, 768, 1.0, mobile=False)
MOBILE = Device("mobile", 412, 823, 1.75, mobile=True)
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})  # never touch the network


class HostCheck:
    """``Egress.resolve`` for every host a visit's page asks for, each host asked once.

    Refusals are what Chromium will be told: an unresolvable name or a private address.
    """

    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._verdicts: dict[tuple[str, int], FetchError | None] = {}
        self.blocked: list[str] = []

    async def refusal(self, url: str) -> FetchError | None:
        scheme = urlsplit(url).scheme
        if scheme in LOCAL_SCHEMES:
            return None
        if scheme not in PORTS:
            return InvalidURL(f"{url[:MAX_TEXT]}: only http(s) is fetched", url)
        try:
            key = host_port(url)
        except InvalidURL as exc:
            return exc
        if key not in self._verdicts:
            try:
                await self._egress.resolve(*key)
                self._verdicts[key] = None
            except (BlockedAddress, UnresolvableHost) as exc:
                exc.url = url
                self._verdicts[key] = exc
        return self._verdicts[key]

    async def route(self, route: Route) -> None:
        """The context's route handler: refused requests are aborted before Chromium sends them."""
        url = route.request.url
        refusal = await self.refusal(url)
        with contextlib.suppress(PlaywrightError):  # the page may close meanwhile
            if refusal is None:
                await route.continue_()
                return
            if len(self.blocked) < MAX_LISTED:
                self.blocked.append(url[:MAX_TEXT])
            unresolvable = isinstance(refusal, UnresolvableHost)
            await route.abort("namenotresolved" if unresolvable else "blockedbyclient")


class BrowserHost:
    """One Chromium for this process, on an event loop of its own thread (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Used on the browser loop only:
        self._launching = asyncio.Lock()
        self._slots = asyncio.Semaphore(LEADS_AT_ONCE)
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._guards: dict[Egress, EgressGuard] = {}
        self._wedged = False

    def mark_wedged(self) -> None:
        """A close went unanswered: the next visit gets a new browser (on the browser's loop)."""
        self._wedged = True

    @property
    def is_wedged(self) -> bool:
        return self._wedged

    async def run(
        self, work: Callable[[Browser, str], Awaitable[T]], settings: Settings, egress: Egress
    ) -> T:
        """``work(browser, proxy_url)`` on the browser's loop; cancelling the caller cancels it."""
        running = self._run(work, settings, egress)
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(running, self._ensure_loop())
        )

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="leadshop-browser", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _run(
        self, work: Callable[[Browser, str], Awaitable[T]], settings: Settings, egress: Egress
    ) -> T:
        async with self._slots:
            browser = await self._browser_for(settings)
            guard = await self._guard_for(egress)
            return await work(browser, guard.url)

    async def _guard_for(self, egress: Egress) -> EgressGuard:
        """Under the launch lock: a second lead must not find the guard before it listens."""
        async with self._launching:
            guard = self._guards.get(egress)
            if guard is None:
                guard = EgressGuard(egress)
                await guard.start()
                self._guards[egress] = guard
            return guard

    async def _browser_for(self, settings: Settings) -> Browser:
        async with self._launching:
            if self._browser is None or self._wedged or not self._browser.is_connected():
                await self._close_browser()
                self._wedged = False
                env: dict[str, str | float | bool] = dict(launch_env())
                self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=chromium_path(settings),
                    args=launch_flags(),
                    env=env,
                    timeout=LAUNCH_TIMEOUT_MS,
                )
            return self._browser

    async def _close_browser(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        with contextlib.suppress(PlaywrightError, TimeoutError):
            if browser is not None:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await browser.close()
        with contextlib.suppress(PlaywrightError, OSError, TimeoutError):
            if playwright is not None:  # its driver's exit takes a wedged Chromium with it
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await playwright.stop()

    async def _close_all(self) -> None:
        await self._close_browser()
        for guard in self._guards.values():
            await guard.close()
        self._guards.clear()

    def shutdown(self) -> None:
        """Close the browser, its driver and the proxies, and stop the thread, once no visit is
        running (at exit; tests). The next visit starts them again."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):  # already dying: the driver's exit reaps Chromium
            asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(SHUTDOWN_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
            loop.close()
        self._launching = asyncio.Lock()
        self._slots = asyncio.Semaphore(LEADS_AT_ONCE)

    @property
    def browser(self) -> Browser | None:
        """The running browser, for tests that look inside (its contexts, its process)."""
        return self._browser


BROWSER = BrowserHost()
atexit.register(BROWSER.shutdown)  # a process killed outright loses its driver's pipe instead,
# and the driver then closes Chromium


# What the page reports about itself, in one round trip. Sizes are CSS pixels; "first screen"
# is the visual viewport at the zoom the page opened with.
FACTS_JS = """
async (limits) => {
  const vv = window.visualViewport;
  const scale = vv ? vv.scale : 1;
  const screenW = vv ? vv.width : innerWidth, screenH = vv ? vv.height : innerHeight;
  const shown = (el) => el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  const sizes = {};
  const root = document.body || document.documentElement;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    const length = node.textContent.replace(/\\s+/g, "").length;
    if (!length || !el || !shown(el)) continue;
    if (["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE"].includes(el.tagName)) continue;
    const size = Math.round(parseFloat(getComputedStyle(el).fontSize) * 10) / 10;
    sizes[size] = (sizes[size] || 0) + length;
  }
  const inText = (el) => getComputedStyle(el).display === "inline" && el.parentElement &&
    [...el.parentElement.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const words = /contact|call|phone|book|appointment|quote|get in touch|email|message/i;
  const targets = [], contacts = [];
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary, " +
    "[role=button]";
  for (const el of document.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || !shown(el)) continue;
    if (!inText(el) && targets.length < limits.targets) targets.push([r.width, r.height]);
    if (r.top >= screenH || r.bottom <= 0 || r.left >= screenW || r.right <= 0) continue;
    const href = el.getAttribute("href") || "";
    const label = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim();
    const kind = /^tel:/i.test(href) ? "call" : /^mailto:/i.test(href) ? "email" :
      (words.test(label) || /contact/i.test(href)) ? "contact" : null;
    if (kind && contacts.length < limits.listed) {
      contacts.push({ kind, label: label.slice(0, limits.text), href: href.slice(0, limits.text) });
    }
  }
  const images = [...document.images].filter((img) => img.currentSrc || img.src);
  const broken = images.filter((img) => img.complete && img.naturalWidth === 0)
    .map((img) => (img.currentSrc || img.src).slice(0, limits.text));
  const metas = document.querySelectorAll('meta[name="viewport" i]');
  const footers = [...document.querySelectorAll('footer, [role="contentinfo"], #footer, .footer')];
  const footerText = footers.map((f) => f.innerText).join("\\n").trim();
  const pageText = document.body ? document.body.innerText : "";
  const nav = performance.getEntriesByType("navigation")[0];
  const shift = await new Promise((resolve) => {
    let total = 0;
    try {
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
      });
      observer.observe({ type: "layout-shift", buffered: true });
      setTimeout(() => { observer.disconnect(); resolve(total); }, 50);
    } catch (error) { resolve(null); }
  });
  const doc = document.documentElement;
  return {
    scale, screenW, screenH,
    documentWidth: Math.max(doc.scrollWidth, root.scrollWidth),
    documentHeight: Math.max(doc.scrollHeight, root.scrollHeight),
    textSizes: Object.entries(sizes).map(([size, count]) => [Number(size), count]),
    targets, contacts,
    images: images.length, broken: broken.slice(0, limits.listed),
    viewport: metas.length ? metas[metas.length - 1].getAttribute("content") || "" : null,
    copyrightText: (footerText || pageText.slice(-limits.copyright)).slice(0, limits.copyright),
    loadMs: nav && nav.loadEventEnd > 0 ? Math.round(nav.loadEventEnd) : null,
    layoutShift: shift === null ? null : Math.round(shift * 1000) / 1000,
  };
}
"""
FACTS_LIMITS = {"targets": 500, "listed": MAX_LISTED, "text": MAX_TEXT, "copyright": 3000}

# The icon a browser tab would show: declared icons first, else /favicon.ico. Probed after the
# console is read, as a missing icon logs a 404 of our making. Playwright aborts every routed
# request whose URL ends in "/favicon.ico", so the probe adds an empty query.
FAVICON_JS = """
async () => {
  const declared = [...document.querySelectorAll('link[rel~="icon" i]')].map((l) => l.href);
  const candidates = declared.filter(Boolean).slice(0, 3);
  if (!candidates.length) candidates.push(new URL("/favicon.ico", location.href).href);
  for (const href of candidates) {
    const probe = href.endsWith("/favicon.ico") ? href + "?" : href;
    const loaded = await new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img.naturalWidth > 0);
      img.onerror = () => resolve(false);
      setTimeout(() => resolve(false), 3000);
      img.src = probe;
    });
    if (loaded) return href;
  }
  return null;
}
"""
_MIXED_CONTENT_URL = re.compile(r"Mixed Content:.*?'(http://[^']+)'")


class PageLog:
    """What a page reports while it loads: console errors, its requests, its navigations."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.console_errors: list[str] = []
        self.insecure: list[str] = []
        self.navigations: list[str] = []
        self.statuses: dict[str, int] = {}
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("request", self._request)
        page.on("response", self._response)

    def _add(self, items: list[str], text: str) -> None:
        if len(items) < MAX_LISTED and text[:MAX_TEXT] not in items:
            items.append(text[:MAX_TEXT])

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        self._add(self.console_errors, message.text)
        # Chromium blocks (or upgrades) insecure scripts before they become request events.
        if found := _MIXED_CONTENT_URL.search(message.text):
            self._add(self.insecure, found[1])

    def _page_error(self, error: PlaywrightError) -> None:
        self._add(self.console_errors, f"Uncaught {error.name}: {error.message}")

    def _is_navigation(self, request: Request) -> bool:
        return request.is_navigation_request() and request.frame == self._page.main_frame

    def _request(self, request: Request) -> None:
        if self._is_navigation(request):
            self.navigations.append(request.url)
        elif request.url.startswith("http://") and self._page.url.startswith("https:"):
            self._add(self.insecure, request.url)

    def _response(self, response: Response) -> None:
        if self._is_navigation(response.request):
            self.statuses[response.url] = response.status


# Chromium's net error codes, first match wins; anything else ends as a plain FetchError.
NET_ERRORS: tuple[tuple[str, type[FetchError]], ...] = (
    ("ERR_NAME_NOT_RESOLVED", UnresolvableHost),
    ("ERR_NAME_RESOLUTION_FAILED", UnresolvableHost),
    ("ERR_BLOCKED_BY_CLIENT", BlockedAddress),
    ("ERR_CERT_", TLSError),
    ("ERR_SSL_", TLSError),
    ("ERR_TOO_MANY_REDIRECTS", TooManyRedirects),
    ("ERR_TIMED_OUT", FetchTimeout),
    ("ERR_CONNECTION_TIMED_OUT", FetchTimeout),
    ("ERR_CONNECTION_", ConnectionFailed),  # refused, reset, closed, failed
    ("ERR_EMPTY_RESPONSE", ConnectionFailed),
    ("ERR_TUNNEL_CONNECTION_FAILED", ConnectionFailed),
    ("ERR_PROXY_CONNECTION_FAILED", ConnectionFailed),
    ("ERR_ADDRESS_UNREACHABLE", ConnectionFailed),
    ("ERR_NETWORK_CHANGED", ConnectionFailed),
)


async def navigation_error(
    exc: PlaywrightError, url: str, log: PageLog, hosts: HostCheck
) -> FetchError:
    """The FetchError a failed ``goto`` means, so retries happen only where they can help.

    The hop that failed is checked first: a redirect to a refused host only shows up here as a
    connection our proxy closed.
    """
    last = log.navigations[-1] if log.navigations else url
    refusal = await hosts.refusal(last)
    if refusal is not None:
        return type(refusal)(f"{url} led to {last}: {refusal}", last)
    status = log.statuses.get(last)
    if status is not None and status >= 400:
        return HTTPStatusError(f"{last} answered HTTP {status}", last, status)
    message = str(exc).splitlines()[0].removeprefix("Page.goto: ") or type(exc).__name__
    if isinstance(exc, PlaywrightTimeoutError):
        return FetchTimeout(f"{url}: {message}", url)
    return error_for(message, url)


def error_for(message: str, url: str) -> FetchError:
    """The FetchError for Chromium's ``net::ERR_...`` message; a browser that crashed or closed
    under us is worth another try (the next one relaunches it), anything else is not."""
    for code, error in NET_ERRORS:
        if f"net::{code}" in message:
            return error(f"{url}: {message}", url)
    if "closed" in message.lower() or "crash" in message.lower():
        return ConnectionFailed(f"{url}: the browser failed: {message}", url)
    return FetchError(f"{url}: {message}", url)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def _capture(
    session: CDPSession, width: float, height: float, scale: float, path: Path
) -> tuple[int, int]:
    """The page area (CSS px) as a PNG at ``scale`` image pixels per CSS pixel; its size."""
    shot = await session.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": scale},
        },
    )
    data = base64.b64decode(shot["data"])
    await asyncio.to_thread(path.write_bytes, data)
    return png_size(data)


async def screenshots(
    page: Page, device: Device, facts: dict[str, Any], folder: Path
) -> Screenshot:
    """The whole page (up to ``MAX_SCREENSHOT_HEIGHT``) as the device shows it, and a thumbnail
    of its first screen ``THUMBNAIL_WIDTH`` wide.

    Chromium's own capture rather than ``page.screenshot``: that one renders a phone's shrunken
    desktop layout at full size, not as the phone shows it, and cannot scale down.
    """
    shown_width = float(facts["screenW"])  # CSS px across the screen at the opening zoom
    full_scale = device.width * device.scale_factor / shown_width
    height = min(float(facts["documentHeight"]), MAX_SCREENSHOT_HEIGHT / full_scale)
    thumbnail = folder / f"{device.name}-thumbnail.png"
    full = folder / f"{device.name}.png"
    session = await page.context.new_cdp_session(page)
    try:
        thumb_size = await _capture(
            session, shown_width, float(facts["screenH"]), THUMBNAIL_WIDTH / shown_width, thumbnail
        )
        full_size = await _capture(session, shown_width, height, full_scale, full)
    finally:
        await session.detach()
    return Screenshot(
        path=str(full),
        width=full_size[0],
        height=full_size[1],
        thumbnail=str(thumbnail),
        thumbnail_width=thumb_size[0],
        thumbnail_height=thumb_size[1],
    )


@dataclass(frozen=True)
class Visit:
    """One device's look at the page, with what only one visit needs to read."""

    view: DeviceView
    final_url: str
    status: int
    viewport: str | None
    copyright_text: str
    favicon: str | None


async def _open(page: Page, url: str, log: PageLog, hosts: HostCheck) -> Response:
    try:
        response = await page.goto(url, wait_until="load", timeout=NAVIGATION_TIMEOUT_MS)
    except PlaywrightError as exc:
        raise await navigation_error(exc, url, log, hosts) from exc
    if response is None:
        raise FetchError(f"{url}: no response", url)
    if response.status >= 400:
        raise HTTPStatusError(
            f"{response.url} answered HTTP {response.status}", response.url, response.status
        )
    with contextlib.suppress(PlaywrightTimeoutError):  # busy pages never go quiet
        await page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
    return response


_CLOSING: set[asyncio.Future[None]] = set()  # closes still running for cancelled visits


def _running(closing: Awaitable[None]) -> asyncio.Future[None]:
    task = asyncio.ensure_future(closing)
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
    return task


async def _bounded(closing: Awaitable[None]) -> None:
    """A close that takes longer than ``CLOSE_TIMEOUT`` is abandoned and the browser replaced:
    seen once in hundreds of visits, a page cancelled mid-visit whose close Playwright's driver
    never answered, which held the lead (and its browser slot) forever."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await closing
    except TimeoutError:
        BROWSER.mark_wedged()


async def _close(closing: Awaitable[None]) -> None:
    """Run a close to its end even if the visit is cancelled meanwhile: Playwright marks a
    context closed before it sends the close, so an interrupted close would leave it open for
    the browser's lifetime (a cancelled visit is often still cleaning up after its own error).
    The cancellation waits for the close, so nothing is open once the visit has ended."""
    task = _running(_bounded(closing))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _close_once_made(creating: asyncio.Future[BrowserContext]) -> None:
    if not creating.cancelled() and creating.exception() is None:
        _running(_bounded(creating.result().close()))


async def _new_context(browser: Browser, device: Device, proxy: str) -> BrowserContext:
    """A fresh context; a visit cancelled while Chromium makes it still gets it closed."""
    creating = asyncio.ensure_future(_context(browser, device, proxy))
    try:
        return await asyncio.shield(creating)
    except asyncio.CancelledError:
        creating.add_done_callback(_close_once_made)
        raise


async def _context(browser: Browser, device: Device, proxy: str) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": device.width, "height": device.height},
        device_scale_factor=device.scale_factor,
        is_mobile=device.mobile,
        has_touch=device.mobile,
        user_agent=device.user_agent(browser.version),
        locale="en-US",
        proxy={"server": proxy},
        service_workers="block",  # a service worker's fetches would bypass the route check
        accept_downloads=False,
    )


async def visit(
    browser: Browser, proxy: str, device: Device, url: str, hosts: HostCheck, folder: Path
) -> Visit:
    """Open ``url`` as ``device`` in a fresh context, read it, screenshot it, close it."""
    context = await _new_context(browser, device, proxy)
    try:
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        await context.route("**/*", hosts.route)
        page = await context.new_page()
        try:
            log = PageLog(page)
            response = await _open(page, url, log, hosts)
            facts: dict[str, Any] = await page.evaluate(FACTS_JS, FACTS_LIMITS)
            errors = list(log.console_errors)  # before the favicon probe adds its own
            favicon: str | None = await page.evaluate(FAVICON_JS) if not device.mobile else None
            shot = await screenshots(page, device, facts, folder)
        finally:
            await _close(page.close())
    finally:
        await _close(context.close())
    return Visit(
        view=_device_view(device, facts, errors, log.insecure, hosts.blocked, shot),
        final_url=response.url,
        status=response.status,
        viewport=facts["viewport"],
        copyright_text=str(facts["copyrightText"]),
        favicon=favicon,
    )


def _device_view(
    device: Device,
    facts: dict[str, Any],
    console_errors: Sequence[str],
    insecure: Sequence[str],
    blocked: Sequence[str],
    shot: Screenshot,
) -> DeviceView:
    return DeviceView(
        device=device.name,
        screen_width=device.width,
        screen_height=device.height,
        scale=round(float(facts["scale"]), 3),
        document_width=int(facts["documentWidth"]),
        document_height=int(facts["documentHeight"]),
        text_sizes=tuple((float(size), int(count)) for size, count in facts["textSizes"]),
        tap_targets=tuple((float(w), float(h)) for w, h in facts["targets"]),
        contact_actions=tuple(ContactAction(**action) for action in facts["contacts"]),
        images=int(facts["images"]),
        broken_images=tuple(facts["broken"]),
        console_errors=tuple(console_errors),
        insecure_requests=tuple(insecure),
        blocked_requests=tuple(blocked),
        load_ms=facts["loadMs"],
        layout_shift=facts["layoutShift"],
        screenshot=shot,
    )


def artifacts_folder(settings: Settings, lead: LeadRecord, url: str) -> Path:
    """One folder per lead (by id; by host for a lead not in the database, as in ``check``)."""
    if lead.id > 0:
        name = str(lead.id)
    else:
        host, port = host_port(url)
        name = re.sub(r"[^a-z0-9]+", "-", f"{host}-{port}".lower()).strip("-")
    return settings.artifacts_dir.resolve() / name


async def collect(
    url: str, settings: Settings, folder: Path, policy: AddressPolicy = address_kind
) -> VisualEvidence:
    """Visit the site as a desktop and as a phone; raises the FetchError that ends the visit.

    The lead's host is checked before the browser is involved, so a refused address costs no
    page and says why.
    """
    target = lead_url(url)
    egress = Egress(settings.allow_private_networks, policy)
    await egress.resolve(*host_port(target))
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)

    async def both(browser: Browser, proxy: str) -> VisualEvidence:
        def one(device: Device) -> Coroutine[Any, Any, Visit]:
            return visit(browser, proxy, device, target, HostCheck(egress), folder)

        try:  # side by side, and the first failure cancels the other visit
            async with asyncio.timeout(LEAD_TIMEOUT_SECONDS), asyncio.TaskGroup() as group:
                desktop_visit = group.create_task(one(DESKTOP))
                mobile_visit = group.create_task(one(MOBILE))
        except ExceptionGroup as failed:
            raise failed.exceptions[0]  # noqa: B904 - the visit's own error is the story
        desktop, mobile = desktop_visit.result(), mobile_visit.result()
        return VisualEvidence(
            url=target,
            final_url=desktop.final_url,
            status=desktop.status,
            checked_on=dt.date.today(),
            viewport=mobile.viewport,
            copyright_text=desktop.copyright_text,
            favicon=desktop.favicon,
            desktop=desktop.view,
            mobile=mobile.view,
        )

    try:
        return await BROWSER.run(both, settings, egress)
    except TimeoutError as exc:
        message = f"{target}: no complete visit within {LEAD_TIMEOUT_SECONDS:g} s"
        raise FetchTimeout(message, target) from exc


async def assess(lead: LeadRecord) -> AssessmentResult:
    """The task body. collect's FetchErrors propagate so the registry's retry condition sees
    them: a timeout or a refused connection is tried again, a 404 or a private address is not."""
    started = time.monotonic()
    settings = get_settings()
    folder = artifacts_folder(settings, lead, lead_url(lead.website))
    result = judge(await collect(lead.website, settings, folder))
    return result.model_copy(update={"duration_ms": int((time.monotonic() - started) * 1000)})


visual_task = assessment_task("visual", QUEUED_TIMEOUT_SECONDS)(assess)
