"""Reports on real stored results: the HTML page per lead and its batch index (escaping, links,
screenshots, missing sections, Chromium's view of it), the CSV / JSON export with formula
neutralising, the artifact's markdown, and the ``report`` / ``export`` commands."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import Engine

from leadshop import db
from leadshop.browser import chromium_path, launch_flags
from leadshop.config import get_settings
from leadshop.demo.catalog import HOSTILE_MARKUP, png
from leadshop.demo.sites import DemoSites
from leadshop.models import AssessmentResult, ErrorInfo, Finding, LeadRecord
from leadshop.reports import html, queries
from leadshop.reports.export import ExportFormat, neutralise, to_csv, write_export
from leadshop.reports.markdown import escape_cell, top_prospects_markdown
from tests.leadshop.test_cli import leadshop
from tests.leadshop.test_db import lead_in
from tests.leadshop.test_db import result as completed_section

BATCH = "batch-7"
RAW_SCRIPT = '<script>alert("pwned")</script>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;"
HOSTILE_TITLE = "Lotus Flow Yoga Studio | " + HOSTILE_MARKUP
GRADES = {"pagespeed": "C", "security": "F", "semrush": "B", "visual": "D+"}


# --- builders: a realistic lead, each test changes one thing ----------------------------------


SLOW_PAGE: dict[str, Any] = {  # test_db's completed section, slowed down, with a finding
    "score": 55,
    "grade": "C",
    "summary": "The home page takes 4.8 s to show its main content on a phone.",
    "findings": [
        Finding(
            id="lcp-slow",
            severity="high",
            title="Slow largest contentful paint",
            detail="The hero image appears after 4.8 s.",
            recommendation="Compress the hero image and give it dimensions.",
        )
    ],
    "data": {"url": "http://127.0.0.1:8000/"},
    "duration_ms": 13_500,
    "algorithm_version": "lighthouse-12.2",
}


def envelope(**overrides: Any) -> AssessmentResult:
    """A completed, scored section (pagespeed unless told) with one finding."""
    return completed_section(**(SLOW_PAGE | overrides))


def insights(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "summary": "A friendly studio whose website was hacked and loads slowly.",
        "top_issues": [
            {
                "title": "The site was hacked",
                "evidence": f"The page title reads {HOSTILE_MARKUP}",
                "business_impact": "Browsers and search engines may flag the site.",
                "fix": "Clean the CMS and update its plugins.",
            }
        ],
        "recommended_services": ["Website security clean-up", "Speed optimisation"],
        "outreach_email": {"subject": "Your website's title", "body": "Hi,\n\nWe noticed..."},
        "priority": "hot",
    }
    return fields | overrides


def thumbnails(folder: Path) -> dict[str, Any]:
    """The visual envelope's ``data`` with real PNG thumbnails, as tasks/visual.py writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"url": "http://127.0.0.1:8000/"}
    for device, size in (("desktop", (320, 180)), ("mobile", (160, 320))):
        path = folder / f"{device}-thumbnail.png"
        path.write_bytes(png(*size, (124, 58, 237)))
        data[device] = {
            "screenshot": {
                "path": str(folder / f"{device}.png"),
                "width": size[0] * 4,
                "height": size[1] * 4,
                "thumbnail": str(path),
                "thumbnail_width": size[0],
                "thumbnail_height": size[1],
            }
        }
    return data


