"""The pagespeed assessment: how fast the lead's page loads on a phone, in Lighthouse's terms.

Two roads to the same Lighthouse report (LHR). With ``LEADSHOP_PAGESPEED_API_KEY``, PageSpeed
Insights v5 runs Lighthouse on Google's machines and adds Chrome's field data (real visits)
when Google has enough of them. Without a key, Lighthouse 12.2.3 from this repository's
``node_modules`` runs on the machine's Chromium. Either way one pure ``judge`` reads the LHR, so a
lead is graded alike whichever road was taken: the envelope's score is Lighthouse's performance
score, a number a site owner can reproduce in Chrome's DevTools or on pagespeed.web.dev.

The local road guards three things a lead list could otherwise abuse or exhaust:

* the URL is checked by ``SafeClient`` first (redirects followed, each hop's address checked)
  and Chromium is given the final URL. Chromium resolves names again and loads subresources
  unchecked, so this stops a lead that *is* a private address, not a site that rebinds its DNS;
* at most ``lighthouse_slots`` runs at once on the machine, across all worker processes
  (``leadshop.locks``): a run keeps a core busy and peaks near 700 MB (proportional set size:
  Lighthouse's Node ~200 MB, Chromium's processes ~480 MB, even for a small page);
* no process outlives its run. Lighthouse runs in a session of its own, but chrome-launcher
  starts Chromium *detached* (a session of its own again) and Chromium's crash handlers detach
  once more, so killing Lighthouse's process group alone would orphan the browser. Every
  process of a run inherits a marker in its environment; the run's process groups are found by
  it and all of them get SIGTERM, then SIGKILL, also when the task is cancelled or times out.
  Lighthouse's temporary files (Chromium's profile among them) live in a directory of the
  run's own, removed with it.

Errors, extending ``leadshop.errors``::

    LeadshopError
    └── PageSpeedError
        ├── PsiError                PSI refused or failed the request    429, 5xx, no answer retried
        ├── LighthouseRuntimeError  Lighthouse could not test the page                 never retried
        └── LighthouseFailed        the local run crashed, hung or gave no report            retried
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import psutil
from pydantic import SecretStr

from leadshop.apis import (
    MAX_MESSAGE_CHARS,
    KeyTransport,
    ServiceError,
    api_client,
    google_error,
    redact,
    send,
)
from leadshop.browser import chromium_path, launch_env, launch_flags
from leadshop.config import Settings, get_settings
from leadshop.egress import Egress, EgressGuard, chromium_proxy_flags
from leadshop.errors import ConfigurationError, HTTPStatusError, LeadshopError
from leadshop.locks import FileSemaphore
from leadshop.models import AssessmentResult, Finding, LeadRecord, Severity
from leadshop.net import AddressPolicy, SafeClient, address_kind, lead_url, trust_context
from leadshop.scoring import grade_for
from tasks.registry import QUEUED_TIMEOUT_SECONDS, assessment_task

ALGORITHM_VERSION = "pagespeed/1"
STRATEGY = "mobile"  # PSI's default is desktop, so it is always sent; leads are found on phones
REPO_ROOT = Path(__file__).resolve().parent.parent

# PSI runs Lighthouse while we wait: ~60 s is normal.
PSI_TIMEOUT = httpx.Timeout(80.0, connect=10.0)
SERVICE = "PageSpeed Insights"
LIGHTHOUSE_USER_ERROR = "lighthouseUserError"  # PSI's reason when the page, not PSI, failed
LIGHTHOUSE_ERROR_PREFIX = re.compile(r"Lighthouse returned error: (?P<code>[A-Z_]+)\.?\s*")

MAX_WAIT_FOR_LOAD_MS = 30_000  # Lighthouse's default is 45 s; the task has 90 s for everything
LIGHTHOUSE_TIMEOUT_SECONDS = 75.0
STOP_GRACE_SECONDS = 3.0  # between SIGTERM (Chromium shuts down cleanly) and SIGKILL
STOP_POLL_SECONDS = 0.1
RUN_MARKER = "LEADSHOP_LIGHTHOUSE_RUN"

PASSING_SCORE = 0.9  # Lighthouse's green line; below it an audit is worth telling the lead
FAILING_SCORE = 0.5  # Lighthouse's red line
# A fix that saves this much time ranks above Lighthouse's colour: salespeople sell seconds.
SEVERITY_BY_SAVINGS_MS: tuple[tuple[float, Severity], ...] = ((1000, "high"), (300, "medium"))
JUDGED_MODES = frozenset({"numeric", "binary", "metricSavings"})  # not informative, manual, n/a
DIAGNOSTICS_GROUP = "diagnostics"


@dataclass(frozen=True)
class Category:
    lhr_id: str
    psi_name: str
    key: str  # in the envelope's data


CATEGORIES = (
    Category("performance", "PERFORMANCE", "performance"),
    Category("accessibility", "ACCESSIBILITY", "accessibility"),
    Category("best-practices", "BEST_PRACTICES", "best_practices"),
    Category("seo", "SEO", "seo"),
)
METRICS: dict[str, str] = {  # LHR audit id -> data key; the unit is in the key
    "first-contentful-paint": "first_contentful_paint_ms",
    "largest-contentful-paint": "largest_contentful_paint_ms",
    "total-blocking-time": "total_blocking_time_ms",
    "cumulative-layout-shift": "cumulative_layout_shift",
    "speed-index": "speed_index_ms",
    "server-response-time": "server_response_time_ms",
}
# CrUX metric in PSI's loadingExperience -> (data key, divisor): CrUX reports CLS times 100.
FIELD_METRICS: dict[str, tuple[str, int]] = {
    "FIRST_CONTENTFUL_PAINT_MS": ("first_contentful_paint_ms", 1),
    "LARGEST_CONTENTFUL_PAINT_MS": ("largest_contentful_paint_ms", 1),
    "INTERACTION_TO_NEXT_PAINT": ("interaction_to_next_paint_ms", 1),
    "CUMULATIVE_LAYOUT_SHIFT_SCORE": ("cumulative_layout_shift", 100),
    "EXPERIMENTAL_TIME_TO_FIRST_BYTE": ("time_to_first_byte_ms", 1),
}
PageSpeedSource = Literal["psi", "lighthouse"]


class PageSpeedError(LeadshopError):
    pass


class PsiError(PageSpeedError, ServiceError):
    """``status_code`` is None when PSI gave no answer at all (timeout, connection lost)."""


class LighthouseRuntimeError(PageSpeedError):
    """The page could not be tested (did not load, answered an error, never painted): the
    same page fails the same way next time, so this is the lead's finding, not a glitch."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Lighthouse could not test the page ({code}): {message}")
        self.code = code


