"""The semrush assessment: can people find the lead's business in Google?

A salesperson selling SEO wants two things: how visible the site is in search today, and what on
the site stands in the way. Two roads, one envelope (``assessment: "semrush"``):

* **With ``LEADSHOP_SEMRUSH_API_KEY``** (``source: "semrush"``): SEMrush's Analytics API v3,
  ``domain_rank`` (organic keywords and traffic in ``LEADSHOP_SEMRUSH_DATABASE``, default ``us``)
  and ``backlinks_overview`` (Authority Score, backlinks, referring domains) for the registrable
  domain of the lead's website, without ``www.``. The two requests go one after the other, so a
  refused key costs one request, not two. The score is a weighted mean of three log-normal curves
  (``METRICS``). SEMrush's ``ERROR 50 :: NOTHING FOUND`` for both reports means the domain is
  invisible in search: a completed result scoring 0 with one clear finding, never a failure (for
  one report, its numbers count as zeros).
* **Without a key** (``source: "onpage"``): an on-page audit of the home page, fetched through
  ``SafeClient`` with its robots.txt and sitemap: thirteen checks, each returning a result code
  whose points and wording live only in ``SCORE_TABLE`` (the security assessment's shape); the
  score is 100 plus every modifier, clamped to 0..100.

Scoring SEMrush's numbers. ``leadshop.scoring.log_normal_score`` is Lighthouse's curve, where
lower is better. Here higher is better, so a metric is read on its reciprocal:
``log_normal_score(1 / value, p10=1 / good, median=1 / median)`` scores 0.9 at ``good``, 0.5 at
``median``, tends to 1 above and to 0 below, and 0 for nothing at all. A log-normal in ``value`` is
one in ``1 / value`` mirrored, so the shape is the same. The control points describe a local
business in one country's database; they are judgement, to revisit with real lead data:

================  ======  ======  ======  =================================================
metric            median  good    weight  why
================  ======  ======  ======  =================================================
Authority Score   15      35      0.4     SEMrush's 0-100 link-based strength; small local
                                          sites sit around 10-20, a well-linked one above 35
organic keywords  60      400     0.3     keywords in Google's top 100 in the database
organic traffic   100     1000    0.3     SEMrush's estimate of monthly visits from search
================  ======  ======  ======  =================================================

Errors, extending ``leadshop.errors``::

    LeadshopError
    ├── ServiceError (leadshop.apis)
    │   └── SemrushError     SEMrush refused or failed a request (``code``: its ERROR number)
    │                        ERROR nn other than 50: never retried, the message says what to do;
    │                        HTTP 429, 5xx, no answer: retried; other 4xx, an empty or unreadable
    │                        answer (wrong columns, an HTML page): never retried
    └── FetchError           the lead's home page could not be fetched (on-page road; robots.txt
                             and the sitemap failing is a finding, not an error)

The key travels in the query string (SEMrush has no other way). ``KeyTransport`` adds it below
httpx, so httpx's logs and errors, and therefore ours, never see it; every SEMrush text that goes
into an error is passed through ``redact`` as well.

``data`` with ``source: "semrush"``: ``domain`` and ``database`` asked about; ``domain_rank``
(``rank``, ``organic_keywords``, ``organic_traffic``, ``organic_cost`` in USD, ``adwords_keywords``,
``adwords_traffic``, ``adwords_cost``) and ``backlinks`` (``authority_score``, ``backlinks``,
``referring_domains``, ``referring_urls``, ``referring_ips``, ``referring_subnets``,
``follow_links``, ``nofollow_links``), each null when SEMrush answered ERROR 50; ``metrics``: per
metric its ``value``, ``score`` (0-1 on its curve), ``median``, ``good`` and ``weight``.

``data`` with ``source: "onpage"``: ``url`` (the home page graded, after redirects) and
``status_code``; ``checks``: per check (``title``, ``meta_description``, ``h1``, ``canonical``,
``lang``, ``robots_txt``, ``sitemap``, ``indexing``, ``structured_data``, ``image_alt``,
``open_graph``, ``internal_links``, ``https``) its ``result`` code, ``pass``, ``score_modifier``
and, under ``data``, what it measured.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from pydantic import SecretStr

from leadshop.apis import KeyTransport, ServiceError, api_client, redact, send
from leadshop.config import Settings, get_settings
from leadshop.domains import registrable_domain
from leadshop.errors import FetchError
from leadshop.models import AssessmentResult, Finding, LeadRecord, Severity
from leadshop.net import SafeClient, check_url, lead_url, trust_context
from leadshop.pages import PageFacts, parse_page
from leadshop.scoring import Check, Outcome, Score, grade_for, judge_checks, log_normal_score
from tasks.registry import assessment_task

ALGORITHM_VERSION = "semrush/1"
ONPAGE_ALGORITHM_VERSION = "onpage-seo/1"

# --- SEMrush -------------------------------------------------------------------------------------

SERVICE = "SEMrush"
SEMRUSH_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
NOTHING_FOUND = 50  # "ERROR 50 :: NOTHING FOUND": SEMrush has no data for the domain
ERROR_LINE = re.compile(r"^ERROR\s+(?P<code>\d+)\s*::\s*(?P<message>.*)$", re.DOTALL)
DOCS = "https://developer.semrush.com/api/basics/"
_CHECK_KEY = (
    "check LEADSHOP_SEMRUSH_API_KEY: copy the key again from SEMrush (Subscription info > "
    "API units)"
)
# What to do about each documented ERROR code (SEMrush's Analytics API v3 error list).
ERROR_ADVICE: dict[int, str] = {
    40: "a mandatory parameter is missing: a bug in this client, please report it",
    41: "a mandatory parameter is missing: a bug in this client, please report it",
    42: "the domain parameter is empty: check the lead's website",
    70: _CHECK_KEY,
    120: _CHECK_KEY,
    121: _CHECK_KEY,
    122: _CHECK_KEY,
    130: "API access is disabled for this account: SEMrush's API needs a Business plan; "
    "or unset LEADSHOP_SEMRUSH_API_KEY to use the on-page audit",
    131: "a SEMrush request limit is exceeded: lower the pace or wait for the limit to reset",
    132: "the account has no API units left: buy units (Subscription info > API units), or "
    "unset LEADSHOP_SEMRUSH_API_KEY to use the on-page audit",
    133: "this account may not read the database {database}: set LEADSHOP_SEMRUSH_DATABASE to "
    "one the subscription includes",
    134: "the account's total API limit is reached: wait for it to reset or raise it with SEMrush",
    135: "this report type is not in the subscription: add backlink and domain analytics to it",
}


class SemrushError(ServiceError):
    """``code`` is SEMrush's ERROR number when it sent one, ``status_code`` the HTTP status
    (None when SEMrush gave no answer at all)."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        code: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, status_code, f"ERROR {code}" if code else "", retryable)
        self.code = code


