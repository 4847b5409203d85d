"""The Observatory reimplementation: every result code from pure evidence, the score table, the
grade chart and extra credit, MDN's own fixtures and test vectors, and collect on loopback sites.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from leadshop import errors
from leadshop.config import get_settings
from leadshop.demo.sites import DemoSites
from leadshop.domains import same_site_hosts
from leadshop.models import LeadRecord
from leadshop.scoring import grade_for, severity_for
from tasks.registry import resolve
from tasks.security import (
    ALGORITHM_VERSION,
    CORS_ORIGIN,
    SCORE_TABLE,
    TESTS,
    CorsProbe,
    HttpRoute,
    Https,
    Page,
    Result,
    SecurityEvidence,
    SetCookie,
    Step,
    analyze_csp,
    assess,
    check_coop,
    check_csp,
    check_hsts,
    check_referrer_policy,
    judge,
    observatory_score,
    parse_csp,
    scan_target,
    security_task,
)
from tests.sites import Reply, running, serve

R = Result
FIXTURES = Path(__file__).parent.parent / "fixtures" / "security"
SITE = "shop.example"
PAGE_HTML = (
    "<!doctype html><html><head><title>Shop</title><script src='/app.js'></script></head>"
    "<body>Open 9-5</body></html>"
)
PASSING_HEADERS: dict[str, str] = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "default-src 'self'",
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}
HTTPS_ROUTE = ((f"http://{SITE}/", 301), (f"https://{SITE}/", 200))


def evidence(
    *,
    headers: Mapping[str, str | list[str] | None] | None = None,
    html: str = PAGE_HTML,
    page_url: str = f"https://{SITE}/",
    cookies: Sequence[str] = (),
    route: Sequence[tuple[str, int]] = HTTPS_ROUTE,
    http_certificate_error: bool = False,
    https: Https | None = None,
    cors: CorsProbe | None = None,
    preload: Mapping[str, bool] | None = None,
) -> SecurityEvidence:
    """A site that passes every test, with the given things changed (a header set to None is
    removed; cookies arrive as Set-Cookie on the final page)."""
    merged: dict[str, str | list[str] | None] = {**PASSING_HEADERS, **(headers or {})}
    lines = [
        (name, value)
        for name, values in merged.items()
        if values is not None
        for value in ([values] if isinstance(values, str) else values)
    ]
    lines += [("set-cookie", cookie) for cookie in cookies]
    return SecurityEvidence(
        host=SITE,
        page=Page(
            url=page_url,
            final_url=page_url,
            status=200,
            headers=tuple(lines),
            html=html,
            cookies=tuple(SetCookie(url=page_url, header=cookie) for cookie in cookies),
        ),
        http=HttpRoute(
            steps=tuple(Step(url=url, status=status) for url, status in route),
            certificate_error=http_certificate_error,
        ),
        https=https or Https(answered=True),
        cors=cors,
        hsts_preload=dict(preload or {}),
    )


def http_only(**changes: Any) -> SecurityEvidence:
    """The passing site, except that it only answers over plain HTTP."""
    return evidence(
        page_url=f"http://{SITE}/",
        route=((f"http://{SITE}/", 200),),
        https=Https(answered=False, error="connection refused"),
        **changes,
    )


def csp(policy: str | None, **changes: Any) -> SecurityEvidence:
    return evidence(headers={"content-security-policy": policy}, **changes)


def cors(allow_origin: str, credentials: str | None = None) -> SecurityEvidence:
    probe = CorsProbe(origin=CORS_ORIGIN, allow_origin=allow_origin, allow_credentials=credentials)
    return evidence(cors=probe)


def script(tag: str) -> SecurityEvidence:
    return evidence(html=f"<!doctype html><html><head>{tag}</head><body></body></html>")


def hsts(value: str | None) -> SecurityEvidence:
    return evidence(headers={"strict-transport-security": value})


def header(name: str, value: str | None) -> SecurityEvidence:
    return evidence(headers={name: value})


EXTERNAL = "https://cdn.other.example/lib.js"
CASES: list[tuple[Result, SecurityEvidence]] = [
    # Content Security Policy
    (R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE, csp("default-src 'none'")),
    (R.CSP_IMPLEMENTED_WITH_NO_UNSAFE, evidence()),
    (
        R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY,
        csp("default-src 'self'; style-src 'self' 'unsafe-inline'"),
    ),
    (
        R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY,
        csp("default-src 'self'; img-src http:"),
    ),
    (
        R.CSP_IMPLEMENTED_WITH_UNSAFE_EVAL,
        csp("default-src 'self'; script-src 'self' 'unsafe-eval'"),
    ),
    (
        R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE,
        csp("default-src 'self'; script-src 'self' 'unsafe-inline'"),
    ),
    (R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME, csp("default-src 'self' http://cdn.example")),
    (R.CSP_HEADER_INVALID, csp("default-src 'self'; default-src 'none'")),
    (R.CSP_NOT_IMPLEMENTED, csp(None)),
    (
        R.CSP_NOT_IMPLEMENTED_BUT_REPORTING_ENABLED,
        evidence(
            headers={
                "content-security-policy": None,
                "content-security-policy-report-only": "default-src 'self'",
            }
        ),
    ),
    (
        R.CSP_IMPLEMENTED_BUT_DUPLICATE_DIRECTIVES,
        csp("default-src 'self'; report-uri /csp; report-uri /csp2"),
    ),
    # Cookies
    (
        R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE,
        evidence(cookies=["sessionid=1; Secure; HttpOnly; SameSite=Lax"]),
    ),
    (R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS, evidence(cookies=["sessionid=1; Secure; HttpOnly"])),
    (R.COOKIES_NOT_FOUND, evidence()),
    (
        R.COOKIES_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS,
        evidence(cookies=["theme=dark; SameSite=Lax"]),
    ),
    (
        R.COOKIES_SESSION_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS,
        evidence(cookies=["sessionid=1; HttpOnly; SameSite=Lax"]),
    ),
    (
        R.COOKIES_WITHOUT_SECURE_FLAG,
        evidence(cookies=["theme=dark; SameSite=Lax"], headers={"strict-transport-security": None}),
    ),
    (R.COOKIES_SAMESITE_FLAG_INVALID, evidence(cookies=["theme=dark; Secure; SameSite=Yes"])),
    (R.COOKIES_ANTICSRF_WITHOUT_SAMESITE_FLAG, evidence(cookies=["csrftoken=1; Secure"])),
    (
        R.COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG,
        evidence(cookies=["sessionid=1; Secure; SameSite=Lax"]),
    ),
    (
        R.COOKIES_SESSION_WITHOUT_SECURE_FLAG,
        http_only(cookies=["PHPSESSID=1; HttpOnly"]),
    ),
    # Cross-Origin-Embedder-Policy
    (
        R.COEP_IMPLEMENTED_WITH_REQUIRE_CORP,
        header("cross-origin-embedder-policy", "require-corp"),
    ),
    (
        R.COEP_IMPLEMENTED_WITH_CREDENTIALLESS,
        header("cross-origin-embedder-policy", "credentialless"),
    ),
    (R.COEP_IMPLEMENTED_WITH_UNSAFE_NONE, header("cross-origin-embedder-policy", "unsafe-none")),
    (R.COEP_NOT_IMPLEMENTED, evidence()),
    (R.COEP_HEADER_INVALID, header("cross-origin-embedder-policy", "Require-Corp")),
    # Cross-Origin-Opener-Policy
    (R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN, header("cross-origin-opener-policy", "same-origin")),
    (
        R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN_ALLOW_POPUPS,
        header("cross-origin-opener-policy", "same-origin-allow-popups"),
    ),
    (
        R.COOP_IMPLEMENTED_WITH_NOOPENER_ALLOW_POPUPS,
        header("cross-origin-opener-policy", "noopener-allow-popups"),
    ),
    (R.COOP_IMPLEMENTED_WITH_UNSAFE_NONE, header("cross-origin-opener-policy", "unsafe-none")),
    (R.COOP_NOT_IMPLEMENTED, evidence()),
    (R.COOP_HEADER_INVALID, header("cross-origin-opener-policy", "whimsy")),
    # Cross-origin resource sharing
    (R.CORS_NOT_IMPLEMENTED, evidence()),
    (R.CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS, cors("*")),
    (R.CORS_IMPLEMENTED_WITH_RESTRICTED_ACCESS, cors("https://partner.example")),
    (R.CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS, cors(CORS_ORIGIN, credentials="true")),
    # Redirection
    (R.REDIRECTION_ALL_REDIRECTS_PRELOADED, evidence(preload={SITE: False})),
    (R.REDIRECTION_TO_HTTPS, evidence()),
    (R.REDIRECTION_NOT_NEEDED_NO_HTTP, evidence(route=())),
    (
        R.REDIRECTION_OFF_HOST_FROM_HTTP,
        evidence(route=((f"http://{SITE}/", 301), (f"https://www.{SITE}/", 200))),
    ),
    (
        R.REDIRECTION_NOT_TO_HTTPS_ON_INITIAL_REDIRECTION,
        evidence(
            route=(
                (f"http://{SITE}/", 301),
                (f"http://www.{SITE}/", 301),
                (f"https://www.{SITE}/", 200),
            )
        ),
    ),
    (
        R.REDIRECTION_NOT_TO_HTTPS,
        evidence(route=((f"http://{SITE}/", 301), (f"http://www.{SITE}/", 200))),
    ),
    (R.REDIRECTION_MISSING, http_only()),
    (
        R.REDIRECTION_INVALID_CERT,
        evidence(route=((f"http://{SITE}/", 301),), http_certificate_error=True),
    ),
    # Referrer-Policy
    (R.REFERRER_POLICY_PRIVATE, evidence()),
    (R.REFERRER_POLICY_NOT_IMPLEMENTED, header("referrer-policy", None)),
    (R.REFERRER_POLICY_UNSAFE, header("referrer-policy", "unsafe-url")),
    (R.REFERRER_POLICY_HEADER_INVALID, header("referrer-policy", "everyone")),
    # Strict-Transport-Security
    (R.HSTS_PRELOADED, evidence(preload={"example": True})),
    (R.HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS, evidence()),
    (R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS, hsts("max-age=86400")),
    (R.HSTS_NOT_IMPLEMENTED, hsts(None)),
    (R.HSTS_HEADER_INVALID, hsts("max-age=31536000, max-age=31536000")),
    (R.HSTS_NOT_IMPLEMENTED_NO_HTTPS, http_only()),
    (
        R.HSTS_INVALID_CERT,
        evidence(https=Https(answered=False, certificate_error=True), page_url=f"http://{SITE}/"),
    ),
    # Subresource Integrity
    (
        R.SRI_IMPLEMENTED_AND_ALL_SCRIPTS_LOADED_SECURELY,
        script("<script src='/app.js' integrity='sha384-abc'></script>"),
    ),
    (
        R.SRI_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_LOADED_SECURELY,
        script(f"<script src='{EXTERNAL}' integrity='sha384-abc' crossorigin></script>"),
    ),
    (R.SRI_NOT_IMPLEMENTED_RESPONSE_NOT_HTML, header("content-type", "application/json")),
    (R.SRI_NOT_IMPLEMENTED_BUT_NO_SCRIPTS_LOADED, script("")),
    (R.SRI_NOT_IMPLEMENTED_BUT_ALL_SCRIPTS_LOADED_FROM_SECURE_ORIGIN, evidence()),
    (
        R.SRI_NOT_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_LOADED_SECURELY,
        script(f"<script src='{EXTERNAL}'>"),
    ),
    (
        R.SRI_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY,
        script("<script src='http://cdn.other.example/lib.js' integrity='sha384-abc'></script>"),
    ),
    (
        R.SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY,
        script("<script src='//cdn.other.example/lib.js'></script>"),
    ),
    (R.HTML_NOT_PARSEABLE, script("<![ broken declaration ]>")),
    # X-Content-Type-Options
    (R.X_CONTENT_TYPE_OPTIONS_NOSNIFF, evidence()),
    (R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED, header("x-content-type-options", None)),
    (R.X_CONTENT_TYPE_OPTIONS_HEADER_INVALID, header("x-content-type-options", "sniff-not")),
    # X-Frame-Options
    (R.X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP, csp("default-src 'self'; frame-ancestors 'none'")),
    (R.X_FRAME_OPTIONS_SAMEORIGIN_OR_DENY, evidence()),
    (
        R.X_FRAME_OPTIONS_ALLOW_FROM_ORIGIN,
        header("x-frame-options", "ALLOW-FROM https://partner.example"),
    ),
    (R.X_FRAME_OPTIONS_NOT_IMPLEMENTED, header("x-frame-options", None)),
    (R.X_FRAME_OPTIONS_HEADER_INVALID, header("x-frame-options", "nobody")),
    # Cross-Origin-Resource-Policy
    (R.CORP_IMPLEMENTED_WITH_SAME_ORIGIN, header("cross-origin-resource-policy", "same-origin")),
    (R.CORP_IMPLEMENTED_WITH_SAME_SITE, header("cross-origin-resource-policy", "same-site")),
    (R.CORP_IMPLEMENTED_WITH_CROSS_ORIGIN, header("cross-origin-resource-policy", "cross-origin")),
    (R.CORP_NOT_IMPLEMENTED, evidence()),
    (R.CORP_HEADER_INVALID, header("cross-origin-resource-policy", "same-planet")),
]
TEST_OF = {code: test for test in TESTS for code in test.results}


@pytest.mark.parametrize(("code", "case"), CASES, ids=[code.value for code, _ in CASES])
def test_result_code(code: Result, case: SecurityEvidence) -> None:
    assert TEST_OF[code].check(case).result is code


def test_every_result_code_has_a_case() -> None:
    codes = [code for code, _ in CASES]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(Result)


def test_score_table_and_declared_results_match_both_ways() -> None:
    declared = [code for test in TESTS for code in test.results]
    assert len(declared) == len(set(declared)), "a result code belongs to one test"
    assert set(declared) == set(SCORE_TABLE)
    assert set(SCORE_TABLE) == set(Result)


def test_the_twelve_tests_in_mdn_order() -> None:
    assert [test.name for test in TESTS] == [
        "content-security-policy",
        "cookies",
        "cross-origin-embedder-policy",
        "cross-origin-opener-policy",
        "cross-origin-resource-sharing",
        "redirection",
        "referrer-policy",
        "strict-transport-security",
        "subresource-integrity",
        "x-content-type-options",
        "x-frame-options",
        "cross-origin-resource-policy",
    ]


def test_score_table_signs() -> None:
    # In MDN's table only one passing result costs points, and every failing one costs some.
    costly_passes = {
        code for code, score in SCORE_TABLE.items() if score.passed and score.modifier < 0
    }
    assert costly_passes == {R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY}
    assert all(score.modifier < 0 for score in SCORE_TABLE.values() if not score.passed)


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (-5, "F"),
        (0, "F"),
        (24, "F"),
        (25, "D-"),
        (29, "D-"),
        (30, "D"),
        (39, "D"),
        (40, "D+"),
        (45, "C-"),
        (50, "C"),
        (59, "C"),
        (60, "C+"),
        (65, "B-"),
        (70, "B"),
        (79, "B"),
        (80, "B+"),
        (85, "A-"),
        (89, "A-"),
        (90, "A"),
        (99, "A"),
        (100, "A+"),
        (135, "A+"),
    ],
)
def test_grade_chart(score: int, grade: str) -> None:
    assert grade_for(score) == grade


@pytest.mark.parametrize(
    ("results", "score"),
    [
        ([], 100),
        (
            [
                R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE,
                R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN,
            ],
            120,
        ),
        (
            [
                R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE,
                R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED,
            ],
            105,
        ),
        # penalties leave exactly 90: the bonus still counts
        (
            [
                R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE,
                R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS,
            ],
            100,
        ),
        # penalties leave 85: the bonus is dropped
        (
            [
                R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE,
                R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS,
                R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED,
            ],
            85,
        ),
        (
            [
                R.CSP_NOT_IMPLEMENTED,
                R.COOKIES_SESSION_WITHOUT_SECURE_FLAG,
                R.CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS,
            ],
            0,
        ),
    ],
)
def test_extra_credit_only_from_an_a(results: list[Result], score: int) -> None:
    assert observatory_score(results) == score


@pytest.mark.parametrize(
    ("modifier", "severity"),
    [(-50, "high"), (-20, "high"), (-19, "medium"), (-10, "medium"), (-5, "low"), (0, "info")],
)
def test_severity_from_points_lost(modifier: int, severity: str) -> None:
    assert severity_for(modifier) == severity


def test_a_passing_site_is_clamped_to_100_but_keeps_the_raw_score() -> None:
    result = judge(evidence())
    observatory = result.data["observatory"]
    assert all(test["pass"] for test in observatory["tests"].values())
    assert observatory["score"] == 115  # CSP +5, Referrer-Policy +5, X-Frame-Options +5
    assert (result.score, result.grade, observatory["grade"]) == (100, "A+", "A+")
    assert observatory["algorithm_version"] == ALGORITHM_VERSION == 6
    assert (observatory["tests_passed"], observatory["tests_failed"]) == (12, 0)
    assert result.findings == []
    assert result.summary == (
        "Grade A+ (100/100) on Mozilla's HTTP Observatory security checks: all 12 tests pass."
    )


def test_judge_envelope_for_a_weak_site() -> None:
    weak = evidence(
        headers={
            "content-security-policy": None,
            "strict-transport-security": "max-age=300",
            "x-frame-options": None,
            "permissions-policy": "geolocation=()",
        },
        cookies=["sessionid=abc; Secure"],
    )
    result = judge(weak)
    assert (result.assessment, result.status, result.source) == (
        "security",
        "completed",
        "observatory",
    )
    assert result.algorithm_version == "mdn-http-observatory/6"
    # -25 CSP, -10 HSTS, -20 X-Frame-Options, -30 HttpOnly; +5 Referrer-Policy dropped
    assert (result.score, result.grade) == (15, "F")
    assert [finding.id for finding in result.findings] == [
        "cookies-session-without-httponly-flag",
        "csp-not-implemented",
        "x-frame-options-not-implemented",
        "hsts-implemented-max-age-less-than-six-months",
    ]
    first = result.findings[0]
    assert first.severity == "high"
    assert first.title.startswith("Cookies: Session cookie set without HttpOnly")
    assert first.detail == "Cookies: sessionid (Secure, no HttpOnly, no SameSite)"
    assert (
        first.recommendation == SCORE_TABLE[R.COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG].recommendation
    )
    assert result.findings[3].detail == "Strict-Transport-Security: max-age=300"
    assert result.summary.startswith(
        "Grade F (15/100) on Mozilla's HTTP Observatory security checks: 4 of 12 tests fail, "
        "most seriously: Session cookie"
    )
    headers = result.data["headers"]
    assert headers["Content-Security-Policy"] == {"present": False, "value": None}
    assert headers["Permissions-Policy"] == {"present": True, "value": "geolocation=()"}
    assert headers["X-Content-Type-Options"] == {"present": True, "value": "nosniff"}
    assert result.data["https"] == {"available": True, "valid_certificate": True, "error": None}
    assert result.data["redirects"] == [
        {"url": "http://shop.example/", "status": 301},
        {"url": "https://shop.example/", "status": 200},
    ]
    tests = result.data["observatory"]["tests"]
    assert tests["cookies"]["data"]["sessionid"]["httponly"] is False
    assert tests["strict-transport-security"]["score_modifier"] == -10
    result.model_dump_json()  # storable as it is


@pytest.mark.parametrize(
    ("fixture", "score", "grade", "passed"),
    [("mozilla-org", 75, "B", 10), ("observatory-mozilla-org", 110, "A+", 12)],
)
def test_mdn_recorded_sites_grade_as_mdn_grades_them(
    fixture: str, score: int, grade: str, passed: int
) -> None:
    recorded = SecurityEvidence.model_validate_json((FIXTURES / f"{fixture}.json").read_text())
    observatory = judge(recorded).data["observatory"]
    assert (observatory["score"], observatory["grade"]) == (score, grade)
    assert observatory["tests_passed"] == passed


# MDN's own CSP test vectors (test/csp.test.js), by the result MDN expects.
MDN_CSP_VECTORS = {
    R.CSP_HEADER_INVALID: [
        "  ",
        "",
        "default-src 'none'; img-src 'self'; default-src 'none'",
        "default-src 'none'; script-src 'strict-dynamic'",
        "defa",
    ],
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE: [
        "default-src 'none'; script-src https://*",
        "script-src data:",
        "default-src 'UNSAFE-INLINE'",
        "upgrade-insecure-requests",
        "script-src 'none'",
        "script-src https://mozilla.org https:",
        "default-src *; script-src *; object-src 'none'",
        "default-src 'none'; script-src 'none'; object-src *",
        "object-src https:; script-src 'none'",
    ],
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME: [
        "default-src http://mozilla.org",
        "default-src 'none'; script-src ftp://mozilla.org",
    ],
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY: [
        "default-src 'self'; img-src ftp:",
        "default-src 'none'; img-src https:; media-src http://mozilla.org",
        "default-src 'none'; img-src 'none'; media-src http:; script-src 'self'; "
        "style-src 'unsafe-inline'",
    ],
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY: [
        "default-src 'unsafe-inline'; script-src https://mozilla.org",
        "default-src 'none';;; ;;;style-src 'self' 'unsafe-inline'",
        "default-src 'none'; style-src *",
        "default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBB=' 'unsafe-inline'",
    ],
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE: [
        "default-src https://mozilla.org;;; ;;;script-src 'none'",
        "object-src 'none'; script-src 'strict-dynamic' 'nonce-abc' 'unsafe-inline'; "
        "style-src 'none'",
        "object-src 'none'; style-src 'self'; script-src 'unsafe-inline' "
        "'sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBA='"
        "'sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBB='",
        "default-src https://mozilla.org; style-src 'unsafe-inline' 'nonce-abc123' 'unsafe-inline'",
    ],
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE: [
        "default-src",
        "default-src 'none'; script-src 'strict-dynamic' 'nonce-abc123' 'unsafe-inline'",
        "default-src 'none'; script-src 'strict-dynamic' 'sha256-abc123' https://*",
        "default-src 'none'; object-src https://mozilla.org",
    ],
}


@pytest.mark.parametrize(
    ("policy", "code"),
    [(policy, code) for code, policies in MDN_CSP_VECTORS.items() for policy in policies],
)
def test_mdn_csp_vectors(policy: str, code: Result) -> None:
    assert check_csp(csp(policy)).result is code


def test_csp_policies_combined_in_one_header_are_intersected() -> None:
    combined = (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline', "
        "default-src 'none'; style-src 'self', "
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'"
    )
    outcome = check_csp(csp(combined))
    assert outcome.result is R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE
    assert outcome.data["policies"] == 3
    assert outcome.data["directives"] == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
    }


def test_sources_sort_as_mdns_collator() -> None:
    # Only neighbours in sort order are compared, and Intl.Collator("en") puts "_" before ".",
    # unlike code points: a_c is dropped as covered by "a", a.b is kept.
    assert parse_csp(["img-src a a.b a_c"]).directives["img-src"] == {"a", "a.b"}


def test_csp_from_meta_tags() -> None:
    def page(content: str) -> str:
        meta = f'<meta http-equiv=" Content-SECURITY-Policy " content="{content}">'
        return f"<!doctype html><html><head>{meta}</head><body></body></html>"

    meta_only = csp(None, html=page("default-src 'none'"))
    assert check_csp(meta_only).result is R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE
    # frame-ancestors is ignored in a meta tag, so this page has no policy
    assert check_csp(csp(None, html=page("frame-ancestors 'none'"))).result is R.CSP_NOT_IMPLEMENTED
    # a header and a meta tag must both allow a source for it to count
    both = csp("default-src http:", html=page("default-src https:"))
    assert check_csp(both).result is R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE
    assert analyze_csp(both.page).directives == {"default-src": ["'none'"]}


def test_referrer_meta_tag_overrides_the_header() -> None:
    html = "<html><head><meta name='referrer' content='unsafe-url'></head></html>"
    page = evidence(html=html)
    assert check_referrer_policy(page).result is R.REFERRER_POLICY_UNSAFE


def test_hsts_max_age_without_digits_passes_as_in_mdn() -> None:
    # parseInt gives NaN, which MDN never finds "less than six months"
    assert (
        check_hsts(hsts("max-age=forever")).result is R.HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS
    )
    assert check_hsts(hsts("includeSubDomains")).result is R.HSTS_HEADER_INVALID


# MDN's COOP vectors (test/cross-origin-opener-policy.test.js): a structured-field token.
@pytest.mark.parametrize(
    ("value", "code"),
    [
        ('"same-origin"', R.COOP_HEADER_INVALID),
        ("SAME-ORIGIN", R.COOP_HEADER_INVALID),
        ("same-origin; report-to=coop endpoint", R.COOP_HEADER_INVALID),
        (["same-origin", "unsafe-none"], R.COOP_HEADER_INVALID),
        ('same-origin; report-to="coop-endpoint"', R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN),
        ("same-origin; report-to", R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN),
    ],
)
def test_mdn_coop_vectors(value: str | list[str], code: Result) -> None:
    assert check_coop(evidence(headers={"cross-origin-opener-policy": value})).result is code


def test_cookie_jar_rules() -> None:
    # a cookie for another domain is refused, so nothing is left to judge
    foreign = evidence(cookies=["sessionid=1; Domain=other.example"])
    assert TEST_OF[R.COOKIES_NOT_FOUND].check(foreign).result is R.COOKIES_NOT_FOUND
    # a later cookie with the same name, domain and path replaces the first
    replaced = evidence(cookies=["sessionid=1", "sessionid=2; Secure; HttpOnly; SameSite=Strict"])
    assert TEST_OF[R.COOKIES_NOT_FOUND].check(replaced).result is (
        R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE
    )


@pytest.mark.parametrize(
    ("website", "http_url", "https_url"),
    [
        ("shop.example", "http://shop.example/", "https://shop.example/"),
        ("https://Shop.Example/menu?x=1", "http://shop.example/menu", "https://shop.example/menu"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "https://127.0.0.1/"),
        ("https://[::1]:8443", "http://[::1]/", "https://[::1]:8443/"),
    ],
)
def test_scan_target(website: str, http_url: str, https_url: str) -> None:
    target = scan_target(website)
    assert (target.http_url, target.https_url) == (http_url, https_url)


@pytest.mark.parametrize(
    "website", ["ftp://shop.example/", "http://", "http://shop.example:99999/"]
)
def test_scan_target_refuses(website: str) -> None:
    with pytest.raises(errors.InvalidURL):
        scan_target(website)


@pytest.mark.parametrize(
    ("host", "other", "same"),
    [
        ("www.shop.example", "cdn.shop.example", True),
        ("www.shop.co.uk", "static.shop.co.uk", True),
        ("shop.co.uk", "other.co.uk", False),
        ("shop.example", "127.0.0.1", False),
        ("localhost", "127.0.0.1", False),  # both "null" to MDN, which would call them the same
        ("127.0.0.1", "127.0.0.1", True),
    ],
)
def test_same_site_hosts(host: str, other: str, same: bool) -> None:
    assert same_site_hosts(host, other) is same


def test_registered_as_the_security_task() -> None:
    assert resolve("security") is security_task


# --- collect + judge against sites on loopback ---------------------------------------------------


def allow_private_networks(monkeypatch: pytest.MonkeyPatch, allow: bool) -> Iterator[None]:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", str(allow).lower())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def private_networks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from allow_private_networks(monkeypatch, True)


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from allow_private_networks(monkeypatch, False)


def lead(url: str) -> LeadRecord:
    return LeadRecord(id=7, name="Corner Bakery", website=url)


async def test_assess_a_plain_http_site(private_networks: None) -> None:
    html = (
        b"<!doctype html><html><head><title>Bakery</title>"
        b"<script src='http://cdn.other.example/lib.js'></script></head><body>Bread</body></html>"
    )
    page = Reply(
        body=html,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Set-Cookie": "sessionid=abc; HttpOnly; SameSite=Lax",
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Opener-Policy": "same-origin",
        },
    )
    with serve({"/": [page]}) as site:
        result = await assess(lead(site.url("/")))
        assert site.hits["/"] == 2  # the page, then the CORS probe
    tests = {name: test["result"] for name, test in result.data["observatory"]["tests"].items()}
    assert tests == {  # a StrEnum member equals its code string
        "content-security-policy": R.CSP_IMPLEMENTED_WITH_NO_UNSAFE,
        "cookies": R.COOKIES_SESSION_WITHOUT_SECURE_FLAG,
        "cross-origin-embedder-policy": R.COEP_NOT_IMPLEMENTED,
        "cross-origin-opener-policy": R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN,
        "cross-origin-resource-sharing": R.CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS,
        "redirection": R.REDIRECTION_MISSING,
        "referrer-policy": R.REFERRER_POLICY_PRIVATE,
        "strict-transport-security": R.HSTS_NOT_IMPLEMENTED_NO_HTTPS,
        "subresource-integrity": R.SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY,
        "x-content-type-options": R.X_CONTENT_TYPE_OPTIONS_NOSNIFF,
        "x-frame-options": R.X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP,
        "cross-origin-resource-policy": R.CORP_NOT_IMPLEMENTED,
    }
    assert (result.score, result.grade) == (0, "F")  # 100 - 40 - 20 - 20 - 50
    assert result.data["https"]["available"] is False
    assert result.data["https"]["error"]
    assert result.data["headers"]["Content-Security-Policy"]["present"] is True
    assert result.data["headers"]["Strict-Transport-Security"]["present"] is False
    assert result.data["redirects"] == [{"url": site.url("/"), "status": 200}]
    assert result.duration_ms > 0


async def test_redirect_chain_and_its_cookies_are_kept(private_networks: None) -> None:
    moved = Reply(301, b"", headers={"Location": "/home", "Set-Cookie": "theme=dark; SameSite=Lax"})
    with serve({"/old": [moved], "/home": [Reply()]}) as site:
        result = await assess(lead(site.url("/old")))
    tests = result.data["observatory"]["tests"]
    assert tests["redirection"]["result"] == "redirection-not-to-https"
    assert tests["redirection"]["data"] == [site.url("/old"), site.url("/home")]
    assert result.data["redirects"] == [
        {"url": site.url("/old"), "status": 301},
        {"url": site.url("/home"), "status": 200},
    ]
    assert tests["cookies"]["result"] == "cookies-without-secure-flag"
    assert list(tests["cookies"]["data"]) == ["theme"]


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (500, True), (404, False)])
async def test_an_error_status_is_not_graded(
    private_networks: None, status: int, retryable: bool
) -> None:
    with (
        serve({"/": [Reply(status, b"oops")]}) as site,
        pytest.raises(errors.HTTPStatusError) as caught,
    ):
        await assess(lead(site.url("/")))
    assert (caught.value.status_code, caught.value.retryable) == (status, retryable)


async def test_401_is_graded_like_the_observatory_does(private_networks: None) -> None:
    with serve({"/": [Reply(401, b"login first")]}) as site:
        result = await assess(lead(site.url("/")))
    assert result.data["status_code"] == 401
    assert result.status == "completed"


async def test_a_site_that_is_down_is_retryable(private_networks: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.ConnectionFailed) as caught:
        await assess(lead(f"http://127.0.0.1:{port}/"))
    assert caught.value.retryable


async def test_private_addresses_are_refused_without_the_setting(public_only: None) -> None:
    with serve({"/": [Reply()]}) as site:
        with pytest.raises(errors.BlockedAddress):
            await assess(lead(site.url("/")))
        assert site.hits == {}


# --- an https:// site with a certificate nobody trusts ------------------------------------------


@contextmanager
def untrusted_tls_site(tmp_path: Path) -> Iterator[int]:
    """An HTTPS site on loopback whose self-signed certificate fails verification."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client hanging up mid-handshake is the point of this site

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = Quiet(("127.0.0.1", 0), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with running(server) as port:
        yield port


async def test_redirect_to_an_invalid_certificate_is_graded(
    private_networks: None, tmp_path: Path
) -> None:
    with untrusted_tls_site(tmp_path) as tls_port:
        moved = Reply(301, b"", headers={"Location": f"https://127.0.0.1:{tls_port}/"})
        with serve({"/": [moved]}) as site:
            result = await assess(lead(site.url("/")))
    tests = result.data["observatory"]["tests"]
    assert tests["redirection"]["result"] == "redirection-invalid-cert"
    # the redirect named the HTTPS port, so https:// was tried there, not on 443
    assert tests["strict-transport-security"]["result"] == "hsts-invalid-cert"
    assert result.data["https"]["available"] is True
    assert result.data["https"]["valid_certificate"] is False
    assert result.data["status_code"] == 301  # the redirect itself is what could be graded
    assert result.data["redirects"] == [{"url": site.url("/"), "status": 301}]


async def test_only_an_invalid_certificate_answering_fails_for_good(
    private_networks: None, tmp_path: Path
) -> None:
    with untrusted_tls_site(tmp_path) as tls_port, pytest.raises(errors.TLSError) as caught:
        await assess(lead(f"https://127.0.0.1:{tls_port}/"))
    assert not caught.value.retryable


async def test_demo_sites_earn_the_grades_their_catalog_promises(demo: DemoSites) -> None:
    grades = {site.slug: (await assess(lead(site.url))).grade for site in demo.sites}
    assert grades == {site.slug: site.grade for site in demo.sites}
