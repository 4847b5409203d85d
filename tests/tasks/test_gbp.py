"""The business-profile assessment: every result code from evidence builders, both score tables,
the matching helpers, the Places client against a loopback server speaking its wire format
(recorded-style answers in tests/fixtures/gbp/), and the website road against the demo sites."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from leadshop import errors
from leadshop.config import get_settings
from leadshop.demo.sites import DemoSites
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.pages import parse_page
from leadshop.scoring import Score, severity_for
from tasks.gbp import (
    ALGORITHM_VERSION,
    PAGE_SIZE,
    PLACES_CHECKS,
    PLACES_TABLE,
    REVIEW_POINTS,
    SITE_CHECKS,
    SITE_TABLE,
    LocalBusiness,
    Match,
    Place,
    PlacesClient,
    PlacesError,
    PlacesEvidence,
    PlacesResult,
    SiteEvidence,
    SiteResult,
    address_words,
    assess,
    compare_address,
    gbp_task,
    judge_places,
    judge_site,
    local_business,
    name_similarity,
    phone_digits,
    pick_place,
    places_evidence,
    places_table,
    review_credit,
    review_points,
    same_site,
    search_query,
    site_evidence,
)
from tasks.registry import RETRIES, RETRY_DELAYS, is_transient, resolve
from tests.score_tables import (
    assert_codes_match,
    assert_only_its_check_changes,
    assert_wording_and_points,
)
from tests.sites import Reply, serve

P = PlacesResult
S = SiteResult
FIXTURES = Path(__file__).parent.parent / "fixtures" / "gbp"
KEY = "AIzaSyTEST-gbp-0123456789abcdefghijklm"
SEARCH = "/v1/places:searchText"
JSON = {"Content-Type": "application/json; charset=UTF-8"}
WEBSITE = "https://harborviewdental.example/"
LEAD = LeadRecord(
    id=3,
    name="Harborview Family Dental",
    website=WEBSITE,
    phone="(503) 555-0142",
    address="1482 NW Harbor Way, Suite 200, Portland, OR 97209",
)
# what the assessment grades or shows, and nothing more (Text Search bills by the fields asked)
MASKED = (
    "places.id places.displayName places.formattedAddress places.rating places.userRatingCount "
    "places.regularOpeningHours places.websiteUri places.nationalPhoneNumber "
    "places.businessStatus places.photos places.googleMapsUri places.primaryType"
)
QUERY = "Harborview Family Dental, 1482 NW Harbor Way, Suite 200, Portland, OR 97209"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --- Builders: a passing case, with one thing changed ---------------------------------------------


def place(**changes: Any) -> Place:
    """A profile that passes every check."""
    fields: dict[str, Any] = {
        "id": "ChIJ3Qm1xkYKlVQR4a8b2C7dEfg",
        "name": "Harborview Family Dental",
        "address": "1482 NW Harbor Way Suite 200, Portland, OR 97209, USA",
        "business_status": "OPERATIONAL",
        "primary_type": "dentist",
        "rating": 4.9,
        "review_count": 212,
        "opening_hours": ("Monday: 8:00 AM - 6:00 PM",),
        "has_hours": True,
        "photos": 10,
        "website": WEBSITE,
        "phone": "(503) 555-0142",
        "maps_url": "https://maps.google.com/?cid=5614782390165827041",
    }
    return Place(**{**fields, **changes})


def profile(**changes: Any) -> PlacesEvidence:
    """Places evidence with the passing profile found, the profile changed as given."""
    return PlacesEvidence(
        query=QUERY,
        candidates=1,
        lead_website=WEBSITE,
        lead_phone=LEAD.phone,
        place=place(**changes),
        match=Match(1.0, True, True),
    )


NOT_FOUND = PlacesEvidence(query=QUERY, candidates=2, lead_website=WEBSITE, lead_phone=None)

BUSINESS = LocalBusiness(
    types=("Dentist",),
    name="Harborview Family Dental",
    address="1482 NW Harbor Way, Suite 200, Portland, OR, 97209",
    telephone="(503) 555-0142",
    opening_hours=("Mo-Th 08:00-18:00",),
    rating=4.9,
    review_count=212,
)
PAGE_TEXT = (
    "Harborview Family Dental Gentle dentistry. Contact 1482 NW Harbor Way, Suite 200 "
    "Portland, OR 97209 Phone: (503) 555-0142 Mon-Thu 8:00-18:00"
)


def evidence(**changes: Any) -> SiteEvidence:
    """A home page that passes every check, with the given things changed."""
    fields: dict[str, Any] = {
        "url": WEBSITE,
        "status_code": 200,
        "lead_name": LEAD.name,
        "lead_address": LEAD.address,
        "lead_phone": LEAD.phone,
        "title": "Harborview Family Dental | Portland dentist",
        "text": PAGE_TEXT,
        "business": BUSINESS,
        "hours_on_page": True,
        "phones": ("5035550142",),
        "maps_links": ("https://www.google.com/maps/search/?api=1&query=Harborview",),
        "review_links": ("https://search.google.com/local/writereview?placeid=x",),
    }
    return SiteEvidence(**{**fields, **changes})


def business(**changes: Any) -> SiteEvidence:
    """The passing page, with its LocalBusiness markup changed."""
    return evidence(business=replace(BUSINESS, **changes))


UNRATED = replace(BUSINESS, rating=None, review_count=None)


PLACES_CASES: dict[PlacesResult, PlacesEvidence] = {
    P.PROFILE_FOUND: profile(),
    P.PROFILE_NOT_FOUND: NOT_FOUND,
    P.STATUS_OPERATIONAL: profile(),
    P.STATUS_CLOSED_TEMPORARILY: profile(business_status="CLOSED_TEMPORARILY"),
    P.STATUS_CLOSED_PERMANENTLY: profile(business_status="CLOSED_PERMANENTLY"),
    P.STATUS_UNKNOWN: profile(business_status=None),
    P.RATING_EXCELLENT: profile(),
    P.RATING_GOOD: profile(rating=4.2),
    P.RATING_MEDIOCRE: profile(rating=3.8),
    P.RATING_POOR: profile(rating=2.9),
    P.RATING_MISSING: profile(rating=None),
    P.REVIEWS_PLENTY: profile(),
    P.REVIEWS_FEW: profile(review_count=12),
    P.REVIEWS_NONE: profile(review_count=0),
    P.HOURS_LISTED: profile(),
    P.HOURS_MISSING: profile(has_hours=False, opening_hours=()),
    P.PHOTOS_PLENTY: profile(),
    P.PHOTOS_FEW: profile(photos=2),
    P.PHOTOS_NONE: profile(photos=0),
    P.WEBSITE_MATCHES: profile(),
    P.WEBSITE_OTHER: profile(website="https://www.facebook.com/harborviewdental"),
    P.WEBSITE_MISSING: profile(website=None),
    P.PHONE_LISTED: profile(),
    P.PHONE_DIFFERS: profile(phone="(503) 555-0999"),
    P.PHONE_MISSING: profile(phone=None),
}

SITE_CASES: dict[SiteResult, SiteEvidence] = {
    S.SCHEMA_COMPLETE: evidence(),
    S.SCHEMA_INCOMPLETE: business(telephone=None),
    # no markup at all: hours and rating then come from the page alone, which shows both
    S.SCHEMA_MISSING: evidence(business=None),
    S.HOURS_MARKED_UP: evidence(),
    S.HOURS_NOT_MARKED_UP: business(opening_hours=()),
    S.HOURS_MISSING: evidence(business=replace(BUSINESS, opening_hours=()), hours_on_page=False),
    S.REVIEWS_MARKED_UP: evidence(),
    S.REVIEWS_LINKED: evidence(business=UNRATED),
    S.REVIEWS_MISSING: evidence(business=UNRATED, review_links=()),
    S.NAME_MATCHES: evidence(),
    S.NAME_ON_PAGE: evidence(lead_name=None),
    S.NAME_MISSING: evidence(lead_name="Riverside Orthodontics"),
    S.ADDRESS_MATCHES: evidence(),
    S.ADDRESS_ON_PAGE: evidence(lead_address=None),
    S.ADDRESS_DIFFERS: evidence(lead_address="77 SE Division St, Portland, OR 97202"),
    S.ADDRESS_MISSING: evidence(lead_address="9 Elm Court, Bend, WA 98101"),
    S.PHONE_MATCHES: evidence(),
    S.PHONE_ON_PAGE: evidence(lead_phone=None),
    S.PHONE_DIFFERS: evidence(lead_phone="+1 541 555 0100"),
    S.PHONE_MISSING: evidence(phones=()),
    S.MAPS_PRESENT: evidence(),
    S.MAPS_MISSING: evidence(maps_links=()),
}
# Without markup, hours and rating can only come from the page, which shows hours and links to
# reviews: two checks drop to their "not marked up" codes, the others still pass.
SITE_CASE_ALSO_FAILS: dict[SiteResult, set[SiteResult]] = {
    S.SCHEMA_MISSING: {S.HOURS_NOT_MARKED_UP, S.REVIEWS_LINKED},
}


# --- Tables and result codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "codes", "checks", "cases"),
    [
        (PLACES_TABLE, PlacesResult, PLACES_CHECKS, PLACES_CASES),
        (SITE_TABLE, SiteResult, SITE_CHECKS, SITE_CASES),
    ],
    ids=["places", "website"],
)
def test_score_table_result_codes_and_checks_match_both_ways(
    table: dict[Any, Score], codes: Any, checks: tuple[Any, ...], cases: dict[Any, Any]
) -> None:
    assert_codes_match(table, codes, checks, cases)


def test_finding_ids_are_unique_across_both_roads() -> None:
    assert not {code.value for code in PlacesResult} & {code.value for code in SiteResult}


@pytest.mark.parametrize("table", [PLACES_TABLE, SITE_TABLE], ids=["places", "website"])
def test_score_table_wording_and_points(table: dict[Any, Score]) -> None:
    assert_wording_and_points(table)


# --- Judge: every result code from evidence -------------------------------------------------------


@pytest.mark.parametrize("result", list(PlacesResult), ids=str)
def test_each_places_result_code_from_evidence(result: PlacesResult) -> None:
    case = PLACES_CASES[result]
    # the table this lead is graded with: profile-reviews-few charges what its count costs
    assert_only_its_check_changes(result, case, PLACES_CHECKS, places_table(case), judge_places)


@pytest.mark.parametrize(
    "result", [r for r in SiteResult if r not in SITE_CASE_ALSO_FAILS], ids=str
)
def test_each_site_result_code_from_evidence(result: SiteResult) -> None:
    assert_only_its_check_changes(result, SITE_CASES[result], SITE_CHECKS, SITE_TABLE, judge_site)


def test_a_site_without_markup_falls_back_on_what_the_page_shows() -> None:
    envelope = judge_site(SITE_CASES[S.SCHEMA_MISSING])
    failing = {S.SCHEMA_MISSING, *SITE_CASE_ALSO_FAILS[S.SCHEMA_MISSING]}
    assert {finding.id for finding in envelope.findings} == {r.value for r in failing}
    assert envelope.score == 100 + sum(SITE_TABLE[r].modifier for r in failing)
    assert envelope.findings[0].id == S.SCHEMA_MISSING.value  # the worst first


def test_a_complete_profile_passes_everything() -> None:
    envelope = judge_places(profile())
    assert (envelope.score, envelope.grade) == (100, "A+")
    assert envelope.assessment == "gbp" and envelope.source == "places"
    assert envelope.status == "completed" and not envelope.findings
    assert envelope.algorithm_version == ALGORITHM_VERSION
    assert envelope.summary == (
        "Google Business Profile grade A+ (100/100) for Harborview Family Dental, 4.9 stars "
        f"from 212 reviews: all {len(PLACES_CHECKS)} checks pass."
    )


def test_no_profile_found_is_a_completed_low_score_not_a_failure() -> None:
    envelope = judge_places(NOT_FOUND)
    assert envelope.status == "completed" and envelope.error is None
    assert (envelope.score, envelope.grade) == (15, "F")
    (finding,) = envelope.findings
    assert finding.id == "profile-not-found" and finding.severity == "high"
    assert "No Google Business Profile found" in finding.title
    assert "no Google Business Profile found" in envelope.summary
    assert envelope.data["place"] is None and list(envelope.data["checks"]) == ["profile"]


def test_a_closed_profile_with_nothing_filled_in_scores_zero_worst_first() -> None:
    envelope = judge_places(
        profile(
            business_status="CLOSED_PERMANENTLY",
            rating=None,
            review_count=0,
            has_hours=False,
            photos=0,
            website=None,
            phone=None,
        )
    )
    assert (envelope.score, envelope.grade) == (0, "F")
    assert envelope.findings[0].id == "profile-closed-permanently"
    assert len(envelope.findings) == len(PLACES_CHECKS) - 1  # only "found" passes


def test_a_site_without_any_business_signal_scores_zero() -> None:
    envelope = judge_site(
        evidence(
            business=None,
            hours_on_page=False,
            review_links=(),
            lead_name="Riverside Orthodontics",
            lead_address="9 Elm Court, Bend, WA 98101",
            phones=(),
            maps_links=(),
        )
    )
    assert (envelope.score, envelope.grade) == (0, "F")
    assert envelope.source == "website"
    assert envelope.findings[0].id == "site-schema-missing"
    assert envelope.summary.startswith("Business-listing signals on the website grade F (0/100)")


# --- The review curve -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "credit"), [(0, 0.0), (4, 0.1), (20, 0.5), (100, 0.9), (10_000, 1.0)]
)
def test_review_credit_control_points(count: int, credit: float) -> None:
    assert review_credit(count) == pytest.approx(credit, abs=0.005)


def test_review_points_fall_smoothly_to_zero_at_the_pass_line() -> None:
    counts = [0, 1, 3, 10, 20, 50, 99, 100, 500]
    points = [review_points(count) for count in counts]
    assert points[0] == REVIEW_POINTS
    assert points == sorted(points, reverse=True)
    assert points[counts.index(99)] <= 1 and points[counts.index(100)] == 0
    assert points[counts.index(20)] == round(REVIEW_POINTS * (0.9 - 0.5) / 0.9)


def test_few_reviews_cost_what_the_curve_says_in_score_finding_and_data() -> None:
    envelope = judge_places(profile(review_count=12))
    cost = review_points(12)
    assert 0 < cost < REVIEW_POINTS
    assert envelope.score == 100 - cost
    assert envelope.data["checks"]["reviews"]["score_modifier"] == -cost
    assert envelope.data["review_credit"] == pytest.approx(review_credit(12), abs=0.001)
    (finding,) = envelope.findings
    assert finding.severity == severity_for(-cost)


# --- Matching helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "at_least", "below"),
    [
        ("Harborview Family Dental", "HARBORVIEW FAMILY DENTAL, LLC", 1.0, 1.01),
        ("Sunrise Bakery & Cafe", "Sunrise Bakery and Café", 1.0, 1.01),
        ("Harborview Dental", "Harborview Family Dental", 0.8, 1.01),
        ("Harborview Family Dental", "Harborview Dental Arts", 0.0, 0.8),
        ("Harborview Family Dental", "Pearl District Dental Studio", 0.0, 0.5),
    ],
)
def test_name_similarity(a: str, b: str, at_least: float, below: float) -> None:
    assert at_least <= name_similarity(a, b) < below


def test_phone_and_site_comparisons() -> None:
    assert phone_digits("+1 (503) 555-0142") == phone_digits("503.555.0142") == "5035550142"
    assert same_site("harborviewdental.example", "https://www.harborviewdental.example/about")
    assert same_site("https://portland.chain.example/", "chain.example")
    assert not same_site("https://harborviewdentalarts.example/", WEBSITE)
    assert not same_site(None, WEBSITE)


def test_address_comparison_is_tolerant_of_abbreviations_and_units() -> None:
    page = "1482 Northwest Harbor Way #200, Portland OR 97209 United States"
    assert compare_address(LEAD.address or "", set(address_words(page))) == (
        ["1482", "nw", "harbor", "way", "200", "portland", "or", "97209"],
        [],
    )
    moved = "1482 NW Harbour Way, Portland, OR 97210"
    assert compare_address(LEAD.address or "", set(address_words(moved)))[1] == [
        "harbor",
        "200",
        "97209",
    ]


def test_the_right_place_is_picked_among_several_or_none() -> None:
    places = [place(name="Harborview Dental Arts", website="https://arts.example/", phone="1")]
    places += [place(), place(name="Pearl District Dental Studio", website=None, phone=None)]
    picked = pick_place(LEAD, places)
    assert picked is not None and picked[0] is places[1]
    # by name alone when the lead list has neither website nor phone Google knows
    stranger = LEAD.model_copy(update={"website": "other.example", "phone": None})
    picked = pick_place(stranger, places)
    assert picked is not None and picked[0] is places[1] and picked[1].name_similarity == 1.0
    # by website alone, whatever the name (``leadshop check`` names a lead after its URL)
    by_url = LeadRecord(id=1, name=WEBSITE, website=WEBSITE)
    picked = pick_place(by_url, [places[0], place(name="HVFD Dentistry")])
    assert picked is not None and picked[0].name == "HVFD Dentistry"
    assert pick_place(stranger, [places[0], places[2]]) is None


def test_search_query() -> None:
    assert search_query(LEAD) == QUERY
    assert search_query(LeadRecord(id=1, name=WEBSITE, website=WEBSITE)) == (
        "harborviewdental.example"
    )


# --- The page's business signals (pure, from markup) ----------------------------------------------


def page(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def ld(data: Any) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def test_local_business_subtypes_in_graphs_lists_and_iris() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Oak & Iron"},
            {
                "@type": ["Organization", "https://schema.org/Plumber"],
                "name": "Oak & Iron Plumbing",
                "telephone": "+1-503-555-0188",
                "address": [{"@type": "PostalAddress", "streetAddress": "7731 SE Foster Road"}],
                "openingHoursSpecification": [
                    {
                        "dayOfWeek": ["https://schema.org/Monday"],
                        "opens": "07:00",
                        "closes": "19:00",
                    }
                ],
                "aggregateRating": {"ratingValue": "4.7", "ratingCount": "58"},
            },
        ],
    }
    found = local_business(parse_page(page(ld([{"@type": "WebPage"}, graph]))).json_ld)
    assert found == LocalBusiness(
        types=("Organization", "Plumber"),
        name="Oak & Iron Plumbing",
        address="7731 SE Foster Road",
        telephone="+1-503-555-0188",
        opening_hours=("Monday 07:00-19:00",),
        rating=4.7,
        review_count=58,
    )
    assert local_business([{"@type": "Organization", "name": "x"}]) is None
    nested = {"@type": "WebPage", "about": {"@type": "Dentist", "name": "Nested"}}
    assert (local_business([nested]) or BUSINESS).name == "Nested"


def test_site_evidence_reads_embeds_widgets_and_phones_in_text() -> None:
    html = page(
        body="<p>Call 503-555-0142 today.</p>"
        '<iframe src="https://www.google.com/maps/embed?pb=!1m18"></iframe>'
        '<script src="https://static.elfsight.com/platform/platform.js" defer></script>'
        '<a href="#reviews">Reviews</a>'
    )
    found = site_evidence(LEAD, WEBSITE, 200, parse_page(html))
    assert found.phones == ("5035550142",)
    assert found.maps_links == ("https://www.google.com/maps/embed?pb=!1m18",)
    assert found.review_links == ("https://static.elfsight.com/platform/platform.js",)
    assert found.business is None and not found.hours_on_page


# --- Places API against a loopback server ---------------------------------------------------------


def answer(status: int, body: Any, headers: dict[str, str] = JSON) -> Reply:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, payload, headers)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the environment it set up, and leaves no settings behind."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def places_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the assessment at a loopback Places with the test key."""

    def use(url: str) -> None:
        monkeypatch.setenv("LEADSHOP_PLACES_API_KEY", KEY)
        monkeypatch.setenv("LEADSHOP_PLACES_API_URL", url)
        get_settings.cache_clear()

    return use