class LighthouseFailed(PageSpeedError):
    retryable = True


# --- Judge: pure ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailingAudit:
    id: str
    title: str
    score: float
    display_value: str
    description: str
    savings_ms: float
    savings_bytes: float


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _category_score(lhr: Mapping[str, Any], lhr_id: str) -> int | None:
    score = _number(lhr.get("categories", {}).get(lhr_id, {}).get("score"))
    return None if score is None else round(score * 100)


def _metric(audit: Mapping[str, Any]) -> float | int | None:
    value = _number(audit.get("numericValue"))
    if value is None:
        return None
    return round(value) if audit.get("numericUnit") == "millisecond" else round(value, 3)


def _candidate_ids(lhr: Mapping[str, Any]) -> list[str]:
    """Opportunities anywhere, and the performance category's diagnostics, in report order."""
    refs = lhr.get("categories", {}).get("performance", {}).get("auditRefs", [])
    diagnostics = [ref["id"] for ref in refs if ref.get("group") == DIAGNOSTICS_GROUP]
    opportunities = [
        audit_id
        for audit_id, audit in lhr.get("audits", {}).items()
        if (audit.get("details") or {}).get("type") == "opportunity"
    ]
    return list(dict.fromkeys([*diagnostics, *opportunities]))


def errored_audits(lhr: Mapping[str, Any]) -> dict[str, str]:
    """Audits that could have been findings but crashed, by id, with Lighthouse's message: a
    missing finding then reads as "not measured", not as "passed"."""
    audits = lhr.get("audits", {})
    return {
        audit_id: str(audits[audit_id].get("errorMessage", ""))
        for audit_id in _candidate_ids(lhr)
        if audits.get(audit_id, {}).get("scoreDisplayMode") == "error"
    }


