"""The semrush assessment: SEMrush's client against a local server speaking its wire format, the
curves it is scored on, every on-page result code from pure evidence, the score table, collect on
loopback sites and the demo sites.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from leadshop import errors
from leadshop.config import get_settings
from leadshop.demo.sites import DemoSites
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.pages import parse_page
from leadshop.scoring import grade_for
from tasks.registry import RETRIES, TIMEOUT_SECONDS, is_transient, resolve
from tasks.semrush import (
    BACKLINKS_OVERVIEW,
    CHECKS,
    DOMAIN_RANK,
    METRICS,
    NO_PRESENCE,
    ONPAGE_ALGORITHM_VERSION,
    SCORE_TABLE,
    OnPageEvidence,
    Probe,
    Result,
    SemrushClient,
    SemrushError,
    SemrushOverview,
    assess,
    internal_links,
    json_ld_types,
    judge_onpage,
    judge_semrush,
    metric_score,
    parse_robots,
    read_report,
    search_domain,
    semrush_task,
)
from tests import score_tables
from tests.sites import Reply, Site, serve

R = Result
FIXTURES = Path(__file__).parent.parent / "fixtures" / "semrush"
KEY = "semrush-test-key-5d41402abc4b2a76"
TEXT = {"Content-Type": "text/html; charset=UTF-8"}
DOMAIN_RANK_CSV = (FIXTURES / "domain_rank.csv").read_bytes()
BACKLINKS_CSV = (FIXTURES / "backlinks_overview.csv").read_bytes()
RECORDED_DOMAIN_RANK = {
    "domain": "harborviewdental.example",
    "rank": 1843920,
    "organic_keywords": 212,
    "organic_traffic": 386,
    "organic_cost": 1154,
    "adwords_keywords": 0,
    "adwords_traffic": 0,
    "adwords_cost": 0,
}
RECORDED_BACKLINKS = {
    "authority_score": 14,
    "backlinks": 1288,
    "referring_domains": 97,
    "referring_urls": 842,
    "referring_ips": 91,
    "referring_subnets": 84,
    "follow_links": 903,
    "nofollow_links": 385,
}
RECORDED_SCORE, RECORDED_GRADE = 66, "B-"
LEAD = LeadRecord(
    id=3, name="Harborview Family Dental", website="https://www.harborviewdental.example/"
)


def answer(body: bytes | str, status: int = 200) -> Reply:
    return Reply(status, body.encode() if isinstance(body, str) else body, TEXT)


def semrush_routes(rank: list[Reply], backlinks: list[Reply]) -> dict[str, list[Reply]]:
    return {DOMAIN_RANK.path: rank, BACKLINKS_OVERVIEW.path: backlinks}


RECORDED = semrush_routes([answer(DOMAIN_RANK_CSV)], [answer(BACKLINKS_CSV)])


@pytest.fixture
def semrush_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Site], None]]:
    """Point the assessment at a local SEMrush with the test key."""

    def configure(site: Site) -> None:
        monkeypatch.setenv("LEADSHOP_SEMRUSH_API_KEY", KEY)
        monkeypatch.setenv("LEADSHOP_SEMRUSH_API_URL", site.url("").rstrip("/"))
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


def queries(site: Site) -> list[tuple[str, dict[str, str]]]:
    """Every request SEMrush received: path and query parameters."""
    found = []
    for request in site.requests:
        parts = urlsplit(request.target)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        assert len(pairs) == len(dict(pairs)), f"a parameter is repeated: {pairs}"
        found.append((parts.path, dict(pairs)))
    return found


def assert_key_absent(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


def failure_texts(error: BaseException, caplog: pytest.LogCaptureFixture) -> tuple[str, ...]:
    """Everywhere an error's words end up: its message, a traceback, the stored envelope, logs."""
    envelope = AssessmentResult.failure("semrush", error).model_dump_json()
    return str(error), "".join(traceback.format_exception(error)), envelope, caplog.text


# --- SEMrush, against a local server speaking its wire format ------------------------------------