def hostile_results(folder: Path) -> list[AssessmentResult]:
    """Six sections as the hacked yoga studio gets them: website text in findings and data,
    the business profile skipped, insights that quote the injected markup."""
    hostile_finding = Finding(
        id="h1-markup",
        severity="medium",
        title=f"Heading reads {HOSTILE_MARKUP}",
        detail=f'<a href="javascript:alert(1)">click</a> {HOSTILE_MARKUP}',
        recommendation="Remove the injected markup.",
    )
    return [
        envelope(),
        envelope(
            assessment="security",
            source="observatory",
            score=10,
            grade="F",
            summary="Grade F (10/100) on the Mozilla HTTP Observatory's scale.",
            findings=[
                Finding(
                    id="csp-not-implemented",
                    severity="high",
                    title="No Content Security Policy",
                    detail="Nothing stops an injected script from running.",
                    recommendation="Send a Content-Security-Policy header.",
                )
            ],
            duration_ms=850,
            algorithm_version="mdn-observatory-2024",
        ),
        AssessmentResult(
            assessment="gbp",
            status="skipped",
            source="places",
            summary="No Google Places API key is configured.",
        ),
        envelope(
            assessment="semrush",
            source="onpage",
            score=75,
            grade="B",
            summary=f"Title {HOSTILE_TITLE}",
            findings=[hostile_finding],
            data={
                "url": "http://127.0.0.1:8000/",
                "checks": {
                    "title": {"data": {"title": HOSTILE_TITLE, "length": 60}},
                    "h1": {"data": [HOSTILE_MARKUP + " Breathe, stretch, belong"]},
                },
            },
        ),
        envelope(
            assessment="visual",
            source="playwright",
            score=40,
            grade="D+",
            data=thumbnails(folder),
            algorithm_version="visual-1",
        ),
        envelope(
            assessment="llm",
            source="rules",
            score=None,
            grade=None,
            findings=[],
            data={"insights": insights()},
        ),
    ]


YOGA_STUDIO: dict[str, Any] = {
    "name": "Lotus Flow Yoga Studio",
    "website": "http://lotus-flow-yoga.example/",
    "phone": "(541) 555-0151",
    "address": "118 W 5th Avenue, Bend, OR 97701",
}


def store(
    engine: Engine, results: list[AssessmentResult], batch_id: str = BATCH, **lead: Any
) -> int:
    """One lead assessed in ``batch_id`` and saved, as the flow's store task does it."""
    [lead_id] = db.upsert_leads(engine, [lead_in(**(YOGA_STUDIO | lead))])
    db.create_batch(engine, batch_id, [lead_id], flow_run_id="run-1")
    db.mark_in_progress(engine, batch_id, lead_id)
    db.save_results(engine, batch_id, lead_id, results)
    return lead_id


def unstored(results: list[AssessmentResult], website: str) -> queries.LeadAssessment:
    """A lead's assessment as the reports read it, for what the database would not accept."""
    return queries.LeadAssessment(
        lead=LeadRecord(id=9, name="Odd Site", website=website),
        batch_id=BATCH,
        status="completed",
        overall_score=50,
        overall_grade="C",
        started_at=None,
        completed_at=None,
        error_message=None,
        results={result.assessment: result for result in results},
    )


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    db.migrate(sqlite_url)
    return db.make_engine(sqlite_url)


@pytest.fixture
def hostile_report(engine: Engine, tmp_path: Path) -> tuple[int, str]:
    lead_id = store(engine, hostile_results(tmp_path / "artifacts" / "1"))
    path = html.write_lead_report(engine, lead_id, tmp_path / "reports" / "lead.html")
    return lead_id, path.read_text(encoding="utf-8")