def failing_audits(lhr: Mapping[str, Any]) -> list[FailingAudit]:
    """The audits worth a finding, biggest estimated saving first."""
    audits = lhr.get("audits", {})
    failing = []
    for audit_id in _candidate_ids(lhr):
        audit = audits.get(audit_id, {})
        score = _number(audit.get("score"))
        if score is None or score >= PASSING_SCORE:
            continue
        if audit.get("scoreDisplayMode") not in JUDGED_MODES:
            continue
        details = audit.get("details") or {}
        failing.append(
            FailingAudit(
                id=audit_id,
                title=str(audit.get("title", audit_id)),
                score=score,
                display_value=str(audit.get("displayValue", "")),
                description=str(audit.get("description", "")),
                savings_ms=_number(details.get("overallSavingsMs")) or 0.0,
                savings_bytes=_number(details.get("overallSavingsBytes")) or 0.0,
            )
        )
    return sorted(failing, key=lambda audit: (-audit.savings_ms, audit.score, audit.id))


def severity_for(audit: FailingAudit) -> Severity:
    for floor, severity in SEVERITY_BY_SAVINGS_MS:
        if audit.savings_ms >= floor:
            return severity
    return "medium" if audit.score < FAILING_SCORE else "low"


def _plain_links(markdown: str) -> str:
    """Lighthouse's descriptions link with Markdown; reports and e-mails want the bare URL."""
    return re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"\1 (\2)", markdown)


def _savings_text(audit: FailingAudit) -> str:
    amounts = []
    if audit.savings_ms:
        amounts.append(f"{audit.savings_ms:,.0f} ms")
    if audit.savings_bytes:
        amounts.append(f"{audit.savings_bytes / 1024:,.0f} KiB")
    return f"Lighthouse estimates the fix saves {' and '.join(amounts)}." if amounts else ""


def _finding(audit: FailingAudit) -> Finding:
    """An opportunity's display value repeats its savings; a diagnostic's is its measurement."""
    measured = f"Lighthouse measured: {audit.display_value}." if audit.display_value else ""
    return Finding(
        id=audit.id,
        severity=severity_for(audit),
        title=audit.title,
        detail=_savings_text(audit) or measured,
        recommendation=_plain_links(audit.description),
    )