@dataclass(frozen=True)
class Report:
    """One SEMrush report: where it lives under the API URL, its parameters and its columns as
    ``export_columns`` code -> (the header SEMrush answers with, our key in ``data``)."""

    type: str
    path: str
    columns: Mapping[str, tuple[str, str]]
    target: str  # the parameter naming the domain
    params: Mapping[str, str]
    regional: bool  # takes ``database``


DOMAIN_RANK = Report(
    "domain_rank",
    "/",
    {
        "Dn": ("Domain", "domain"),
        "Rk": ("Rank", "rank"),
        "Or": ("Organic Keywords", "organic_keywords"),
        "Ot": ("Organic Traffic", "organic_traffic"),
        "Oc": ("Organic Cost", "organic_cost"),
        "Ad": ("Adwords Keywords", "adwords_keywords"),
        "At": ("Adwords Traffic", "adwords_traffic"),
        "Ac": ("Adwords Cost", "adwords_cost"),
    },
    target="domain",
    params={},
    regional=True,
)
BACKLINKS_OVERVIEW = Report(  # backlinks are not regional: no database parameter
    "backlinks_overview",
    "/analytics/v1/",
    {
        "ascore": ("ascore", "authority_score"),
        "total": ("total", "backlinks"),
        "domains_num": ("domains_num", "referring_domains"),
        "urls_num": ("urls_num", "referring_urls"),
        "ips_num": ("ips_num", "referring_ips"),
        "ipclassc_num": ("ipclassc_num", "referring_subnets"),
        "follows_num": ("follows_num", "follow_links"),
        "nofollows_num": ("nofollows_num", "nofollow_links"),
    },
    target="target",
    params={"target_type": "root_domain"},
    regional=False,
)
TEXT_COLUMNS = frozenset({"domain"})  # every other column is a number
Row = dict[str, Any]


@dataclass(frozen=True)
class SemrushOverview:
    """What SEMrush knows about a domain; a report is None when it answered ERROR 50."""

    domain: str
    database: str
    domain_rank: Row | None
    backlinks: Row | None


