"""The gbp assessment: how well a local business shows up as a business on Google.

A salesperson's question is "when someone looks this business up on Google Maps, what do they
see?". Two roads answer it:

* **With ``LEADSHOP_PLACES_API_KEY``** (``source: "places"``): one Google Places API (New) Text
  Search for "<lead name>, <lead address>", asking through the field mask for only the fields
  graded here. The right place among the answers is the one whose website's domain or phone
  number is the lead's, or whose name is close enough to the lead's (``pick_place``); when none
  is, the assessment completes with a low score and the finding "no Google Business Profile
  found", which is itself what the salesperson needs to know. A found profile is graded on its
  status (open, closed for now, closed for good), its rating, its review count (on a log-normal
  curve, not steps), its opening hours, photos, website and phone.
* **Without a key** (``source: "website"``): the business signals on the lead's own home page,
  fetched through ``SafeClient``: schema.org ``LocalBusiness`` JSON-LD (any subtype such as
  Dentist or Plumber, inside ``@graph`` or lists), opening hours, a rating or a link to reviews,
  the lead's name, address and phone shown on the page and consistent with the lead record, and
  a Google Maps link or embed. These are what Google uses to tie a site to its business profile.

Shape, as in the other checklist assessments: collect (I/O) returns plain evidence; one pure check
per concern returns a result code; points and wording live only in ``PLACES_TABLE`` and
``SITE_TABLE``; ``leadshop.scoring.judge_checks`` adds them up from 100, clamped to 0..100.

The review count is the one continuous input. Its credit is ``1 - log_normal_score(count,
REVIEWS_P10, REVIEWS_MEDIAN)``: 0 reviews earn 0, ``REVIEWS_P10`` (4) earn 0.1, ``REVIEWS_MEDIAN``
(20) earn 0.5 and ``REVIEWS_MEDIAN**2 / REVIEWS_P10`` (100) earn 0.9, from where the check passes.
Below that, ``profile-reviews-few`` costs ``REVIEW_POINTS * (0.9 - credit) / 0.9`` points (at most
``REVIEW_POINTS``, falling smoothly to 0 at the pass line): the table's entry states the most it
costs, and ``judge_places`` puts the lead's own amount into the table it grades with.

Errors, extending ``leadshop.errors``::

    LeadshopError
    ├── GbpError
    │   └── PlacesError   Places refused or failed the request       429, 5xx, no answer retried;
    │                     (also a ``ServiceError``)                   400, 403, malformed never
    └── FetchError ...    the lead's site could not be fetched (``SafeClient``; website road only)

The key travels only in the ``X-Goog-Api-Key`` header and is redacted from every message kept.

``data`` (places): ``query`` (the text searched), ``candidates`` (places Google returned),
``place`` (None when none matched; else ``id``, ``name``, ``address``, ``business_status``,
``primary_type``, ``rating``, ``review_count``, ``photos``, ``opening_hours`` (Google's weekday
lines), ``website``, ``phone``, ``maps_url`` and ``match``: ``name_similarity`` 0..1,
``same_website``, ``same_phone``), ``review_credit`` (0..1, or None), ``checks``.
``data`` (website): ``url`` (the page graded, after redirects), ``status_code``,
``local_business`` (None, or the most complete LocalBusiness node's ``types``, ``name``,
``address``, ``telephone``, ``opening_hours``, ``rating``, ``review_count``), ``phones`` (digits
of every phone number on the page), ``maps_links``, ``review_links``, ``checks``. Per check,
``checks`` holds its ``result`` code, ``pass``, ``score_modifier`` and what it measured.
"""

from __future__ import annotations

import difflib
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from leadshop.apis import ServiceError, api_client, google_error, redact, send
from leadshop.config import Settings, get_settings
from leadshop.errors import LeadshopError
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.net import SafeClient, lead_url
from leadshop.pages import PageFacts, parse_page
from leadshop.scoring import Check, Outcome, Score, grade_for, judge_checks, log_normal_score
from tasks.registry import assessment_task

ALGORITHM_VERSION = "gbp/1"
SERVICE = "Places API (New)"
SEARCH_PATH = "/places:searchText"
PLACES_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
PAGE_SIZE = 5  # the lead is almost always among the first answers; Google's maximum is 20
LANGUAGE_CODE = "en"
# Only what is graded or shown: Text Search bills by the most expensive field asked for.
FIELD_MASK = ",".join(
    f"places.{field}"
    for field in (
        "id",
        "displayName",
        "formattedAddress",
        "rating",
        "userRatingCount",
        "regularOpeningHours",
        "websiteUri",
        "nationalPhoneNumber",
        "businessStatus",
        "photos",
        "googleMapsUri",
        "primaryType",
    )
)

NAME_MATCH = 0.8  # name similarity from which a place is taken for the lead's without other proof
REVIEWS_P10 = 4  # reviews earning 10 % of the review credit
REVIEWS_MEDIAN = 20  # reviews earning half of it
REVIEWS_PASS_CREDIT = 0.9  # reached at REVIEWS_MEDIAN**2 / REVIEWS_P10 = 100 reviews
REVIEW_POINTS = 25  # what no reviews at all cost
PHOTOS_PLENTY = 5  # Text Search returns at most 10 photo references
RATING_EXCELLENT = 4.5
RATING_GOOD = 4.0
RATING_MEDIOCRE = 3.5
PHONE_DIGITS = 10  # national significant number in North America; compared from the right
MAX_JSON_LD_DEPTH = 8
MAX_JSON_LD_NODES = 500


class GbpError(LeadshopError):
    pass


class PlacesError(GbpError, ServiceError):
    """``status_code`` is None when Places gave no answer at all (timeout, connection lost)."""


# --- Result codes and the score tables ------------------------------------------------------------


class PlacesResult(StrEnum):
    PROFILE_FOUND = "profile-found"
    PROFILE_NOT_FOUND = "profile-not-found"

    STATUS_OPERATIONAL = "profile-operational"
    STATUS_CLOSED_TEMPORARILY = "profile-closed-temporarily"
    STATUS_CLOSED_PERMANENTLY = "profile-closed-permanently"
    STATUS_UNKNOWN = "profile-status-unknown"

    RATING_EXCELLENT = "profile-rating-excellent"
    RATING_GOOD = "profile-rating-good"
    RATING_MEDIOCRE = "profile-rating-mediocre"
    RATING_POOR = "profile-rating-poor"
    RATING_MISSING = "profile-rating-missing"

    REVIEWS_PLENTY = "profile-reviews-plenty"
    REVIEWS_FEW = "profile-reviews-few"
    REVIEWS_NONE = "profile-reviews-none"

    HOURS_LISTED = "profile-hours-listed"
    HOURS_MISSING = "profile-hours-missing"

    PHOTOS_PLENTY = "profile-photos-plenty"
    PHOTOS_FEW = "profile-photos-few"
    PHOTOS_NONE = "profile-photos-none"

    WEBSITE_MATCHES = "profile-website-matches"
    WEBSITE_OTHER = "profile-website-other"
    WEBSITE_MISSING = "profile-website-missing"

    PHONE_LISTED = "profile-phone-listed"
    PHONE_DIFFERS = "profile-phone-differs"
    PHONE_MISSING = "profile-phone-missing"


