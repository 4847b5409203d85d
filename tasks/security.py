"""The security assessment: Mozilla's HTTP Observatory, MDN edition, scoring algorithm version 6.

Why a reimplementation rather than the public Observatory API: leads are scanned in bulk, on our
schedule and from machines without outside network, while the API rate-limits and caches. The
grading follows ``mdn/mdn-http-observatory`` (``src/analyzer/tests/*.js``, ``src/grader/charts.js``,
``src/scanner/index.js``) so a lead sees the result codes, points and grade that
developer.mozilla.org/observatory would give it, and a salesperson can point there.

Shape: ``collect`` does all the I/O and returns ``SecurityEvidence`` (plain data); one pure check
per Observatory test turns evidence into a result code; points, pass/fail and wording live only in
``SCORE_TABLE``; ``judge`` adds the points up the Observatory's way.

Where this differs from MDN's scanner, and why:

* TLS is always verified (``SafeClient``). MDN retries a site with a bad certificate unverified and
  grades that response; here an invalid certificate yields the same ``hsts-invalid-cert`` /
  ``redirection-invalid-cert`` codes, but the other tests read the http:// response (or, when
  http:// only redirects to the broken https://, that redirect response).
* The CORS probe is a GET with an ``Origin`` header; MDN sends an OPTIONS preflight, and
  ``SafeClient`` only does GET. MDN no longer reads crossdomain.xml / clientaccesspolicy.xml.
* The HSTS preload list (Chromium's, which MDN downloads at install) is not shipped: evidence has
  room for it (``hsts_preload``) but ``collect`` leaves it empty, so ``hsts-preloaded`` and
  ``redirection-all-redirects-preloaded`` are only reachable when a caller supplies entries.
* Registrable domains (for "is this script on our own site") use a short list of multi-label
  suffixes instead of the full Public Suffix List that MDN's ``tldts`` carries, and hosts
  without one (IPs, localhost) are the same site only as themselves (see ``same_site_hosts``).
* An explicit port in the lead's URL stays with the lead's scheme (MDN probes which scheme the
  port speaks). The other scheme uses its default port, except that an http:// lead on a port
  is fetched first and a same-host redirect to https:// names the HTTPS port (MDN would try
  443 and miss it; the demo sites and staging servers live on such ports).
* MDN's robots.txt fetch is skipped: its cookies never reach the graded cookie jar.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from leadshop.config import get_settings
from leadshop.domains import is_ip, same_site_hosts
from leadshop.errors import FetchError, HTTPStatusError, InvalidURL
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.net import FetchResponse, SafeClient
from leadshop.scoring import Check, Outcome, Score, grade_for, judge_checks
from tasks.registry import assessment_task

ALGORITHM_VERSION = 6  # what MDN's scanner reports (src/constants.js)
ENVELOPE_ALGORITHM_VERSION = f"mdn-http-observatory/{ALGORITHM_VERSION}"
BASE_SCORE = 100
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90  # bonuses count only once the penalties leave an A
# Finding severity by how many points a failing result costs.

MAX_REDIRECTS = 10  # MDN's retriever follows up to ten
MAX_HTML_CHARS = 2_000_000
CORS_ORIGIN = "https://http-observatory.security.mozilla.org"  # MDN's probe origin
REQUEST_HEADERS = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
GRADABLE_ERROR_STATUSES = frozenset({401, 403})  # MDN grades these like 2xx and 3xx
SIX_MONTHS = 15_552_000  # MDN's "six months": 180 days, a little under 15768000 on purpose
SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Permissions-Policy",
)


class Result(StrEnum):
    """Every result code the Observatory can give, spelled exactly as MDN spells it."""

    CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE = (
        "csp-implemented-with-no-unsafe-default-src-none"
    )
    CSP_IMPLEMENTED_WITH_NO_UNSAFE = "csp-implemented-with-no-unsafe"
    CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY = (
        "csp-implemented-with-unsafe-inline-in-style-src-only"
    )
    CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY = (
        "csp-implemented-with-insecure-scheme-in-passive-content-only"
    )
    CSP_IMPLEMENTED_WITH_UNSAFE_EVAL = "csp-implemented-with-unsafe-eval"
    CSP_IMPLEMENTED_WITH_UNSAFE_INLINE = "csp-implemented-with-unsafe-inline"
    CSP_IMPLEMENTED_WITH_INSECURE_SCHEME = "csp-implemented-with-insecure-scheme"
    CSP_HEADER_INVALID = "csp-header-invalid"
    CSP_NOT_IMPLEMENTED = "csp-not-implemented"
    CSP_NOT_IMPLEMENTED_BUT_REPORTING_ENABLED = "csp-not-implemented-but-reporting-enabled"
    CSP_IMPLEMENTED_BUT_DUPLICATE_DIRECTIVES = "csp-implemented-but-duplicate-directives"

    COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE = (
        "cookies-secure-with-httponly-sessions-and-samesite"
    )
    COOKIES_SECURE_WITH_HTTPONLY_SESSIONS = "cookies-secure-with-httponly-sessions"
    COOKIES_NOT_FOUND = "cookies-not-found"
    COOKIES_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS = (
        "cookies-without-secure-flag-but-protected-by-hsts"
    )
    COOKIES_SESSION_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS = (
        "cookies-session-without-secure-flag-but-protected-by-hsts"
    )
    COOKIES_WITHOUT_SECURE_FLAG = "cookies-without-secure-flag"
    COOKIES_SAMESITE_FLAG_INVALID = "cookies-samesite-flag-invalid"
    COOKIES_ANTICSRF_WITHOUT_SAMESITE_FLAG = "cookies-anticsrf-without-samesite-flag"
    COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG = "cookies-session-without-httponly-flag"
    COOKIES_SESSION_WITHOUT_SECURE_FLAG = "cookies-session-without-secure-flag"

    COEP_IMPLEMENTED_WITH_REQUIRE_CORP = "coep-implemented-with-require-corp"
    COEP_IMPLEMENTED_WITH_CREDENTIALLESS = "coep-implemented-with-credentialless"
    COEP_IMPLEMENTED_WITH_UNSAFE_NONE = "coep-implemented-with-unsafe-none"
    COEP_NOT_IMPLEMENTED = "coep-not-implemented"
    COEP_HEADER_INVALID = "coep-header-invalid"

    COOP_IMPLEMENTED_WITH_SAME_ORIGIN = "coop-implemented-with-same-origin"
    COOP_IMPLEMENTED_WITH_SAME_ORIGIN_ALLOW_POPUPS = (
        "coop-implemented-with-same-origin-allow-popups"
    )
    COOP_IMPLEMENTED_WITH_NOOPENER_ALLOW_POPUPS = "coop-implemented-with-noopener-allow-popups"
    COOP_IMPLEMENTED_WITH_UNSAFE_NONE = "coop-implemented-with-unsafe-none"
    COOP_NOT_IMPLEMENTED = "coop-not-implemented"
    COOP_HEADER_INVALID = "coop-header-invalid"

    CORS_NOT_IMPLEMENTED = "cross-origin-resource-sharing-not-implemented"
    CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS = (
        "cross-origin-resource-sharing-implemented-with-public-access"
    )
    CORS_IMPLEMENTED_WITH_RESTRICTED_ACCESS = (
        "cross-origin-resource-sharing-implemented-with-restricted-access"
    )
    CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS = (
        "cross-origin-resource-sharing-implemented-with-universal-access"
    )

    REDIRECTION_ALL_REDIRECTS_PRELOADED = "redirection-all-redirects-preloaded"
    REDIRECTION_TO_HTTPS = "redirection-to-https"
    REDIRECTION_NOT_NEEDED_NO_HTTP = "redirection-not-needed-no-http"
    REDIRECTION_OFF_HOST_FROM_HTTP = "redirection-off-host-from-http"
    REDIRECTION_NOT_TO_HTTPS_ON_INITIAL_REDIRECTION = (
        "redirection-not-to-https-on-initial-redirection"
    )
    REDIRECTION_NOT_TO_HTTPS = "redirection-not-to-https"
    REDIRECTION_MISSING = "redirection-missing"
    REDIRECTION_INVALID_CERT = "redirection-invalid-cert"

    REFERRER_POLICY_PRIVATE = "referrer-policy-private"
    REFERRER_POLICY_NOT_IMPLEMENTED = "referrer-policy-not-implemented"
    REFERRER_POLICY_UNSAFE = "referrer-policy-unsafe"
    REFERRER_POLICY_HEADER_INVALID = "referrer-policy-header-invalid"

    HSTS_PRELOADED = "hsts-preloaded"
    HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS = "hsts-implemented-max-age-at-least-six-months"
    HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS = "hsts-implemented-max-age-less-than-six-months"
    HSTS_NOT_IMPLEMENTED = "hsts-not-implemented"
    HSTS_HEADER_INVALID = "hsts-header-invalid"
    HSTS_NOT_IMPLEMENTED_NO_HTTPS = "hsts-not-implemented-no-https"
    HSTS_INVALID_CERT = "hsts-invalid-cert"

    SRI_IMPLEMENTED_AND_ALL_SCRIPTS_LOADED_SECURELY = (
        "sri-implemented-and-all-scripts-loaded-securely"
    )
    SRI_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_LOADED_SECURELY = (
        "sri-implemented-and-external-scripts-loaded-securely"
    )
    SRI_NOT_IMPLEMENTED_RESPONSE_NOT_HTML = "sri-not-implemented-response-not-html"
    SRI_NOT_IMPLEMENTED_BUT_NO_SCRIPTS_LOADED = "sri-not-implemented-but-no-scripts-loaded"
    SRI_NOT_IMPLEMENTED_BUT_ALL_SCRIPTS_LOADED_FROM_SECURE_ORIGIN = (
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    )
    SRI_NOT_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_LOADED_SECURELY = (
        "sri-not-implemented-but-external-scripts-loaded-securely"
    )
    SRI_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY = (
        "sri-implemented-but-external-scripts-not-loaded-securely"
    )
    SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY = (
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    )
    HTML_NOT_PARSEABLE = "html-not-parseable"

    X_CONTENT_TYPE_OPTIONS_NOSNIFF = "x-content-type-options-nosniff"
    X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED = "x-content-type-options-not-implemented"
    X_CONTENT_TYPE_OPTIONS_HEADER_INVALID = "x-content-type-options-header-invalid"

    X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP = "x-frame-options-implemented-via-csp"
    X_FRAME_OPTIONS_SAMEORIGIN_OR_DENY = "x-frame-options-sameorigin-or-deny"
    X_FRAME_OPTIONS_ALLOW_FROM_ORIGIN = "x-frame-options-allow-from-origin"
    X_FRAME_OPTIONS_NOT_IMPLEMENTED = "x-frame-options-not-implemented"
    X_FRAME_OPTIONS_HEADER_INVALID = "x-frame-options-header-invalid"

    CORP_IMPLEMENTED_WITH_SAME_ORIGIN = "corp-implemented-with-same-origin"
    CORP_IMPLEMENTED_WITH_SAME_SITE = "corp-implemented-with-same-site"
    CORP_IMPLEMENTED_WITH_CROSS_ORIGIN = "corp-implemented-with-cross-origin"
    CORP_NOT_IMPLEMENTED = "corp-not-implemented"
    CORP_HEADER_INVALID = "corp-header-invalid"


R = Result
_HTTPS_ADVICE = "Serve the site over HTTPS with a valid certificate (Let's Encrypt's are free)."
_SECURE_COOKIE_ADVICE = "Set the Secure flag on every cookie and enable HSTS."
_REDIRECT_ADVICE = "Redirect http:// to https:// on the same host first, then to the final host."
_COOP_ADVICE = "Set it to same-origin, same-origin-allow-popups or noopener-allow-popups."
_COEP_ADVICE = "Set it to require-corp or credentialless."
_SCRIPTS_OVER_HTTPS = "Load scripts from other sites over https:// only."

SCORE_TABLE: dict[Result, Score] = {
    # Content Security Policy
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE: Score(
        True, 10, "Content Security Policy in place, starting from default-src 'none'."
    ),
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE: Score(
        True,
        5,
        "Content Security Policy in place without 'unsafe-inline' or 'unsafe-eval'.",
        "Tighten it by setting default-src to 'none' and allowing only what pages need.",
    ),
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY: Score(
        True,
        0,
        "Content Security Policy in place, but style-src allows 'unsafe-inline', data: or "
        "overly broad sources.",
        "Remove 'unsafe-inline', data: and broad sources from style-src.",
    ),
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY: Score(
        True,
        -10,
        "Content Security Policy in place, but this HTTPS site lets images or media load over "
        "plain HTTP.",
        "Load images and media over HTTPS and limit img-src and media-src (or default-src) to "
        "HTTPS sources.",
    ),
    R.CSP_IMPLEMENTED_WITH_UNSAFE_EVAL: Score(
        False,
        -10,
        "Content Security Policy allows 'unsafe-eval'.",
        "Stop using eval() in the site's scripts, then remove 'unsafe-eval' from the policy.",
    ),
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE: Score(
        False,
        -20,
        "Content Security Policy does not stop injected scripts: script-src allows "
        "'unsafe-inline', data: or overly broad sources, or script-src/object-src are unset.",
        "Remove 'unsafe-inline' and data: from script-src, drop broad sources from script-src "
        "and object-src, and set both directives.",
    ),
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME: Score(
        False,
        -20,
        "Content Security Policy lets this HTTPS site load scripts or other active content over "
        "plain HTTP.",
        "Load every resource over HTTPS and remove http: sources from the policy.",
    ),
    R.CSP_HEADER_INVALID: Score(
        False,
        -25,
        "Content Security Policy cannot be parsed.",
        "Fix the policy's syntax (Google's CSP Evaluator helps); repeated directives and "
        "'strict-dynamic' without a nonce or hash are the usual causes.",
    ),
    R.CSP_NOT_IMPLEMENTED: Score(
        False,
        -25,
        "No Content Security Policy, the main defence against injected scripts.",
        "Add a Content-Security-Policy header (MDN's CSP guide shows how to start).",
    ),
    R.CSP_NOT_IMPLEMENTED_BUT_REPORTING_ENABLED: Score(
        False,
        -25,
        "Content Security Policy only reports (Content-Security-Policy-Report-Only) and blocks "
        "nothing.",
        "Enforce the policy with a Content-Security-Policy header.",
    ),
    R.CSP_IMPLEMENTED_BUT_DUPLICATE_DIRECTIVES: Score(
        True,
        0,
        "Content Security Policy in place, but it repeats report-uri or report-to directives.",
        "Remove the duplicate directives.",
    ),
    # Cookies
    R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE: Score(
        True,
        5,
        "All cookies are Secure, session cookies are HttpOnly, and all cookies use SameSite.",
    ),
    R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS: Score(
        True,
        0,
        "All cookies are Secure and session cookies are HttpOnly.",
        "Add the SameSite attribute to every cookie.",
    ),
    R.COOKIES_NOT_FOUND: Score(True, 0, "No cookies set."),
    R.COOKIES_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS: Score(
        False,
        -5,
        "Cookies set without the Secure flag, though HSTS keeps them off plain HTTP.",
        "Set the Secure flag on every cookie.",
    ),
    R.COOKIES_SESSION_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS: Score(
        False,
        -10,
        "A session cookie lacks the Secure flag, though HSTS keeps it off plain HTTP.",
        "Set the Secure flag on every cookie.",
    ),
    R.COOKIES_WITHOUT_SECURE_FLAG: Score(
        False,
        -20,
        "Cookies set without the Secure flag, or over plain HTTP.",
        _SECURE_COOKIE_ADVICE,
    ),
    R.COOKIES_SAMESITE_FLAG_INVALID: Score(
        False,
        -20,
        "Cookies use SameSite with an invalid value, or SameSite=None without Secure.",
        "Use SameSite=Strict or SameSite=Lax (SameSite=None only together with Secure).",
    ),
    R.COOKIES_ANTICSRF_WITHOUT_SAMESITE_FLAG: Score(
        False,
        -20,
        "Anti-CSRF token cookie set without SameSite.",
        "Set SameSite=Strict or SameSite=Lax on anti-CSRF cookies.",
    ),
    R.COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG: Score(
        False,
        -30,
        "Session cookie set without HttpOnly, so any injected script can read it.",
        "Set HttpOnly on session cookies.",
    ),
    R.COOKIES_SESSION_WITHOUT_SECURE_FLAG: Score(
        False,
        -40,
        "Session cookie set without the Secure flag, or over plain HTTP: it can be stolen on "
        "the network.",
        _SECURE_COOKIE_ADVICE,
    ),
    # Cross-Origin-Embedder-Policy
    R.COEP_IMPLEMENTED_WITH_REQUIRE_CORP: Score(
        True, 10, "Cross-Origin-Embedder-Policy: require-corp limits what other sites can embed."
    ),
    R.COEP_IMPLEMENTED_WITH_CREDENTIALLESS: Score(
        True,
        10,
        "Cross-Origin-Embedder-Policy: credentialless loads other sites' resources without "
        "credentials.",
    ),
    R.COEP_IMPLEMENTED_WITH_UNSAFE_NONE: Score(
        True, 0, "Cross-Origin-Embedder-Policy set to unsafe-none, the default.", _COEP_ADVICE
    ),
    R.COEP_NOT_IMPLEMENTED: Score(True, 0, "No Cross-Origin-Embedder-Policy header.", _COEP_ADVICE),
    R.COEP_HEADER_INVALID: Score(
        False,
        -5,
        "Cross-Origin-Embedder-Policy value not recognised.",
        "Set it to require-corp, credentialless or unsafe-none.",
    ),
    # Cross-Origin-Opener-Policy
    R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN: Score(
        True, 10, "Cross-Origin-Opener-Policy: same-origin isolates the site from its opener."
    ),
    R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN_ALLOW_POPUPS: Score(
        True,
        10,
        "Cross-Origin-Opener-Policy: same-origin-allow-popups isolates the site but keeps "
        "popups such as payments working.",
    ),
    R.COOP_IMPLEMENTED_WITH_NOOPENER_ALLOW_POPUPS: Score(
        True,
        10,
        "Cross-Origin-Opener-Policy: noopener-allow-popups isolates the site even from "
        "same-origin openers.",
    ),
    R.COOP_IMPLEMENTED_WITH_UNSAFE_NONE: Score(
        True,
        0,
        "Cross-Origin-Opener-Policy set to unsafe-none: any opener can share the site's "
        "browsing context.",
        _COOP_ADVICE,
    ),
    R.COOP_NOT_IMPLEMENTED: Score(True, 0, "No Cross-Origin-Opener-Policy header.", _COOP_ADVICE),
    R.COOP_HEADER_INVALID: Score(
        False,
        -5,
        "Cross-Origin-Opener-Policy value not recognised.",
        "Set it to same-origin, same-origin-allow-popups, noopener-allow-popups or unsafe-none.",
    ),
    # Cross-origin resource sharing
    R.CORS_NOT_IMPLEMENTED: Score(True, 0, "Content is not shared with other sites through CORS."),
    R.CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS: Score(
        True, 0, "Public content is shared with any site (Access-Control-Allow-Origin: *)."
    ),
    R.CORS_IMPLEMENTED_WITH_RESTRICTED_ACCESS: Score(
        True, 0, "Content is shared through CORS, but only with specific sites."
    ),
    R.CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS: Score(
        False,
        -50,
        "Any site can read this site's content with the visitor's credentials (the Origin "
        "header is echoed and credentials allowed): open to cross-site request forgery.",
        "Echo only specific trusted origins when credentials are needed; for public data send "
        "Access-Control-Allow-Origin: * without Access-Control-Allow-Credentials; otherwise "
        "send neither header.",
    ),
    # Redirection
    R.REDIRECTION_ALL_REDIRECTS_PRELOADED: Score(
        True, 0, "Every host in the redirect chain is on the browsers' HSTS preload list."
    ),
    R.REDIRECTION_TO_HTTPS: Score(
        True, 0, "Plain HTTP visitors are redirected to HTTPS on the same host first."
    ),
    R.REDIRECTION_NOT_NEEDED_NO_HTTP: Score(
        True, 0, "The site does not answer over plain HTTP, so no redirect is needed."
    ),
    R.REDIRECTION_OFF_HOST_FROM_HTTP: Score(
        False,
        -5,
        "Plain HTTP redirects straight to HTTPS on another host, so this host's HSTS header is "
        "never seen.",
        _REDIRECT_ADVICE,
    ),
    R.REDIRECTION_NOT_TO_HTTPS_ON_INITIAL_REDIRECTION: Score(
        False,
        -10,
        "Ends on HTTPS, but the first redirect goes to another plain HTTP address.",
        _REDIRECT_ADVICE,
    ),
    R.REDIRECTION_NOT_TO_HTTPS: Score(
        False, -20, "Redirects, but the final page is not on HTTPS.", _REDIRECT_ADVICE
    ),
    R.REDIRECTION_MISSING: Score(
        False, -20, "Plain HTTP visitors are not redirected to HTTPS.", _REDIRECT_ADVICE
    ),
    R.REDIRECTION_INVALID_CERT: Score(
        False, -20, "The redirect leads to HTTPS with an invalid certificate.", _HTTPS_ADVICE
    ),
    # Referrer-Policy
    R.REFERRER_POLICY_PRIVATE: Score(
        True,
        5,
        "Referrer-Policy keeps page addresses private (no-referrer, same-origin, strict-origin "
        "or strict-origin-when-cross-origin).",
    ),
    R.REFERRER_POLICY_NOT_IMPLEMENTED: Score(
        True,
        0,
        "No Referrer-Policy header.",
        "Set Referrer-Policy: strict-origin-when-cross-origin at least.",
    ),
    R.REFERRER_POLICY_UNSAFE: Score(
        False,
        -5,
        "Referrer-Policy leaks page addresses to other sites (origin, origin-when-cross-origin, "
        "unsafe-url or no-referrer-when-downgrade).",
        "Set Referrer-Policy: strict-origin-when-cross-origin at least.",
    ),
    R.REFERRER_POLICY_HEADER_INVALID: Score(
        False,
        -5,
        "Referrer-Policy value not recognised.",
        "Set Referrer-Policy: strict-origin-when-cross-origin at least.",
    ),
    # Strict-Transport-Security
    R.HSTS_PRELOADED: Score(True, 5, "The site is on the browsers' HSTS preload list."),
    R.HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS: Score(
        True,
        0,
        "Strict-Transport-Security (HSTS) set for at least six months.",
        "Consider preloading: add includeSubDomains and preload, use a max-age of at least "
        "31536000 (one year) and submit the site at hstspreload.org.",
    ),
    R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS: Score(
        False,
        -10,
        "Strict-Transport-Security (HSTS) set for less than six months.",
        "Raise max-age to at least 15768000 (six months).",
    ),
    R.HSTS_NOT_IMPLEMENTED: Score(
        False,
        -20,
        "No Strict-Transport-Security (HSTS) header, so browsers may still use plain HTTP.",
        "Add Strict-Transport-Security, starting with a short max-age and raising it "
        "(hstspreload.org explains the steps).",
    ),
    R.HSTS_HEADER_INVALID: Score(
        False,
        -20,
        "Strict-Transport-Security (HSTS) header cannot be parsed.",
        "Send a single Strict-Transport-Security header with a max-age=SECONDS directive.",
    ),
    R.HSTS_NOT_IMPLEMENTED_NO_HTTPS: Score(
        False, -20, "The site does not work over HTTPS at all.", _HTTPS_ADVICE
    ),
    R.HSTS_INVALID_CERT: Score(
        False,
        -20,
        "The site's HTTPS certificate is invalid, so HSTS cannot work.",
        _HTTPS_ADVICE,
    ),
    # Subresource Integrity
    R.SRI_IMPLEMENTED_AND_ALL_SCRIPTS_LOADED_SECURELY: Score(
        True, 5, "Subresource Integrity used, and all scripts come from the site itself."
    ),
    R.SRI_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_LOADED_SECURELY: Score(
        True, 5, "Subresource Integrity used, and all scripts are loaded securely."
    ),
    R.SRI_NOT_IMPLEMENTED_RESPONSE_NOT_HTML: Score(
        True, 0, "Not an HTML page, so Subresource Integrity does not apply."
    ),
    R.SRI_NOT_IMPLEMENTED_BUT_NO_SCRIPTS_LOADED: Score(
        True, 0, "No script tags, so Subresource Integrity is not needed."
    ),
    R.SRI_NOT_IMPLEMENTED_BUT_ALL_SCRIPTS_LOADED_FROM_SECURE_ORIGIN: Score(
        True,
        0,
        "No Subresource Integrity, but all scripts come from the site itself.",
        "Add integrity attributes to scripts for extra credit.",
    ),
    R.SRI_NOT_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_LOADED_SECURELY: Score(
        False,
        -5,
        "Scripts from other sites are loaded over HTTPS but without Subresource Integrity.",
        "Add integrity (and crossorigin) attributes to scripts from other sites.",
    ),
    R.SRI_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY: Score(
        False,
        -20,
        "Subresource Integrity used, but scripts from other sites load over plain HTTP or "
        "protocol-relative URLs (//...).",
        _SCRIPTS_OVER_HTTPS,
    ),
    R.SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY: Score(
        False,
        -50,
        "Scripts from other sites load over plain HTTP or protocol-relative URLs (//...) "
        "without Subresource Integrity: anyone on the network can change them.",
        _SCRIPTS_OVER_HTTPS + " Add integrity attributes to them.",
    ),
    R.HTML_NOT_PARSEABLE: Score(
        False,
        -20,
        "The page claims to be HTML but cannot be parsed.",
        "Make sure the server returns well-formed HTML.",
    ),
    # X-Content-Type-Options
    R.X_CONTENT_TYPE_OPTIONS_NOSNIFF: Score(True, 0, "X-Content-Type-Options set to nosniff."),
    R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED: Score(
        False, -5, "No X-Content-Type-Options header.", "Set X-Content-Type-Options: nosniff."
    ),
    R.X_CONTENT_TYPE_OPTIONS_HEADER_INVALID: Score(
        False,
        -5,
        "X-Content-Type-Options value not recognised.",
        "Set X-Content-Type-Options: nosniff.",
    ),
    # X-Frame-Options
    R.X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP: Score(
        True, 5, "Framing by other sites is controlled by the CSP frame-ancestors directive."
    ),
    R.X_FRAME_OPTIONS_SAMEORIGIN_OR_DENY: Score(
        True, 5, "X-Frame-Options set to SAMEORIGIN or DENY."
    ),
    R.X_FRAME_OPTIONS_ALLOW_FROM_ORIGIN: Score(
        True,
        0,
        "X-Frame-Options uses ALLOW-FROM, which browsers ignore.",
        "Use the CSP frame-ancestors directive instead.",
    ),
    R.X_FRAME_OPTIONS_NOT_IMPLEMENTED: Score(
        False,
        -20,
        "Any site can frame this one (no X-Frame-Options, no CSP frame-ancestors): a "
        "clickjacking risk.",
        "Add the CSP frame-ancestors directive (or X-Frame-Options: DENY or SAMEORIGIN).",
    ),
    R.X_FRAME_OPTIONS_HEADER_INVALID: Score(
        False,
        -20,
        "X-Frame-Options value not recognised.",
        "Add the CSP frame-ancestors directive (or X-Frame-Options: DENY or SAMEORIGIN).",
    ),
    # Cross-Origin-Resource-Policy
    R.CORP_IMPLEMENTED_WITH_SAME_ORIGIN: Score(
        True, 10, "Cross-Origin-Resource-Policy: same-origin keeps responses out of other sites."
    ),
    R.CORP_IMPLEMENTED_WITH_SAME_SITE: Score(
        True, 10, "Cross-Origin-Resource-Policy: same-site keeps responses out of other sites."
    ),
    R.CORP_IMPLEMENTED_WITH_CROSS_ORIGIN: Score(
        True, 0, "Cross-Origin-Resource-Policy: cross-origin lets any site load responses."
    ),
    R.CORP_NOT_IMPLEMENTED: Score(
        True, 0, "No Cross-Origin-Resource-Policy header (any site may load responses)."
    ),
    R.CORP_HEADER_INVALID: Score(
        False,
        -5,
        "Cross-Origin-Resource-Policy value not recognised.",
        "Set it to same-origin, same-site or cross-origin.",
    ),
}


# --- Evidence: what collect saw, as plain data ----------------------------------------------------


class _Plain(BaseModel):
    model_config = ConfigDict(frozen=True)


Headers = tuple[tuple[str, str], ...]


class Step(_Plain):
    url: str
    status: int


class SetCookie(_Plain):
    """A Set-Cookie header and the URL that sent it: a cookie's default domain and path."""

    url: str
    header: str