def _number(text: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_report(
    report: Report, response: httpx.Response, database: str, *secrets: SecretStr | None
) -> Row | None:
    """One report's row by ``data`` key, or None when SEMrush has no data for the domain.

    SEMrush answers text, not JSON: a ``;``-separated header row and data rows, or one
    ``ERROR nn :: MESSAGE`` line, usually with HTTP 200. 429 and 5xx come first (they are worth
    another try whatever the body); then an ERROR line, whatever the status.
    """
    status = response.status_code
    text = response.text.lstrip("\ufeff").strip()
    where = f"{SERVICE} {report.type}"
    if status == 429 or status >= 500:
        raise SemrushError(redact(f"{where} answered HTTP {status}: {text}", *secrets), status)
    error = ERROR_LINE.match(text)
    if error:
        code = int(error["code"])
        if code == NOTHING_FOUND:
            return None
        said = redact(f"{where} refused the request: ERROR {code} :: {error['message']}", *secrets)
        advice = ERROR_ADVICE.get(code, f"see {DOCS}").format(database=database)
        raise SemrushError(f"{said}. What to do: {advice}", status, code, retryable=False)
    if not response.is_success:
        raise SemrushError(redact(f"{where} answered HTTP {status}: {text}", *secrets), status)
    if not text:
        raise SemrushError(
            f"{where} answered HTTP {status} with an empty body", status, None, False
        )
    return _table_row(report, text, status, *secrets)


def _table_row(report: Report, text: str, status: int, *secrets: SecretStr | None) -> Row | None:
    """The first data row, by ``data`` key; a header with other columns (an HTML page, another
    report) is an answer we cannot read, never retried."""

    def unreadable(problem: str) -> SemrushError:
        message = redact(f"{SERVICE} {report.type} answered {problem}: {text}", *secrets)
        return SemrushError(message, status, None, retryable=False)

    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    by_header = {header: code for code, (header, _) in report.columns.items()}
    header = [by_header.get(name.strip(), name.strip()) for name in rows[0]]
    missing = [code for code in report.columns if code not in header]
    if missing:
        raise unreadable(f"without the columns {', '.join(missing)}")
    if any(len(row) != len(header) for row in rows[1:]):
        raise unreadable("rows that do not match its header")
    if len(rows) < 2:  # the header alone: nothing known, like ERROR 50
        return None
    found: Row = {}
    for code, value in zip(header, rows[1], strict=True):
        if code in report.columns:
            key = report.columns[code][1]
            try:
                found[key] = value.strip() if key in TEXT_COLUMNS else _number(value)
            except ValueError:
                raise unreadable(f"{value!r} for {code}") from None
    return found


class SemrushClient:
    """SEMrush's Analytics API v3: a trusted API (the lead's domain is only a parameter), reached
    with a plain httpx client, the key added below it by ``KeyTransport``."""

    def __init__(
        self,
        api_url: str,
        api_key: SecretStr,
        database: str = "us",
        timeout: httpx.Timeout = SEMRUSH_TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.database = database
        self._key = api_key
        transport = KeyTransport(httpx.AsyncHTTPTransport(verify=trust_context()), api_key)
        self._client = api_client(timeout, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, key: SecretStr) -> SemrushClient:
        return cls(settings.semrush_api_url, key, settings.semrush_database)

    async def __aenter__(self) -> SemrushClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def report(self, report: Report, domain: str) -> Row | None:
        params = {"type": report.type, report.target: domain, **report.params}
        if report.regional:
            params["database"] = self.database
        params["export_columns"] = ",".join(report.columns)
        request = self._client.build_request("GET", self.api_url + report.path, params=params)
        response = await send(self._client, request, SERVICE, SemrushError, self._key)
        return read_report(report, response, self.database, self._key)

    async def overview(self, domain: str) -> SemrushOverview:
        rank = await self.report(DOMAIN_RANK, domain)
        backlinks = await self.report(BACKLINKS_OVERVIEW, domain)
        return SemrushOverview(domain, self.database, rank, backlinks)


def search_domain(website: str) -> str:
    """The registrable domain SEMrush is asked about: ``https://www.shop.example.co.uk/x`` ->
    ``example.co.uk``; a host without one (an IP, ``localhost``) as it is, without ``www.``."""
    host = check_url(lead_url(website)).raw_host.decode("ascii")
    host = host.rstrip(".").lower()
    return registrable_domain(host) or host.removeprefix("www.")


# --- Judge SEMrush's numbers: pure ---------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str  # in data
    source: str  # "domain_rank" or "backlinks"
    median: float  # scores 0.5
    good: float  # scores 0.9
    weight: float
    finding: str  # finding id when below good
    title: str
    recommendation: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "authority_score",
        "backlinks",
        median=15,
        good=35,
        weight=0.4,
        finding="semrush-low-authority",
        title="Fewer sites vouch for this one than for well-linked local businesses "
        "(SEMrush Authority Score {value:,.0f})",
        recommendation="Earn links from local directories, suppliers, associations and the local "
        "press; list the business in Google Business Profile and trusted directories.",
    ),
    Metric(
        "organic_keywords",
        "domain_rank",
        median=60,
        good=400,
        weight=0.3,
        finding="semrush-few-keywords",
        title="Google shows the site for fewer searches than well-found local businesses "
        "({value:,.0f} keywords in the top 100)",
        recommendation="Give every service and every town served a page of its own that answers "
        "what customers search for.",
    ),
    Metric(
        "organic_traffic",
        "domain_rank",
        median=100,
        good=1000,
        weight=0.3,
        finding="semrush-little-traffic",
        title="Less traffic from Google than well-found local businesses get (about "
        "{value:,.0f} visits a month, SEMrush estimates)",
        recommendation="Improve titles and descriptions of the pages that rank, and move pages "
        "that rank on page two onto page one.",
    ),
)
# Below these metric scores a finding is this severe; at or above ``good`` (0.9) there is none.
METRIC_SEVERITY: tuple[tuple[float, Severity], ...] = (
    (0.25, "high"),
    (0.5, "medium"),
    (0.9, "low"),
)
NO_PRESENCE = "semrush-no-search-presence"
SEVERITY_ORDER: tuple[Severity, ...] = ("high", "medium", "low", "info")


def metric_score(value: float, median: float, good: float) -> float:
    """0..1, higher is better: Lighthouse's curve read on ``1 / value``, so ``good`` scores 0.9
    and ``median`` 0.5; nothing at all scores 0."""
    if value <= 0:
        return 0.0
    return log_normal_score(1 / value, p10=1 / good, median=1 / median)


def _metric_severity(score: float) -> Severity | None:
    for below, severity in METRIC_SEVERITY:
        if score < below:
            return severity
    return None


def judge_semrush(overview: SemrushOverview) -> AssessmentResult:
    """Grade SEMrush's numbers for one domain; pure. A report SEMrush had no data for counts as
    zeros; both without data is no search presence at all."""
    reports = {"domain_rank": overview.domain_rank or {}, "backlinks": overview.backlinks or {}}
    metrics: dict[str, dict[str, Any]] = {}
    findings: list[Finding] = []
    weighted = 0.0
    for metric in METRICS:
        value = reports[metric.source].get(metric.key) or 0
        score = metric_score(value, metric.median, metric.good)
        weighted += metric.weight * score
        metrics[metric.key] = {
            "value": value,
            "score": round(score, 3),
            "median": metric.median,
            "good": metric.good,
            "weight": metric.weight,
        }
        severity = _metric_severity(score)
        if severity is not None:
            findings.append(_metric_finding(metric, value, severity, overview.database))
    score = round(100 * weighted / sum(metric.weight for metric in METRICS))
    grade = grade_for(score)
    opening = f"SEO grade {grade} ({score}/100)"
    if overview.domain_rank is None and overview.backlinks is None:
        findings = [_no_presence(overview)]
        summary = (
            f"{opening}: SEMrush has no search data for {overview.domain} in its "
            f"{overview.database} database, so Google shows the site for none of the searches "
            "it tracks."
        )
    else:
        findings.sort(key=lambda finding: SEVERITY_ORDER.index(finding.severity))
        values = {key: f"{metric['value']:,.0f}" for key, metric in metrics.items()}
        summary = (
            f"{opening} from SEMrush ({overview.database}): Authority Score "
            f"{values['authority_score']}, {values['organic_keywords']} keywords in Google's "
            f"top 100, about {values['organic_traffic']} visits a month from search."
        )
    return AssessmentResult(
        assessment="semrush",
        status="completed",
        source="semrush",
        score=score,
        grade=grade,
        summary=summary,
        findings=findings,
        data={
            "domain": overview.domain,
            "database": overview.database,
            "domain_rank": overview.domain_rank,
            "backlinks": overview.backlinks,
            "metrics": metrics,
        },
        algorithm_version=ALGORITHM_VERSION,
    )