async def test_request_and_envelope_from_recorded_answers(
    semrush_settings: Callable[[Site], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve(RECORDED) as site:
        semrush_settings(site)
        result = await assess(LEAD)

    assert queries(site) == [
        (
            "/",
            {
                "type": "domain_rank",
                "domain": "harborviewdental.example",
                "database": "us",
                "export_columns": "Dn,Rk,Or,Ot,Oc,Ad,At,Ac",
                "key": KEY,
            },
        ),
        (
            "/analytics/v1/",
            {
                "type": "backlinks_overview",
                "target": "harborviewdental.example",
                "target_type": "root_domain",
                "export_columns": "ascore,total,domains_num,urls_num,ips_num,ipclassc_num,"
                "follows_num,nofollows_num",
                "key": KEY,
            },
        ),
    ]
    assert all(request.method == "GET" for request in site.requests)
    assert (result.assessment, result.status, result.source) == ("semrush", "completed", "semrush")
    assert (result.score, result.grade) == (RECORDED_SCORE, RECORDED_GRADE)
    assert result.data["domain"] == "harborviewdental.example"
    assert result.data["database"] == "us"
    assert result.data["domain_rank"] == RECORDED_DOMAIN_RANK
    assert result.data["backlinks"] == RECORDED_BACKLINKS
    assert [finding.id for finding in result.findings] == [
        "semrush-low-authority",
        "semrush-few-keywords",
        "semrush-little-traffic",
    ]
    assert [finding.severity for finding in result.findings] == ["medium", "low", "low"]
    assert result.summary.startswith(f"SEO grade {RECORDED_GRADE} ({RECORDED_SCORE}/100)")
    assert "Authority Score 14, 212 keywords" in result.summary
    assert result.duration_ms >= 0 and result.algorithm_version == "semrush/1"
    assert_key_absent(result.model_dump_json(), caplog.text)


async def test_the_database_setting_is_asked_for(
    semrush_settings: Callable[[Site], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(RECORDED) as site:
        semrush_settings(site)
        monkeypatch.setenv("LEADSHOP_SEMRUSH_DATABASE", "uk")
        get_settings.cache_clear()
        result = await assess(LEAD)
    (_, rank), (_, backlinks) = queries(site)
    assert rank["database"] == "uk" and "database" not in backlinks  # backlinks are not regional
    assert result.data["database"] == "uk"


async def test_nothing_found_is_no_search_presence_not_a_failure(
    semrush_settings: Callable[[Site], None],
) -> None:
    nothing = [answer("ERROR 50 :: NOTHING FOUND")]
    with serve(semrush_routes(nothing, nothing)) as site:
        semrush_settings(site)
        result = await assess(LEAD)
    assert (result.status, result.score, result.grade) == ("completed", 0, "F")
    assert [(finding.id, finding.severity) for finding in result.findings] == [
        (NO_PRESENCE, "high")
    ]
    assert "no search data for harborviewdental.example" in result.summary
    assert result.data["domain_rank"] is None and result.data["backlinks"] is None
    assert result.error is None


async def test_nothing_found_for_one_report_counts_its_numbers_as_zero(
    semrush_settings: Callable[[Site], None],
) -> None:
    with serve(
        semrush_routes([answer("ERROR 50 :: NOTHING FOUND")], [answer(BACKLINKS_CSV)])
    ) as site:
        semrush_settings(site)
        result = await assess(LEAD)
    assert result.data["domain_rank"] is None
    assert result.data["backlinks"] == RECORDED_BACKLINKS
    (curve,) = (metric for metric in METRICS if metric.key == "authority_score")
    authority = metric_score(14, curve.median, curve.good)
    assert result.score == round(100 * 0.4 * authority)
    assert [(finding.id, finding.severity) for finding in result.findings] == [
        ("semrush-few-keywords", "high"),  # the worst first
        ("semrush-little-traffic", "high"),
        ("semrush-low-authority", "medium"),
    ]


# SEMrush's own words, as it sends them, and what our message must then tell the operator.
ERROR_CASES: dict[str, tuple[Reply, int | None, str]] = {
    "120 wrong key": (answer("ERROR 120 :: WRONG KEY - ID PAIR"), 120, "LEADSHOP_SEMRUSH_API_KEY"),
    "121 empty hash": (answer("ERROR 121 :: WRONG FORMAT OR EMPTY HASH"), 121, "copy the key"),
    "122 empty key": (answer("ERROR 122 :: WRONG FORMAT OR EMPTY KEY"), 122, "copy the key"),
    "70 key hash failure": (answer("ERROR 70 :: API KEY HASH FAILURE"), 70, "copy the key"),
    "130 api disabled": (answer("ERROR 130 :: API DISABLED"), 130, "Business plan"),
    "131 limit exceeded": (answer("ERROR 131 :: LIMIT EXCEEDED"), 131, "limit to reset"),
    "132 no units": (answer("ERROR 132 :: API UNITS BALANCE IS ZERO"), 132, "buy units"),
    "132 no units over 403": (
        answer("ERROR 132 :: API UNITS BALANCE IS ZERO", 403),
        132,
        "buy units",
    ),
    "133 database denied": (answer("ERROR 133 :: DB ACCESS DENIED"), 133, "database us"),
    "134 total limit": (answer("ERROR 134 :: TOTAL LIMIT EXCEEDED"), 134, "total API limit"),
    "135 report type disabled": (
        answer("ERROR 135 :: API REPORT TYPE DISABLED"),
        135,
        "not in the subscription",
    ),
    "42 no domain": (
        answer('ERROR 42 :: MANDATORY PARAMETER "domain" NOT SET OR EMPTY'),
        42,
        "lead's website",
    ),
    "an unlisted code": (answer("ERROR 999 :: SOMETHING NEW"), 999, "developer.semrush.com"),
    "empty answer": (answer(b""), None, "empty body"),
    "wrong columns": (
        answer("Keyword;Search Volume;CPC\r\ndentist portland;2900;12.5\r\n"),
        None,
        "without the columns Dn, Rk, Or, Ot, Oc, Ad, At, Ac",
    ),
    "an html page": (
        answer("<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"),
        None,
        "without the columns",
    ),
    "a row shorter than its header": (
        answer(DOMAIN_RANK_CSV.replace(b";0;0;0\r\n", b"\r\n")),
        None,
        "rows that do not match",
    ),
    "a word for a number": (
        answer(DOMAIN_RANK_CSV.replace(b";212;", b";n/a;")),
        None,
        "'n/a' for Or",
    ),
    "404": (answer("Not Found", 404), None, "HTTP 404"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_refusals_and_unreadable_answers_fail_without_retry(
    case: str, semrush_settings: Callable[[Site], None], caplog: pytest.LogCaptureFixture
) -> None:
    reply, code, advice = ERROR_CASES[case]
    caplog.set_level(logging.DEBUG)
    with serve(semrush_routes([reply], [answer(BACKLINKS_CSV)])) as site:
        semrush_settings(site)
        with pytest.raises(SemrushError) as caught:
            await assess(LEAD)

    error = caught.value
    assert error.code == code
    assert error.status_code == reply.status
    assert not error.retryable and not is_transient(error)
    assert advice in str(error)
    if code is not None:
        assert f"SEMrush domain_rank refused the request: ERROR {code} ::" in str(error)
    assert [path for path, _ in queries(site)] == ["/"]  # backlinks are not asked for after it
    assert queries(site)[0][1]["key"] == KEY
    assert_key_absent(*failure_texts(error, caplog))


async def test_an_echoed_key_is_redacted(semrush_settings: Callable[[Site], None]) -> None:
    echo = answer(f"ERROR 120 :: WRONG KEY - ID PAIR key={KEY}")
    with serve(semrush_routes([echo], [echo])) as site:
        semrush_settings(site)
        with pytest.raises(SemrushError) as caught:
            await assess(LEAD)
    assert "key=***" in str(caught.value)
    assert_key_absent(str(caught.value))


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (answer("Too Many Requests", 429), 429),
        (answer("<html><body><h1>500 Internal Server Error</h1></body></html>", 500), 500),
        (answer("Bad Gateway", 502), 502),
        (answer("ERROR 131 :: LIMIT EXCEEDED", 503), 503),  # the status decides first
    ],
    ids=["429", "500", "502", "503 with an ERROR line"],
)
async def test_rate_limits_and_server_errors_are_retried(
    reply: Reply, status: int, semrush_settings: Callable[[Site], None]
) -> None:
    with serve(semrush_routes([answer(DOMAIN_RANK_CSV)], [reply])) as site:
        semrush_settings(site)
        with pytest.raises(SemrushError) as caught:
            await assess(LEAD)
    assert caught.value.retryable and is_transient(caught.value)
    assert caught.value.status_code == status
    assert f"SEMrush backlinks_overview answered HTTP {status}" in str(caught.value)
    assert_key_absent(str(caught.value))


PREFECT_LOG_WARNING = "ignore:Logger 'prefect.task_runs' attempted to send logs"


@pytest.mark.filterwarnings(PREFECT_LOG_WARNING)
async def test_429_then_success_through_the_task_retry_policy(
    prefect_api: str, semrush_settings: Callable[[Site], None]
) -> None:
    rank = [answer("Too Many Requests", 429), answer(DOMAIN_RANK_CSV)]
    with serve(semrush_routes(rank, [answer(BACKLINKS_CSV)])) as site:
        semrush_settings(site)
        result = await semrush_task.with_options(retry_delay_seconds=0)(LEAD)
    assert (result.score, result.grade) == (RECORDED_SCORE, RECORDED_GRADE)
    assert site.hits == {"/": 2, "/analytics/v1/": 1}


@pytest.mark.filterwarnings(PREFECT_LOG_WARNING)
async def test_a_refused_key_is_asked_once_through_the_task(
    prefect_api: str, semrush_settings: Callable[[Site], None]
) -> None:
    refused = [answer("ERROR 132 :: API UNITS BALANCE IS ZERO")]
    with serve(semrush_routes(refused, refused)) as site:
        semrush_settings(site)
        with pytest.raises(SemrushError):
            await semrush_task.with_options(retry_delay_seconds=0)(LEAD)
    assert site.hits == {"/": 1}


async def test_no_answer_is_retried_and_never_shows_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    slow = Reply(200, DOMAIN_RANK_CSV, TEXT, delay=2)
    with serve(semrush_routes([slow], [slow])) as site:
        client = SemrushClient(site.url(""), SecretStr(KEY), timeout=httpx.Timeout(0.5))
        async with client:
            with pytest.raises(SemrushError, match="did not answer in time") as timed_out:
                await client.overview("harborviewdental.example")
        closed = site.url("")  # nothing listens there once the server stops
    async with SemrushClient(closed, SecretStr(KEY)) as client:
        with pytest.raises(SemrushError, match="could not be reached") as refused:
            await client.overview("harborviewdental.example")
    for caught in (timed_out, refused):
        assert caught.value.retryable and caught.value.status_code is None
        assert_key_absent(*failure_texts(caught.value, caplog))


def test_read_report_accepts_codes_as_headers_and_a_header_alone_as_no_data() -> None:
    def read(body: str) -> Any:
        return read_report(DOMAIN_RANK, httpx.Response(200, text=body), "us")

    coded = "\ufeffDn;Rk;Or;Ot;Oc;Ad;At;Ac\nexample.com;1;2;3;4.5;;0;0\n"
    assert read(coded) == {
        "domain": "example.com",
        "rank": 1,
        "organic_keywords": 2,
        "organic_traffic": 3,
        "organic_cost": 4.5,
        "adwords_keywords": None,
        "adwords_traffic": 0,
        "adwords_cost": 0,
    }
    assert read(DOMAIN_RANK_CSV.decode().split("\r\n")[0]) is None


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("https://www.harborviewdental.example/", "harborviewdental.example"),
        ("harborviewdental.example", "harborviewdental.example"),
        ("http://book.harborviewdental.example/x?y=1", "harborviewdental.example"),
        ("https://WWW.Bakery.co.uk", "bakery.co.uk"),
        ("http://localhost:8080/", "localhost"),
        ("http://127.0.0.1:8080/", "127.0.0.1"),
        ("https://bäckerei.example/", "xn--bckerei-5wa.example"),
    ],
)
def test_search_domain(website: str, domain: str) -> None:
    assert search_domain(website) == domain


# --- The curves SEMrush's numbers are scored on ------------------------------------------------


@pytest.mark.parametrize("metric", METRICS, ids=lambda metric: metric.key)
def test_metric_curves_meet_their_control_points(metric: Any) -> None:
    assert metric_score(metric.median, metric.median, metric.good) == pytest.approx(0.5)
    assert metric_score(metric.good, metric.median, metric.good) == pytest.approx(0.9)
    assert metric_score(0, metric.median, metric.good) == 0.0
    values = [1, metric.median / 2, metric.median, metric.good, metric.good * 10]
    scores = [metric_score(value, metric.median, metric.good) for value in values]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)  # higher is better


def test_weights_add_up_and_a_strong_domain_has_no_findings() -> None:
    assert sum(metric.weight for metric in METRICS) == pytest.approx(1.0)
    strong = SemrushOverview(
        "example.com",
        "us",
        {"organic_keywords": 5000, "organic_traffic": 20000},
        {"authority_score": 60},
    )
    result = judge_semrush(strong)
    assert result.score is not None and result.score >= 95 and not result.findings
    assert result.grade == grade_for(result.score)


# --- On-page audit: every result code from pure evidence -----------------------------------------

SITE_URL = "https://harborplumbing.example/"
TITLE = "<title>Harbor Plumbing | Emergency plumbers in Portland</title>"
DESCRIPTION = (
    '<meta name="description" content="Licensed Portland plumbers: leaks, water heaters and drains '
    'fixed the same day, 24/7.">'
)
CANONICAL = f'<link rel="canonical" href="{SITE_URL}">'
OG_TITLE = '<meta property="og:title" content="Harbor Plumbing">'
OG_DESCRIPTION = '<meta property="og:description" content="Emergency plumbers in Portland.">'
JSON_LD = (
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Plumber", '
    '"name": "Harbor Plumbing"}</script>'
)
H1 = "<h1>Emergency plumbers in Portland</h1>"
IMAGE = '<img src="/van.jpg" alt="Our van">'
LINKS = '<a href="/services">Services</a> <a href="/about">About</a> <a href="/contact">Contact</a>'
PAGE = f"""<!doctype html><html lang="en"><head>
{TITLE}
{DESCRIPTION}
{CANONICAL}
{OG_TITLE}
{OG_DESCRIPTION}
{JSON_LD}
</head><body>
{H1}
{IMAGE}
<nav>{LINKS}</nav>
</body></html>"""
ROBOTS_TXT = f"User-agent: *\nAllow: /\n\nSitemap: {SITE_URL}sitemap.xml\n"
SITEMAP_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    f"<url><loc>{SITE_URL}</loc></url></urlset>\n"
)
ROBOTS = Probe(f"{SITE_URL}robots.txt", 200, "text/plain", ROBOTS_TXT)
SITEMAP = Probe(f"{SITE_URL}sitemap.xml", 200, "application/xml", SITEMAP_XML)
NOT_FOUND_PAGE = "<!doctype html><title>Not found</title>"