class SiteResult(StrEnum):
    SCHEMA_COMPLETE = "site-schema-complete"
    SCHEMA_INCOMPLETE = "site-schema-incomplete"
    SCHEMA_MISSING = "site-schema-missing"

    HOURS_MARKED_UP = "site-hours-marked-up"
    HOURS_NOT_MARKED_UP = "site-hours-not-marked-up"
    HOURS_MISSING = "site-hours-missing"

    REVIEWS_MARKED_UP = "site-reviews-marked-up"
    REVIEWS_LINKED = "site-reviews-linked"
    REVIEWS_MISSING = "site-reviews-missing"

    NAME_MATCHES = "site-name-matches"
    NAME_ON_PAGE = "site-name-on-page"
    NAME_MISSING = "site-name-missing"

    ADDRESS_MATCHES = "site-address-matches"
    ADDRESS_ON_PAGE = "site-address-on-page"
    ADDRESS_DIFFERS = "site-address-differs"
    ADDRESS_MISSING = "site-address-missing"

    PHONE_MATCHES = "site-phone-matches"
    PHONE_ON_PAGE = "site-phone-on-page"
    PHONE_DIFFERS = "site-phone-differs"
    PHONE_MISSING = "site-phone-missing"

    MAPS_PRESENT = "site-maps-present"
    MAPS_MISSING = "site-maps-missing"


P = PlacesResult
S = SiteResult
_MANAGER = "in Google Business Profile Manager (business.google.com)"

PLACES_TABLE: dict[PlacesResult, Score] = {
    P.PROFILE_FOUND: Score(True, 0, "Google Maps has a business profile for this business."),
    P.PROFILE_NOT_FOUND: Score(
        False,
        -85,
        "No Google Business Profile found: the business does not show up on Google Maps.",
        f"Create and verify a free Google Business Profile {_MANAGER}, with the same name, "
        "address and phone as on the website.",
    ),
    P.STATUS_OPERATIONAL: Score(True, 0, "Google shows the business as open for business."),
    P.STATUS_CLOSED_TEMPORARILY: Score(
        False,
        -40,
        "Google shows the business as temporarily closed.",
        f"If the business has reopened, mark it open again {_MANAGER}.",
    ),
    P.STATUS_CLOSED_PERMANENTLY: Score(
        False,
        -80,
        "Google shows the business as permanently closed.",
        f"If the business still trades, ask Google to reopen the listing {_MANAGER}.",
    ),
    P.STATUS_UNKNOWN: Score(
        False,
        -5,
        "Google does not say whether the business is open.",
        f"Check the business's status and details {_MANAGER}.",
    ),
    P.RATING_EXCELLENT: Score(True, 0, "The Google rating is excellent (4.5 stars or more)."),
    P.RATING_GOOD: Score(
        False,
        -5,
        "The Google rating is good but below 4.5 stars.",
        "Ask happy customers for reviews and answer every review, good or bad.",
    ),
    P.RATING_MEDIOCRE: Score(
        False,
        -15,
        "The Google rating is mediocre (3.5 to 4 stars): many searchers skip such businesses.",
        "Answer critical reviews, fix what they point at, and ask happy customers for reviews.",
    ),
    P.RATING_POOR: Score(
        False,
        -25,
        "The Google rating is poor (below 3.5 stars).",
        "Answer every critical review, fix what they point at, and ask happy customers for "
        "reviews.",
    ),
    P.RATING_MISSING: Score(
        False,
        -15,
        "The profile has no Google rating yet.",
        "Ask recent customers for a Google review, with a short link from the profile.",
    ),
    P.REVIEWS_PLENTY: Score(True, 0, "The profile has plenty of Google reviews."),
    P.REVIEWS_FEW: Score(
        False,
        -REVIEW_POINTS,  # the most it costs; the lead's count decides how much (module docstring)
        "The profile has few Google reviews compared with established local businesses.",
        "Ask every satisfied customer for a review (a QR code at the counter, a link in e-mails).",
    ),
    P.REVIEWS_NONE: Score(
        False,
        -REVIEW_POINTS,
        "The profile has no Google reviews.",
        "Ask recent customers for Google reviews, with the profile's review link.",
    ),
    P.HOURS_LISTED: Score(True, 0, "The profile lists opening hours."),
    P.HOURS_MISSING: Score(
        False,
        -15,
        "The profile lists no opening hours, so Google cannot tell searchers whether it is open.",
        f"Add regular opening hours (and holiday hours) {_MANAGER}.",
    ),
    P.PHOTOS_PLENTY: Score(True, 0, "The profile has several photos."),
    P.PHOTOS_FEW: Score(
        False,
        -5,
        "The profile has only a few photos.",
        f"Add photos of the storefront, the inside, the team and the work {_MANAGER}.",
    ),
    P.PHOTOS_NONE: Score(
        False,
        -15,
        "The profile has no photos.",
        f"Add photos of the storefront, the inside, the team and the work {_MANAGER}.",
    ),
    P.WEBSITE_MATCHES: Score(True, 0, "The profile links to the business's website."),
    P.WEBSITE_OTHER: Score(
        False,
        -10,
        "The profile links to another website than the business's own.",
        f"Set the website {_MANAGER} to the business's own site.",
    ),
    P.WEBSITE_MISSING: Score(
        False,
        -15,
        "The profile links to no website.",
        f"Add the business's website {_MANAGER}.",
    ),
    P.PHONE_LISTED: Score(True, 0, "The profile lists the business's phone number."),
    P.PHONE_DIFFERS: Score(
        False,
        -5,
        "The profile's phone number is not the one on record for the business.",
        f"Make the phone number {_MANAGER} the same as on the website.",
    ),
    P.PHONE_MISSING: Score(
        False,
        -10,
        "The profile lists no phone number, so searchers cannot call from Google.",
        f"Add the business's phone number {_MANAGER}.",
    ),
}

_SCHEMA_ADVICE = (
    "Add schema.org LocalBusiness JSON-LD (or the closest type, such as Dentist or Plumber) "
    "with the business's name, address, telephone, opening hours and URL."
)
_NAP_ADVICE = (
    "Show the business's name, full address and phone number as text on every page (the "
    "footer is enough), exactly as on the Google Business Profile."
)