def text_of(page: str) -> str:
    """The page's visible text, roughly: tags dropped, whitespace folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


# --- the lead's page ----------------------------------------------------------------------------


def test_report_shows_grades_findings_insights_and_what_was_measured_when(
    hostile_report: tuple[int, str], engine: Engine
) -> None:
    _, page = hostile_report
    row = db.batch_rows(engine, BATCH)[0]
    text = text_of(page)
    assert "Lotus Flow Yoga Studio" in text and "(541) 555-0151" in text
    assert '<a href="http://lotus-flow-yoga.example/"' in page
    assert f'data-grade="overall">{row["overall_grade"]}<' in page
    assert f"{row['overall_score']} / 100" in text
    for section, grade in GRADES.items():
        assert f'data-grade="{section}">{grade}<' in page
    assert 'data-grade="gbp">skipped<' in page
    assert "Not measured: No Google Places API key is configured." in text
    for words in (
        "The home page takes 4.8 s to show its main content on a phone.",
        "Slow largest contentful paint",
        "Compress the hero image and give it dimensions.",
        "A friendly studio whose website was hacked and loads slowly.",
        "Website security clean-up",
        "Your website's title",
    ):
        assert escape(words) in page, words
    measured = text[text.index("What was measured when") :]
    for words in (BATCH, "13.5 s", "850 ms", "Lighthouse on Chromium", "mdn-observatory-2024"):
        assert words in measured, words
    assert "Started -" not in measured and "Completed -" not in measured
    assert page.count('src="data:image/png;base64,') == 2


def test_hostile_website_text_is_escaped_everywhere(hostile_report: tuple[int, str]) -> None:
    _, page = hostile_report
    assert RAW_SCRIPT not in page and "<script" not in page
    assert "<img src=x" not in page and "onerror=" not in page.replace("onerror=&#34;", "")
    assert 'href="javascript' not in page
    assert page.count(ESCAPED_SCRIPT) >= 4  # title, heading, finding, insights
    assert f"<dd>{escape(HOSTILE_TITLE)}</dd>" in page


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.example/",
        "http:///no-host",
        "file:///etc/passwd",
        "",
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    assert html.safe_href(url) is None
    page = html.render_lead(unstored([envelope()], url))
    assert "href" not in page.split("<h1>", 1)[1].split("</header>", 1)[0]


def test_http_urls_are_links_with_their_quotes_escaped() -> None:
    assert html.safe_href("HTTPS://Example.com/a?b=1") == "HTTPS://Example.com/a?b=1"
    page = html.render_lead(unstored([], 'https://example.com/?q="><script>x</script>'))
    assert '<a href="https://example.com/?q=&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page


def test_report_without_insights_and_with_failed_and_missing_sections(
    engine: Engine, tmp_path: Path
) -> None:
    failure = AssessmentResult.failure("pagespeed", TimeoutError("took too long"), 90_000)
    lead_id = store(engine, [failure, envelope(assessment="security", grade="F", score=10)])
    page = html.write_lead_report(engine, lead_id, tmp_path / "r.html").read_text()
    text = text_of(page)
    assert "Could not be measured: TimeoutError: took too long" in text
    assert 'data-grade="pagespeed">failed<' in page and 'data-grade="security">F<' in page
    for section in ("gbp", "semrush", "visual"):
        assert f'data-grade="{section}">not run<' in page
    assert "No sales insights were written for this assessment." in text
    assert "<img" not in page


def test_failed_insights_say_why(engine: Engine, tmp_path: Path) -> None:
    error = ErrorInfo(type="LlmAnswerError", message="The model refused")
    llm = AssessmentResult(assessment="llm", status="failed", error=error)
    lead_id = store(engine, [envelope(), llm])
    page = html.write_lead_report(engine, lead_id, tmp_path / "r.html").read_text()
    assert "No sales insights: LlmAnswerError: The model refused" in text_of(page)


def test_screenshots_missing_foreign_or_too_big_are_left_out(tmp_path: Path) -> None:
    data = thumbnails(tmp_path)
    budget = html.ImageBudget()
    assert budget.embed_png(data["desktop"]["screenshot"]["thumbnail"]) is not None
    assert budget.embed_png(str(tmp_path / "gone.png")) is None
    assert budget.embed_png(None) is None and budget.embed_png(7) is None
    secret = tmp_path / "secret.txt"
    secret.write_text("not a picture")
    assert budget.embed_png(str(secret)) is None
    small = html.ImageBudget(remaining=10_000, per_image=10_000)
    big = tmp_path / "big.png"
    big.write_bytes(png(400, 400, (0, 0, 0))[:8] + b"\0" * 20_000)
    assert small.embed_png(str(big)) is None
    thumbnail = data["mobile"]["screenshot"]["thumbnail"]
    size = Path(thumbnail).stat().st_size
    twice = html.ImageBudget(remaining=size + size // 2)
    assert twice.embed_png(thumbnail) is not None and twice.embed_png(thumbnail) is None

    visual = envelope(assessment="visual", data={"desktop": {"screenshot": {"thumbnail": 3}}})
    page = html.render_lead(unstored([visual], "https://example.com/"))
    assert "<img" not in page  # a malformed screenshot record is skipped, not an error


def test_batch_reports_write_one_page_per_lead_and_a_ranked_index(
    engine: Engine, tmp_path: Path
) -> None:
    weak = store(engine, hostile_results(tmp_path / "a"))
    strong = [envelope(assessment=name, score=95, grade="A") for name in html.SECTIONS]
    solid = store(engine, strong, name="Solid Co", website="https://solid.example/")
    index = html.write_batch_reports(engine, BATCH, tmp_path / "out")
    assert index == tmp_path / "out" / "index.html"
    page = index.read_text()
    ranked = [row["lead_id"] for row in db.batch_rows(engine, BATCH)]
    links = re.findall(r'<a href="(lead-\d+\.html)">', page)
    assert links == [f"lead-{lead_id}.html" for lead_id in ranked]
    assert set(ranked) == {weak, solid}
    for link in links:
        lead_page = (tmp_path / "out" / link).read_text()
        assert '<a href="index.html">' in lead_page
    assert RAW_SCRIPT not in page and "<script" not in page
    assert "Solid Co" in page and "A (95)" in page
    with pytest.raises(LookupError, match="no batch"):
        html.write_batch_reports(engine, "no-such-batch", tmp_path / "none")


def test_a_lead_never_assessed_or_unknown_is_a_lookup_error(engine: Engine, tmp_path: Path) -> None:
    [lead_id] = db.upsert_leads(engine, [lead_in(**YOGA_STUDIO)])
    with pytest.raises(LookupError, match="has not been assessed"):
        html.write_lead_report(engine, lead_id, tmp_path / "r.html")
    with pytest.raises(LookupError, match="no lead with id 999"):
        html.write_lead_report(engine, 999, tmp_path / "r.html")


def test_a_lead_report_defaults_to_its_latest_batch(engine: Engine, tmp_path: Path) -> None:
    lead_id = store(engine, [envelope(score=20, grade="F")], batch_id="old")
    store(engine, [envelope(score=95, grade="A")], batch_id="new")
    page = html.write_lead_report(engine, lead_id, tmp_path / "r.html").read_text()
    assert 'data-grade="pagespeed">A<' in page and "new" in text_of(page)
    page = html.write_lead_report(engine, lead_id, tmp_path / "r.html", "old").read_text()
    assert 'data-grade="pagespeed">F<' in page


@pytest.mark.slow
async def test_chromium_shows_the_grades_runs_nothing_and_fetches_nothing(
    hostile_report: tuple[int, str], engine: Engine, tmp_path: Path
) -> None:
    from playwright.async_api import Dialog, Request, async_playwright

    _, page_html = hostile_report
    report = tmp_path / "chromium" / "report.html"
    report.parent.mkdir()
    report.write_text(page_html, encoding="utf-8")
    row = db.batch_rows(engine, BATCH)[0]
    dialogs: list[str] = []
    requests: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(get_settings()), args=launch_flags()
        )
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("dialog", dismiss)

            def record(request: Request) -> None:
                requests.append(request.url)

            page.on("request", record)
            await page.goto(report.as_uri(), wait_until="load")
            await page.wait_for_timeout(300)  # an onerror handler would have fired by now
            overall = await page.inner_text('[data-grade="overall"]')
            sections = {name: await page.inner_text(f'[data-grade="{name}"]') for name in GRADES}
            body = await page.inner_text("body")
            shown = await page.locator("img").evaluate_all(
                "images => images.map(image => image.complete && image.naturalWidth > 0)"
            )
            shot = tmp_path / "chromium" / "report.png"
            await page.screenshot(path=str(shot), full_page=True)
            await page.emulate_media(media="print")
            printed = await page.evaluate(
                """() => ({
                    background: getComputedStyle(document.body).backgroundColor,
                    cards: [...document.querySelectorAll(".card")].map(
                        card => getComputedStyle(card).breakInside),
                    link: getComputedStyle(document.querySelector("header a"), "::after").content,
                })"""
            )
        finally:
            await browser.close()
    print(f"report screenshot: {shot}")
    assert overall == row["overall_grade"]
    assert sections == GRADES
    assert RAW_SCRIPT in body  # the injected markup is shown as text
    assert shown == [True, True]
    assert dialogs == []
    assert printed["background"] == "rgb(255, 255, 255)"
    assert set(printed["cards"]) == {"avoid"}
    assert "http://lotus-flow-yoga.example/" in printed["link"]
    assert [url for url in requests if not url.startswith("data:")] == [report.as_uri()]


async def test_the_hacked_demo_site_is_hostile_and_its_report_is_not(
    demo: DemoSites, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's yoga studio really serves a script in its title; real scanners carry its
    markup into the stored results, and the report shows it as text."""
    from tasks import security, semrush

    monkeypatch.setenv("LEADSHOP_SEMRUSH_API_KEY", "")  # the on-page road
    get_settings.cache_clear()
    site = demo.site("lotus-flow-yoga")
    served = httpx.get(site.url).text
    assert f"<title>{HOSTILE_TITLE}</title>" in served
    lead = LeadRecord(id=0, name=site.name, website=site.url)
    results = [await security.assess(lead), await semrush.assess(lead)]
    assert any("<script>alert(" in result.model_dump_json() for result in results)
    lead_id = store(engine, results, name=site.name, website=site.url)
    page = html.write_lead_report(engine, lead_id, tmp_path / "r.html").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert ESCAPED_SCRIPT in page
    assert f'data-grade="security">{site.grade}<' in page
    assert urlsplit(site.url).hostname == "127.0.0.1"


