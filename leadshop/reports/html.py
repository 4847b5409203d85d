"""Self-contained HTML reports: one page per lead, and an index of a batch's leads, ranked.

A report is mailed to business owners and opened offline, so each page stands alone: inline CSS,
screenshots embedded as ``data:`` URIs, no fonts, scripts or anything fetched. A Content Security
Policy in the page forbids scripts and any fetch besides ``data:`` images; it backs up, and never
replaces, the escaping below.

Everything a report shows about a website (titles, headings, findings' details, URLs) came from
that website, and some websites are hostile (the demo's hacked yoga studio puts a ``<script>`` in
its title). So Jinja2 autoescapes every value, the templates never mark anything ``|safe``, and
only ``http(s)`` URLs become links (``safe_href``): a ``javascript:`` website stays text.

``lead_view`` and ``render_index`` turn stored rows and envelopes into plain values first, so
the templates only lay them out and the rules live in tested Python.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import Engine

from leadshop import db
from leadshop.models import AssessmentResult, Finding, Insights
from leadshop.reports import queries

SECTIONS: dict[str, tuple[str, str]] = {  # name -> (title, what it tells the owner)
    "pagespeed": ("Speed", "How fast the site loads and responds on a phone."),
    "security": ("Security", "The protections the site's server gives its visitors' browsers."),
    "gbp": (
        "Google Business Profile",
        "How easily customers find the business's hours, address, phone number and reviews.",
    ),
    "semrush": (
        "Search visibility",
        "What search engines see: titles, descriptions, structure and reach.",
    ),
    "visual": ("Look and mobile use", "How the site looks and works on a phone and a desktop."),
}
FOLLOW_UP = "llm"  # the insights: shown at the top, not as a section card
SOURCES: dict[str, str] = {
    "psi": "Google PageSpeed Insights",
    "lighthouse": "Lighthouse on Chromium",
    "observatory": "Mozilla HTTP Observatory scoring",
    "places": "Google Places",
    "website": "the business's own website",
    "semrush": "SEMrush",
    "onpage": "on-page SEO audit",
    "playwright": "Chromium (Playwright)",
    "llm": "language model",
    "rules": "rules",
}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
DEVICES = ("desktop", "mobile")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 512 * 1024  # one thumbnail; larger ones are left out, not shrunk
MAX_EMBEDDED_BYTES = 2 * 1024 * 1024  # all images of one report together
SAFE_SCHEMES = frozenset({"http", "https"})
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")  # browsers drop or strip these, then parse
LEAD_FILE = "lead-{lead_id}.html"
INDEX_FILE = "index.html"

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("leadshop.reports", "templates"),
    autoescape=True,  # on for every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def safe_href(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL a link may point at, else None.

    Whitespace and control characters anywhere refuse the URL: browsers strip or drop them
    before parsing, so ``java\\tscript:`` would run as ``javascript:``.
    """
    if not isinstance(url, str) or not url or _UNSAFE_URL_CHARS.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in SAFE_SCHEMES and parts.hostname else None


def grade_class(grade: str | None) -> str:
    """The CSS class colouring a grade: its letter, or ``none`` when there is no grade."""
    letter = (grade or " ")[0].lower()
    return f"grade-{letter}" if letter in "abcdf" else "grade-none"


def format_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(milliseconds: int) -> str:
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.1f} s"


# --- views: plain values for the templates ---------------------------------------------------


@dataclass(frozen=True)
class Link:
    text: str
    href: str | None  # None: show the text only


@dataclass(frozen=True)
class Image:
    label: str
    data_uri: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    blurb: str
    status: str  # completed | failed | skipped | not run
    grade: str | None = None
    score: int | None = None
    summary: str = ""
    reason: str = ""  # why a failed, skipped or missing section has no grade
    findings: tuple[Finding, ...] = ()
    images: tuple[Image, ...] = ()
    source: str = "-"
    algorithm_version: str = "-"
    duration: str = "-"

    @property
    def grade_class(self) -> str:
        return grade_class(self.grade)


@dataclass(frozen=True)
class InsightsView:
    insights: Insights | None
    note: str  # when there are none: why