def swap(old: str, new: str) -> str:
    """The passing page with one piece of it changed."""
    assert PAGE.count(old) == 1, old
    return PAGE.replace(old, new)


def evidence(
    *,
    html: str = PAGE,
    url: str = SITE_URL,
    robots: Probe = ROBOTS,
    sitemap: Probe = SITEMAP,
    sitemap_source: str = "robots.txt",
    x_robots_tag: tuple[str, ...] = (),
) -> OnPageEvidence:
    """A home page that passes every check, with what the caller changes."""
    return OnPageEvidence(
        url=url,
        status_code=200,
        page=parse_page(html),
        robots=robots,
        sitemap=sitemap,
        sitemap_source=sitemap_source,
        x_robots_tag=x_robots_tag,
    )


CASES: dict[Result, OnPageEvidence] = {
    R.TITLE_OK: evidence(),
    R.TITLE_MISSING: evidence(html=swap(TITLE, "")),
    R.TITLE_TOO_SHORT: evidence(html=swap(TITLE, "<title>Plumber</title>")),
    R.TITLE_TOO_LONG: evidence(html=swap(TITLE, f"<title>{'Harbor Plumbing ' * 4}</title>")),
    R.DESCRIPTION_OK: evidence(),
    R.DESCRIPTION_MISSING: evidence(html=swap(DESCRIPTION, "")),
    R.DESCRIPTION_TOO_SHORT: evidence(
        html=swap(DESCRIPTION, '<meta name="description" content="Plumbers in Portland.">')
    ),
    R.DESCRIPTION_TOO_LONG: evidence(
        html=swap(DESCRIPTION, f'<meta name="description" content="{"Plumbers. " * 17}">')
    ),
    R.H1_ONE: evidence(),
    R.H1_MISSING: evidence(html=swap(H1, "<h2>Emergency plumbers</h2>")),
    R.H1_MULTIPLE: evidence(html=swap(H1, H1 + "<h1>Call us</h1>")),
    R.CANONICAL_OK: evidence(),
    R.CANONICAL_MISSING: evidence(html=swap(CANONICAL, "")),
    R.CANONICAL_CONFLICTING: evidence(
        html=swap(CANONICAL, CANONICAL + '<link rel="canonical" href="https://other.example/">')
    ),
    R.LANG_SET: evidence(),
    R.LANG_MISSING: evidence(html=swap('<html lang="en">', "<html>")),
    R.ROBOTS_OK: evidence(),
    R.ROBOTS_MISSING: evidence(robots=replace(ROBOTS, status_code=404, text=NOT_FOUND_PAGE)),
    R.ROBOTS_BLOCKS_ALL: evidence(robots=replace(ROBOTS, text="User-agent: *\nDisallow: /\n")),
    R.SITEMAP_FOUND: evidence(),
    R.SITEMAP_MISSING: evidence(sitemap=replace(SITEMAP, status_code=404, text=NOT_FOUND_PAGE)),
    R.INDEXABLE: evidence(),
    R.NOINDEX: evidence(x_robots_tag=("noindex",)),
    R.STRUCTURED_DATA_FOUND: evidence(),
    R.STRUCTURED_DATA_MISSING: evidence(html=swap(JSON_LD, "")),
    R.STRUCTURED_DATA_INVALID: evidence(
        html=swap(JSON_LD, '<script type="application/ld+json">{"@type": "Plumber",}</script>')
    ),
    R.ALT_TEXT_COMPLETE: evidence(),
    R.ALT_TEXT_PARTIAL: evidence(html=swap(IMAGE, IMAGE + '<img src="/team.jpg">')),
    R.ALT_TEXT_MISSING: evidence(html=swap(IMAGE, '<img src="/van.jpg">')),
    R.OPEN_GRAPH_OK: evidence(),
    R.OPEN_GRAPH_PARTIAL: evidence(html=swap(OG_DESCRIPTION, "")),
    R.OPEN_GRAPH_MISSING: evidence(html=swap(OG_TITLE + "\n" + OG_DESCRIPTION, "")),
    R.INTERNAL_LINKS_OK: evidence(),
    R.INTERNAL_LINKS_FEW: evidence(html=swap(LINKS, '<a href="/services">Services</a>')),
    R.INTERNAL_LINKS_NONE: evidence(html=swap(LINKS, '<a href="#contact">Contact</a>')),
    R.HTTPS: evidence(),
    R.HTTP_ONLY: evidence(url="http://harborplumbing.example/"),
}


