"""The pagespeed assessment: judge on a recorded LHR, the PSI client against a local server that
answers in PSI's wire format, Lighthouse for real on a loopback page, the machine-wide slots
across processes, and no browser left behind when a run is cancelled or crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx
import psutil
import pytest
from pydantic import SecretStr

from leadshop.config import Settings, get_settings
from leadshop.demo.sites import DemoSites
from leadshop.errors import BlockedAddress, ConfigurationError, HTTPStatusError
from leadshop.locks import FileSemaphore
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.net import IPAddress
from leadshop.scoring import grade_for
from tasks.pagespeed import (
    ALGORITHM_VERSION,
    LighthouseFailed,
    LighthouseRuntimeError,
    PageSpeedError,
    PsiClient,
    PsiError,
    _parse_report,
    assess,
    field_data,
    judge,
    pagespeed_task,
    run_lighthouse,
)
from tasks.registry import RETRIES, is_transient
from tests.sites import Reply, running, serve

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pagespeed"
KEY = "AIzaSy-test-key-0123456789abcdefghijkl"
PSI_PATH = "/pagespeedonline/v5/runPagespeed"
# What the recorded report says (README.md: update these when refreshing it).
RECORDED_SCORES = {"performance": 43, "accessibility": 100, "best_practices": 96, "seo": 100}
RECORDED_TOP_FINDING = ("modern-image-formats", 10140)


@pytest.fixture(scope="module")
def recorded_lhr() -> dict[str, Any]:
    report: dict[str, Any] = json.loads((FIXTURES / "lhr.json").read_text())
    return report


@pytest.fixture(scope="module")
def recorded_psi() -> dict[str, Any]:
    response: dict[str, Any] = json.loads((FIXTURES / "psi.json").read_text())
    return response


def lhr(base: dict[str, Any], **audits: dict[str, Any]) -> dict[str, Any]:
    """The recorded report with some audits' fields replaced."""
    changed = copy.deepcopy(base)
    for audit_id, fields in audits.items():
        changed["audits"][audit_id.replace("_", "-")].update(fields)
    return changed


# --- judge, pure ----------------------------------------------------------------------------------


def test_judge_grades_the_recorded_report(recorded_lhr: dict[str, Any]) -> None:
    result = judge(recorded_lhr, None, "lighthouse")

    assert result.status == "completed"
    assert result.source == "lighthouse"
    assert result.score == RECORDED_SCORES["performance"]
    assert result.grade == grade_for(RECORDED_SCORES["performance"])
    assert result.algorithm_version == ALGORITHM_VERSION
    assert result.data["categories"] == RECORDED_SCORES
    assert result.data["lighthouse_version"] == "12.2.3"
    assert result.data["form_factor"] == "mobile"
    assert result.data["field_data"] is None
    audits = recorded_lhr["audits"]
    metrics = result.data["metrics"]
    assert metrics["largest_contentful_paint_ms"] == round(
        audits["largest-contentful-paint"]["numericValue"]
    )
    for key in (
        "first_contentful_paint_ms",
        "total_blocking_time_ms",
        "speed_index_ms",
        "server_response_time_ms",
    ):
        assert isinstance(metrics[key], int)
    assert metrics["cumulative_layout_shift"] == round(
        audits["cumulative-layout-shift"]["numericValue"], 3
    )


def test_findings_are_the_failing_opportunities_and_diagnostics_biggest_saving_first(
    recorded_lhr: dict[str, Any],
) -> None:
    result = judge(recorded_lhr, None, "lighthouse")
    audits = recorded_lhr["audits"]
    ids = [finding.id for finding in result.findings]

    failing_opportunities = {
        audit_id
        for audit_id, audit in audits.items()
        if (audit.get("details") or {}).get("type") == "opportunity"
        and audit["scoreDisplayMode"] in ("numeric", "binary", "metricSavings")
        and audit["score"] is not None
        and audit["score"] < 0.9
    }
    assert failing_opportunities <= set(ids)
    assert {"bootup-time", "uses-long-cache-ttl", "unsized-images"} <= set(ids)  # diagnostics
    for audit_id in ids:
        assert audits[audit_id]["score"] < 0.9
    savings = [(audits[i].get("details") or {}).get("overallSavingsMs", 0) for i in ids]
    assert savings == sorted(savings, reverse=True)

    top = result.findings[0]
    assert (top.id, audits[top.id]["details"]["overallSavingsMs"]) == RECORDED_TOP_FINDING
    assert top.severity == "high"
    assert f"{RECORDED_TOP_FINDING[1]:,} ms" in top.detail
    kib = audits[top.id]["details"]["overallSavingsBytes"] / 1024
    assert f"{kib:,.0f} KiB" in top.detail
    assert "(https://developer.chrome.com/" in top.recommendation  # Markdown link flattened
    assert "](" not in top.recommendation
    assert result.data["failing_audits"][0]["savings_ms"] == RECORDED_TOP_FINDING[1]