def _metric_finding(metric: Metric, value: float, severity: Severity, database: str) -> Finding:
    return Finding(
        id=metric.finding,
        severity=severity,
        title=metric.title.format(value=value),
        detail=f"On SEMrush's {database} database a local business's site typically reaches "
        f"{metric.median:,.0f}; {metric.good:,.0f} is good.",
        recommendation=metric.recommendation,
    )


def _no_presence(overview: SemrushOverview) -> Finding:
    return Finding(
        id=NO_PRESENCE,
        severity="high",
        title="The business cannot be found in Google search",
        detail=f"SEMrush answered NOTHING FOUND for {overview.domain} in its "
        f"{overview.database} database: no ranking keywords and no known backlinks.",
        recommendation="Start with the basics: a page per service with a clear title and "
        "description, a Google Business Profile, and links from local directories.",
    )


# --- On-page audit: evidence ---------------------------------------------------------------------

HTML_HEADERS = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
TITLE_LENGTH = (10, 60)  # characters; Google cuts titles near 60
DESCRIPTION_LENGTH = (50, 160)  # characters; Google cuts snippets near 160
ALT_PARTIAL = 0.5  # share of images with alt text below which alt text counts as missing
FEW_INTERNAL_LINKS = 3  # distinct pages of the site linked from the home page, below: few
OPEN_GRAPH_NEEDED = ("og:title", "og:description")
OPEN_GRAPH_TAGS = ("og:title", "og:description", "og:image", "og:url", "og:type")
NOINDEX = frozenset({"noindex", "none"})
GOOGLEBOT = "googlebot"


@dataclass(frozen=True)
class Probe:
    """What one GET of a side file (robots.txt, a sitemap) answered."""

    url: str
    status_code: int | None = None  # None: no answer (``error`` says why)
    content_type: str = ""
    text: str = ""
    error: str = ""

    @property
    def found(self) -> bool:
        """Answered 200 with something other than an HTML page (a site's "not found" page
        served with 200 is not a robots.txt)."""
        return self.status_code == 200 and "html" not in self.content_type.lower()

    def summary(self) -> dict[str, Any]:
        return {"url": self.url, "status_code": self.status_code, "error": self.error or None}


@dataclass(frozen=True)
class RobotsRules:
    """The part of a robots.txt that matters here: the group Googlebot obeys."""

    agent: str  # "googlebot" when a group names it, "*" otherwise, "" when neither exists
    blocks_all: bool
    sitemaps: tuple[str, ...]


def parse_robots(text: str) -> RobotsRules:
    """Groups of ``User-agent`` lines and their rules; Googlebot obeys its own group when there
    is one and the ``*`` group otherwise. It is blocked from everything when that group has
    ``Disallow: /`` (or ``/*``) and no ``Allow`` for the root. ``Sitemap`` lines stand anywhere."""
    groups: dict[str, list[tuple[str, str]]] = {}
    agents: list[str] = []
    in_rules = False
    sitemaps: list[str] = []
    for raw in text.splitlines():
        field, sep, value = raw.split("#", 1)[0].partition(":")
        field, value = field.strip().lower(), value.strip()
        if not sep:
            continue
        if field == "sitemap" and value:
            sitemaps.append(value)
        elif field == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
            for agent in agents:
                groups.setdefault(agent, [])
        elif field in ("allow", "disallow"):
            in_rules = True
            for agent in agents:
                groups[agent].append((field, value))
    agent = GOOGLEBOT if GOOGLEBOT in groups else "*" if "*" in groups else ""
    rules = groups.get(agent, [])
    blocked = any(field == "disallow" and path in ("/", "/*") for field, path in rules)
    allowed = any(field == "allow" and path in ("/", "/*", "/$") for field, path in rules)
    return RobotsRules(agent, blocked and not allowed, tuple(sitemaps))


@dataclass(frozen=True)
class OnPageEvidence:
    url: str  # the home page as finally answered, after redirects
    status_code: int
    page: PageFacts
    robots: Probe
    sitemap: Probe
    sitemap_source: str  # "robots.txt" (declared there) or "default" (/sitemap.xml)
    x_robots_tag: tuple[str, ...] = ()


async def probe(client: SafeClient, url: str) -> Probe:
    """GET a side file; no answer is a finding, not a failure."""
    try:
        response = await client.get(url)
    except FetchError as exc:
        return Probe(url, error=str(exc))
    return Probe(
        response.url, response.status_code, response.headers.get("content-type", ""), response.text
    )