@dataclass
class ImageBudget:
    """What may still be embedded in one report, so a page stays small enough to mail."""

    remaining: int = MAX_EMBEDDED_BYTES
    per_image: int = MAX_IMAGE_BYTES

    def embed_png(self, path: object) -> str | None:
        """A ``data:`` URI of the PNG at ``path``; None when it is missing, too big or no PNG.

        Only PNGs are embedded: a path is read from the database, and a report must never carry
        whatever other file it might name.
        """
        if not isinstance(path, str) or not path:
            return None
        file = Path(path)
        try:
            size = file.stat().st_size
            if not file.is_file() or size > min(self.per_image, self.remaining):
                return None
            content = file.read_bytes()
        except OSError:
            return None
        if not content.startswith(PNG_SIGNATURE) or len(content) > self.remaining:
            return None
        self.remaining -= len(content)
        return "data:image/png;base64," + base64.b64encode(content).decode("ascii")


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _screenshots(result: AssessmentResult, budget: ImageBudget) -> tuple[Image, ...]:
    """The visual assessment's first-screen thumbnails (``data.<device>.screenshot``)."""
    images = []
    for device in DEVICES:
        shot = _dig(result.data, device, "screenshot")
        uri = budget.embed_png(_dig(shot, "thumbnail"))
        if uri is not None:
            width = _int_or_none(_dig(shot, "thumbnail_width"))
            height = _int_or_none(_dig(shot, "thumbnail_height"))
            images.append(Image(f"{device.capitalize()} view", uri, width, height))
    return tuple(images)


def _reason(result: AssessmentResult) -> str:
    if result.status == "failed":
        if result.error is None:
            return "The assessment failed without an error record."
        return f"{result.error.type}: {result.error.message}"
    if result.status == "skipped":
        return result.summary or "Not applicable or not configured."
    return ""


def section_view(name: str, result: AssessmentResult | None, budget: ImageBudget) -> Section:
    title, blurb = SECTIONS.get(name, (name.replace("_", " ").capitalize(), ""))
    if result is None:
        return Section(name, title, blurb, "not run", reason="Not part of this assessment.")
    findings = sorted(result.findings, key=lambda finding: SEVERITY_ORDER[finding.severity])
    return Section(
        name=name,
        title=title,
        blurb=blurb,
        status=result.status,
        grade=result.grade,
        score=result.score,
        summary=result.summary if result.status == "completed" else "",
        reason=_reason(result),
        findings=tuple(findings),
        images=_screenshots(result, budget),
        source=SOURCES.get(result.source or "", result.source or "-"),
        algorithm_version=result.algorithm_version or "-",
        duration=format_duration(result.duration_ms),
    )


def insights_view(result: AssessmentResult | None) -> InsightsView:
    """The ``llm`` envelope's ``data.insights``, or why there are none."""
    if result is None:
        return InsightsView(None, "No sales insights were written for this assessment.")
    if result.status != "completed":
        return InsightsView(None, f"No sales insights: {_reason(result)}")
    raw = _dig(result.data, "insights")
    try:
        return InsightsView(Insights.model_validate(raw), "")
    except ValueError:
        return InsightsView(None, "The stored sales insights could not be read.")


def site_facts(results: Mapping[str, AssessmentResult]) -> list[tuple[str, str]]:
    """What the site itself says about it, as the on-page audit read it: its title and heading.

    Shown as the site shows it, so a hacked title is visible to the owner (and escaped)."""
    seo = results.get("semrush")
    checks = _dig(seo.data, "checks") if seo is not None else None
    facts = []
    title = _dig(checks, "title", "data", "title")
    if isinstance(title, str) and title:
        facts.append(("Page title", title))
    headings = _dig(checks, "h1", "data")
    if isinstance(headings, list) and headings and isinstance(headings[0], str):
        facts.append(("Main heading", headings[0]))
    graded = next(
        (url for r in results.values() if isinstance(url := _dig(r.data, "url"), str)), None
    )
    if graded:
        facts.append(("Page assessed", graded))
    return facts


@dataclass(frozen=True)
class LeadPage:
    assessment: queries.LeadAssessment
    website: Link
    sections: tuple[Section, ...]
    insights: InsightsView
    facts: list[tuple[str, str]]
    generated_at: str
    index_href: str | None = None

    @property
    def overall_class(self) -> str:
        return grade_class(self.assessment.overall_grade)

    def format_time(self, moment: datetime | None) -> str:
        return format_time(moment)