class Page(_Plain):
    """The response the header tests read: https:// when it answered, else http:// ("auto")."""

    url: str  # where this fetch started; its scheme is what the Observatory calls the site's
    final_url: str
    status: int
    headers: Headers = ()  # every header line in order, names lower-case
    html: str = ""
    cookies: tuple[SetCookie, ...] = ()  # from every response on the way, redirects included

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def header(self, name: str) -> str | None:
        """Repeated headers joined with ", ", as Node hands them to MDN's tests."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    @property
    def secure(self) -> bool:
        return self.url.startswith("https:")


class HttpRoute(_Plain):
    """What the http:// fetch did: the redirection test's evidence."""

    steps: tuple[Step, ...] = ()  # every URL that answered, first to last; empty when none did
    certificate_error: bool = False  # it redirected to https:// with an invalid certificate
    error: str | None = None


class Https(_Plain):
    answered: bool
    certificate_error: bool = False
    error: str | None = None


class CorsProbe(_Plain):
    origin: str  # the Origin header we sent
    allow_origin: str | None = None
    allow_credentials: str | None = None


class SecurityEvidence(_Plain):
    host: str
    page: Page
    http: HttpRoute
    https: Https
    cors: CorsProbe | None = None
    # HSTS preload list entries (mode force-https) that concern this scan: host -> includeSubDomains
    hsts_preload: dict[str, bool] = Field(default_factory=dict)