def owner(result: Result) -> Any:
    return score_tables.owner(CHECKS, result)


def test_score_table_result_codes_and_checks_match_both_ways() -> None:
    score_tables.assert_codes_match(SCORE_TABLE, Result, CHECKS, CASES)


def test_score_table_wording_and_points() -> None:
    score_tables.assert_wording_and_points(SCORE_TABLE)


@pytest.mark.parametrize("result", list(Result), ids=str)
def test_each_result_code_from_evidence(result: Result) -> None:
    score_tables.assert_only_its_check_changes(
        result, CASES[result], CHECKS, SCORE_TABLE, judge_onpage
    )


def test_a_tidy_page_passes_everything() -> None:
    envelope = judge_onpage(evidence())
    assert (envelope.score, envelope.grade, envelope.findings) == (100, "A+", [])
    assert (envelope.assessment, envelope.status, envelope.source) == (
        "semrush",
        "completed",
        "onpage",
    )
    assert envelope.algorithm_version == ONPAGE_ALGORITHM_VERSION
    assert envelope.summary == f"On-page SEO grade A+ (100/100): all {len(CHECKS)} checks pass."
    checks = envelope.data["checks"]
    assert list(checks) == [check.name for check in CHECKS]
    title = "Harbor Plumbing | Emergency plumbers in Portland"
    assert checks["title"]["data"] == {"title": title, "length": len(title)}
    assert checks["structured_data"]["data"]["types"] == ["Plumber"]
    assert checks["sitemap"]["data"]["source"] == "robots.txt"
    assert checks["internal_links"]["data"]["count"] == 3