def lead_view(
    assessment: queries.LeadAssessment,
    *,
    index_href: str | None = None,
    now: datetime | None = None,
) -> LeadPage:
    budget = ImageBudget()
    results = assessment.results
    extra = [name for name in results if name not in SECTIONS and name != FOLLOW_UP]
    sections = tuple(section_view(name, results.get(name), budget) for name in (*SECTIONS, *extra))
    website = assessment.lead.website
    return LeadPage(
        assessment=assessment,
        website=Link(website, safe_href(website)),
        sections=sections,
        insights=insights_view(results.get(FOLLOW_UP)),
        facts=site_facts(results),
        generated_at=format_time(now or datetime.now(UTC)),
        index_href=index_href,
    )


def render_lead(
    assessment: queries.LeadAssessment,
    *,
    index_href: str | None = None,
    now: datetime | None = None,
) -> str:
    """One lead's report as a complete HTML document."""
    page = lead_view(assessment, index_href=index_href, now=now)
    return _environment.get_template("lead.html").render(page=page)


@dataclass(frozen=True)
class IndexRow:
    rank: int
    lead: Link  # to the lead's report file
    website: Link
    status: str
    overall_grade: str | None
    overall_score: int | None
    cells: tuple[tuple[str, str], ...]  # per section: (text, css class)

    @property
    def overall_class(self) -> str:
        return grade_class(self.overall_grade)


def section_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sections a batch's rows carry (``<name>_status`` keys), built-in ones first,
    without the insights, which have no grade."""
    keys = rows[0] if rows else {}
    names = [key.removesuffix("_status") for key in keys if key.endswith("_status")]
    return [name for name in names if f"{name}_grade" in keys and name != FOLLOW_UP]


def _cell(row: Mapping[str, Any], section: str) -> tuple[str, str]:
    grade, status = row.get(f"{section}_grade"), row.get(f"{section}_status")
    if grade:
        return f"{grade} ({row.get(f'{section}_score')})", grade_class(grade)
    return str(status or "not run"), "grade-none"


def render_index(
    batch_id: str,
    rows: Sequence[Mapping[str, Any]],
    times: queries.BatchTimes,
    files: Mapping[int, str],
    now: datetime | None = None,
) -> str:
    """The batch's ranked list (``db.batch_rows`` order), each lead linking to its report."""
    sections = section_columns(rows)
    table = [
        IndexRow(
            rank=rank,
            lead=Link(str(row["name"]), files.get(row["lead_id"])),
            website=Link(str(row["website"]), safe_href(row["website"])),
            status=str(row["status"]),
            overall_grade=row.get("overall_grade"),
            overall_score=row.get("overall_score"),
            cells=tuple(_cell(row, section) for section in sections),
        )
        for rank, row in enumerate(rows, start=1)
    ]
    return _environment.get_template("index.html").render(
        batch_id=batch_id,
        headings=[SECTIONS.get(name, (name, ""))[0] for name in sections],
        rows=table,
        started=format_time(times.started_at),
        completed=format_time(times.completed_at),
        generated_at=format_time(now or datetime.now(UTC)),
    )


# --- files -------------------------------------------------------------------------------------


def write_lead_report(engine: Engine, lead_id: int, out: Path, batch_id: str | None = None) -> Path:
    """Write one lead's report (its latest batch unless ``batch_id``); returns the file."""
    batch_id = batch_id or queries.latest_batch_of_lead(engine, lead_id)
    if batch_id is None:
        db.get_leads(engine, [lead_id])  # names a lead that does not exist
        raise LookupError(f"lead {lead_id} has not been assessed yet")
    html = render_lead(queries.load_lead_assessment(engine, lead_id, batch_id))
    return _write(out, html)


def batch_folder(home: Path, batch_id: str) -> Path:
    """Where a batch's reports go unless told otherwise: the flow writes them there, and
    ``leadshop report --batch`` does too."""
    return (home / "reports" / f"batch-{batch_id}").resolve()


def write_batch_reports(engine: Engine, batch_id: str, out_dir: Path) -> Path:
    """Write every lead's report of the batch and ``index.html`` into ``out_dir``; returns the
    index."""
    rows = db.batch_rows(engine, batch_id)
    if not rows:
        raise LookupError(f"no batch {batch_id!r}")
    files = {row["lead_id"]: LEAD_FILE.format(lead_id=row["lead_id"]) for row in rows}
    for lead_id, name in files.items():
        assessment = queries.load_lead_assessment(engine, lead_id, batch_id)
        _write(out_dir / name, render_lead(assessment, index_href=INDEX_FILE))
    times = queries.batch_times(engine, batch_id)
    return _write(out_dir / INDEX_FILE, render_index(batch_id, rows, times, files))


def _write(path: Path, html: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