# --- Shared parsing helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlTags:
    metas: tuple[dict[str, str], ...]
    scripts: tuple[dict[str, str], ...]


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metas: list[dict[str, str]] = []
        self.scripts: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("meta", "script"):
            return
        element: dict[str, str] = {}
        for name, value in attrs:
            element.setdefault(name, value or "")  # the first of repeated attributes wins
        (self.metas if tag == "meta" else self.scripts).append(element)


@lru_cache(maxsize=4)
def html_tags(html: str) -> HtmlTags | None:
    """The page's meta and script tags, or None when the parser gives up on the markup.

    Cached because three checks read the same page.
    """
    collector = _TagCollector()
    try:
        collector.feed(html)
        collector.close()
    except AssertionError:  # html.parser's way of rejecting malformed declarations
        return None
    return HtmlTags(tuple(collector.metas), tuple(collector.scripts))


def _mime_type(page: Page) -> str:
    values = page.header_values("content-type")  # Node keeps only the first content-type
    return values[0].split(";", 1)[0] if values else ""


@dataclass(frozen=True)
class MetaPolicies:
    """Policies a page declares in meta tags, which MDN reads like headers."""

    csp: tuple[str, ...] = ()  # <meta http-equiv="Content-Security-Policy" content=...>
    referrer: tuple[str, ...] = ()  # <meta name="referrer" content=...>, the last one