SITE_TABLE: dict[SiteResult, Score] = {
    S.SCHEMA_COMPLETE: Score(
        True, 0, "The page describes the business in schema.org LocalBusiness markup."
    ),
    S.SCHEMA_INCOMPLETE: Score(
        False,
        -10,
        "The page's LocalBusiness markup lacks the name, address or telephone.",
        _SCHEMA_ADVICE,
    ),
    S.SCHEMA_MISSING: Score(
        False,
        -30,
        "No schema.org LocalBusiness markup: search engines cannot tie the site to the business.",
        _SCHEMA_ADVICE,
    ),
    S.HOURS_MARKED_UP: Score(True, 0, "Opening hours are in the page's business markup."),
    S.HOURS_NOT_MARKED_UP: Score(
        False,
        -5,
        "Opening hours are shown but not in the page's business markup.",
        "Add openingHoursSpecification (or openingHours) to the LocalBusiness markup.",
    ),
    S.HOURS_MISSING: Score(
        False,
        -10,
        "The page shows no opening hours.",
        "Show opening hours on the page and in the LocalBusiness markup.",
    ),
    S.REVIEWS_MARKED_UP: Score(True, 0, "The page shows the business's rating in its markup."),
    S.REVIEWS_LINKED: Score(
        False,
        -5,
        "The page links to reviews but shows no rating in its markup.",
        "Add the aggregateRating of the reviews shown to the LocalBusiness markup.",
    ),
    S.REVIEWS_MISSING: Score(
        False,
        -15,
        "The page neither shows nor links to customer reviews.",
        "Link to the Google reviews (or embed a reviews widget) and invite visitors to leave one.",
    ),
    S.NAME_MATCHES: Score(True, 0, "The page names the business as the lead list does."),
    S.NAME_ON_PAGE: Score(True, 0, "The page names the business."),
    S.NAME_MISSING: Score(
        False,
        -10,
        "The page does not name the business as it is known.",
        "Use the business's exact name in the page title, the header and the footer.",
    ),
    S.ADDRESS_MATCHES: Score(True, 0, "The page shows the business's address."),
    S.ADDRESS_ON_PAGE: Score(True, 0, "The page shows a street address."),
    S.ADDRESS_DIFFERS: Score(
        False,
        -10,
        "The page's address does not match the one on record for the business.",
        _NAP_ADVICE,
    ),
    S.ADDRESS_MISSING: Score(False, -15, "The page shows no street address.", _NAP_ADVICE),
    S.PHONE_MATCHES: Score(True, 0, "The page shows the business's phone number."),
    S.PHONE_ON_PAGE: Score(True, 0, "The page shows a phone number."),
    S.PHONE_DIFFERS: Score(
        False,
        -10,
        "The page's phone numbers are not the one on record for the business.",
        _NAP_ADVICE,
    ),
    S.PHONE_MISSING: Score(
        False,
        -15,
        "The page shows no phone number.",
        "Show the phone number as a click-to-call link (tel:) at the top and bottom of the page.",
    ),
    S.MAPS_PRESENT: Score(True, 0, "The page links to or embeds the business on Google Maps."),
    S.MAPS_MISSING: Score(
        False,
        -15,
        "The page neither links to nor embeds Google Maps.",
        "Embed the Google Maps location or link to the Google Business Profile from the "
        "contact section.",
    ),
}


# --- Matching helpers: pure -----------------------------------------------------------------------

_NON_WORD = re.compile(r"[^0-9a-z]+")
_LEGAL_SUFFIXES = frozenset({"llc", "inc", "ltd", "pllc", "corp", "co", "gmbh", "plc"})
_ABBREVIATIONS = {
    "street": "st",
    "avenue": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "highway": "hwy",
    "parkway": "pkwy",
    "square": "sq",
    "terrace": "ter",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northwest": "nw",
    "northeast": "ne",
    "southwest": "sw",
    "southeast": "se",
}
_UNIT_WORDS = frozenset({"suite", "ste", "unit", "apt", "apartment", "floor", "fl", "no"})
_COUNTRY_WORDS = frozenset({"usa", "us", "united", "states", "america", "uk", "ca", "canada"})
_PHONE_IN_TEXT = re.compile(
    r"(?<![\w+])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)"
    r"|\+\d[\d\s().-]{6,18}\d"
)


def words(text: str) -> list[str]:
    """Lower-case ASCII words: accents dropped, "&" read as "and", punctuation as spaces."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_WORD.sub(" ", plain.lower().replace("&", " and ")).split()


def name_key(name: str) -> str:
    return " ".join(word for word in words(name) if word not in _LEGAL_SUFFIXES)


def name_similarity(a: str, b: str) -> float:
    """0..1: how alike two business names are, ignoring case, punctuation and "LLC"; the share
    of the shorter name's words found in the longer one counts too ("Harborview Dental" is
    "Harborview Family Dental")."""
    key_a, key_b = name_key(a), name_key(b)
    if not key_a or not key_b:
        return 0.0
    ratio = difflib.SequenceMatcher(None, key_a, key_b).ratio()
    shorter, longer = sorted((key_a.split(), key_b.split()), key=len)
    contained = sum(word in longer for word in shorter) / len(shorter)
    return round(max(ratio, contained if len(shorter) > 1 else 0.0), 3)


def phone_digits(phone: str | None) -> str:
    """The number's last ``PHONE_DIGITS`` digits, so "+1 (503) 555-0142" is "5035550142"."""
    return "".join(c for c in phone or "" if c.isdigit())[-PHONE_DIGITS:]


def site_host(url: str | None) -> str:
    """The host of a website given with or without a scheme, without "www."."""
    text = (url or "").strip()
    host = urlsplit(text if "://" in text else f"http://{text}").hostname or ""
    return host.removeprefix("www.")


def same_site(a: str | None, b: str | None) -> bool:
    """One host is the other or a subdomain of it (a chain's branch page counts)."""
    host_a, host_b = site_host(a), site_host(b)
    if not host_a or not host_b:
        return False
    return host_a == host_b or host_a.endswith(f".{host_b}") or host_b.endswith(f".{host_a}")


def address_words(address: str) -> list[str]:
    """An address's words with street types and directions abbreviated alike."""
    return [_ABBREVIATIONS.get(word, word) for word in words(address)]


def compare_address(lead_address: str, page_words: set[str]) -> tuple[list[str], list[str]]:
    """The lead address's telling words (numbers, street, town, postal code; not "Suite" or the
    country) found on the page, and those missing from it."""
    wanted = [w for w in address_words(lead_address) if w not in _UNIT_WORDS | _COUNTRY_WORDS]
    found = [word for word in wanted if word in page_words]
    return found, [word for word in wanted if word not in page_words]