async def collect_onpage(url: str, client: SafeClient) -> OnPageEvidence:
    """The home page (its failure is the assessment's), then robots.txt and the sitemap it
    names, or ``/sitemap.xml``."""
    response = (await client.get(url, headers=HTML_HEADERS)).raise_for_status()
    parts = urlsplit(response.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    robots = await probe(client, f"{origin}/robots.txt")
    declared = parse_robots(robots.text).sitemaps if robots.found else ()
    sitemap_url = urljoin(robots.url, declared[0]) if declared else f"{origin}/sitemap.xml"
    return OnPageEvidence(
        url=response.url,
        status_code=response.status_code,
        page=parse_page(response.text),
        robots=robots,
        sitemap=await probe(client, sitemap_url),
        sitemap_source="robots.txt" if declared else "default",
        x_robots_tag=tuple(response.headers.get_list("x-robots-tag")),
    )


# --- On-page audit: judge, pure ------------------------------------------------------------------


class Result(StrEnum):
    TITLE_OK = "title-ok"
    TITLE_MISSING = "title-missing"
    TITLE_TOO_SHORT = "title-too-short"
    TITLE_TOO_LONG = "title-too-long"
    DESCRIPTION_OK = "meta-description-ok"
    DESCRIPTION_MISSING = "meta-description-missing"
    DESCRIPTION_TOO_SHORT = "meta-description-too-short"
    DESCRIPTION_TOO_LONG = "meta-description-too-long"
    H1_ONE = "h1-one"
    H1_MISSING = "h1-missing"
    H1_MULTIPLE = "h1-multiple"
    CANONICAL_OK = "canonical-ok"
    CANONICAL_MISSING = "canonical-missing"
    CANONICAL_CONFLICTING = "canonical-conflicting"
    LANG_SET = "lang-set"
    LANG_MISSING = "lang-missing"
    ROBOTS_OK = "robots-txt-ok"
    ROBOTS_MISSING = "robots-txt-missing"
    ROBOTS_BLOCKS_ALL = "robots-txt-blocks-all"
    SITEMAP_FOUND = "sitemap-found"
    SITEMAP_MISSING = "sitemap-missing"
    INDEXABLE = "indexable"
    NOINDEX = "noindex"
    STRUCTURED_DATA_FOUND = "structured-data-found"
    STRUCTURED_DATA_MISSING = "structured-data-missing"
    STRUCTURED_DATA_INVALID = "structured-data-invalid"
    ALT_TEXT_COMPLETE = "image-alt-complete"
    ALT_TEXT_PARTIAL = "image-alt-partial"
    ALT_TEXT_MISSING = "image-alt-missing"
    OPEN_GRAPH_OK = "open-graph-ok"
    OPEN_GRAPH_PARTIAL = "open-graph-partial"
    OPEN_GRAPH_MISSING = "open-graph-missing"
    INTERNAL_LINKS_OK = "internal-links-ok"
    INTERNAL_LINKS_FEW = "internal-links-few"
    INTERNAL_LINKS_NONE = "internal-links-none"
    HTTPS = "https"
    HTTP_ONLY = "http-only"


R = Result

SCORE_TABLE: dict[Result, Score] = {
    R.TITLE_OK: Score(True, 0, "The page has a title of a length Google shows whole."),
    R.TITLE_MISSING: Score(
        False,
        -20,
        "The page has no title.",
        "Give the home page a <title> naming the business, what it does and where, in 10 to 60 "
        "characters: it is the blue link in Google's results.",
    ),
    R.TITLE_TOO_SHORT: Score(
        False,
        -5,
        "The title is too short to say what the business does.",
        "Write a title of 10 to 60 characters with the business's name, service and town.",
    ),
    R.TITLE_TOO_LONG: Score(
        False,
        -5,
        "The title is longer than Google shows.",
        "Shorten the title to 60 characters or fewer, most important words first.",
    ),
    R.DESCRIPTION_OK: Score(True, 0, "The page has a meta description of a good length."),
    R.DESCRIPTION_MISSING: Score(
        False,
        -15,
        "The page has no meta description.",
        'Add <meta name="description"> of 50 to 160 characters: Google often shows it under '
        "the title, and it is what makes people click.",
    ),
    R.DESCRIPTION_TOO_SHORT: Score(
        False,
        -5,
        "The meta description is too short to sell the click.",
        "Write 50 to 160 characters: the service, the town and a reason to call.",
    ),
    R.DESCRIPTION_TOO_LONG: Score(
        False,
        -5,
        "The meta description is longer than Google shows.",
        "Cut the description to 160 characters or fewer.",
    ),
    R.H1_ONE: Score(True, 0, "The page has exactly one main heading (h1)."),
    R.H1_MISSING: Score(
        False,
        -10,
        "The page has no main heading (h1).",
        "Add one <h1> that says what the business offers; search engines read it as the topic.",
    ),
    R.H1_MULTIPLE: Score(
        False,
        -5,
        "The page has more than one main heading (h1).",
        "Keep one <h1> for the page's topic and make the others <h2>.",
    ),
    R.CANONICAL_OK: Score(True, 0, "The page names its canonical URL."),
    R.CANONICAL_MISSING: Score(
        False,
        -5,
        "The page does not name its canonical URL.",
        'Add <link rel="canonical"> with the page\'s preferred address, so the http/https and '
        "www variants count as one page.",
    ),
    R.CANONICAL_CONFLICTING: Score(
        False,
        -5,
        "The page names more than one canonical URL.",
        'Keep a single <link rel="canonical">; with several, Google ignores them all.',
    ),
    R.LANG_SET: Score(True, 0, "The page declares its language."),
    R.LANG_MISSING: Score(
        False,
        -5,
        "The page does not declare its language.",
        'Add lang="en" (or the page\'s language) to the <html> tag.',
    ),
    R.ROBOTS_OK: Score(True, 0, "robots.txt lets search engines in."),
    R.ROBOTS_MISSING: Score(
        False,
        -5,
        "The site has no robots.txt.",
        "Publish a /robots.txt that allows crawling and names the sitemap.",
    ),
    R.ROBOTS_BLOCKS_ALL: Score(
        False,
        -30,
        "robots.txt forbids search engines to crawl the site.",
        'Remove "Disallow: /" for all user agents from robots.txt (often left over from the '
        "site's development).",
    ),
    R.SITEMAP_FOUND: Score(True, 0, "The site has an XML sitemap."),
    R.SITEMAP_MISSING: Score(
        False,
        -5,
        "The site has no XML sitemap.",
        "Publish /sitemap.xml listing every page, name it in robots.txt and submit it in Google "
        "Search Console.",
    ),
    R.INDEXABLE: Score(True, 0, "Search engines may list the page."),
    R.NOINDEX: Score(
        False,
        -40,
        "The home page tells search engines not to list it (noindex).",
        'Remove "noindex" from the robots meta tag or the X-Robots-Tag header.',
    ),
    R.STRUCTURED_DATA_FOUND: Score(True, 0, "The page describes the business as structured data."),
    R.STRUCTURED_DATA_MISSING: Score(
        False,
        -10,
        "The page has no structured data.",
        "Add schema.org LocalBusiness markup (JSON-LD) with name, address, phone and opening "
        "hours: it feeds Google's business panels and rich results.",
    ),
    R.STRUCTURED_DATA_INVALID: Score(
        False,
        -10,
        "The page's structured data is not valid JSON.",
        "Fix the JSON-LD blocks (Google's Rich Results Test shows where); broken ones are ignored.",
    ),
    R.ALT_TEXT_COMPLETE: Score(True, 0, "Every image has alternative text."),
    R.ALT_TEXT_PARTIAL: Score(
        False,
        -5,
        "Some images have no alternative text.",
        'Describe every meaningful image in its alt attribute (alt="" for decoration).',
    ),
    R.ALT_TEXT_MISSING: Score(
        False,
        -10,
        "Most images have no alternative text.",
        "Describe every meaningful image in its alt attribute: image search and screen readers "
        "depend on it.",
    ),
    R.OPEN_GRAPH_OK: Score(
        True, 0, "Links to the page get a title and description on social media."
    ),
    R.OPEN_GRAPH_PARTIAL: Score(
        False,
        -3,
        "The Open Graph tags are incomplete.",
        "Add og:title, og:description and og:image so shared links show a proper preview.",
    ),
    R.OPEN_GRAPH_MISSING: Score(
        False,
        -5,
        "The page has no Open Graph tags.",
        "Add og:title, og:description and og:image so links shared on social media and in "
        "messengers show a proper preview.",
    ),
    R.INTERNAL_LINKS_OK: Score(True, 0, "The home page links to the site's other pages."),
    R.INTERNAL_LINKS_FEW: Score(
        False,
        -3,
        "The home page links to few other pages of the site.",
        "Link the home page to a page per service, the contact page and the about page.",
    ),
    R.INTERNAL_LINKS_NONE: Score(
        False,
        -5,
        "The home page links to no other page of the site.",
        "Give each service a page of its own and link to them from the home page: one page can "
        "rank for only so many searches.",
    ),
    R.HTTPS: Score(True, 0, "The page is served over HTTPS."),
    R.HTTP_ONLY: Score(
        False,
        -15,
        "The page is served over plain HTTP.",
        "Serve the site over HTTPS and redirect http:// to it: Google prefers secure pages and "
        'Chrome labels plain HTTP "Not secure".',
    ),
}
OnPageOutcome = Outcome[Result]


def check_title(evidence: OnPageEvidence) -> OnPageOutcome:
    title = evidence.page.title
    if not title:
        detail = "No <title> tag." if title is None else "The <title> tag is empty."
        return Outcome(R.TITLE_MISSING, detail, {"title": title, "length": 0})
    data = {"title": title, "length": len(title)}
    shortest, longest = TITLE_LENGTH
    if len(title) < shortest:
        return Outcome(R.TITLE_TOO_SHORT, f"{title!r} has {len(title)} characters.", data)
    if len(title) > longest:
        return Outcome(R.TITLE_TOO_LONG, f"{title!r} has {len(title)} characters.", data)
    return Outcome(R.TITLE_OK, title, data)


def check_description(evidence: OnPageEvidence) -> OnPageOutcome:
    description = " ".join((evidence.page.meta("description") or "").split())
    data = {"description": description or None, "length": len(description)}
    shortest, longest = DESCRIPTION_LENGTH
    if not description:
        return Outcome(R.DESCRIPTION_MISSING, 'No <meta name="description"> with content.', data)
    if len(description) < shortest:
        return Outcome(R.DESCRIPTION_TOO_SHORT, f"{len(description)} characters.", data)
    if len(description) > longest:
        return Outcome(R.DESCRIPTION_TOO_LONG, f"{len(description)} characters.", data)
    return Outcome(R.DESCRIPTION_OK, description, data)


def check_h1(evidence: OnPageEvidence) -> OnPageOutcome:
    h1 = evidence.page.headings.get(1, [])
    if not h1:
        return Outcome(R.H1_MISSING, "No <h1> on the page.", h1)
    if len(h1) > 1:
        return Outcome(R.H1_MULTIPLE, f"{len(h1)} <h1> headings: " + " | ".join(h1), h1)
    return Outcome(R.H1_ONE, h1[0], h1)


def check_canonical(evidence: OnPageEvidence) -> OnPageOutcome:
    hrefs = list(dict.fromkeys(h.strip() for h in evidence.page.link_hrefs("canonical")))
    hrefs = [href for href in hrefs if href]
    if not hrefs:
        return Outcome(R.CANONICAL_MISSING, 'No <link rel="canonical">.', hrefs)
    if len(hrefs) > 1:
        return Outcome(R.CANONICAL_CONFLICTING, ", ".join(hrefs), hrefs)
    return Outcome(R.CANONICAL_OK, hrefs[0], hrefs)


def check_lang(evidence: OnPageEvidence) -> OnPageOutcome:
    if not evidence.page.lang:
        return Outcome(R.LANG_MISSING, "No lang attribute on <html>.", None)
    return Outcome(R.LANG_SET, evidence.page.lang, evidence.page.lang)


def check_robots(evidence: OnPageEvidence) -> OnPageOutcome:
    robots = evidence.robots
    data = robots.summary()
    if not robots.found:
        said = robots.error or f"HTTP {robots.status_code} ({robots.content_type or 'no type'})"
        return Outcome(R.ROBOTS_MISSING, f"{robots.url}: {said}", data)
    rules = parse_robots(robots.text)
    data |= {"agent": rules.agent, "blocks_all": rules.blocks_all, "sitemaps": list(rules.sitemaps)}
    if rules.blocks_all:
        return Outcome(R.ROBOTS_BLOCKS_ALL, f"Disallow: / for user agent {rules.agent}", data)
    return Outcome(R.ROBOTS_OK, robots.url, data)


def check_sitemap(evidence: OnPageEvidence) -> OnPageOutcome:
    sitemap = evidence.sitemap
    data = sitemap.summary() | {"source": evidence.sitemap_source}
    start = sitemap.text[:2000].lower()
    listed = "<urlset" in start or "<sitemapindex" in start
    if sitemap.found and (listed or sitemap.content_type.lower().startswith("text/plain")):
        return Outcome(R.SITEMAP_FOUND, sitemap.url, data)
    said = sitemap.error or f"HTTP {sitemap.status_code}, no <urlset> or <sitemapindex>"
    return Outcome(R.SITEMAP_MISSING, f"{sitemap.url}: {said}", data)


def _directives(value: str) -> set[str]:
    """``noindex, nofollow`` or ``googlebot: noindex``: the words, lower-cased. Directives for
    any named crawler count, which errs towards telling the lead."""
    return set(re.findall(r"[a-z_-]+", value.lower()))


def check_indexing(evidence: OnPageEvidence) -> OnPageOutcome:
    sources = {f"meta {name}": evidence.page.meta(name) or "" for name in ("robots", GOOGLEBOT)} | {
        "X-Robots-Tag": ", ".join(evidence.x_robots_tag)
    }
    blocking = {where: value for where, value in sources.items() if _directives(value) & NOINDEX}
    if blocking:
        return Outcome(R.NOINDEX, "; ".join(f"{k}: {v}" for k, v in blocking.items()), blocking)
    return Outcome(R.INDEXABLE, "", None)


def json_ld_types(blocks: Iterable[Any]) -> list[str]:
    """``@type`` of each JSON-LD item, ``@graph`` members included, in order."""
    types: list[str] = []
    for block in blocks:
        items = block if isinstance(block, list) else [block]
        for item in items:
            if not isinstance(item, dict):
                continue
            graph = item.get("@graph")
            members = graph if isinstance(graph, list) else [item]
            for member in members:
                kind = member.get("@type") if isinstance(member, dict) else None
                kinds = kind if isinstance(kind, list) else [kind]
                types.extend(str(k) for k in kinds if k)
    return types


def check_structured_data(evidence: OnPageEvidence) -> OnPageOutcome:
    page = evidence.page
    types = json_ld_types(page.json_ld) + page.microdata_types
    data = {
        "types": types,
        "json_ld_blocks": len(page.json_ld),
        "json_ld_errors": page.json_ld_errors,
    }
    if page.json_ld_errors:
        detail = f"{page.json_ld_errors} JSON-LD block(s) are not valid JSON."
        return Outcome(R.STRUCTURED_DATA_INVALID, detail, data)
    if not page.json_ld and not page.microdata_types:
        return Outcome(R.STRUCTURED_DATA_MISSING, "No JSON-LD and no microdata.", data)
    return Outcome(R.STRUCTURED_DATA_FOUND, ", ".join(types) or "JSON-LD without @type", data)


def check_image_alt(evidence: OnPageEvidence) -> OnPageOutcome:
    images = evidence.page.images
    without = [image.get("src", "") for image in images if "alt" not in image]
    data = {"images": len(images), "without_alt": without}
    if not without:
        return Outcome(R.ALT_TEXT_COMPLETE, f"{len(images)} image(s).", data)
    detail = f"{len(without)} of {len(images)} image(s) without alt: " + ", ".join(without)
    share = 1 - len(without) / len(images)
    return Outcome(R.ALT_TEXT_PARTIAL if share >= ALT_PARTIAL else R.ALT_TEXT_MISSING, detail, data)


def check_open_graph(evidence: OnPageEvidence) -> OnPageOutcome:
    present = [tag for tag in OPEN_GRAPH_TAGS if (evidence.page.meta(tag) or "").strip()]
    if all(tag in present for tag in OPEN_GRAPH_NEEDED):
        return Outcome(R.OPEN_GRAPH_OK, ", ".join(present), present)
    if present:
        missing = [tag for tag in OPEN_GRAPH_NEEDED if tag not in present]
        return Outcome(R.OPEN_GRAPH_PARTIAL, "Missing: " + ", ".join(missing), present)
    return Outcome(R.OPEN_GRAPH_MISSING, "No og: meta tags.", present)


def _site_host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def internal_links(evidence: OnPageEvidence) -> list[str]:
    """Distinct pages of the same site the page links to: itself and anchors within it aside."""
    page_url = urldefrag(evidence.url).url
    found: dict[str, None] = {}
    for anchor in evidence.page.anchors:  # "" and "#top" resolve to the page itself
        target = urldefrag(urljoin(evidence.url, anchor.href)).url
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or target == page_url:
            continue
        if _site_host(target) == _site_host(evidence.url):
            found[target] = None
    return list(found)


def check_internal_links(evidence: OnPageEvidence) -> OnPageOutcome:
    links = internal_links(evidence)
    data = {"count": len(links), "links": links[:20]}
    if not links:
        return Outcome(R.INTERNAL_LINKS_NONE, "No links to other pages of the site.", data)
    if len(links) < FEW_INTERNAL_LINKS:
        return Outcome(R.INTERNAL_LINKS_FEW, ", ".join(links), data)
    return Outcome(R.INTERNAL_LINKS_OK, f"{len(links)} pages linked.", data)


def check_https(evidence: OnPageEvidence) -> OnPageOutcome:
    if urlsplit(evidence.url).scheme == "https":
        return Outcome(R.HTTPS, evidence.url, True)
    return Outcome(R.HTTP_ONLY, evidence.url, False)


OnPageCheck = Check[OnPageEvidence, Result]
CHECKS: tuple[OnPageCheck, ...] = (
    Check(
        "title",
        "Title",
        check_title,
        (R.TITLE_OK, R.TITLE_MISSING, R.TITLE_TOO_SHORT, R.TITLE_TOO_LONG),
    ),
    Check(
        "meta_description",
        "Meta description",
        check_description,
        (R.DESCRIPTION_OK, R.DESCRIPTION_MISSING, R.DESCRIPTION_TOO_SHORT, R.DESCRIPTION_TOO_LONG),
    ),
    Check("h1", "Main heading", check_h1, (R.H1_ONE, R.H1_MISSING, R.H1_MULTIPLE)),
    Check(
        "canonical",
        "Canonical URL",
        check_canonical,
        (R.CANONICAL_OK, R.CANONICAL_MISSING, R.CANONICAL_CONFLICTING),
    ),
    Check("lang", "Language", check_lang, (R.LANG_SET, R.LANG_MISSING)),
    Check(
        "robots_txt",
        "robots.txt",
        check_robots,
        (R.ROBOTS_OK, R.ROBOTS_MISSING, R.ROBOTS_BLOCKS_ALL),
    ),
    Check("sitemap", "Sitemap", check_sitemap, (R.SITEMAP_FOUND, R.SITEMAP_MISSING)),
    Check("indexing", "Indexing", check_indexing, (R.INDEXABLE, R.NOINDEX)),
    Check(
        "structured_data",
        "Structured data",
        check_structured_data,
        (R.STRUCTURED_DATA_FOUND, R.STRUCTURED_DATA_MISSING, R.STRUCTURED_DATA_INVALID),
    ),
    Check(
        "image_alt",
        "Image alt text",
        check_image_alt,
        (R.ALT_TEXT_COMPLETE, R.ALT_TEXT_PARTIAL, R.ALT_TEXT_MISSING),
    ),
    Check(
        "open_graph",
        "Open Graph",
        check_open_graph,
        (R.OPEN_GRAPH_OK, R.OPEN_GRAPH_PARTIAL, R.OPEN_GRAPH_MISSING),
    ),
    Check(
        "internal_links",
        "Internal links",
        check_internal_links,
        (R.INTERNAL_LINKS_OK, R.INTERNAL_LINKS_FEW, R.INTERNAL_LINKS_NONE),
    ),
    Check("https", "HTTPS", check_https, (R.HTTPS, R.HTTP_ONLY)),
)


def judge_onpage(evidence: OnPageEvidence) -> AssessmentResult:
    """Grade the home page's on-page SEO; pure."""
    judgement = judge_checks(CHECKS, evidence, SCORE_TABLE)
    score = judgement.score()
    grade = grade_for(score)
    return AssessmentResult(
        assessment="semrush",
        status="completed",
        source="onpage",
        score=score,
        grade=grade,
        summary=judgement.summary(f"On-page SEO grade {grade} ({score}/100)"),
        findings=judgement.findings(),
        data={
            "url": evidence.url,
            "status_code": evidence.status_code,
            "checks": judgement.entries(),
        },
        algorithm_version=ONPAGE_ALGORITHM_VERSION,
    )


# --- The task ------------------------------------------------------------------------------------


async def assess(lead: LeadRecord) -> AssessmentResult:
    """The task body: SEMrush when a key is set, the on-page audit otherwise. Errors propagate so
    the registry's retry condition reads their ``retryable``."""
    started = time.monotonic()
    settings = get_settings()
    key = settings.semrush_api_key
    if key is not None and key.get_secret_value():
        async with SemrushClient.from_settings(settings, key) as client:
            result = judge_semrush(await client.overview(search_domain(lead.website)))
    else:
        url = lead_url(lead.website)
        async with SafeClient.from_settings(settings) as safe:
            result = judge_onpage(await collect_onpage(url, safe))
    return result.model_copy(update={"duration_ms": int((time.monotonic() - started) * 1000)})


semrush_task = assessment_task("semrush")(assess)