def meta_policies(page: Page) -> MetaPolicies:
    if _mime_type(page) not in HTML_TYPES or not page.html:
        return MetaPolicies()
    tags = html_tags(page.html)
    if tags is None:
        return MetaPolicies()
    csp: list[str] = []
    referrer: tuple[str, ...] = ()
    for meta in tags.metas:
        content = meta.get("content", "")
        if "http-equiv" in meta and "content" in meta:
            if content and meta["http-equiv"].lower().strip() == "content-security-policy":
                csp.append(content)
        elif meta.get("name", "").lower().strip() == "referrer" and content:
            referrer = (content,)
    return MetaPolicies(tuple(csp), referrer)


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _preloaded(evidence: SecurityEvidence, host: str) -> bool:
    """On the HSTS preload list itself, or under a listed domain that includes subdomains."""
    if host in evidence.hsts_preload:
        return True
    labels = host.split(".")
    return any(evidence.hsts_preload.get(".".join(labels[i:])) for i in range(1, len(labels)))


def _worst(problems: Iterable[Result], order: Sequence[Result]) -> Result | None:
    """MDN's "only if worse": of everything found, the result furthest down ``order``."""
    return max(problems, key=order.index, default=None)


# --- Content Security Policy ----------------------------------------------------------------------

SHORTEST_POLICY_LENGTH = len("img-src") - 1
DIRECTIVES_DISALLOWED_IN_META = ("frame-ancestors", "report-uri", "sandbox")
ALLOWED_DUPLICATE_DIRECTIVES = frozenset({"report-uri", "report-to"})
DANGEROUSLY_BROAD = frozenset(
    {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
)
BROAD_PREFIXES = tuple(sorted(DANGEROUSLY_BROAD))
UNSAFE_INLINE = frozenset({"'unsafe-inline'", "data:"})
BROAD_OR_INLINE = DANGEROUSLY_BROAD | UNSAFE_INLINE
PASSIVE_DIRECTIVES = ("img-src", "media-src")
NONCE_HASH_PREFIXES = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
# MDN sorts sources with Intl.Collator("en"); for ASCII that is this order, not code points.
_ICU_ASCII_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_COLLATION_RANK = {char: rank for rank, char in enumerate(_ICU_ASCII_ORDER)}


class CspSyntaxError(ValueError):
    pass


@dataclass
class _Source:
    source: str
    index: int
    keep: bool


@dataclass(frozen=True)
class ParsedCsp:
    directives: dict[str, set[str]]
    duplicates: frozenset[str]

    @property
    def size(self) -> int:
        # MDN keeps its duplicate warnings as one more map entry, which counts as "has a policy".
        return len(self.directives) + (1 if self.duplicates else 0)


def _collation_key(text: str) -> tuple[int, ...]:
    return tuple(_COLLATION_RANK.get(char, len(_ICU_ASCII_ORDER) + ord(char)) for char in text)


def _decode_uri_component(text: str) -> str:
    """JavaScript's decodeURIComponent: a malformed escape is an error, not left as is."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise CspSyntaxError(f"malformed escape in {text!r}")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise CspSyntaxError(f"malformed escape in {text!r}") from exc


def _path_part_match(path_a: str, path_b: str) -> bool:
    if not path_a or (path_a == "/" and not path_b):
        return True
    exact = not path_a.endswith("/")
    parts_a, parts_b = path_a.split("/"), path_b.split("/")
    if len(parts_a) > len(parts_b) or (exact and len(parts_a) != len(parts_b)):
        return False
    if not exact:
        parts_a.pop()
    return all(
        _decode_uri_component(a) == _decode_uri_component(b)
        for a, b in zip(parts_a, parts_b, strict=False)
    )


def parse_csp(policies: Sequence[str]) -> ParsedCsp:
    """Directives of one or more policies, merged the way MDN's parser merges them.

    A source survives a later policy only when that policy has a matching one: MDN's attempt at
    "every policy must allow it". Raises CspSyntaxError where MDN's parser throws.
    """
    cleaned = [policy.replace("\r", "").replace("\n", "").strip() for policy in policies]
    merged: dict[str, list[_Source]] = {}
    duplicates: set[str] = set()
    for policy in cleaned:
        if len(policy) < SHORTEST_POLICY_LENGTH:
            raise CspSyntaxError(f"invalid policy {policy!r}")
    for index, policy in enumerate(cleaned):
        seen: set[str] = set()
        for entry in policy.split(";"):
            name, *values = re.split(r"\s+", entry.strip())
            if not name:
                continue
            directive = name.lower()
            if directive in seen and directive not in ALLOWED_DUPLICATE_DIRECTIVES:
                raise CspSyntaxError(f"directive {directive} repeated in policy {index}")
            if directive in seen:
                duplicates.add(directive)
            seen.add(directive)
            if not values and directive.endswith("-src"):
                values = ["'none'"]  # an empty source list allows nothing
            sources = [_Source(value.strip().lower(), index, index == 0) for value in values]
            combined = sources if index == 0 else [*merged.get(directive, []), *sources]
            combined.sort(key=lambda item: _collation_key(item.source))
            for prev, item in itertools.pairwise(combined):
                if item.index == prev.index and item.source.startswith(prev.source):
                    item.keep = False  # covered by a shorter source of the same policy
                if item.index != prev.index and _path_part_match(prev.source, item.source):
                    item.keep = True  # present in both policies
            merged[directive] = [item for item in combined if item.keep]
            if index == 0 and len(cleaned) > 1:
                for item in merged[directive]:
                    item.keep = False  # later policies must confirm it
    directives = {
        directive: {item.source for item in items} or {"'none'"}
        for directive, items in merged.items()
    }
    return ParsedCsp(directives, frozenset(duplicates))


def _parse_or_empty(policies: Sequence[str], in_meta: bool = False) -> ParsedCsp:
    try:
        parsed = parse_csp(policies)
    except CspSyntaxError:
        return ParsedCsp({}, frozenset())
    if in_meta:
        for directive in DIRECTIVES_DISALLOWED_IN_META:
            parsed.directives.pop(directive, None)
    return parsed


def _split_policies(values: Iterable[str]) -> list[str]:
    """Commas separate policies (CSP3), so a combined header holds several."""
    return [policy.strip() for value in values for policy in value.split(",")]


def _source_list(csp: dict[str, set[str]], *names: str) -> set[str]:
    """The first directive present, as the same set object: MDN edits it in place."""
    for name in names:
        if name in csp:
            return csp[name]
    return {"*"}


def _has_nonce_or_hash(sources: Iterable[str]) -> bool:
    return any(source.startswith(NONCE_HASH_PREFIXES) for source in sources)


@dataclass(frozen=True)
class CspAnalysis:
    result: Result
    policies: int
    directives: dict[str, list[str]] | None = None  # set once the policy was analysed
    flags: dict[str, bool] | None = None


def _policy_flags(
    csp: dict[str, set[str]], frame_ancestors: set[str], secure: bool
) -> dict[str, bool]:
    """What the policy allows, judged as browsers apply it (edits ``csp`` in place, as MDN does:
    the reported directives show sources a nonce or 'strict-dynamic' switches off as gone)."""
    object_src = _source_list(csp, "object-src", "default-src")
    script_src = _source_list(csp, "script-src", "default-src")
    style_src = _source_list(csp, "style-src", "default-src")
    for sources in (script_src, style_src):
        if _has_nonce_or_hash(sources):
            sources.discard("'unsafe-inline'")  # browsers ignore it next to a nonce or hash
    strict_dynamic = _has_nonce_or_hash(script_src) and "'strict-dynamic'" in script_src
    if strict_dynamic:  # with 'strict-dynamic' browsers ignore these sources
        for source in list(script_src):
            if source.startswith(BROAD_PREFIXES) or source in ("'self'", "'unsafe-inline'"):
                script_src.discard(source)
    active = [
        source
        for directive, sources in csp.items()
        if directive not in PASSIVE_DIRECTIVES and directive != "script-src"
        for source in sources
    ] + list(script_src)
    passive = [
        source
        for directive in PASSIVE_DIRECTIVES
        for source in csp.get(directive, csp.get("default-src", set()))
    ]
    insecure = ("http:", "ftp:")
    return {
        "unsafe_inline": any(s in BROAD_OR_INLINE for s in script_src)
        or any(s in DANGEROUSLY_BROAD for s in object_src),
        "insecure_scheme_active": secure and any(s.startswith(insecure) for s in active),
        "unsafe_eval": "'unsafe-eval'" in script_src | style_src,
        "insecure_scheme_passive": secure and any(s.startswith(insecure) for s in passive),
        "unsafe_inline_style": any(s in BROAD_OR_INLINE for s in style_src),
        "default_none": csp.get("default-src") == {"'none'"},
        "strict_dynamic": strict_dynamic,
        "strict_dynamic_without_nonce": "'strict-dynamic'" in script_src and not strict_dynamic,
        "anti_clickjacking": not any(s in DANGEROUSLY_BROAD for s in frame_ancestors),
        "insecure_base_uri": any(s in BROAD_OR_INLINE for s in csp.get("base-uri", {"*"})),
        "insecure_form_action": any(s in DANGEROUSLY_BROAD for s in csp.get("form-action", {"*"})),
        "unsafe_objects": any(s in DANGEROUSLY_BROAD for s in object_src),
    }


# The first of these a policy shows names its result, in MDN's order; none: no-unsafe.
CSP_VERDICTS = (
    ("strict_dynamic_without_nonce", R.CSP_HEADER_INVALID),
    ("unsafe_inline", R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE),
    ("insecure_scheme_active", R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME),
    ("unsafe_eval", R.CSP_IMPLEMENTED_WITH_UNSAFE_EVAL),
    ("insecure_scheme_passive", R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY),
    ("unsafe_inline_style", R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY),
    ("default_none", R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE),
)


def analyze_csp(page: Page) -> CspAnalysis:
    """The CSP verdict from the header and meta tags; X-Frame-Options reads it too."""
    header = page.header("content-security-policy")
    header_policies = _split_policies([header] if header is not None else [])
    meta_csp = _split_policies(meta_policies(page).csp)
    count = len(header_policies) + len(meta_csp)
    try:
        parsed = parse_csp([*header_policies, *meta_csp])
    except CspSyntaxError:
        return CspAnalysis(R.CSP_HEADER_INVALID, count)
    header_only = _parse_or_empty(header_policies)
    # Only the header counts for frame-ancestors, and a meta tag holding nothing but directives
    # that meta tags may not carry is no policy at all.
    if header_only.size + _parse_or_empty(meta_csp, in_meta=True).size == 0:
        if page.header("content-security-policy-report-only"):
            return CspAnalysis(R.CSP_NOT_IMPLEMENTED_BUT_REPORTING_ENABLED, count)
        return CspAnalysis(R.CSP_NOT_IMPLEMENTED, count)
    frame_ancestors = header_only.directives.get("frame-ancestors", {"*"})
    flags = _policy_flags(parsed.directives, frame_ancestors, page.secure)
    result = next(
        (code for flag, code in CSP_VERDICTS if flags[flag]), R.CSP_IMPLEMENTED_WITH_NO_UNSAFE
    )
    if SCORE_TABLE[result].passed and parsed.duplicates:
        result = R.CSP_IMPLEMENTED_BUT_DUPLICATE_DIRECTIVES
    directives = {name: sorted(sources) for name, sources in parsed.directives.items()}
    return CspAnalysis(result, count, directives, flags)


CSP_RESULTS = (
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE_DEFAULT_SRC_NONE,
    R.CSP_IMPLEMENTED_WITH_NO_UNSAFE,
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE_IN_STYLE_SRC_ONLY,
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME_IN_PASSIVE_CONTENT_ONLY,
    R.CSP_IMPLEMENTED_WITH_UNSAFE_EVAL,
    R.CSP_IMPLEMENTED_WITH_UNSAFE_INLINE,
    R.CSP_IMPLEMENTED_WITH_INSECURE_SCHEME,
    R.CSP_IMPLEMENTED_BUT_DUPLICATE_DIRECTIVES,
    R.CSP_HEADER_INVALID,
    R.CSP_NOT_IMPLEMENTED,
    R.CSP_NOT_IMPLEMENTED_BUT_REPORTING_ENABLED,
)


def check_csp(evidence: SecurityEvidence) -> Outcome[Result]:
    analysis = analyze_csp(evidence.page)
    header = evidence.page.header("content-security-policy")
    detail = f"Content-Security-Policy: {header}" if header is not None else ""
    data = {
        "policies": analysis.policies,
        "directives": analysis.directives,
        **(analysis.flags or {}),
    }
    return Outcome(analysis.result, detail, data)


# --- Cookies --------------------------------------------------------------------------------------

COOKIES_IGNORED = frozenset({"heroku-session-affinity"})  # mozilla/http-observatory issue 282
SAMESITE_VALUES = ("strict", "lax", "none")
COOKIE_ORDER = (  # best to worst: a cookie problem only replaces a milder one
    R.COOKIES_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS,
    R.COOKIES_WITHOUT_SECURE_FLAG,
    R.COOKIES_SESSION_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS,
    R.COOKIES_SAMESITE_FLAG_INVALID,
    R.COOKIES_ANTICSRF_WITHOUT_SAMESITE_FLAG,
    R.COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG,
    R.COOKIES_SESSION_WITHOUT_SECURE_FLAG,
)


@dataclass(frozen=True)
class Cookie:
    name: str
    domain: str
    path: str
    secure: bool
    httponly: bool
    samesite: str | None


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or (not is_ip(host) and host.endswith("." + domain))


def parse_set_cookie(header: str, url: str) -> Cookie | None:
    """A cookie as a browser's jar would store it, or None when a jar would refuse it."""
    pair, *attributes = header.split(";")
    name, has_value, _ = pair.partition("=")
    name = name.strip()
    if not has_value or not name:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    domain = host
    path = parts.path.rsplit("/", 1)[0] or "/"
    secure = httponly = False
    samesite: str | None = None
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "domain" and value.lstrip("."):
            domain = value.lstrip(".").lower()
        elif key == "path":
            path = value if value.startswith("/") else path
        elif key == "secure":
            secure = True
        elif key == "httponly":
            httponly = True
        elif key == "samesite":
            samesite = value.lower() if value.lower() in SAMESITE_VALUES else None
    if not _domain_matches(host, domain):
        return None
    return Cookie(name, domain, path, secure, httponly, samesite)


def _cookie_jar(page: Page) -> list[Cookie]:
    jar: dict[tuple[str, str, str], Cookie] = {}
    for set_cookie in page.cookies:
        cookie = parse_set_cookie(set_cookie.header, set_cookie.url)
        if cookie is not None and cookie.name not in COOKIES_IGNORED:
            jar[(cookie.domain, cookie.path, cookie.name)] = cookie  # a later one replaces it
    return list(jar.values())


def _has_invalid_samesite(header: str) -> bool:
    for part in header.strip().split(";"):
        key, *values = part.strip().split("=")
        if key.strip().lower() == "samesite":
            value = values[0].strip().lower() if values else ""
            if value not in SAMESITE_VALUES:
                return True
    return False


COOKIE_RESULTS = (
    R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE,
    R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS,
    R.COOKIES_NOT_FOUND,
    *COOKIE_ORDER,
)


def _cookie_problems(cookie: Cookie, hsts: bool) -> list[Result]:
    name = cookie.name.lower()
    session = "login" in name or "sess" in name  # MDN's guess at session identifiers
    problems = []
    if not cookie.secure and cookie.samesite == "none":
        problems.append(R.COOKIES_SAMESITE_FLAG_INVALID)  # browsers refuse it
    if not cookie.secure:
        problems.append(
            R.COOKIES_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS
            if hsts
            else R.COOKIES_WITHOUT_SECURE_FLAG
        )
    if "csrf" in name and not cookie.samesite:
        problems.append(R.COOKIES_ANTICSRF_WITHOUT_SAMESITE_FLAG)
    if session and not cookie.secure:
        problems.append(
            R.COOKIES_SESSION_WITHOUT_SECURE_FLAG_BUT_PROTECTED_BY_HSTS
            if hsts
            else R.COOKIES_SESSION_WITHOUT_SECURE_FLAG
        )
    if session and not cookie.httponly:
        problems.append(R.COOKIES_SESSION_WITHOUT_HTTPONLY_FLAG)
    return problems


def check_cookies(evidence: SecurityEvidence) -> Outcome[Result]:
    cookies = _cookie_jar(evidence.page)
    if not cookies:
        return Outcome(R.COOKIES_NOT_FOUND)
    hsts = SCORE_TABLE[check_hsts(evidence).result].passed
    # A malformed SameSite is looked for in the final response's raw headers, since a cookie
    # jar silently drops it.
    problems = [
        R.COOKIES_SAMESITE_FLAG_INVALID
        for header in evidence.page.header_values("set-cookie")
        if _has_invalid_samesite(header)
    ]
    problems += [problem for cookie in cookies for problem in _cookie_problems(cookie, hsts)]
    result = _worst(problems, COOKIE_ORDER)
    if result is None:
        result = (
            R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS_AND_SAMESITE
            if all(cookie.samesite for cookie in cookies)
            else R.COOKIES_SECURE_WITH_HTTPONLY_SESSIONS
        )
    data = {
        cookie.name: {
            "domain": cookie.domain,
            "path": cookie.path,
            "secure": cookie.secure,
            "httponly": cookie.httponly,
            "samesite": cookie.samesite,
        }
        for cookie in cookies
    }
    return Outcome(result, "Cookies: " + "; ".join(_describe_cookie(c) for c in cookies), data)


def _describe_cookie(cookie: Cookie) -> str:
    flags = [
        "Secure" if cookie.secure else "no Secure",
        "HttpOnly" if cookie.httponly else "no HttpOnly",
        f"SameSite={cookie.samesite}" if cookie.samesite else "no SameSite",
    ]
    return f"{cookie.name} ({', '.join(flags)})"


# --- Cross-Origin-Embedder-Policy and Cross-Origin-Opener-Policy ----------------------------------

# RFC 9651 (structured fields) bare items, the grammar MDN's structured-headers library reads;
# _SF_WORD is what the RFC calls a token.
_SF_WORD = r"[A-Za-z*][-!#$%&'*+.^_`|~0-9A-Za-z:/]*"
_SF_BARE_ITEM = "|".join(
    (
        r"-?[0-9]{1,12}\.[0-9]{1,3}",  # decimal
        r"-?[0-9]{1,15}",  # integer
        r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"',  # string
        _SF_WORD,
        r":[A-Za-z0-9+/=]*:",  # byte sequence
        r"\?[01]",  # boolean
        r"@-?[0-9]{1,15}",  # date
        r'%"(?:[\x20\x21\x23\x24\x26-\x7e]|%[0-9a-f]{2})*"',  # display string
    )
)
_SF_ITEM = re.compile(
    rf" *(?P<bare>{_SF_BARE_ITEM})(?:; *[a-z*][-a-z0-9_.*]*(?:=(?:{_SF_BARE_ITEM}))?)* *"
)


def structured_token(value: str) -> str | None:
    """The token a structured-field Item holds (parameters allowed), else None.

    Browsers parse COOP and COEP this way: a value that is not a valid Item is ignored whole.
    """
    match = _SF_ITEM.fullmatch(value)
    if match is None or not re.fullmatch(_SF_WORD, match["bare"]):
        return None
    return match["bare"]


def _policy_header(
    page: Page, name: str, policies: Mapping[str, Result], missing: Result, invalid: Result
) -> Outcome[Result]:
    header = page.header(name)
    if not header:
        return Outcome(missing)
    value = header[:1024].strip()
    policy = structured_token(value)
    result = policies.get(policy, invalid) if policy is not None else invalid
    return Outcome(result, f"{name}: {value}", value)


COEP_POLICIES = {
    "require-corp": R.COEP_IMPLEMENTED_WITH_REQUIRE_CORP,
    "credentialless": R.COEP_IMPLEMENTED_WITH_CREDENTIALLESS,
    "unsafe-none": R.COEP_IMPLEMENTED_WITH_UNSAFE_NONE,
}
COEP_RESULTS = (*COEP_POLICIES.values(), R.COEP_NOT_IMPLEMENTED, R.COEP_HEADER_INVALID)


def check_coep(evidence: SecurityEvidence) -> Outcome[Result]:
    return _policy_header(
        evidence.page,
        "cross-origin-embedder-policy",
        COEP_POLICIES,
        R.COEP_NOT_IMPLEMENTED,
        R.COEP_HEADER_INVALID,
    )


COOP_POLICIES = {
    "same-origin": R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN,
    "same-origin-allow-popups": R.COOP_IMPLEMENTED_WITH_SAME_ORIGIN_ALLOW_POPUPS,
    "noopener-allow-popups": R.COOP_IMPLEMENTED_WITH_NOOPENER_ALLOW_POPUPS,
    "unsafe-none": R.COOP_IMPLEMENTED_WITH_UNSAFE_NONE,
}
COOP_RESULTS = (*COOP_POLICIES.values(), R.COOP_NOT_IMPLEMENTED, R.COOP_HEADER_INVALID)


def check_coop(evidence: SecurityEvidence) -> Outcome[Result]:
    return _policy_header(
        evidence.page,
        "cross-origin-opener-policy",
        COOP_POLICIES,
        R.COOP_NOT_IMPLEMENTED,
        R.COOP_HEADER_INVALID,
    )


# --- Cross-origin resource sharing ----------------------------------------------------------------

CORS_RESULTS = (
    R.CORS_NOT_IMPLEMENTED,
    R.CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS,
    R.CORS_IMPLEMENTED_WITH_RESTRICTED_ACCESS,
    R.CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS,
)


def check_cors(evidence: SecurityEvidence) -> Outcome[Result]:
    probe = evidence.cors
    if probe is None or not probe.allow_origin:
        return Outcome(R.CORS_NOT_IMPLEMENTED)
    allowed = probe.allow_origin[:256].strip().lower()
    credentials = (probe.allow_credentials or "").strip().lower() == "true"
    if allowed == "*":
        result = R.CORS_IMPLEMENTED_WITH_PUBLIC_ACCESS
    elif probe.origin == probe.allow_origin and credentials:
        result = R.CORS_IMPLEMENTED_WITH_UNIVERSAL_ACCESS
    else:
        result = R.CORS_IMPLEMENTED_WITH_RESTRICTED_ACCESS
    detail = f"Origin: {probe.origin} was answered with Access-Control-Allow-Origin: {allowed}"
    if credentials:
        detail += " and Access-Control-Allow-Credentials: true"
    return Outcome(result, detail, allowed)


# --- Redirection ----------------------------------------------------------------------------------

REDIRECTION_RESULTS = (
    R.REDIRECTION_ALL_REDIRECTS_PRELOADED,
    R.REDIRECTION_TO_HTTPS,
    R.REDIRECTION_NOT_NEEDED_NO_HTTP,
    R.REDIRECTION_OFF_HOST_FROM_HTTP,
    R.REDIRECTION_NOT_TO_HTTPS_ON_INITIAL_REDIRECTION,
    R.REDIRECTION_NOT_TO_HTTPS,
    R.REDIRECTION_MISSING,
    R.REDIRECTION_INVALID_CERT,
)


def check_redirection(evidence: SecurityEvidence) -> Outcome[Result]:
    route = [step.url for step in evidence.http.steps]
    detail = "Route from http://: " + " -> ".join(route) if route else ""
    if evidence.http.certificate_error:
        return Outcome(R.REDIRECTION_INVALID_CERT, evidence.http.error or "", route)
    if not route:
        return Outcome(R.REDIRECTION_NOT_NEEDED_NO_HTTP, evidence.http.error or "", route)
    schemes = [urlsplit(url).scheme for url in route]
    if all(_preloaded(evidence, _host(url)) for url in route):
        result = R.REDIRECTION_ALL_REDIRECTS_PRELOADED
    elif len(route) == 1:
        result = R.REDIRECTION_MISSING
    elif schemes[-1] != "https":
        result = R.REDIRECTION_NOT_TO_HTTPS
    elif schemes[1] == "http":
        result = R.REDIRECTION_NOT_TO_HTTPS_ON_INITIAL_REDIRECTION
    elif schemes[0] == "http" and _host(route[0]) != _host(route[1]):
        result = R.REDIRECTION_OFF_HOST_FROM_HTTP
    else:
        result = R.REDIRECTION_TO_HTTPS
    return Outcome(result, detail, route)


# --- Referrer-Policy ------------------------------------------------------------------------------

PRIVATE_REFERRER_POLICIES = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)
UNSAFE_REFERRER_POLICIES = (
    "origin",
    "origin-when-cross-origin",
    "unsafe-url",
    "no-referrer-when-downgrade",
)
REFERRER_RESULTS = (
    R.REFERRER_POLICY_PRIVATE,
    R.REFERRER_POLICY_NOT_IMPLEMENTED,
    R.REFERRER_POLICY_UNSAFE,
    R.REFERRER_POLICY_HEADER_INVALID,
)