# --- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Ann's Bakery", "Ann's Bakery"),
        ("a=b", "a=b"),
        (-1, -1),
        (0, 0),
        (None, None),
    ],
)
def test_formula_cells_are_neutralised_and_numbers_stay_numbers(value: Any, written: Any) -> None:
    assert neutralise(value) == written


def test_csv_round_trips_quotes_newlines_and_keeps_negative_numbers_numeric() -> None:
    rows = [
        {"rank": 1, "name": 'The "Best" Cafe, Inc.\nsecond line', "score": -1, "note": "-1"},
        {"rank": 2, "name": '=HYPERLINK("http://x")', "score": None, "note": "ok"},
    ]
    text = to_csv(rows)
    assert ",-1,'-1\r\n" in text  # the number as written, the text neutralised
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == [
        ["rank", "name", "score", "note"],
        ["1", 'The "Best" Cafe, Inc.\nsecond line', "-1", "'-1"],
        ["2", '\'=HYPERLINK("http://x")', "", "ok"],
    ]


def test_csv_and_json_exports_carry_the_ranked_rows_with_the_same_keys(
    engine: Engine, tmp_path: Path
) -> None:
    store(engine, hostile_results(tmp_path / "a"), name="=SUM(A1)")
    store(engine, [envelope(score=95, grade="A")], name="Solid Co", website="https://s.example/")
    expected = db.batch_rows(engine, BATCH)
    assert write_export(engine, BATCH, ExportFormat.json, tmp_path / "x.json") == 2
    exported = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    assert exported == [{"rank": n, **row} for n, row in enumerate(expected, start=1)]
    assert {"security_grade", "security_score", "security_status", "overall_grade"} <= set(
        exported[0]
    )
    write_export(engine, BATCH, ExportFormat.csv, tmp_path / "x.csv")
    with (tmp_path / "x.csv").open(encoding="utf-8", newline="") as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == list(exported[0])
    assert [row["lead_id"] for row in table] == [str(row["lead_id"]) for row in exported]
    assert "'=SUM(A1)" in [row["name"] for row in table]
    with pytest.raises(LookupError):
        write_export(engine, "nope", ExportFormat.csv, tmp_path / "y.csv")