def field_data(loading_experience: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chrome's 75th-percentile real-user numbers from PSI, or None when Google has too few
    visits (PSI then sends a ``loadingExperience`` without ``metrics``)."""
    if not loading_experience:
        return None
    metrics = loading_experience.get("metrics") or {}
    found: dict[str, Any] = {}
    for name, (key, divisor) in FIELD_METRICS.items():
        percentile = _number(metrics.get(name, {}).get("percentile"))
        if percentile is not None:
            p75 = percentile / divisor if divisor != 1 else round(percentile)
            found[key] = {"p75": p75, "category": metrics[name].get("category")}
    if not found:
        return None
    return {
        "scope": "origin" if loading_experience.get("origin_fallback") else "page",
        "overall_category": loading_experience.get("overall_category"),
        "metrics": found,
    }


def _summary(
    score: int,
    grade: str,
    metrics: Mapping[str, float | int | None],
    field: Mapping[str, Any] | None,
    failing: list[FailingAudit],
) -> str:
    text = f"Mobile speed grade {grade} ({score}/100)"
    lcp = metrics.get("largest_contentful_paint_ms")
    if lcp is not None:
        text += f": the main content appears after {lcp / 1000:.1f} s on a mid-range phone"
    if field and field.get("overall_category"):
        text += f", and Chrome rates real visits {str(field['overall_category']).lower()}"
    if not failing:
        return f"{text}; Lighthouse flags no speed problems."
    top = failing[0]
    saving = f" (about {top.savings_ms / 1000:.1f} s faster)" if top.savings_ms >= 100 else ""
    return f"{text}; the biggest fix: {top.title}{saving}."


def judge(
    lhr: Mapping[str, Any], loading_experience: Mapping[str, Any] | None, source: PageSpeedSource
) -> AssessmentResult:
    """Grade one LHR, from PSI or a local run alike; pure, so tests need neither.

    Raises ``LighthouseRuntimeError`` when the report says the page could not be tested.
    """
    runtime_error = lhr.get("runtimeError")
    if runtime_error:
        raise LighthouseRuntimeError(
            str(runtime_error.get("code", "UNKNOWN")), str(runtime_error.get("message", ""))
        )
    categories = {category.key: _category_score(lhr, category.lhr_id) for category in CATEGORIES}
    score = categories["performance"]
    audits = lhr.get("audits", {})
    if score is None:
        errors = [str(audits.get(a, {}).get("errorMessage", "")) for a in METRICS]
        raise LighthouseRuntimeError("NO_PERFORMANCE_SCORE", next(filter(None, errors), ""))
    grade = grade_for(score)
    metrics = {key: _metric(audits.get(audit_id, {})) for audit_id, key in METRICS.items()}
    field = field_data(loading_experience)
    failing = failing_audits(lhr)
    return AssessmentResult(
        assessment="pagespeed",
        status="completed",
        source=source,
        score=score,
        grade=grade,
        summary=_summary(score, grade, metrics, field, failing),
        findings=[_finding(audit) for audit in failing],
        data={
            "url": lhr.get("finalDisplayedUrl"),
            "requested_url": lhr.get("requestedUrl"),
            "lighthouse_version": lhr.get("lighthouseVersion"),
            "form_factor": lhr.get("configSettings", {}).get("formFactor"),
            "fetch_time": lhr.get("fetchTime"),
            "categories": categories,
            "metrics": metrics,
            "field_data": field,
            "failing_audits": [
                {
                    "id": audit.id,
                    "score": audit.score,
                    "display_value": audit.display_value,
                    "savings_ms": round(audit.savings_ms),
                    "savings_bytes": round(audit.savings_bytes),
                }
                for audit in failing
            ],
            "errored_audits": errored_audits(lhr),
            "warnings": [str(warning) for warning in lhr.get("runWarnings", [])],
        },
        algorithm_version=ALGORITHM_VERSION,
    )


# --- PageSpeed Insights ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PsiReport:
    lhr: dict[str, Any]
    loading_experience: dict[str, Any] | None


class PsiClient:
    """PageSpeed Insights v5. A trusted API, not a lead's site (the lead's URL is only a query
    parameter), so a plain httpx client with TLS verified and a long read timeout."""

    def __init__(
        self, api_url: str, api_key: SecretStr, timeout: httpx.Timeout = PSI_TIMEOUT
    ) -> None:
        self.api_url = api_url
        self._key = api_key
        transport = KeyTransport(httpx.AsyncHTTPTransport(verify=trust_context()), api_key)
        self._client = api_client(timeout, transport=transport)

    async def __aenter__(self) -> PsiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def run(self, url: str) -> PsiReport:
        params = {
            "url": url,
            "strategy": STRATEGY,
            "category": [category.psi_name for category in CATEGORIES],  # repeated, not a list
        }
        request = self._client.build_request("GET", self.api_url, params=params)
        return self._report(await send(self._client, request, SERVICE, PsiError, self._key))

    def _report(self, response: httpx.Response) -> PsiReport:
        if not response.is_success:
            raise self._error(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        lhr = body.get("lighthouseResult") if isinstance(body, dict) else None
        if not isinstance(lhr, dict):
            raise PsiError(
                redact(f"{SERVICE} answered without a report: {response.text}", self._key),
                response.status_code,
            )
        experience = body.get("loadingExperience") if isinstance(body, dict) else None
        return PsiReport(lhr, experience if isinstance(experience, dict) else None)

    def _error(self, response: httpx.Response) -> PageSpeedError:
        """A page Lighthouse could not load comes back as a Google error too (400 today, 500
        before), told apart by its reason or its "Lighthouse returned error: CODE." message."""
        status_code = response.status_code
        error = google_error(response)
        if error is None:
            return PsiError(
                redact(f"{SERVICE} answered HTTP {status_code}: {response.text}", self._key),
                status_code,
            )
        message = redact(error.message, self._key)
        lighthouse = LIGHTHOUSE_ERROR_PREFIX.match(message)
        if lighthouse or LIGHTHOUSE_USER_ERROR in error.reasons:
            code = lighthouse["code"] if lighthouse else LIGHTHOUSE_USER_ERROR
            return LighthouseRuntimeError(code, LIGHTHOUSE_ERROR_PREFIX.sub("", message, count=1))
        answer = " ".join(filter(None, (f"HTTP {status_code}", error.status)))
        return PsiError(f"{SERVICE} answered {answer}: {message}", status_code, error.status)


# --- Lighthouse on this machine -------------------------------------------------------------------


def lighthouse_executable(settings: Settings) -> str:
    path = settings.lighthouse_path or str(REPO_ROOT / "node_modules" / ".bin" / "lighthouse")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ConfigurationError(
            f"Lighthouse not found at {path}: run `make install` (it runs `npm ci`), or set "
            "LEADSHOP_LIGHTHOUSE_PATH"
        )
    return path


def lighthouse_command(executable: str, url: str, proxy_url: str) -> list[str]:
    return [
        executable,
        url,
        "--output=json",
        "--quiet",
        f"--form-factor={STRATEGY}",
        f"--only-categories={','.join(category.lhr_id for category in CATEGORIES)}",
        f"--max-wait-for-load={MAX_WAIT_FOR_LOAD_MS}",
        f"--chrome-flags={' '.join([*launch_flags(), *chromium_proxy_flags(proxy_url)])}",
        "--no-enable-error-reporting",
    ]


def lighthouse_slots(settings: Settings) -> FileSemaphore:
    slots = settings.lighthouse_slots or os.cpu_count() or 1
    return FileSemaphore(settings.home.resolve() / "locks", "lighthouse", slots)


async def preflight(url: str, egress: Egress) -> str:
    """The URL to give Lighthouse: where ``url`` ends after redirects, every hop's address
    checked. A page answering 4xx/5xx fails here in a second, not after a Lighthouse run, with
    the status's own retry verdict (a 503 is tried again, a 404 is not)."""
    client = SafeClient(allow_private_networks=egress.allow_private, address_policy=egress.policy)
    async with client:
        response = await client.get(url)
    if response.status_code >= 400:
        raise HTTPStatusError(
            f"{response.url} answered HTTP {response.status_code}",
            response.url,
            response.status_code,
        )
    return response.url