def check_referrer_policy(evidence: SecurityEvidence) -> Outcome[Result]:
    header = evidence.page.header("referrer-policy")
    declared = [*([header] if header is not None else []), *meta_policies(evidence.page).referrer]
    if not declared:
        return Outcome(R.REFERRER_POLICY_NOT_IMPLEMENTED)
    value = ", ".join(declared)  # a meta tag comes last, so it wins
    known = PRIVATE_REFERRER_POLICIES + UNSAFE_REFERRER_POLICIES
    valid = [token.strip().lower() for token in value.split(",") if token.strip().lower() in known]
    policy = valid[-1] if valid else ""  # browsers use the last policy they understand
    if policy in PRIVATE_REFERRER_POLICIES:
        result = R.REFERRER_POLICY_PRIVATE
    elif policy in UNSAFE_REFERRER_POLICIES:
        result = R.REFERRER_POLICY_UNSAFE
    else:
        result = R.REFERRER_POLICY_HEADER_INVALID
    return Outcome(result, f"Referrer-Policy: {value}", value)


# --- Strict-Transport-Security --------------------------------------------------------------------

HSTS_RESULTS = (
    R.HSTS_PRELOADED,
    R.HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS,
    R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS,
    R.HSTS_NOT_IMPLEMENTED,
    R.HSTS_HEADER_INVALID,
    R.HSTS_NOT_IMPLEMENTED_NO_HTTPS,
    R.HSTS_INVALID_CERT,
)