def assert_key_absent(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


async def test_places_request_and_envelope(places_settings: Callable[[str], None]) -> None:
    with serve({SEARCH: [answer(200, fixture("search-text.json"))]}) as places:
        places_settings(places.url("/v1"))
        result = await assess(LEAD)

    (request,) = places.requests
    assert (request.method, request.target) == ("POST", SEARCH)
    assert request.headers["x-goog-api-key"] == KEY
    asked = request.headers["x-goog-fieldmask"].split(",")
    assert sorted(asked) == sorted(MASKED.split())
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "textQuery": QUERY,
        "pageSize": PAGE_SIZE,
        "languageCode": "en",
    }
    assert result.source == "places" and result.status == "completed"
    assert (result.score, result.grade) == (100, "A+")
    found = result.data["place"]
    assert found["name"] == "Harborview Family Dental" and found["photos"] == 10
    assert found["opening_hours"][0].startswith("Monday: 8:00\u202fAM")
    assert found["match"] == {"name_similarity": 1.0, "same_website": True, "same_phone": True}
    assert result.data["query"] == QUERY and result.data["candidates"] == 1
    assert result.duration_ms >= 0
    assert_key_absent(result.model_dump_json())


async def test_places_picks_the_lead_among_several_candidates() -> None:
    with serve({SEARCH: [answer(200, fixture("search-text-several.json"))]}) as places:
        async with PlacesClient(places.url("/v1"), SecretStr(KEY)) as client:
            found = await client.search(QUERY)
    assert [p.name for p in found][:2] == ["Harborview Dental Arts", "Harborview Family Dental"]
    result = judge_places(places_evidence(LEAD, QUERY, found))
    assert result.data["place"]["id"] == "ChIJ3Qm1xkYKlVQR4a8b2C7dEfg"
    assert result.data["candidates"] == 3
    # the first answer, same street name and town, is not the lead's
    assert (
        pick_place(LEAD.model_copy(update={"name": "Harborview Family Dental"}), found[:1]) is None
    )