def test_a_page_that_fails_everything_scores_zero_worst_first() -> None:
    bare = "<html><body><p>Welcome</p><img src=a.png></body></html>"
    envelope = judge_onpage(
        evidence(
            html=bare,
            url="http://harborplumbing.example/",
            robots=replace(ROBOTS, text="User-agent: *\nDisallow: /\n"),
            sitemap=Probe(f"{SITE_URL}sitemap.xml", error="connection refused"),
            x_robots_tag=("noindex",),
        )
    )
    assert (envelope.score, envelope.grade) == (0, "F")
    assert len(envelope.findings) == len(CHECKS)
    modifiers = [SCORE_TABLE[Result(finding.id)].modifier for finding in envelope.findings]
    assert modifiers == sorted(modifiers)
    assert envelope.findings[0].id == R.NOINDEX.value
    assert envelope.summary == (
        f"On-page SEO grade F (0/100): {len(CHECKS)} of {len(CHECKS)} checks fail, most "
        f"seriously: {SCORE_TABLE[R.NOINDEX].description}"
    )


def test_title_absent_and_empty_say_which() -> None:
    absent = CASES[R.TITLE_MISSING]
    empty = evidence(html=swap(TITLE, "<title>  </title>"))
    assert owner(R.TITLE_MISSING).check(absent).detail == "No <title> tag."
    assert owner(R.TITLE_MISSING).check(empty).detail == "The <title> tag is empty."