def _js_parse_int(text: str) -> int | None:
    """JavaScript's parseInt(text, 10): the leading digits; None where JavaScript gives NaN."""
    match = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else None


def _hsts_result(header: str) -> tuple[Result, int | None]:
    if "," in header:  # sent more than once
        return R.HSTS_HEADER_INVALID, None
    parameters = [parameter.strip().lower() for parameter in header.split(";")]
    max_ages = [parameter[8:128] for parameter in parameters if parameter.startswith("max-age=")]
    if not max_ages:
        return R.HSTS_HEADER_INVALID, None
    max_age = _js_parse_int(max_ages[-1])
    # A max-age without digits is NaN to MDN, and NaN is not "less than": it passes.
    if max_age is not None and max_age < SIX_MONTHS:
        return R.HSTS_IMPLEMENTED_MAX_AGE_LESS_THAN_SIX_MONTHS, max_age
    return R.HSTS_IMPLEMENTED_MAX_AGE_AT_LEAST_SIX_MONTHS, max_age


def check_hsts(evidence: SecurityEvidence) -> Outcome[Result]:
    https = evidence.https
    header: str | None = None
    max_age: int | None = None
    if https.certificate_error:
        result = R.HSTS_INVALID_CERT
    elif not https.answered:
        result = R.HSTS_NOT_IMPLEMENTED_NO_HTTPS
    elif (header := evidence.page.header("strict-transport-security")) is None:
        result = R.HSTS_NOT_IMPLEMENTED
    else:
        header = header[:1024]
        result, max_age = _hsts_result(header)
    if (https.answered or https.certificate_error) and _preloaded(evidence, evidence.host):
        result = R.HSTS_PRELOADED
    detail = f"Strict-Transport-Security: {header}" if header is not None else https.error or ""
    return Outcome(result, detail, {"header": header, "max_age": max_age})