def test_summary_is_one_sentence_with_grade_score_and_biggest_fix(
    recorded_lhr: dict[str, Any],
) -> None:
    result = judge(recorded_lhr, None, "lighthouse")
    assert result.summary.startswith(f"Mobile speed grade {result.grade} ({result.score}/100)")
    assert "Serve images in next-gen formats (about 10.1 s faster)" in result.summary
    assert re.sub(r"\d\.\d", "", result.summary).count(".") == 1  # one sentence
    assert result.summary.endswith(".")


def test_audits_lighthouse_does_not_grade_are_not_findings(recorded_lhr: dict[str, Any]) -> None:
    report = lhr(
        recorded_lhr,
        uses_long_cache_ttl={"scoreDisplayMode": "informative", "score": 0},
        bootup_time={"scoreDisplayMode": "notApplicable", "score": None},
        modern_image_formats={"score": 0.95},
    )
    ids = {finding.id for finding in judge(report, None, "lighthouse").findings}
    assert ids.isdisjoint({"uses-long-cache-ttl", "bootup-time", "modern-image-formats"})


def test_errored_audits_are_listed_not_found_passing(recorded_lhr: dict[str, Any]) -> None:
    report = lhr(
        recorded_lhr,
        unused_javascript={"scoreDisplayMode": "error", "score": None, "errorMessage": "boom"},
    )
    result = judge(report, None, "lighthouse")
    assert result.data["errored_audits"]["unused-javascript"] == "boom"
    assert "unused-javascript" not in {finding.id for finding in result.findings}


def test_severity_follows_savings_then_lighthouse_colour(recorded_lhr: dict[str, Any]) -> None:
    report = lhr(
        recorded_lhr,
        unused_javascript={"details": {"type": "opportunity", "overallSavingsMs": 450}},
        unminified_css={"score": 0, "details": {"type": "opportunity", "overallSavingsMs": 0}},
        unsized_images={"score": 0.5},
    )
    severity = {f.id: f.severity for f in judge(report, None, "lighthouse").findings}
    assert severity["modern-image-formats"] == "high"  # 10 s
    assert severity["unused-javascript"] == "medium"  # 450 ms
    assert severity["unminified-css"] == "medium"  # no saving, but red
    assert severity["unsized-images"] == "low"  # orange


def test_a_page_without_problems_says_so(recorded_lhr: dict[str, Any]) -> None:
    report = copy.deepcopy(recorded_lhr)
    for audit in report["audits"].values():
        if audit.get("score") is not None:
            audit["score"] = 1
    result = judge(report, None, "lighthouse")
    assert result.findings == []
    assert result.summary.endswith("; Lighthouse flags no speed problems.")


def test_runtime_error_is_a_clear_failure_never_retried(recorded_lhr: dict[str, Any]) -> None:
    report = copy.deepcopy(recorded_lhr)
    report["runtimeError"] = {
        "code": "ERRORED_DOCUMENT_REQUEST",
        "message": "Lighthouse was unable to reliably load the page you requested. "
        "(Status code: 500)",
    }
    with pytest.raises(LighthouseRuntimeError) as caught:
        judge(report, None, "lighthouse")
    assert caught.value.code == "ERRORED_DOCUMENT_REQUEST"
    assert "ERRORED_DOCUMENT_REQUEST" in str(caught.value)
    assert "unable to reliably load" in str(caught.value)
    assert not is_transient(caught.value)


def test_no_performance_score_is_a_failure(recorded_lhr: dict[str, Any]) -> None:
    report = lhr(recorded_lhr, largest_contentful_paint={"errorMessage": "NO_LCP"})
    report["categories"]["performance"]["score"] = None
    with pytest.raises(LighthouseRuntimeError, match="NO_LCP"):
        judge(report, None, "lighthouse")