def lead_name(lead: LeadRecord) -> str | None:
    """The lead's name, or None when there is none to go by (``leadshop check`` names a lead
    after its URL)."""
    name = lead.name.strip()
    if not name or name == lead.website.strip() or site_host(name) == site_host(lead.website):
        return None
    return name


# --- Places: evidence, checks, judge --------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """One place as Text Search describes it: only the fields the field mask asks for."""

    id: str
    name: str
    address: str = ""
    business_status: str | None = None
    primary_type: str | None = None
    rating: float | None = None
    review_count: int = 0
    opening_hours: tuple[str, ...] = ()  # weekdayDescriptions
    has_hours: bool = False
    photos: int = 0
    website: str | None = None
    phone: str | None = None
    maps_url: str | None = None


@dataclass(frozen=True)
class Match:
    """Why a place may be the lead's."""

    name_similarity: float
    same_website: bool
    same_phone: bool

    @property
    def accepted(self) -> bool:
        return self.same_website or self.same_phone or self.name_similarity >= NAME_MATCH

    @property
    def rank(self) -> tuple[int, float]:
        return int(self.same_website) + int(self.same_phone), self.name_similarity


def match_place(lead: LeadRecord, place: Place) -> Match:
    name = lead_name(lead)
    return Match(
        name_similarity=name_similarity(name, place.name) if name else 0.0,
        same_website=same_site(lead.website, place.website),
        same_phone=bool(phone_digits(lead.phone))
        and phone_digits(lead.phone) == phone_digits(place.phone),
    )


def pick_place(lead: LeadRecord, places: Iterable[Place]) -> tuple[Place, Match] | None:
    """The lead's place among Google's answers: the best-proven one (same website and phone
    first, then the closest name), or None when no answer is the lead's."""
    accepted = [(place, match) for place in places if (match := match_place(lead, place)).accepted]
    return max(accepted, key=lambda pair: pair[1].rank, default=None)


@dataclass(frozen=True)
class PlacesEvidence:
    query: str
    candidates: int
    lead_website: str
    lead_phone: str | None
    place: Place | None = None
    match: Match | None = None

    @property
    def found(self) -> Place:
        if self.place is None:
            raise ValueError("no place was matched")  # judge_places never asks then
        return self.place


def review_credit(count: int) -> float:
    """0..1 on the curve in the module docstring: more reviews, more credit."""
    return 1.0 - log_normal_score(count, REVIEWS_P10, REVIEWS_MEDIAN)


def review_points(count: int) -> int:
    """What a review count below the pass line costs, falling smoothly to 0 at it."""
    shortfall = max(0.0, REVIEWS_PASS_CREDIT - review_credit(count)) / REVIEWS_PASS_CREDIT
    return round(REVIEW_POINTS * shortfall)


PlacesOutcome = Outcome[PlacesResult]


def check_profile(evidence: PlacesEvidence) -> PlacesOutcome:
    if evidence.place is None:
        return Outcome(
            P.PROFILE_NOT_FOUND,
            f'Google Maps has no place matching "{evidence.query}" by name, website or phone '
            f"({evidence.candidates} other places answered).",
            {"candidates": evidence.candidates},
        )
    return Outcome(P.PROFILE_FOUND, data={"place_id": evidence.place.id})


def check_status(evidence: PlacesEvidence) -> PlacesOutcome:
    status = evidence.found.business_status
    result = {
        "OPERATIONAL": P.STATUS_OPERATIONAL,
        "CLOSED_TEMPORARILY": P.STATUS_CLOSED_TEMPORARILY,
        "CLOSED_PERMANENTLY": P.STATUS_CLOSED_PERMANENTLY,
    }.get(status or "", P.STATUS_UNKNOWN)
    return Outcome(result, f"Google's business status: {status or 'not given'}.", status)


def check_rating(evidence: PlacesEvidence) -> PlacesOutcome:
    place = evidence.found
    if place.rating is None:
        return Outcome(P.RATING_MISSING, "Google gives no rating.", None)
    detail = f"{place.rating:.1f} stars from {place.review_count} reviews."
    for floor, result in (
        (RATING_EXCELLENT, P.RATING_EXCELLENT),
        (RATING_GOOD, P.RATING_GOOD),
        (RATING_MEDIOCRE, P.RATING_MEDIOCRE),
    ):
        if place.rating >= floor:
            return Outcome(result, detail, place.rating)
    return Outcome(P.RATING_POOR, detail, place.rating)


def check_reviews(evidence: PlacesEvidence) -> PlacesOutcome:
    count = evidence.found.review_count
    data = {"count": count, "credit": round(review_credit(count), 3)}
    if count <= 0:
        return Outcome(P.REVIEWS_NONE, "Google counts no reviews.", data)
    if review_credit(count) >= REVIEWS_PASS_CREDIT:
        return Outcome(P.REVIEWS_PLENTY, f"{count} reviews.", data)
    target = round(REVIEWS_MEDIAN**2 / REVIEWS_P10)
    return Outcome(P.REVIEWS_FEW, f"{count} reviews; from {target} on this check passes.", data)


def check_hours(evidence: PlacesEvidence) -> PlacesOutcome:
    place = evidence.found
    if place.has_hours:
        return Outcome(P.HOURS_LISTED, "; ".join(place.opening_hours), list(place.opening_hours))
    return Outcome(P.HOURS_MISSING, "Google has no regular opening hours for the place.", [])


def check_photos(evidence: PlacesEvidence) -> PlacesOutcome:
    count = evidence.found.photos
    detail = f"{count} photos returned by Google (it returns at most 10)."
    if count >= PHOTOS_PLENTY:
        return Outcome(P.PHOTOS_PLENTY, detail, count)
    return Outcome(P.PHOTOS_FEW if count else P.PHOTOS_NONE, detail, count)


def check_website(evidence: PlacesEvidence) -> PlacesOutcome:
    website = evidence.found.website
    if not website:
        return Outcome(P.WEBSITE_MISSING, "The profile has no website.", None)
    if same_site(website, evidence.lead_website):
        return Outcome(P.WEBSITE_MATCHES, f"The profile links to {website}.", website)
    return Outcome(
        P.WEBSITE_OTHER,
        f"The profile links to {website}, not to {evidence.lead_website}.",
        website,
    )


def check_phone(evidence: PlacesEvidence) -> PlacesOutcome:
    phone = evidence.found.phone
    if not phone_digits(phone):
        return Outcome(P.PHONE_MISSING, "The profile has no phone number.", None)
    on_record = phone_digits(evidence.lead_phone)
    if on_record and on_record != phone_digits(phone):
        return Outcome(
            P.PHONE_DIFFERS,
            f"The profile lists {phone}, the lead list {evidence.lead_phone}.",
            phone,
        )
    return Outcome(P.PHONE_LISTED, f"The profile lists {phone}.", phone)