# --- Subresource Integrity ------------------------------------------------------------------------

SRI_ORDER = (  # best to worst
    R.SRI_IMPLEMENTED_AND_ALL_SCRIPTS_LOADED_SECURELY,
    R.SRI_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_LOADED_SECURELY,
    R.SRI_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY,
    R.SRI_NOT_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_LOADED_SECURELY,
    R.SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY,
    R.SRI_NOT_IMPLEMENTED_RESPONSE_NOT_HTML,
)
SRI_RESULTS = (
    *SRI_ORDER,
    R.SRI_NOT_IMPLEMENTED_BUT_NO_SCRIPTS_LOADED,
    R.SRI_NOT_IMPLEMENTED_BUT_ALL_SCRIPTS_LOADED_FROM_SECURE_ORIGIN,
    R.HTML_NOT_PARSEABLE,
)


def _script_verdict(
    src: str, integrity: bool, evidence: SecurityEvidence
) -> tuple[bool, Result | None]:
    """Whether a script comes from another site, and the SRI problem or credit it brings.

    A script from another site with integrity over HTTPS brings nothing by itself: it is the
    expected case, and the verdict falls back to it only when nothing else was found.
    """
    relative_protocol = re.match(r"//[^/]", src) is not None  # src="//cdn.example/x.js"
    full_url = re.match(r"https?://", src) is not None
    relative_origin = not relative_protocol and not full_url
    same_site = not full_url or same_site_hosts(_host(src), evidence.host)
    secure_scheme = src.startswith("https:") or (relative_origin and evidence.page.secure)
    if relative_origin or (same_site and not relative_protocol):
        credit = integrity and secure_scheme
        return False, R.SRI_IMPLEMENTED_AND_ALL_SCRIPTS_LOADED_SECURELY if credit else None
    if integrity and not secure_scheme:
        return True, R.SRI_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY
    if not integrity and secure_scheme:
        return True, R.SRI_NOT_IMPLEMENTED_BUT_EXTERNAL_SCRIPTS_LOADED_SECURELY
    if not integrity:
        return True, R.SRI_NOT_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_NOT_LOADED_SECURELY
    return True, None


def check_sri(evidence: SecurityEvidence) -> Outcome[Result]:
    mime = _mime_type(evidence.page)
    if mime and mime not in HTML_TYPES:
        return Outcome(R.SRI_NOT_IMPLEMENTED_RESPONSE_NOT_HTML, f"Content-Type: {mime}")
    tags = html_tags(evidence.page.html)
    if tags is None:
        return Outcome(R.HTML_NOT_PARSEABLE)
    if not tags.scripts:
        return Outcome(R.SRI_NOT_IMPLEMENTED_BUT_NO_SCRIPTS_LOADED)
    foreign: list[dict[str, str]] = []
    found: list[Result] = []
    for script in tags.scripts:
        if not script.get("src"):
            continue  # an inline script
        is_foreign, verdict = _script_verdict(
            script["src"], bool(script.get("integrity")), evidence
        )
        foreign += [script] if is_foreign else []
        found += [verdict] if verdict is not None else []
    result = _worst(found, SRI_ORDER) or (
        R.SRI_IMPLEMENTED_AND_EXTERNAL_SCRIPTS_LOADED_SECURELY
        if foreign
        else R.SRI_NOT_IMPLEMENTED_BUT_ALL_SCRIPTS_LOADED_FROM_SECURE_ORIGIN
    )
    external = {
        script["src"]: {
            "integrity": script.get("integrity") or None,
            "crossorigin": script.get("crossorigin") or None,
        }
        for script in foreign
    }
    detail = "Scripts from other sites: " + ", ".join(external) if external else ""
    return Outcome(result, detail, external)


# --- X-Content-Type-Options, X-Frame-Options, Cross-Origin-Resource-Policy ------------------------

XCTO_RESULTS = (
    R.X_CONTENT_TYPE_OPTIONS_NOSNIFF,
    R.X_CONTENT_TYPE_OPTIONS_HEADER_INVALID,
    R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED,
)


def check_x_content_type_options(evidence: SecurityEvidence) -> Outcome[Result]:
    header = evidence.page.header("x-content-type-options")
    if not header:
        return Outcome(R.X_CONTENT_TYPE_OPTIONS_NOT_IMPLEMENTED)
    value = header[:256]
    result = (
        R.X_CONTENT_TYPE_OPTIONS_NOSNIFF
        if value.strip().lower() == "nosniff"
        else R.X_CONTENT_TYPE_OPTIONS_HEADER_INVALID
    )
    return Outcome(result, f"X-Content-Type-Options: {value}", value)


XFO_RESULTS = (
    R.X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP,
    R.X_FRAME_OPTIONS_SAMEORIGIN_OR_DENY,
    R.X_FRAME_OPTIONS_ALLOW_FROM_ORIGIN,
    R.X_FRAME_OPTIONS_NOT_IMPLEMENTED,
    R.X_FRAME_OPTIONS_HEADER_INVALID,
)


def check_x_frame_options(evidence: SecurityEvidence) -> Outcome[Result]:
    header = evidence.page.header("x-frame-options")
    value = header[:1024] if header else None
    directives = analyze_csp(evidence.page).directives
    if directives is not None and "frame-ancestors" in directives:
        result = R.X_FRAME_OPTIONS_IMPLEMENTED_VIA_CSP  # frame-ancestors supersedes the header
    elif value is None:
        result = R.X_FRAME_OPTIONS_NOT_IMPLEMENTED
    elif value.strip().lower() in ("deny", "sameorigin"):
        result = R.X_FRAME_OPTIONS_SAMEORIGIN_OR_DENY
    elif value.strip().lower().startswith("allow-from"):
        result = R.X_FRAME_OPTIONS_ALLOW_FROM_ORIGIN
    else:
        result = R.X_FRAME_OPTIONS_HEADER_INVALID
    return Outcome(result, f"X-Frame-Options: {value}" if value else "", value)


CORP_POLICIES = {
    "same-site": R.CORP_IMPLEMENTED_WITH_SAME_SITE,
    "same-origin": R.CORP_IMPLEMENTED_WITH_SAME_ORIGIN,
    "cross-origin": R.CORP_IMPLEMENTED_WITH_CROSS_ORIGIN,
}
CORP_RESULTS = (*CORP_POLICIES.values(), R.CORP_NOT_IMPLEMENTED, R.CORP_HEADER_INVALID)


def check_corp(evidence: SecurityEvidence) -> Outcome[Result]:
    header = evidence.page.header("cross-origin-resource-policy")
    if not header:
        return Outcome(R.CORP_NOT_IMPLEMENTED)
    value = header[:256].strip().lower()
    result = CORP_POLICIES.get(value, R.CORP_HEADER_INVALID)
    return Outcome(result, f"Cross-Origin-Resource-Policy: {value}", value)


# --- The test list and the grade ------------------------------------------------------------------


ObservatoryTest = Check[SecurityEvidence, Result]

TESTS: tuple[ObservatoryTest, ...] = (  # MDN's order (src/constants.js)
    ObservatoryTest(
        "content-security-policy", "Content Security Policy (CSP)", check_csp, CSP_RESULTS
    ),
    ObservatoryTest("cookies", "Cookies", check_cookies, COOKIE_RESULTS),
    ObservatoryTest(
        "cross-origin-embedder-policy", "Cross Origin Embedder Policy", check_coep, COEP_RESULTS
    ),
    ObservatoryTest(
        "cross-origin-opener-policy", "Cross Origin Opener Policy", check_coop, COOP_RESULTS
    ),
    ObservatoryTest(
        "cross-origin-resource-sharing",
        "Cross Origin Resource Sharing (CORS)",
        check_cors,
        CORS_RESULTS,
    ),
    ObservatoryTest("redirection", "Redirection", check_redirection, REDIRECTION_RESULTS),
    ObservatoryTest("referrer-policy", "Referrer Policy", check_referrer_policy, REFERRER_RESULTS),
    ObservatoryTest(
        "strict-transport-security",
        "Strict Transport Security (HSTS)",
        check_hsts,
        HSTS_RESULTS,
    ),
    ObservatoryTest("subresource-integrity", "Subresource Integrity", check_sri, SRI_RESULTS),
    ObservatoryTest(
        "x-content-type-options",
        "X-Content-Type-Options",
        check_x_content_type_options,
        XCTO_RESULTS,
    ),
    ObservatoryTest("x-frame-options", "X-Frame-Options", check_x_frame_options, XFO_RESULTS),
    ObservatoryTest(
        "cross-origin-resource-policy", "Cross Origin Resource Policy", check_corp, CORP_RESULTS
    ),
)