async def test_an_empty_answer_means_no_profile(places_settings: Callable[[str], None]) -> None:
    with serve({SEARCH: [answer(200, {})]}) as places:
        places_settings(places.url("/v1"))
        result = await assess(LEAD)
    assert result.status == "completed" and result.score == 15 and result.grade == "F"
    assert [finding.id for finding in result.findings] == ["profile-not-found"]
    assert result.data["candidates"] == 0


ERRORS = fixture("errors.json")
# Google's envelopes from the fixture: whether the error is worth another try, what it says to do
ENVELOPE_VERDICTS: dict[str, tuple[bool, str]] = {
    "400 invalid key": (False, "check LEADSHOP_PLACES_API_KEY"),
    "400 field mask missing": (False, "will be refused again"),
    "403 api disabled": (False, "Enable the Places API (New)"),
    "403 key restricted": (False, "restrictions block the Places API (New)"),
    "429 quota": (True, "will be tried again"),
    "500 internal": (True, "HTTP 500 INTERNAL"),
}
ERROR_CASES: dict[str, tuple[Reply, bool, str]] = {
    case: (answer(ERRORS[case]["error"]["code"], ERRORS[case]), *verdict)
    for case, verdict in ENVELOPE_VERDICTS.items()
} | {
    "502 html from the front end": (
        answer(
            502, b"<html><body>502. That's an error.</body></html>", {"Content-Type": "text/html"}
        ),
        True,
        "HTTP 502: <html>",
    ),
    "200 not json": (answer(200, b'{"places": [{"id": '), False, "not a search result"),
    "200 wrong shape": (answer(200, {"places": {"id": "x"}}), False, "not a search result"),
    "200 places not objects": (answer(200, {"places": ["x"]}), False, "not a search result"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_places_errors(
    case: str, places_settings: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    reply, retryable, says = ERROR_CASES[case]
    caplog.set_level(logging.DEBUG)
    with serve({SEARCH: [reply]}) as places, pytest.raises(PlacesError) as caught:
        places_settings(places.url("/v1"))
        await assess(LEAD)
    assert caught.value.retryable is retryable
    assert is_transient(caught.value) is retryable  # what the registry's retry condition reads
    assert caught.value.status_code == reply.status
    assert says in str(caught.value)
    assert str(caught.value).startswith("Places API (New) answered HTTP")
    assert places.requests[0].headers["x-goog-api-key"] == KEY
    failure = AssessmentResult.failure("gbp", caught.value).model_dump_json()
    trace = "".join(traceback.format_exception(caught.value))
    assert_key_absent(str(caught.value), trace, failure, caplog.text)


async def test_a_key_echoed_back_by_the_service_is_redacted() -> None:
    echoed = {"error": {"code": 400, "message": f"API key {KEY} not valid.", "status": "X"}}
    for reply in (answer(400, echoed), answer(503, f"bad key {KEY}".encode(), {})):
        with serve({SEARCH: [reply]}) as places:
            async with PlacesClient(places.url("/v1"), SecretStr(KEY)) as client:
                with pytest.raises(PlacesError) as caught:
                    await client.search(QUERY)
        assert "***" in str(caught.value)
        assert_key_absent(str(caught.value), "".join(traceback.format_exception(caught.value)))


async def test_places_timeout_and_unreachable_are_retried_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    slow = Reply(200, b"{}", JSON, delay=2)
    with serve({SEARCH: [slow]}) as places:
        url = places.url("/v1")
        async with PlacesClient(url, SecretStr(KEY), timeout=httpx.Timeout(0.5)) as client:
            with pytest.raises(PlacesError, match="did not answer in time") as timed_out:
                await client.search(QUERY)
    async with PlacesClient(url, SecretStr(KEY)) as client:  # nothing listens there now
        with pytest.raises(PlacesError, match="could not be reached") as refused:
            await client.search(QUERY)
    for caught in (timed_out, refused):
        assert caught.value.retryable and caught.value.status_code is None
        assert_key_absent(str(caught.value), "".join(traceback.format_exception(caught.value)))
    assert_key_absent(caplog.text)


async def test_quota_exhausted_then_success_is_retried_by_the_task(
    prefect_api: str, places_settings: Callable[[str], None]
) -> None:
    replies = [answer(429, ERRORS["429 quota"]), answer(200, fixture("search-text.json"))]
    with serve({SEARCH: replies}) as places:
        places_settings(places.url("/v1"))
        result = await gbp_task(LEAD)
    assert [request.method for request in places.requests] == ["POST", "POST"]
    assert result.status == "completed" and result.score == 100


def test_the_task_uses_the_shared_retry_policy() -> None:
    assert resolve("gbp") is gbp_task
    assert gbp_task.name == "gbp"
    assert gbp_task.retries == RETRIES
    assert gbp_task.retry_delay_seconds == RETRY_DELAYS


# --- The website road -----------------------------------------------------------------------------


def website_road(monkeypatch: pytest.MonkeyPatch, allow_private_networks: bool) -> None:
    """No Places key, so the lead's own site is read; loopback sites allowed or not."""
    monkeypatch.delenv("LEADSHOP_PLACES_API_KEY", raising=False)
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", str(allow_private_networks).lower())
    get_settings.cache_clear()


async def test_demo_sites_grade_far_apart_on_their_business_signals(
    demo: DemoSites, monkeypatch: pytest.MonkeyPatch
) -> None:
    website_road(monkeypatch, allow_private_networks=True)
    results = {}
    for slug in ("harborview-dental", "sunrise-bakery"):
        site = demo.site(slug)  # harborview redirects to HTTPS under the demo's own CA
        lead = LeadRecord(
            id=1, name=site.name, website=site.url, phone=site.phone, address=site.address
        )
        results[slug] = await assess(lead)
    harborview, sunrise = results["harborview-dental"], results["sunrise-bakery"]
    assert harborview.source == sunrise.source == "website"
    assert harborview.score is not None and harborview.score >= 85, harborview.findings
    assert harborview.data["url"].startswith("https://localhost")
    checks = harborview.data["checks"]
    assert checks["local-business-markup"]["result"] == "site-schema-complete"
    assert checks["reviews"]["result"] == "site-reviews-marked-up"
    assert checks["maps"]["result"] == "site-maps-present"
    assert harborview.data["local_business"]["rating"] == 4.9
    assert sunrise.score is not None and sunrise.score <= 40
    assert {finding.id for finding in sunrise.findings} >= {
        "site-schema-missing",
        "site-maps-missing",
        "site-reviews-missing",
    }
    for passed in ("name", "address", "phone"):  # the bakery's NAP is right, only unlinked
        assert sunrise.data["checks"][passed]["pass"], passed


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (503, True)])
async def test_an_error_page_fails_with_its_own_retry_verdict(
    monkeypatch: pytest.MonkeyPatch, status: int, retryable: bool
) -> None:
    website_road(monkeypatch, allow_private_networks=True)
    with (
        serve({"/": [Reply(status, b"oops")]}) as site,
        pytest.raises(errors.HTTPStatusError) as caught,
    ):
        await assess(LeadRecord(id=1, name="Shop", website=site.url("/")))
    assert caught.value.retryable is retryable


async def test_a_private_address_is_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    website_road(monkeypatch, allow_private_networks=False)
    with serve({"/": [Reply()]}) as site, pytest.raises(errors.BlockedAddress):
        await assess(LeadRecord(id=1, name="Shop", website=site.url("/")))
    assert site.hits == {}


def test_leadshop_check_gbp_prints_the_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    html = page(
        head=ld({"@type": "Bakery", "name": "Corner Bakery", "telephone": "503-555-0100"}),
        body="<h1>Corner Bakery</h1><p>Call 503-555-0100</p>",
    ).encode()
    env = {k: v for k, v in os.environ.items() if k != "LEADSHOP_PLACES_API_KEY"}
    env["LEADSHOP_ALLOW_PRIVATE_NETWORKS"] = "true"
    script = Path(sys.executable).with_name("leadshop")
    with serve({"/": [Reply(body=html)]}) as site:
        done = subprocess.run(
            [str(script), "check", "gbp", site.url("/"), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    assert envelope["assessment"] == "gbp" and envelope["source"] == "website"
    checks = envelope["data"]["checks"]
    assert checks["name"]["result"] == "site-name-on-page"  # the CLI's lead is named by its URL
    assert checks["local-business-markup"]["result"] == "site-schema-incomplete"
    assert checks["phone"]["result"] == "site-phone-on-page"