PlacesCheck = Check[PlacesEvidence, PlacesResult]
PROFILE_CHECK = PlacesCheck(
    "profile", "Google Business Profile", check_profile, (P.PROFILE_FOUND, P.PROFILE_NOT_FOUND)
)
PLACES_CHECKS: tuple[PlacesCheck, ...] = (
    PROFILE_CHECK,
    PlacesCheck(
        "status",
        "Business status",
        check_status,
        (
            P.STATUS_OPERATIONAL,
            P.STATUS_CLOSED_TEMPORARILY,
            P.STATUS_CLOSED_PERMANENTLY,
            P.STATUS_UNKNOWN,
        ),
    ),
    PlacesCheck(
        "rating",
        "Rating",
        check_rating,
        (P.RATING_EXCELLENT, P.RATING_GOOD, P.RATING_MEDIOCRE, P.RATING_POOR, P.RATING_MISSING),
    ),
    PlacesCheck(
        "reviews", "Reviews", check_reviews, (P.REVIEWS_PLENTY, P.REVIEWS_FEW, P.REVIEWS_NONE)
    ),
    PlacesCheck("hours", "Opening hours", check_hours, (P.HOURS_LISTED, P.HOURS_MISSING)),
    PlacesCheck("photos", "Photos", check_photos, (P.PHOTOS_PLENTY, P.PHOTOS_FEW, P.PHOTOS_NONE)),
    PlacesCheck(
        "website",
        "Website",
        check_website,
        (P.WEBSITE_MATCHES, P.WEBSITE_OTHER, P.WEBSITE_MISSING),
    ),
    PlacesCheck("phone", "Phone", check_phone, (P.PHONE_LISTED, P.PHONE_DIFFERS, P.PHONE_MISSING)),
)


def places_table(evidence: PlacesEvidence) -> dict[PlacesResult, Score]:
    """``PLACES_TABLE`` with ``profile-reviews-few`` charging this lead's amount."""
    if evidence.place is None:
        return PLACES_TABLE
    few = PLACES_TABLE[P.REVIEWS_FEW]
    points = review_points(evidence.place.review_count)
    return {**PLACES_TABLE, P.REVIEWS_FEW: replace(few, modifier=-points)}


def _place_data(place: Place, match: Match | None) -> dict[str, Any]:
    data = asdict(place)
    data.pop("has_hours")
    return {**data, "match": asdict(match) if match else None}


def judge_places(evidence: PlacesEvidence) -> AssessmentResult:
    """Grade the matched profile; with none matched, only "no profile found" is graded."""
    place = evidence.place
    checks = PLACES_CHECKS if place is not None else (PROFILE_CHECK,)
    judgement = judge_checks(checks, evidence, places_table(evidence))
    score = judgement.score()
    grade = grade_for(score)
    if place is None:
        summary = (
            f"Google Business Profile grade {grade} ({score}/100): no Google Business Profile "
            f'found for "{evidence.query}", so the business is missing from Google Maps.'
        )
    else:
        stars = f"{place.rating:.1f} stars" if place.rating is not None else "no rating"
        summary = judgement.summary(
            f"Google Business Profile grade {grade} ({score}/100) for {place.name}, {stars} "
            f"from {place.review_count} reviews"
        )
    return AssessmentResult(
        assessment="gbp",
        status="completed",
        source="places",
        score=score,
        grade=grade,
        summary=summary,
        findings=judgement.findings(),
        data={
            "query": evidence.query,
            "candidates": evidence.candidates,
            "place": _place_data(place, evidence.match) if place is not None else None,
            "review_credit": round(review_credit(place.review_count), 3) if place else None,
            "checks": judgement.entries(),
        },
        algorithm_version=ALGORITHM_VERSION,
    )


def places_evidence(lead: LeadRecord, query: str, places: list[Place]) -> PlacesEvidence:
    picked = pick_place(lead, places)
    return PlacesEvidence(
        query=query,
        candidates=len(places),
        lead_website=lead.website,
        lead_phone=lead.phone,
        place=picked[0] if picked else None,
        match=picked[1] if picked else None,
    )


def search_query(lead: LeadRecord) -> str:
    """ "<name>, <address>"; a lead named after its URL is searched by its host."""
    name = lead_name(lead) or site_host(lead.website)
    return ", ".join(part for part in (name, (lead.address or "").strip()) if part)


# --- Places: the client ---------------------------------------------------------------------------