@pytest.mark.parametrize(
    ("length", "result"),
    [(9, R.TITLE_TOO_SHORT), (10, R.TITLE_OK), (60, R.TITLE_OK), (61, R.TITLE_TOO_LONG)],
)
def test_title_length_bounds(length: int, result: Result) -> None:
    page = evidence(html=swap(TITLE, f"<title>{'x' * length}</title>"))
    assert owner(result).check(page).result is result


@pytest.mark.parametrize(
    ("length", "result"),
    [
        (49, R.DESCRIPTION_TOO_SHORT),
        (50, R.DESCRIPTION_OK),
        (160, R.DESCRIPTION_OK),
        (161, R.DESCRIPTION_TOO_LONG),
    ],
)
def test_description_length_bounds(length: int, result: Result) -> None:
    page = evidence(html=swap(DESCRIPTION, f'<meta name="description" content="{"x" * length}">'))
    assert owner(result).check(page).result is result


@pytest.mark.parametrize(
    ("html", "x_robots_tag", "result"),
    [
        ('<meta name="robots" content="noindex, follow">', (), R.NOINDEX),
        ('<meta name="ROBOTS" content="NONE">', (), R.NOINDEX),
        ('<meta name="googlebot" content="noindex">', (), R.NOINDEX),
        ("", ("googlebot: noindex, nofollow",), R.NOINDEX),
        ("", ("nofollow", "noindex"), R.NOINDEX),
        ('<meta name="robots" content="index, follow, max-snippet:-1">', (), R.INDEXABLE),
        ('<meta name="robots" content="nofollow">', ("noarchive",), R.INDEXABLE),
    ],
)
def test_noindex_from_meta_or_header(
    html: str, x_robots_tag: tuple[str, ...], result: Result
) -> None:
    page = evidence(html=swap("</head>", html + "</head>"), x_robots_tag=x_robots_tag)
    assert owner(result).check(page).result is result


@pytest.mark.parametrize(
    ("robots_txt", "agent", "blocks_all"),
    [
        ("User-agent: *\nDisallow: /\n", "*", True),
        ("user-agent: *\ndisallow: /*  # everything\n", "*", True),
        ("User-agent: *\nDisallow:\n", "*", False),
        ("User-agent: *\nDisallow: /admin/\n", "*", False),
        ("User-agent: *\nDisallow: /\nAllow: /\n", "*", False),
        ("User-agent: *\nDisallow: /\n\nUser-agent: Googlebot\nAllow: /\n", "googlebot", False),
        ("User-agent: Bingbot\nUser-agent: Googlebot\nDisallow: /\n", "googlebot", True),
        ("User-agent: BadBot\nDisallow: /\n", "", False),
        ("", "", False),
    ],
)
def test_parse_robots(robots_txt: str, agent: str, blocks_all: bool) -> None:
    rules = parse_robots(robots_txt)
    assert (rules.agent, rules.blocks_all) == (agent, blocks_all)