# --- markdown -----------------------------------------------------------------------------------


def row(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"lead_id": 1, "name": "Solid Co", "website": "https://s.example/"}
    for name in html.SECTIONS:
        fields |= {f"{name}_status": "completed", f"{name}_score": 80, f"{name}_grade": "B+"}
    fields |= {"llm_status": "completed", "llm_score": None, "llm_grade": None}
    return fields | {"overall_score": 80, "overall_grade": "B+"} | overrides


def test_top_prospects_table_escapes_website_text_and_names_the_weakest_sections() -> None:
    hostile = row(
        name="Pipe | Co\nnew line <b>bold</b> [x](javascript:alert(1))",
        security_score=10,
        security_grade="F",
        gbp_status="failed",
        gbp_score=None,
        gbp_grade=None,
    )
    table = top_prospects_markdown([hostile, *[row(lead_id=n) for n in range(2, 14)]], limit=3)
    lines = table.splitlines()
    body = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert len(body) == 3 and "of 13" in lines[0]
    first = body[0]
    assert first.count(" | ") == 4  # five cells: the name's pipe is escaped
    assert "<b>" not in table and "&lt;b&gt;" in first and "\\|" in first
    assert "\\[x\\](javascript:alert(1))" in first
    assert first.endswith("| gbp failed, security F (10) |")
    assert escape_cell("a_b*c`d~e\\f") == "a\\_b\\*c\\`d\\~e\\\\f"
    assert top_prospects_markdown([]) == "No leads in this batch.\n"