def _live_groups(known: set[int], marker: str) -> set[int]:
    """Process groups in ``known``, or holding a process marked with ``marker``, that still have
    a live member (zombies are already dead: they hold no memory and ignore signals)."""
    live = set()
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            group = os.getpgid(process.pid)
            if group in known or process.environ().get(RUN_MARKER) == marker:
                live.add(group)
    live.discard(os.getpgrp())  # a marked process never joins ours; never signal ourselves
    return live


def _signal_groups(groups: Iterable[int], signum: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)


async def _stop_run(process: asyncio.subprocess.Process, marker: str) -> None:
    """SIGTERM to every process group of the run, SIGKILL to what is left after a grace period,
    then reap Lighthouse so its pipes close with the event loop still open.

    The SIGKILL sits in a ``finally`` and is synchronous, so even a cancellation that reaches
    this wait (the worker's loop shutting down, say) cannot skip it.
    """
    groups = _live_groups({process.pid}, marker)
    _signal_groups(groups, signal.SIGTERM)
    try:
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and (live := _live_groups(groups, marker)):
            groups |= live
            await asyncio.sleep(STOP_POLL_SECONDS)
    finally:
        _signal_groups(_live_groups(groups, marker), signal.SIGKILL)
    await process.wait()


def lighthouse_environment(chromium: str) -> dict[str, str]:
    """Chromium's launch environment (``leadshop.browser``: it carries the trust for extra CAs)
    without LeadShop's settings, keys among them: neither Lighthouse nor the page needs them."""
    environment = {k: v for k, v in launch_env().items() if not k.startswith("LEADSHOP_")}
    environment["CHROME_PATH"] = chromium
    return environment