def test_parse_robots_collects_sitemaps_anywhere() -> None:
    text = "Sitemap: https://a.example/one.xml\nUser-agent: *\nDisallow:\nsitemap: /two.xml\n"
    assert parse_robots(text).sitemaps == ("https://a.example/one.xml", "/two.xml")


@pytest.mark.parametrize(
    ("probe", "found"),
    [
        (ROBOTS, True),
        (replace(ROBOTS, content_type="text/html; charset=utf-8", text=NOT_FOUND_PAGE), False),
        (replace(ROBOTS, status_code=500), False),
        (Probe(f"{SITE_URL}robots.txt", error="timed out"), False),
    ],
    ids=["text", "an html page served with 200", "500", "no answer"],
)
def test_a_robots_txt_counts_only_when_it_is_one(probe: Probe, found: bool) -> None:
    result = owner(R.ROBOTS_OK).check(evidence(robots=probe)).result
    assert (result is R.ROBOTS_OK) is found


@pytest.mark.parametrize(
    ("sitemap", "found"),
    [
        (SITEMAP, True),
        (replace(SITEMAP, text="<sitemapindex><sitemap/></sitemapindex>"), True),
        (replace(SITEMAP, content_type="text/plain", text=f"{SITE_URL}\n"), True),
        (replace(SITEMAP, content_type="application/xml", text="<rss></rss>"), False),
        (replace(SITEMAP, content_type="text/html", text="<urlset>"), False),
    ],
    ids=["urlset", "sitemap index", "text sitemap", "not a sitemap", "an html page"],
)
def test_a_sitemap_counts_only_when_it_lists_pages(sitemap: Probe, found: bool) -> None:
    result = owner(R.SITEMAP_FOUND).check(evidence(sitemap=sitemap)).result
    assert (result is R.SITEMAP_FOUND) is found


def test_internal_links_are_distinct_pages_of_the_same_site() -> None:
    links = (
        '<a href="/services">Services</a> <a href="/services#prices">Prices</a> '
        '<a href="https://www.harborplumbing.example/about">About</a> '
        '<a href="contact?from=home">Contact</a> <a href="/">Home</a> <a href="#top">Top</a> '
        '<a href="https://other.example/">Elsewhere</a> <a href="tel:+15035550100">Call</a> '
        '<a href="mailto:hi@harborplumbing.example">Mail</a> <a>No href</a>'
    )
    assert internal_links(evidence(html=swap(LINKS, links))) == [
        f"{SITE_URL}services",
        "https://www.harborplumbing.example/about",
        f"{SITE_URL}contact?from=home",
    ]


def test_json_ld_types_read_graphs_lists_and_several_types() -> None:
    blocks = [
        {"@graph": [{"@type": "WebSite"}, {"@type": ["LocalBusiness", "Dentist"]}]},
        [{"@type": "BreadcrumbList"}, "not an object"],
        {"name": "no type"},
        42,
    ]
    assert json_ld_types(blocks) == ["WebSite", "LocalBusiness", "Dentist", "BreadcrumbList"]


def test_microdata_counts_as_structured_data() -> None:
    microdata = '<div itemscope itemtype="https://schema.org/Plumber"><span>Harbor</span></div>'
    page = evidence(html=swap(JSON_LD, "").replace(H1, H1 + microdata))
    outcome = owner(R.STRUCTURED_DATA_FOUND).check(page)
    assert outcome.result is R.STRUCTURED_DATA_FOUND
    assert outcome.data["types"] == ["https://schema.org/Plumber"]


def test_decorative_images_with_empty_alt_count_as_described() -> None:
    page = evidence(html=swap(IMAGE, IMAGE + '<img src="/divider.png" alt="">'))
    assert owner(R.ALT_TEXT_COMPLETE).check(page).result is R.ALT_TEXT_COMPLETE


# --- collect + judge against sites on loopback ---------------------------------------------------