# --- the commands -------------------------------------------------------------------------------


@pytest.fixture
def cli_db(engine: Engine, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A stored batch of two leads and the environment the commands read it through."""
    monkeypatch.setenv("LEADSHOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEADSHOP_HOME", str(tmp_path / "home"))
    store(engine, [envelope(score=95, grade="A")], name="Solid Co", website="https://s.example/")
    return store(engine, hostile_results(tmp_path / "artifacts"))


def test_report_command_writes_one_lead_to_the_default_place(cli_db: int, tmp_path: Path) -> None:
    result = leadshop("report", str(cli_db))
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written == (tmp_path / "home" / "reports" / f"lead-{cli_db}.html").resolve()
    assert 'data-grade="security">F<' in written.read_text()

    custom = leadshop("report", str(cli_db), "--batch", BATCH, "--out", str(tmp_path / "x.html"))
    assert custom.returncode == 0, custom.stderr
    assert Path(custom.stdout.strip()) == (tmp_path / "x.html").resolve()

    missing = leadshop("report", "999")
    assert missing.returncode == 1 and "no lead with id 999" in missing.stderr


def test_report_command_writes_a_batch_into_a_folder(cli_db: int, tmp_path: Path) -> None:
    result = leadshop("report", "--batch", BATCH, "--out", str(tmp_path / "batch"))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == (tmp_path / "batch" / "index.html").resolve()
    assert len(list((tmp_path / "batch").glob("lead-*.html"))) == 2
    unknown = leadshop("report", "--batch", "nope", "--out", str(tmp_path / "none"))
    assert unknown.returncode == 1 and "no batch 'nope'" in unknown.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_command_writes_the_ranked_list(cli_db: int, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"ranked.{fmt}"
    result = leadshop("export", "--format", fmt, "--batch", BATCH, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "exported 2 leads" in result.stdout
    text = out.read_text(encoding="utf-8")
    names = (
        [r["name"] for r in csv.DictReader(io.StringIO(text))]
        if fmt == "csv"
        else [r["name"] for r in json.loads(text)]
    )
    assert set(names) == {"Solid Co", "Lotus Flow Yoga Studio"}


def test_export_command_refuses_an_unknown_format(cli_db: int, tmp_path: Path) -> None:
    result = leadshop("export", "--format", "xml", "--out", str(tmp_path / "x.xml"))
    assert result.returncode == 2 and not (tmp_path / "x.xml").exists()


def test_export_defaults_to_the_latest_batch(cli_db: int, tmp_path: Path) -> None:
    result = leadshop("export", "--out", str(tmp_path / "latest.csv"))
    assert result.returncode == 0, result.stderr
    assert f"batch {BATCH}" in result.stdout


def test_report_times_are_utc() -> None:
    moment = datetime(2024, 5, 1, 14, 3, 9, tzinfo=UTC)
    assert html.format_time(moment) == "2024-05-01 14:03:09 UTC"
    assert html.format_time(None) == "-"