def test_field_data_from_psi(recorded_lhr: dict[str, Any], recorded_psi: dict[str, Any]) -> None:
    result = judge(recorded_lhr, recorded_psi["loadingExperience"], "psi")
    field = result.data["field_data"]
    assert result.source == "psi"
    assert field["scope"] == "page"
    assert field["overall_category"] == "SLOW"
    assert field["metrics"]["largest_contentful_paint_ms"] == {"p75": 4300, "category": "SLOW"}
    assert field["metrics"]["cumulative_layout_shift"] == {"p75": 0.12, "category": "AVERAGE"}
    assert field["metrics"]["interaction_to_next_paint_ms"]["p75"] == 310
    assert "Chrome rates real visits slow" in result.summary
    assert result.score == RECORDED_SCORES["performance"]  # field data informs, never scores


def test_field_data_absent_or_from_the_origin(recorded_psi: dict[str, Any]) -> None:
    experience = recorded_psi["loadingExperience"]
    assert field_data(None) is None
    assert field_data({"id": "https://x.example/", "initial_url": "https://x.example/"}) is None
    origin = field_data({**experience, "origin_fallback": True})
    assert origin is not None
    assert origin["scope"] == "origin"


def test_parse_report_keeps_a_report_with_a_runtime_error_and_explains_a_crash() -> None:
    report = {"lighthouseVersion": "12.2.3", "runtimeError": {"code": "NO_FCP", "message": "x"}}
    assert _parse_report(1, json.dumps(report).encode(), b"")["runtimeError"]["code"] == "NO_FCP"
    with pytest.raises(LighthouseFailed, match=r"code 1 and no report: .*Chrome crashed") as caught:
        _parse_report(1, b"", b"Runtime error encountered: Chrome crashed")
    assert caught.value.retryable


def test_the_task_uses_the_shared_retry_policy() -> None:
    assert pagespeed_task.name == "pagespeed"
    assert pagespeed_task.retries == RETRIES


# --- PageSpeed Insights, against a local server speaking its wire format -------------------------


@dataclass
class PsiAnswer:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    delay: float = 0.0


@dataclass
class FakePsi:
    url: str
    queries: list[list[tuple[str, str]]] = field(default_factory=list)


class QuietHandler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that gave up
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with running(server) as port:
        yield port


@contextmanager
def psi_server(answer: PsiAnswer) -> Iterator[FakePsi]:
    """``GET /pagespeedonline/v5/runPagespeed`` answering ``answer``; records every query."""
    queries: list[list[tuple[str, str]]] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            queries.append(parse_qsl(parts.query))
            time.sleep(answer.delay)
            if parts.path != PSI_PATH:
                self.reply(404, b"", "text/plain")
                return
            self.reply(answer.status, answer.body, answer.content_type)

    with local_server(Handler) as port:
        yield FakePsi(f"http://127.0.0.1:{port}{PSI_PATH}", queries)


def google_error(
    code: int, status: str, message: str, reason: str, domain: str = "global"
) -> bytes:
    """Google's JSON error envelope, as PSI sends it."""
    error = {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": status,
    }
    return json.dumps({"error": error}).encode()


@pytest.fixture
def psi_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def configure(url: str) -> None:
        monkeypatch.setenv("LEADSHOP_PAGESPEED_API_KEY", KEY)
        monkeypatch.setenv("LEADSHOP_PAGESPEED_API_URL", url)
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