async def _run_to_end(command: list[str], environment: dict[str, str]) -> tuple[int, bytes]:
    """Lighthouse's exit code and stderr; the process and all it started are gone on return."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(LIGHTHOUSE_TIMEOUT_SECONDS):
            _, stderr = await process.communicate()
    except TimeoutError as exc:
        raise LighthouseFailed(
            f"Lighthouse did not finish within {LIGHTHOUSE_TIMEOUT_SECONDS:g} s"
        ) from exc
    finally:
        # Prefect's timeout cancels through anyio, which would cancel every await in here too.
        with anyio.CancelScope(shield=True):
            await _stop_run(process, environment[RUN_MARKER])
    return process.returncode or 0, stderr


def _parse_report(returncode: int, report: bytes, stderr: bytes) -> dict[str, Any]:
    """Lighthouse writes the report even when the page failed (``runtimeError``, exit code 1),
    so the report decides; stderr only explains a run that wrote none."""
    try:
        lhr = json.loads(report)
    except ValueError:
        lhr = None
    if isinstance(lhr, dict) and "lighthouseVersion" in lhr:
        return lhr
    said = stderr.decode(errors="replace").strip()[-MAX_MESSAGE_CHARS:] or "nothing on stderr"
    raise LighthouseFailed(f"Lighthouse exited with code {returncode} and no report: {said}")


async def run_lighthouse(
    url: str, settings: Settings, policy: AddressPolicy = address_kind
) -> dict[str, Any]:
    """The LHR of one local Lighthouse run: installation checked first (a missing one fails at
    once), then the pre-flight, then a machine-wide slot for the run itself. Its Chromium
    reaches the network only through an ``EgressGuard`` (``policy`` lets tests stage a public
    site on loopback).

    The report goes to a file, not stdout: on a page error Lighthouse calls ``process.exit``
    while a piped stdout is still draining, and the report came out cut at 64 KiB.
    """
    executable = lighthouse_executable(settings)
    environment = lighthouse_environment(chromium_path(settings))
    egress = Egress(settings.allow_private_networks, policy)
    target = await preflight(url, egress)
    async with lighthouse_slots(settings).hold(), EgressGuard(egress) as guard:
        command = lighthouse_command(executable, target, guard.url)
        with tempfile.TemporaryDirectory(
            prefix="leadshop-lighthouse-", ignore_cleanup_errors=True
        ) as run_dir:
            report = Path(run_dir) / "report.json"
            returncode, stderr = await _run_to_end(
                [*command, f"--output-path={report}"],
                {**environment, "TMPDIR": run_dir, RUN_MARKER: uuid.uuid4().hex},
            )
            written = report.read_bytes() if report.is_file() else b""
    return _parse_report(returncode, written, stderr)


# --- The task ------------------------------------------------------------------------------------


async def assess(lead: LeadRecord) -> AssessmentResult:
    """The task body: PSI when a key is set, local Lighthouse otherwise. Errors propagate so the
    registry's retry condition reads their ``retryable``."""
    started = time.monotonic()
    settings = get_settings()
    url = lead_url(lead.website)
    key = settings.pagespeed_api_key
    if key is not None and key.get_secret_value():
        async with PsiClient(settings.pagespeed_api_url, key) as client:
            report = await client.run(url)
        result = judge(report.lhr, report.loading_experience, "psi")
    else:
        result = judge(await run_lighthouse(url, settings), None, "lighthouse")
    return result.model_copy(update={"duration_ms": int((time.monotonic() - started) * 1000)})


pagespeed_task = assessment_task("pagespeed", QUEUED_TIMEOUT_SECONDS)(assess)