@pytest.fixture
def onpage(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The on-page road: no SEMrush key, even if a .env has one."""
    monkeypatch.setenv("LEADSHOP_SEMRUSH_API_KEY", "")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def private_networks(onpage: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The on-page road allowed to fetch loopback sites."""
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()


def site_lead(url: str) -> LeadRecord:
    return LeadRecord(id=9, name="Harbor Plumbing", website=url)


def html_reply(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, body.encode(), {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    )


async def test_collect_follows_robots_txt_to_its_sitemap(private_networks: None) -> None:
    robots = "User-agent: *\nDisallow: /admin/\nSitemap: /sitemaps/pages.xml\n"
    routes = {
        "/": [html_reply(PAGE)],
        "/robots.txt": [Reply(200, robots.encode(), {"Content-Type": "text/plain"})],
        "/sitemaps/pages.xml": [Reply(200, SITEMAP_XML.encode(), {"Content-Type": "text/xml"})],
    }
    with serve(routes) as site:
        result = await assess(site_lead(site.url("/")))
    checks = result.data["checks"]
    assert checks["robots_txt"]["result"] == R.ROBOTS_OK
    assert checks["robots_txt"]["data"]["sitemaps"] == ["/sitemaps/pages.xml"]
    assert checks["sitemap"]["result"] == R.SITEMAP_FOUND
    assert checks["sitemap"]["data"]["url"] == site.url("/sitemaps/pages.xml")
    assert checks["sitemap"]["data"]["source"] == "robots.txt"
    assert result.data["url"] == site.url("/") and result.data["status_code"] == 200
    assert [finding.id for finding in result.findings] == [R.HTTP_ONLY.value]


async def test_missing_robots_and_sitemap_are_findings_not_failures(
    private_networks: None,
) -> None:
    with serve({"/": [html_reply(PAGE, headers={"X-Robots-Tag": "noindex"})]}) as site:
        result = await assess(site_lead(site.url("/")))
    assert result.status == "completed"
    ids = {finding.id for finding in result.findings}
    assert ids == {R.ROBOTS_MISSING, R.SITEMAP_MISSING, R.NOINDEX, R.HTTP_ONLY}
    assert result.data["checks"]["sitemap"]["data"]["source"] == "default"
    assert site.hits == {"/": 1, "/robots.txt": 1, "/sitemap.xml": 1}


async def test_a_robots_txt_that_cannot_be_fetched_is_a_finding(private_networks: None) -> None:
    away = Reply(302, b"", {"Location": "ftp://harborplumbing.example/robots.txt"})
    with serve({"/": [html_reply(PAGE)], "/robots.txt": [away]}) as site:
        result = await assess(site_lead(site.url("/")))
    robots = result.data["checks"]["robots_txt"]
    assert robots["result"] == R.ROBOTS_MISSING
    assert robots["data"]["status_code"] is None and "ftp" in robots["data"]["error"]


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (503, True)])
async def test_a_home_page_that_fails_fails_the_assessment(
    private_networks: None, status: int, retryable: bool
) -> None:
    sorry = {"/": [html_reply("<h1>Sorry</h1>", status)]}
    with serve(sorry) as site, pytest.raises(errors.HTTPStatusError) as caught:
        await assess(site_lead(site.url("/")))
    assert caught.value.retryable is retryable
    assert site.hits == {"/": 1}  # robots.txt and the sitemap are not worth asking for then


async def test_a_private_address_is_refused_without_the_setting(
    onpage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    with serve({"/": [html_reply(PAGE)]}) as site, pytest.raises(errors.BlockedAddress):
        await assess(site_lead(site.url("/")))
    assert site.hits == {}


async def test_demo_sites_with_and_without_tidy_seo_grade_far_apart(
    demo: DemoSites, onpage: None
) -> None:
    tidy = await assess(site_lead(demo.site("harborview-dental").url))
    bare = await assess(site_lead(demo.site("sunrise-bakery").url))

    def results(envelope: AssessmentResult) -> dict[str, str]:
        return {name: check["result"] for name, check in envelope.data["checks"].items()}

    assert (tidy.source, tidy.score, tidy.grade) == ("onpage", 95, "A")
    assert results(tidy) == {
        "title": R.TITLE_OK,  # "Harborview Family Dental | Gentle dentistry for all ages": 56
        "meta_description": R.DESCRIPTION_OK,
        "h1": R.H1_ONE,
        "canonical": R.CANONICAL_OK,
        "lang": R.LANG_SET,
        "robots_txt": R.ROBOTS_OK,
        "sitemap": R.SITEMAP_FOUND,
        "indexing": R.INDEXABLE,
        "structured_data": R.STRUCTURED_DATA_FOUND,
        "image_alt": R.ALT_TEXT_COMPLETE,
        "open_graph": R.OPEN_GRAPH_OK,
        "internal_links": R.INTERNAL_LINKS_NONE,  # a one-page site: its links are #anchors
        "https": R.HTTPS,
    }
    assert tidy.data["checks"]["title"]["data"]["length"] == 56
    assert tidy.data["checks"]["sitemap"]["data"]["source"] == "robots.txt"
    assert tidy.data["url"].startswith("https://")  # after the redirect from http://

    assert (bare.score, bare.grade) == (30, "D")
    assert {finding.id for finding in bare.findings} == {
        R.DESCRIPTION_MISSING,
        R.CANONICAL_MISSING,
        R.OPEN_GRAPH_MISSING,
        R.STRUCTURED_DATA_MISSING,
        R.SITEMAP_MISSING,
        R.ALT_TEXT_MISSING,
        R.INTERNAL_LINKS_NONE,
        R.HTTP_ONLY,
    }
    assert results(bare)["robots_txt"] == R.ROBOTS_OK  # it has one: Disallow: /admin/ only


def test_the_task_uses_the_shared_retry_policy() -> None:
    assert resolve("semrush") is semrush_task
    assert semrush_task.retries == RETRIES
    assert semrush_task.timeout_seconds == TIMEOUT_SECONDS