def assert_key_absent(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


async def test_psi_request_and_envelope(
    recorded_psi: dict[str, Any], psi_settings: Callable[[str], None]
) -> None:
    lead = LeadRecord(id=7, name="Bob's Plumbing", website="bobsplumbing.example")
    with psi_server(PsiAnswer(200, json.dumps(recorded_psi).encode())) as psi:
        psi_settings(psi.url)
        result = await assess(lead)

    [query] = psi.queries
    assert query == [
        ("url", "http://bobsplumbing.example"),
        ("strategy", "mobile"),
        ("category", "PERFORMANCE"),
        ("category", "ACCESSIBILITY"),
        ("category", "BEST_PRACTICES"),
        ("category", "SEO"),
        ("key", KEY),
    ]
    assert result.source == "psi"
    assert result.score == RECORDED_SCORES["performance"]
    assert result.data["field_data"]["overall_category"] == "SLOW"
    assert result.duration_ms > 0
    assert_key_absent(result.model_dump_json())


ERROR_CASES: dict[str, tuple[PsiAnswer, type[PageSpeedError], bool]] = {
    "400 invalid key": (
        PsiAnswer(
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                "badRequest",
            ),
        ),
        PsiError,
        False,
    ),
    "429 quota": (
        PsiAnswer(
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of "
                "service 'pagespeedonline.googleapis.com' for consumer 'project_number:1234'.",
                "rateLimitExceeded",
            ),
        ),
        PsiError,
        True,
    ),
    "500 page failed to load": (
        PsiAnswer(
            500,
            google_error(
                500,
                "INTERNAL",
                "Lighthouse returned error: FAILED_DOCUMENT_REQUEST. Lighthouse was unable to "
                "reliably load the page you requested. Make sure you are testing the correct URL "
                "and that the server is properly responding to all requests. "
                "(Details: net::ERR_CONNECTION_FAILED)",
                "lighthouseUserError",
                domain="lighthouse",
            ),
        ),
        LighthouseRuntimeError,
        False,
    ),
    "400 page never painted": (
        PsiAnswer(
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "Lighthouse returned error: NO_FCP. The page did not paint any content.",
                "lighthouseUserError",
                domain="lighthouse",
            ),
        ),
        LighthouseRuntimeError,
        False,
    ),
    "500 internal": (
        PsiAnswer(
            500,
            google_error(
                500,
                "INTERNAL",
                "Unable to process request. Please wait a while and try again.",
                "internalError",
            ),
        ),
        PsiError,
        True,
    ),
    "503 unavailable": (
        PsiAnswer(
            503,
            google_error(
                503, "UNAVAILABLE", "The service is currently unavailable.", "backendError"
            ),
        ),
        PsiError,
        True,
    ),
    "502 html from the front end": (
        PsiAnswer(502, b"<html><body>502. That's an error.</body></html>", "text/html"),
        PsiError,
        True,
    ),
    "200 malformed json": (PsiAnswer(200, b'{"lighthouseResult": {"audits": '), PsiError, False),
    "200 without a report": (
        PsiAnswer(200, b'{"kind": "pagespeedonline#result"}'),
        PsiError,
        False,
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_psi_errors(
    case: str, psi_settings: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    answer, error_type, retryable = ERROR_CASES[case]
    lead = LeadRecord(id=7, name="Bob's Plumbing", website="https://bobsplumbing.example/")
    caplog.set_level(logging.DEBUG)
    with psi_server(answer) as psi, pytest.raises(error_type) as caught:
        psi_settings(psi.url)
        await assess(lead)

    assert caught.value.retryable is retryable
    assert is_transient(caught.value) is retryable  # what the registry's retry condition reads
    assert ("key", KEY) in psi.queries[0]
    failure = AssessmentResult.failure("pagespeed", caught.value).model_dump_json()
    trace = "".join(traceback.format_exception(caught.value))
    assert_key_absent(str(caught.value), trace, failure, caplog.text)


async def test_psi_message_and_status_reach_the_error(psi_settings: Callable[[str], None]) -> None:
    answer, _, _ = ERROR_CASES["429 quota"]
    with psi_server(answer) as psi:
        async with PsiClient(psi.url, SecretStr(KEY)) as client:
            with pytest.raises(PsiError) as caught:
                await client.run("https://bobsplumbing.example/")
    assert caught.value.status_code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert "HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded" in str(caught.value)


async def test_psi_page_failure_names_lighthouse_code() -> None:
    answer, _, _ = ERROR_CASES["500 page failed to load"]
    with psi_server(answer) as psi:
        async with PsiClient(psi.url, SecretStr(KEY)) as client:
            with pytest.raises(LighthouseRuntimeError) as caught:
                await client.run("https://bobsplumbing.example/")
    assert caught.value.code == "FAILED_DOCUMENT_REQUEST"
    assert str(caught.value).startswith(
        "Lighthouse could not test the page (FAILED_DOCUMENT_REQUEST): Lighthouse was unable"
    )


async def test_psi_timeout_and_unreachable_are_retried_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with psi_server(PsiAnswer(200, b"{}", delay=2)) as psi:
        async with PsiClient(psi.url, SecretStr(KEY), timeout=httpx.Timeout(0.5)) as client:
            with pytest.raises(PsiError, match="did not answer in time") as slow:
                await client.run("https://bobsplumbing.example/")
        closed = psi.url  # nothing listens there once the server stops
    async with PsiClient(closed, SecretStr(KEY)) as client:
        with pytest.raises(PsiError, match="could not be reached") as refused:
            await client.run("https://bobsplumbing.example/")
    for caught in (slow, refused):
        assert caught.value.retryable
        assert caught.value.status_code is None
        assert_key_absent(str(caught.value), "".join(traceback.format_exception(caught.value)))
    assert_key_absent(caplog.text)


# --- Lighthouse on this machine ------------------------------------------------------------------

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bob's Plumbing</title>
<meta name="description" content="Leaks fixed the same day in Springfield.">
<link rel="stylesheet" href="/style.css">
</head><body><h1>Bob's Plumbing</h1><p>Leaks fixed the same day. Call 555-0100.</p>
<img src="/slow.png" alt="Bob at work" width="40" height="30"></body></html>
"""
STYLE = Reply(body=b"body { font-family: sans-serif; }", headers={"Content-Type": "text/css"})
# A 1x1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a9d1b2d80000000049454e44ae426082"
)


@pytest.fixture
def local_lighthouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """Settings for Lighthouse on loopback pages, with the slot files under ``tmp_path``."""
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("LEADSHOP_HOME", str(tmp_path))
    monkeypatch.delenv("LEADSHOP_PAGESPEED_API_KEY", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("leadshop-lighthouse-*")}


@pytest.mark.slow
async def test_lighthouse_for_real(local_lighthouse: Settings) -> None:
    routes = {
        "/": [Reply(body=PAGE)],
        "/style.css": [STYLE],
        "/slow.png": [Reply(body=PIXEL, headers={"Content-Type": "image/png"})],
    }
    dirs_before = run_dirs()
    with serve(routes) as site:
        lead = LeadRecord(id=1, name="Bob's Plumbing", website=site.url("/"))
        started = time.monotonic()
        result = await assess(lead)
        elapsed = time.monotonic() - started

    print(f"Lighthouse on a small loopback page: {elapsed:.1f} s")
    assert result.status == "completed"
    assert result.source == "lighthouse"
    assert result.data["lighthouse_version"] == "12.2.3"
    assert result.data["form_factor"] == "mobile"
    assert result.data["url"] == site.url("/")
    assert set(result.data["categories"]) == {
        "performance",
        "accessibility",
        "best_practices",
        "seo",
    }
    assert all(0 <= score <= 100 for score in result.data["categories"].values())
    assert result.score == result.data["categories"]["performance"]
    assert result.grade == grade_for(result.data["categories"]["performance"])
    assert result.data["metrics"]["first_contentful_paint_ms"] > 0
    assert result.summary.startswith(f"Mobile speed grade {result.grade}")
    assert run_dirs() == dirs_before  # Chromium's profile went with the run


@pytest.mark.slow
async def test_lean_and_heavy_demo_pages_grade_far_apart(
    demo: DemoSites, local_lighthouse: Settings
) -> None:
    """The demo's heavy page (render-blocking scripts, a 1.5 MB image, a busy slider script)
    against its lean twin, both graded by real Lighthouse on Chromium."""
    lean = await assess(LeadRecord(id=1, name="Lean", website=demo.lean_page_url))
    heavy = await assess(LeadRecord(id=2, name="Heavy", website=demo.heavy_page_url))
    print(
        f"lean {lean.score}: {lean.data['metrics']}\nheavy {heavy.score}: {heavy.data['metrics']}"
    )
    assert lean.score is not None and heavy.score is not None
    assert lean.score >= 80 and heavy.score <= 50 and lean.score - heavy.score >= 40
    lean_metrics, heavy_metrics = lean.data["metrics"], heavy.data["metrics"]
    for metric in ("largest_contentful_paint_ms", "first_contentful_paint_ms"):
        assert heavy_metrics[metric] > 2 * lean_metrics[metric], metric
    assert heavy_metrics["total_blocking_time_ms"] > 500
    heavy_findings = {finding.id for finding in heavy.findings}
    assert {"bootup-time", "mainthread-work-breakdown"} & heavy_findings
    assert {"uses-optimized-images", "modern-image-formats", "unsized-images"} & heavy_findings
    assert len(heavy.findings) > len(lean.findings)


@pytest.mark.slow
async def test_a_page_lighthouse_cannot_load_is_a_runtime_error(local_lighthouse: Settings) -> None:
    """The pre-flight sees a page; Lighthouse, a moment later, a 500. Its report (with
    ``runtimeError``, exit code 1) must arrive whole and fail the lead without retries."""
    with serve({"/": [Reply(body=PAGE), Reply(status=500, body=b"down")]}) as site:
        lead = LeadRecord(id=1, name="Flaky", website=site.url("/"))
        with pytest.raises(LighthouseRuntimeError) as caught:
            await assess(lead)
    assert caught.value.code == "ERRORED_DOCUMENT_REQUEST"
    assert "Status code: 500" in str(caught.value)
    assert not is_transient(caught.value)


async def test_preflight_refuses_private_addresses_before_lighthouse(
    local_lighthouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    with serve({"/": [Reply(body=PAGE)]}) as site:
        lead = LeadRecord(id=1, name="Intranet", website=site.url("/"))
        with pytest.raises(BlockedAddress):
            await assess(lead)
        assert site.hits == {}


def only_127_0_0_1_is_public(ip: IPAddress) -> str | None:
    """Stages the internet on loopback: 127.0.0.1 plays a public site, the rest of 127/8 an
    intranet."""
    return None if str(ip) == "127.0.0.1" else "private"


@pytest.mark.slow
async def test_lighthouse_chromium_cannot_reach_private_addresses(
    local_lighthouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public page that pulls a script and an image from an intranet address: Lighthouse's
    Chromium tries (the report lists both requests) and the intranet host sees nothing."""
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    with serve({"/x.js": [Reply(body=b"var x = 1;")]}, host="127.0.0.2") as intranet:
        page = PAGE.replace(
            b"</body>",
            f'<script src="{intranet.url("/x.js")}"></script>'
            f'<img src="{intranet.url("/x.png")}" alt="" width="1" height="1"></body>'.encode(),
        )
        with serve({"/": [Reply(body=page)], "/style.css": [STYLE]}) as site:
            lhr = await run_lighthouse(site.url("/"), get_settings(), only_127_0_0_1_is_public)
    requested = {item["url"] for item in lhr["audits"]["network-requests"]["details"]["items"]}
    assert {intranet.url("/x.js"), intranet.url("/x.png")} <= requested
    assert intranet.hits == {}
    assert site.hits["/"] >= 2  # the pre-flight, then Chromium through the guard


async def test_preflight_fails_fast_on_error_pages(local_lighthouse: Settings) -> None:
    with (
        serve({"/": [Reply(status=503, body=b"down")]}) as site,
        pytest.raises(HTTPStatusError) as caught,
    ):
        await run_lighthouse(site.url("/"), local_lighthouse)
    assert caught.value.retryable  # a 503 is worth another try; a 404 would not be


async def test_missing_lighthouse_says_run_make_install(
    local_lighthouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSHOP_LIGHTHOUSE_PATH", "/nonexistent/lighthouse")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="run `make install`") as caught:
        await assess(LeadRecord(id=1, name="x", website="http://127.0.0.1:9/"))
    assert not is_transient(caught.value)


# --- No process outlives its run ------------------------------------------------------------------


@dataclass
class RunWatch:
    """Every process seen belonging to one Lighthouse run, by (pid, start time): the Lighthouse
    process and its descendants, and anything naming the run's temporary directory."""

    marker_url: str
    seen: dict[int, float] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)

    def sample(self) -> None:
        for process in psutil.process_iter(["pid", "name", "cmdline", "create_time"]):
            try:
                cmdline = " ".join(process.info["cmdline"] or [])
                if self.marker_url in cmdline and "lighthouse" in cmdline:
                    family = [process, *process.children(recursive=True)]
                elif "leadshop-lighthouse-" in cmdline:
                    family = [process]
                else:
                    continue
                for member in family:
                    self.seen[member.pid] = member.create_time()
                    self.names.add(member.name())
            except psutil.Error:
                continue

    def survivors(self) -> list[str]:
        alive = []
        for pid, created in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {process.name()}")
            except psutil.NoSuchProcess:
                continue
        return alive

    async def follow(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.1)

    async def until_chromium(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while "chromium" not in self.names:
            assert time.monotonic() < deadline, f"no Chromium; seen: {self.names}"
            await asyncio.sleep(0.1)
            self.sample()


@contextmanager
def hanging_site() -> Iterator[str]:
    """A page that answers at once but whose image never arrives (until the test is over), so
    Lighthouse sits waiting for the page to finish loading."""
    over = threading.Event()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/slow.png":
                over.wait()  # then close the connection without an answer
            elif self.path == "/style.css":
                self.reply(200, STYLE.body, "text/css")
            else:
                self.reply(200, PAGE, "text/html")

    with local_server(Handler) as port:
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            over.set()


async def asyncio_timeout(seconds: float, work: Awaitable[Any]) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await work


async def anyio_timeout(seconds: float, work: Awaitable[Any]) -> None:
    """How Prefect enforces ``timeout_seconds`` on an async task: an anyio cancel scope, which
    cancels every await inside it again, cleanup's included."""
    with pytest.raises(TimeoutError):
        with anyio.fail_after(seconds):
            await work


@pytest.mark.slow
@pytest.mark.parametrize("cancel", [asyncio_timeout, anyio_timeout], ids=["asyncio", "anyio"])
async def test_cancelled_run_leaves_no_process(
    local_lighthouse: Settings,
    cancel: Callable[[float, Awaitable[Any]], Awaitable[None]],
) -> None:
    with hanging_site() as url:
        watch = RunWatch(url)
        follower = asyncio.ensure_future(watch.follow())
        started = time.monotonic()
        try:
            await cancel(8.0, run_lighthouse(url, local_lighthouse))  # Chromium is up by ~2 s
        finally:
            follower.cancel()
        stopped_in = time.monotonic() - started

    assert "chromium" in watch.names
    assert watch.survivors() == []
    assert stopped_in < 8.0 + 4.0  # the grace period at most, not the page's 40 s


@pytest.mark.slow
async def test_crashed_lighthouse_leaves_no_browser(local_lighthouse: Settings) -> None:
    """Lighthouse killed outright cannot stop the Chromium it started detached."""
    with hanging_site() as url:
        watch = RunWatch(url)
        runner = asyncio.ensure_future(run_lighthouse(url, local_lighthouse))
        await watch.until_chromium()
        [node] = [
            process
            for process in psutil.process_iter(["cmdline"])
            if url in " ".join(process.info["cmdline"] or []) and process.name() == "node"
        ]
        node.send_signal(signal.SIGKILL)
        with pytest.raises(LighthouseFailed, match="no report"):
            await runner

    assert watch.survivors() == []


# --- Machine-wide slots ---------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from leadshop.locks import FileSemaphore

    async def main() -> None:
        semaphore = FileSemaphore(Path(sys.argv[1]), "test", int(sys.argv[2]), poll_seconds=0.02)
        async with semaphore.hold() as slot:
            start = time.time()
            await asyncio.sleep(float(sys.argv[3]))
            end = time.time()
        print(json.dumps({"slot": slot, "start": start, "end": end}))

    asyncio.run(main())
    """
)


def holder(directory: Path, slots: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), str(slots), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_slots_hold_across_processes(tmp_path: Path) -> None:
    children = [holder(tmp_path, 2, 1.0) for _ in range(4)]
    spans = [json.loads(child.communicate(timeout=30)[0]) for child in children]

    events = sorted(
        [(span["start"], 1) for span in spans] + [(span["end"], -1) for span in spans],
        key=lambda event: (event[0], event[1]),  # a release at the same instant counts first
    )
    held = most = 0
    for _, change in events:
        held += change
        most = max(most, held)
    assert most == 2  # never more than two, and the two were used side by side
    assert {span["slot"] for span in spans} == {0, 1}
    first_start = min(span["start"] for span in spans)
    last_end = max(span["end"] for span in spans)
    assert last_end - first_start < 3.5  # two rounds of 1 s, not four


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    child = holder(tmp_path, 1, 60.0)
    lock_file = tmp_path / "test.0.lock"
    deadline = time.monotonic() + 10
    while not (lock_file.exists() and lock_is_held(lock_file)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    async def take() -> int:
        async with FileSemaphore(tmp_path, "test", 1).hold() as slot:
            return slot

    assert asyncio.run(asyncio.wait_for(take(), timeout=2)) == 0


def lock_is_held(path: Path) -> bool:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


async def test_slots_hold_between_coroutines_of_one_process(tmp_path: Path) -> None:
    semaphore = FileSemaphore(tmp_path, "test", 1, poll_seconds=0.01)
    inside = most = 0

    async def one() -> None:
        nonlocal inside, most
        async with semaphore.hold():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(5)))
    assert most == 1