def observatory_score(results: Iterable[Result]) -> int:
    """The Observatory's raw score: bonuses count only if the penalties alone leave an A."""
    with_extra_credit = uncurved = BASE_SCORE
    for result in results:
        modifier = SCORE_TABLE[result].modifier
        with_extra_credit += modifier
        if modifier < 0:
            uncurved += modifier
    score = with_extra_credit if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else uncurved
    return max(score, 0)


def _site_data(evidence: SecurityEvidence) -> dict[str, Any]:
    """What a salesperson shows next to the grade: the usual security headers, HTTPS, redirects."""
    headers = {name: evidence.page.header(name.lower()) for name in SECURITY_HEADERS}
    return {
        "url": evidence.page.final_url,
        "status_code": evidence.page.status,
        "headers": {
            name: {"present": value is not None, "value": value} for name, value in headers.items()
        },
        "https": {
            "available": evidence.https.answered or evidence.https.certificate_error,
            "valid_certificate": evidence.https.answered,
            "error": evidence.https.error,
        },
        "redirects": [step.model_dump() for step in evidence.http.steps],
    }


def judge(evidence: SecurityEvidence) -> AssessmentResult:
    """Grade the evidence the Observatory's way; pure, so tests need no network.

    The envelope's score is capped at 100; the Observatory's own (up to 165 with extra credit)
    is kept in ``data.observatory``.
    """
    judgement = judge_checks(TESTS, evidence, SCORE_TABLE)
    raw_score = observatory_score(outcome.result for _, outcome in judgement.outcomes)
    grade = grade_for(raw_score)  # the Observatory's chart is the product's chart
    failed = len(judgement.failing)
    score = min(raw_score, 100)
    opening = f"Grade {grade} ({score}/100) on Mozilla's HTTP Observatory security checks"
    return AssessmentResult(
        assessment="security",
        status="completed",
        source="observatory",
        score=score,
        grade=grade,
        summary=judgement.summary(opening, noun="tests"),
        findings=judgement.findings(),
        data={
            "observatory": {
                "score": raw_score,
                "grade": grade,
                "algorithm_version": ALGORITHM_VERSION,
                "tests_passed": len(TESTS) - failed,
                "tests_failed": failed,
                "tests_quantity": len(TESTS),
                "tests": judgement.entries(),
            },
            **_site_data(evidence),
        },
        algorithm_version=ENVELOPE_ALGORITHM_VERSION,
    )


# --- Collect: the only I/O ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanTarget:
    host: str
    path: str
    http_url: str
    https_url: str
    https_port_unknown: bool = False  # the lead gave a port for http://, none for https://


def scan_target(website: str) -> ScanTarget:
    """The lead's site at http:// and https://, as the Observatory scans a host (and path)."""
    text = website.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{website!r} is not a valid URL: {exc}", website) from exc
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidURL(f"{website!r} is not an http(s) URL with a host", website)
    netloc = f"[{host}]" if ":" in host else host
    path = parts.path or "/"

    def url(scheme: str) -> str:
        # An explicit port belongs to the scheme the lead gave; the other scheme uses its default.
        suffix = f":{port}" if port is not None and scheme == parts.scheme else ""
        return f"{scheme}://{netloc}{suffix}{path}"

    unknown = port is not None and parts.scheme == "http"
    return ScanTarget(host, path, url("http"), url("https"), https_port_unknown=unknown)


def _https_url_after(http: FetchResponse | FetchError, target: ScanTarget) -> str:
    """Where the http:// site says its HTTPS lives: the first https:// hop on the same host.

    MDN would try port 443, but a site on a non-default port (staging, the demo) names its
    HTTPS port only in that redirect.
    """
    # A chain that broke on its way names the hop that failed (an invalid certificate, say).
    hops = [step.url for step in _steps(http)] if isinstance(http, FetchResponse) else [http.url]
    for hop in hops:
        parts = urlsplit(hop)
        if parts.scheme == "https" and parts.hostname == target.host:
            return f"https://{parts.netloc}{target.path}"
    return target.https_url


async def _try_get(
    client: SafeClient,
    url: str,
    headers: Mapping[str, str] = REQUEST_HEADERS,
    follow_redirects: bool = True,
) -> FetchResponse | FetchError:
    """The response or the error, as evidence: one scheme failing is a finding, not a crash."""
    try:
        return await client.get(url, headers=dict(headers), follow_redirects=follow_redirects)
    except FetchError as exc:
        return exc


def _is_certificate_error(outcome: FetchResponse | FetchError) -> bool:
    """A certificate that fails verification, as opposed to a server that speaks no TLS."""
    seen: BaseException | None = outcome if isinstance(outcome, FetchError) else None
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _page(start_url: str, response: FetchResponse) -> Page:
    cookies = [
        SetCookie(url=hop.url, header=value)
        for hop in response.history
        for value in hop.headers.get_list("set-cookie")
    ] + [SetCookie(url=response.url, header=v) for v in response.headers.get_list("set-cookie")]
    return Page(
        url=start_url,
        final_url=response.url,
        status=response.status_code,
        headers=tuple((key.lower(), value) for key, value in response.headers.multi_items()),
        html=response.text[:MAX_HTML_CHARS],
        cookies=tuple(cookies),
    )


def _steps(response: FetchResponse) -> tuple[Step, ...]:
    hops = [Step(url=hop.url, status=hop.status_code) for hop in response.history]
    return (*hops, Step(url=response.url, status=response.status_code))


def _https(outcome: FetchResponse | FetchError) -> Https:
    if isinstance(outcome, FetchError):
        return Https(
            answered=False, certificate_error=_is_certificate_error(outcome), error=str(outcome)
        )
    return Https(answered=True)


def _site_error(http: FetchError, https: FetchError) -> FetchError:
    """Why neither scheme answered, by what helps most: a bad certificate (the site is up,
    retrying will not fix it), else something another try may fix, else the http:// failure."""
    for error in (https, http):
        if _is_certificate_error(error):
            return error
    return https if https.retryable and not http.retryable else http


async def _cors_probe(client: SafeClient, url: str) -> CorsProbe | None:
    outcome = await _try_get(client, url, {**REQUEST_HEADERS, "Origin": CORS_ORIGIN})
    if isinstance(outcome, FetchError):
        return None
    headers = outcome.headers
    return CorsProbe(
        origin=CORS_ORIGIN,
        allow_origin=", ".join(headers.get_list("access-control-allow-origin")) or None,
        allow_credentials=", ".join(headers.get_list("access-control-allow-credentials")) or None,
    )


async def _graded_response(
    client: SafeClient,
    target: ScanTarget,
    http: FetchResponse | FetchError,
    https: FetchResponse | FetchError,
) -> tuple[str, FetchResponse, HttpRoute]:
    """The response to grade (https:// first, as MDN does), where it started, and the route.

    When http:// redirects to an https:// whose certificate is invalid, MDN grades the page
    fetched without verification; we never skip verification, so the redirect itself is graded.
    """
    if isinstance(http, FetchResponse):
        route = HttpRoute(steps=_steps(http))
    else:
        route = HttpRoute(certificate_error=_is_certificate_error(http), error=str(http))
    if isinstance(https, FetchResponse):
        return target.https_url, https, route
    if isinstance(http, FetchResponse):
        return target.http_url, http, route
    if route.certificate_error:
        first = await _try_get(client, target.http_url, follow_redirects=False)
        if isinstance(first, FetchResponse):
            return target.http_url, first, route.model_copy(update={"steps": _steps(first)})
    raise _site_error(http, https)


async def collect(url: str, client: SafeClient) -> SecurityEvidence:
    """Fetch the site over http:// and https:// (redirects followed) and probe CORS.

    Raises the FetchError that makes a grade impossible: neither scheme answered, or the page
    graded answered with a status the Observatory refuses (anything but 2xx, 3xx, 401, 403).
    """
    target = scan_target(url)
    if target.https_port_unknown:
        http = await _try_get(client, target.http_url)
        target = replace(target, https_url=_https_url_after(http, target))
        https = await _try_get(client, target.https_url)
    else:
        http, https = await asyncio.gather(
            _try_get(client, target.http_url), _try_get(client, target.https_url)
        )
    start_url, response, route = await _graded_response(client, target, http, https)
    status = response.status_code
    if not (200 <= status < 400 or status in GRADABLE_ERROR_STATUSES):
        raise HTTPStatusError(f"{response.url} answered HTTP {status}", response.url, status)
    return SecurityEvidence(
        host=target.host,
        page=_page(start_url, response),
        http=route,
        https=_https(https),
        cors=await _cors_probe(client, response.url),
    )


async def assess(lead: LeadRecord) -> AssessmentResult:
    """The task body. collect's FetchErrors propagate so the registry's retry condition sees
    them: a 5xx or a refused connection is tried again, a 404 or a bad certificate is not."""
    started = time.monotonic()
    async with SafeClient.from_settings(get_settings(), max_redirects=MAX_REDIRECTS) as client:
        evidence = await collect(lead.website, client)
    result = judge(evidence)
    return result.model_copy(update={"duration_ms": int((time.monotonic() - started) * 1000)})


security_task = assessment_task("security")(assess)