_KEY_HINTS: Mapping[str, str] = {
    "API_KEY_INVALID": "Google does not accept the key: check LEADSHOP_PLACES_API_KEY.",
    "SERVICE_DISABLED": "Enable the Places API (New) (places.googleapis.com) in the key's "
    "Google Cloud project, with billing set up.",
    "API_KEY_SERVICE_BLOCKED": "The key's API restrictions block the Places API (New): allow "
    "it for this key in the Google Cloud console.",
}
_STATUS_HINTS: Mapping[int, str] = {
    400: "Check LEADSHOP_PLACES_API_KEY; if the key is right, the request itself was refused "
    "and will be refused again.",
    401: "Check LEADSHOP_PLACES_API_KEY.",
    403: "Check that LEADSHOP_PLACES_API_KEY belongs to a project with the Places API (New) "
    "enabled and billing set up, and that the key's restrictions allow this server and API.",
    429: "The Places quota is used up for now; the request will be tried again.",
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_place(item: Mapping[str, Any]) -> Place:
    """One element of ``places``; a field of the wrong type counts as absent."""
    display = item.get("displayName")
    hours = item.get("regularOpeningHours")
    hours = hours if isinstance(hours, dict) else {}
    lines = hours.get("weekdayDescriptions")
    photos = item.get("photos")
    count = _number(item.get("userRatingCount"))
    return Place(
        id=_text(item.get("id")) or "",
        name=(_text(display.get("text")) if isinstance(display, dict) else None) or "",
        address=_text(item.get("formattedAddress")) or "",
        business_status=_text(item.get("businessStatus")),
        primary_type=_text(item.get("primaryType")),
        rating=_number(item.get("rating")),
        review_count=int(count) if count else 0,
        opening_hours=tuple(line for line in lines or () if isinstance(line, str))
        if isinstance(lines, list)
        else (),
        has_hours=bool(hours.get("periods") or hours.get("weekdayDescriptions")),
        photos=len(photos) if isinstance(photos, list) else 0,
        website=_text(item.get("websiteUri")),
        phone=_text(item.get("nationalPhoneNumber")),
        maps_url=_text(item.get("googleMapsUri")),
    )


class PlacesClient:
    """Places API (New) Text Search. A trusted API (the lead's name and address are only the
    query), so a plain httpx client with TLS verified, no redirects and the key in a header."""

    def __init__(
        self, api_url: str, api_key: SecretStr, timeout: httpx.Timeout = PLACES_TIMEOUT
    ) -> None:
        self.url = api_url.rstrip("/") + SEARCH_PATH
        self._key = api_key
        self._client = api_client(timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlacesClient:
        if settings.places_api_key is None:
            raise ValueError("no Places API key configured")
        return cls(settings.places_api_url, settings.places_api_key)

    async def __aenter__(self) -> PlacesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def search(self, query: str) -> list[Place]:
        """The places Google finds for ``query``, best first; [] when it finds none."""
        request = self._client.build_request(
            "POST",
            self.url,
            json={"textQuery": query, "pageSize": PAGE_SIZE, "languageCode": LANGUAGE_CODE},
            headers={
                "X-Goog-Api-Key": self._key.get_secret_value(),
                "X-Goog-FieldMask": FIELD_MASK,
            },
        )
        response = await send(self._client, request, SERVICE, PlacesError, self._key)
        if not response.is_success:
            raise self._error(response)
        return self._places(response)

    def _places(self, response: httpx.Response) -> list[Place]:
        """Text Search answers ``{}`` when nothing matches, else ``{"places": [...]}``."""
        try:
            body = response.json()
        except ValueError:
            body = None
        places = body.get("places", []) if isinstance(body, dict) else None
        if not isinstance(places, list) or not all(isinstance(item, dict) for item in places):
            said = redact(response.text, self._key)
            raise PlacesError(
                f"{SERVICE} answered HTTP {response.status_code} with something that is not a "
                f"search result: {said}",
                response.status_code,
            )
        return [parse_place(item) for item in places]

    def _error(self, response: httpx.Response) -> PlacesError:
        """Google's envelope told in words that say what to do; 429 and 5xx stay retryable."""
        status_code = response.status_code
        error = google_error(response)
        reasons = error.reasons if error else frozenset()
        said = redact(error.message if error else response.text, self._key)
        answer = " ".join(filter(None, (f"HTTP {status_code}", error.status if error else "")))
        hint = next((_KEY_HINTS[reason] for reason in sorted(reasons) if reason in _KEY_HINTS), "")
        hint = hint or _STATUS_HINTS.get(status_code, "")
        message = f"{SERVICE} answered {answer}: {said}"
        return PlacesError(f"{message} {hint}".strip(), status_code, error.status if error else "")


# --- Website: evidence, checks, judge -------------------------------------------------------------

# schema.org LocalBusiness and its subtypes (schema.org 28), by their short names.
_LOCAL_BUSINESS_NAMES = """
    LocalBusiness AnimalShelter ArchiveOrganization AutomotiveBusiness AutoBodyShop AutoDealer
    AutoPartsStore AutoRental AutoRepair AutoWash GasStation MotorcycleDealer MotorcycleRepair
    ChildCare Dentist DryCleaningOrLaundry EmergencyService FireStation Hospital PoliceStation
    EmploymentAgency EntertainmentBusiness AdultEntertainment AmusementPark ArtGallery Casino
    ComedyClub MovieTheater NightClub FinancialService AccountingService AutomatedTeller
    BankOrCreditUnion InsuranceAgency FoodEstablishment Bakery BarOrPub Brewery CafeOrCoffeeShop
    Distillery FastFoodRestaurant IceCreamShop Restaurant Winery GovernmentOffice PostOffice
    HealthAndBeautyBusiness BeautySalon DaySpa HairSalon HealthClub NailSalon TattooParlor
    HomeAndConstructionBusiness Electrician GeneralContractor HVACBusiness HousePainter
    Locksmith MovingCompany Plumber RoofingContractor InternetCafe LegalService Attorney Notary
    Library LodgingBusiness BedAndBreakfast Campground Hostel Hotel Motel Resort SkiResort
    VacationRental MedicalBusiness CommunityHealth Dermatology DietNutrition Emergency Geriatric
    Gynecologic MedicalClinic Midwifery Nursing Obstetric Oncologic Optician Optometric
    Otolaryngologic Pediatric Pharmacy Physician Physiotherapy PlasticSurgery Podiatric
    PrimaryCare Psychiatric PublicHealth ProfessionalService RadioStation RealEstateAgent
    RecyclingCenter SelfStorage ShoppingCenter SportsActivityLocation BowlingAlley ExerciseGym
    GolfCourse PublicSwimmingPool SportsClub StadiumOrArena TennisComplex Store BikeStore
    BookStore ClothingStore ComputerStore ConvenienceStore DepartmentStore ElectronicsStore
    Florist FurnitureStore GardenStore GroceryStore HardwareStore HobbyShop HomeGoodsStore
    JewelryStore LiquorStore MensClothingStore MobilePhoneStore MovieRentalStore MusicStore
    OfficeEquipmentStore OutletStore PawnShop PetStore ShoeStore SportingGoodsStore TireShop
    ToyStore WholesaleStore TelevisionStation TouristInformationCenter TravelAgency
    VeterinaryCare
"""
LOCAL_BUSINESS_TYPES = frozenset(_LOCAL_BUSINESS_NAMES.split())
_DAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\b", re.IGNORECASE)
_TIME_RANGE = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?\s*(?:-|\u2013|\u2014|to)\s*\d{1,2}(?::\d{2})?",
    re.IGNORECASE,
)
_REVIEW_WORDS = re.compile(r"\breviews?\b|\bbewertung|\bavis\b", re.IGNORECASE)
_REVIEW_HOSTS = ("yelp.", "tripadvisor.", "trustpilot.", "facebook.com")
_REVIEW_WIDGETS = (
    "elfsight",
    "trustindex",
    "birdeye",
    "embedsocial",
    "reviewsonmywebsite",
    "trustpilot",
    "grade.us",
    "podium",
)


@dataclass(frozen=True)
class LocalBusiness:
    """The page's most complete schema.org LocalBusiness node, flattened."""

    types: tuple[str, ...]
    name: str | None = None
    address: str | None = None
    telephone: str | None = None
    opening_hours: tuple[str, ...] = ()
    rating: float | None = None
    review_count: int | None = None

    @property
    def missing(self) -> list[str]:
        fields = {"name": self.name, "address": self.address, "telephone": self.telephone}
        return [field for field, value in fields.items() if not value]


@dataclass(frozen=True)
class SiteEvidence:
    url: str
    status_code: int
    lead_name: str | None
    lead_address: str | None
    lead_phone: str | None
    title: str
    text: str  # the page's visible text
    business: LocalBusiness | None
    hours_on_page: bool
    phones: tuple[str, ...]  # digits, as ``phone_digits`` keeps them
    maps_links: tuple[str, ...]
    review_links: tuple[str, ...]


def _short_type(value: Any) -> str:
    return str(value).rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def json_ld_nodes(blocks: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every object in the JSON-LD blocks, ``@graph`` and lists included, nested ones too."""
    stack: list[tuple[Any, int]] = [(block, 0) for block in blocks]
    seen = 0
    while stack and seen < MAX_JSON_LD_NODES:
        node, depth = stack.pop(0)
        seen += 1
        if depth > MAX_JSON_LD_DEPTH:
            continue
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, dict):
            yield node
            stack.extend((value, depth + 1) for value in node.values())


def _types(node: Mapping[str, Any]) -> tuple[str, ...]:
    raw = node.get("@type")
    return tuple(_short_type(t) for t in (raw if isinstance(raw, list) else [raw]) if t)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _address_text(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        keys = ("streetAddress", "addressLocality", "addressRegion", "postalCode")
        parts = [str(value[key]).strip() for key in keys if value.get(key)]
        return ", ".join(part for part in parts if part) or None
    return None


def _hours_lines(node: Mapping[str, Any]) -> tuple[str, ...]:
    lines: list[str] = []
    simple = node.get("openingHours")
    for line in simple if isinstance(simple, list) else [simple]:
        if isinstance(line, str) and line.strip():
            lines.append(line.strip())
    spec = node.get("openingHoursSpecification")
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, dict):
            days = item.get("dayOfWeek")
            days = days if isinstance(days, list) else [days]
            named = ",".join(_short_type(day) for day in days if day)
            lines.append(f"{named} {item.get('opens', '')}-{item.get('closes', '')}".strip())
    return tuple(lines)


def _rating(node: Mapping[str, Any]) -> tuple[float | None, int | None]:
    rating = _first(node.get("aggregateRating"))
    if not isinstance(rating, dict):
        return None, None
    try:
        value = float(rating.get("ratingValue"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = None
    count = rating.get("reviewCount", rating.get("ratingCount"))
    try:
        number = int(count) if count is not None else None
    except (TypeError, ValueError):
        number = None
    return value, number


def local_business(json_ld: Iterable[Any]) -> LocalBusiness | None:
    """The most complete LocalBusiness (or subtype) node in the page's JSON-LD."""
    found = []
    for node in json_ld_nodes(json_ld):
        types = _types(node)
        if not any(t in LOCAL_BUSINESS_TYPES for t in types):
            continue
        name = _first(node.get("name"))
        telephone = _first(node.get("telephone"))
        rating, count = _rating(node)
        found.append(
            LocalBusiness(
                types=types,
                name=name.strip() or None if isinstance(name, str) else None,
                address=_address_text(node.get("address")),
                telephone=telephone.strip() or None if isinstance(telephone, str) else None,
                opening_hours=_hours_lines(node),
                rating=rating,
                review_count=count,
            )
        )
    return max(found, key=lambda b: (-len(b.missing), bool(b.opening_hours)), default=None)


def _is_google_maps(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path
    if host in ("maps.google.com", "maps.app.goo.gl", "g.page") or host.startswith("maps.google."):
        return True
    if host == "goo.gl" and path.startswith("/maps"):
        return True
    return host.startswith("google.") and path.startswith("/maps")


def _is_review_link(href: str, text: str) -> bool:
    host = (urlsplit(href).hostname or "").lower()
    if "writereview" in href.lower() or (host == "g.page" and "/review" in href.lower()):
        return True
    if any(part in host for part in _REVIEW_HOSTS) and "review" in (href + text).lower():
        return True
    return bool(_REVIEW_WORDS.search(text)) and bool(href) and not href.startswith("#")


def page_phones(facts: PageFacts, business: LocalBusiness | None) -> tuple[str, ...]:
    """Digits of every phone number on the page: tel: links, the markup, the text."""
    found = [a.href.removeprefix("tel:") for a in facts.anchors if a.href.startswith("tel:")]
    if business and business.telephone:
        found.append(business.telephone)
    found += [match.group() for match in _PHONE_IN_TEXT.finditer(facts.text)]
    return tuple(dict.fromkeys(d for d in map(phone_digits, found) if len(d) >= 7))


def site_evidence(lead: LeadRecord, url: str, status_code: int, facts: PageFacts) -> SiteEvidence:
    """What the checks read, from a parsed page: pure, so tests need no server."""
    business = local_business(facts.json_ld)
    maps = [a.href for a in facts.anchors if _is_google_maps(a.href)]
    maps += [
        frame.get("src", "") for frame in facts.iframes if _is_google_maps(frame.get("src", ""))
    ]
    reviews = [a.href for a in facts.anchors if _is_review_link(a.href, a.text)]
    reviews += [
        script.get("src", "")
        for script in facts.scripts
        if any(vendor in script.get("src", "").lower() for vendor in _REVIEW_WIDGETS)
    ]
    return SiteEvidence(
        url=url,
        status_code=status_code,
        lead_name=lead_name(lead),
        lead_address=(lead.address or "").strip() or None,
        lead_phone=lead.phone,
        title=facts.title or "",
        text=facts.text,
        business=business,
        hours_on_page=bool(_DAY.search(facts.text) and _TIME_RANGE.search(facts.text)),
        phones=page_phones(facts, business),
        maps_links=tuple(dict.fromkeys(maps)),
        review_links=tuple(dict.fromkeys(reviews)),
    )


SiteOutcome = Outcome[SiteResult]


def check_schema(evidence: SiteEvidence) -> SiteOutcome:
    business = evidence.business
    if business is None:
        return Outcome(S.SCHEMA_MISSING, "No LocalBusiness (or subtype) node in any JSON-LD.")
    kind = "/".join(business.types)
    if business.missing:
        missing = ", ".join(business.missing)
        return Outcome(S.SCHEMA_INCOMPLETE, f"{kind} markup without: {missing}.", kind)
    return Outcome(S.SCHEMA_COMPLETE, f"{kind} markup with name, address and telephone.", kind)


def check_site_hours(evidence: SiteEvidence) -> SiteOutcome:
    business = evidence.business
    if business is not None and business.opening_hours:
        lines = list(business.opening_hours)
        return Outcome(S.HOURS_MARKED_UP, "; ".join(lines), lines)
    if evidence.hours_on_page:
        return Outcome(S.HOURS_NOT_MARKED_UP, "Days and times appear in the page's text.")
    return Outcome(S.HOURS_MISSING, "No days with opening times in the page's text or markup.")


def check_site_reviews(evidence: SiteEvidence) -> SiteOutcome:
    business = evidence.business
    if business is not None and business.rating is not None:
        data = {"rating": business.rating, "review_count": business.review_count}
        detail = f"aggregateRating {business.rating} from {business.review_count} reviews."
        return Outcome(S.REVIEWS_MARKED_UP, detail, data)
    if evidence.review_links:
        return Outcome(S.REVIEWS_LINKED, f"Links: {', '.join(evidence.review_links[:3])}.")
    return Outcome(S.REVIEWS_MISSING, "No rating markup, review link or reviews widget.")


def _page_words(evidence: SiteEvidence) -> str:
    business = evidence.business
    extra = [business.name or "", business.address or ""] if business else []
    return " ".join(words(" ".join([evidence.title, evidence.text, *extra])))


def check_site_name(evidence: SiteEvidence) -> SiteOutcome:
    marked = evidence.business.name if evidence.business else None
    if evidence.lead_name is None:
        shown = marked or evidence.title
        if shown:
            return Outcome(S.NAME_ON_PAGE, f"The page calls the business {shown!r}.", shown)
        return Outcome(S.NAME_MISSING, "The page has neither a title nor a marked-up name.")
    key = name_key(evidence.lead_name)
    if key and (f" {key} " in f" {_page_words(evidence)} "):
        return Outcome(S.NAME_MATCHES, f"{evidence.lead_name!r} appears on the page.", True)
    if marked and name_similarity(marked, evidence.lead_name) >= NAME_MATCH:
        return Outcome(S.NAME_MATCHES, f"The markup names it {marked!r}.", True)
    return Outcome(S.NAME_MISSING, f"{evidence.lead_name!r} does not appear on the page.", False)


def check_site_address(evidence: SiteEvidence) -> SiteOutcome:
    page = set(address_words(_page_words(evidence)))
    if evidence.lead_address is None:
        marked = evidence.business.address if evidence.business else None
        if marked:
            return Outcome(S.ADDRESS_ON_PAGE, f"The markup gives {marked!r}.", marked)
        return Outcome(S.ADDRESS_MISSING, "No address on record to look for, and none marked up.")
    found, missing = compare_address(evidence.lead_address, page)
    data = {"found": found, "missing": missing}
    if not missing:
        return Outcome(S.ADDRESS_MATCHES, f"{evidence.lead_address!r} appears on the page.", data)
    if found:
        detail = f"Of {evidence.lead_address!r}, the page lacks: {', '.join(missing)}."
        return Outcome(S.ADDRESS_DIFFERS, detail, data)
    return Outcome(S.ADDRESS_MISSING, f"{evidence.lead_address!r} does not appear.", data)


def check_site_phone(evidence: SiteEvidence) -> SiteOutcome:
    phones = list(evidence.phones)
    wanted = phone_digits(evidence.lead_phone)
    if not phones:
        return Outcome(S.PHONE_MISSING, "No phone number in tel: links, markup or text.", phones)
    if not wanted:
        return Outcome(S.PHONE_ON_PAGE, f"Numbers on the page: {', '.join(phones)}.", phones)
    if wanted in phones:
        return Outcome(S.PHONE_MATCHES, f"{evidence.lead_phone} appears on the page.", phones)
    detail = f"{evidence.lead_phone} is not among the page's numbers ({', '.join(phones)})."
    return Outcome(S.PHONE_DIFFERS, detail, phones)


def check_maps(evidence: SiteEvidence) -> SiteOutcome:
    if evidence.maps_links:
        return Outcome(S.MAPS_PRESENT, evidence.maps_links[0], list(evidence.maps_links))
    return Outcome(S.MAPS_MISSING, "No link to or embed of Google Maps.", [])


SiteCheck = Check[SiteEvidence, SiteResult]
SITE_CHECKS: tuple[SiteCheck, ...] = (
    SiteCheck(
        "local-business-markup",
        "Business markup",
        check_schema,
        (S.SCHEMA_COMPLETE, S.SCHEMA_INCOMPLETE, S.SCHEMA_MISSING),
    ),
    SiteCheck(
        "opening-hours",
        "Opening hours",
        check_site_hours,
        (S.HOURS_MARKED_UP, S.HOURS_NOT_MARKED_UP, S.HOURS_MISSING),
    ),
    SiteCheck(
        "reviews",
        "Reviews",
        check_site_reviews,
        (S.REVIEWS_MARKED_UP, S.REVIEWS_LINKED, S.REVIEWS_MISSING),
    ),
    SiteCheck("name", "Name", check_site_name, (S.NAME_MATCHES, S.NAME_ON_PAGE, S.NAME_MISSING)),
    SiteCheck(
        "address",
        "Address",
        check_site_address,
        (S.ADDRESS_MATCHES, S.ADDRESS_ON_PAGE, S.ADDRESS_DIFFERS, S.ADDRESS_MISSING),
    ),
    SiteCheck(
        "phone",
        "Phone",
        check_site_phone,
        (S.PHONE_MATCHES, S.PHONE_ON_PAGE, S.PHONE_DIFFERS, S.PHONE_MISSING),
    ),
    SiteCheck("maps", "Google Maps", check_maps, (S.MAPS_PRESENT, S.MAPS_MISSING)),
)


def judge_site(evidence: SiteEvidence) -> AssessmentResult:
    judgement = judge_checks(SITE_CHECKS, evidence, SITE_TABLE)
    score = judgement.score()
    grade = grade_for(score)
    business = evidence.business
    return AssessmentResult(
        assessment="gbp",
        status="completed",
        source="website",
        score=score,
        grade=grade,
        summary=judgement.summary(
            f"Business-listing signals on the website grade {grade} ({score}/100)"
        ),
        findings=judgement.findings(),
        data={
            "url": evidence.url,
            "status_code": evidence.status_code,
            "local_business": asdict(business) if business else None,
            "phones": list(evidence.phones),
            "maps_links": list(evidence.maps_links),
            "review_links": list(evidence.review_links),
            "checks": judgement.entries(),
        },
        algorithm_version=ALGORITHM_VERSION,
    )


# --- Collect and the task -------------------------------------------------------------------------


async def collect_site(lead: LeadRecord, settings: Settings) -> SiteEvidence:
    """The lead's home page through ``SafeClient``; an error status fails with its own retry
    verdict (a 503 is tried again, a 404 is not)."""
    async with SafeClient.from_settings(settings) as client:
        response = await client.get(lead_url(lead.website))
    response.raise_for_status()
    return site_evidence(lead, response.url, response.status_code, parse_page(response.text))


async def assess(lead: LeadRecord) -> AssessmentResult:
    """The task body: Places when a key is set, the website otherwise. Errors propagate so the
    registry's retry condition reads their ``retryable``."""
    started = time.monotonic()
    settings = get_settings()
    if settings.places_api_key is not None and settings.places_api_key.get_secret_value():
        query = search_query(lead)
        async with PlacesClient.from_settings(settings) as client:
            places = await client.search(query)
        result = judge_places(places_evidence(lead, query, places))
    else:
        result = judge_site(await collect_site(lead, settings))
    return result.model_copy(update={"duration_ms": int((time.monotonic() - started) * 1000)})


gbp_task = assessment_task("gbp")(assess)
