"""Lead import: website normalisation, CSV and JSON files with bad rows, aliases, duplicates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leadshop.leads import (
    ImportReport,
    LeadFileError,
    LeadIn,
    MergedRow,
    RowError,
    normalise_website,
    parse_leads,
    parse_records,
)

# --- normalise_website ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "url", "key"),
    [
        ("acme.example", "http://acme.example/", "acme.example"),
        ("  https://acme.example  ", "https://acme.example/", "acme.example"),
        ("WWW.Acme.Example/", "http://www.acme.example/", "acme.example"),
        (
            "https://acme.example/shop/?utm=x#top",
            "https://acme.example/shop/?utm=x",
            "acme.example/shop",
        ),
        ("https://acme.example:443/", "https://acme.example/", "acme.example"),
        ("http://acme.example:80", "http://acme.example/", "acme.example"),
        ("http://acme.example:8080/a/", "http://acme.example:8080/a/", "acme.example:8080/a"),
        ("https://acme.example:80/", "https://acme.example:80/", "acme.example:80"),
        ("localhost:8000", "http://localhost:8000/", "localhost:8000"),
        ("//acme.example/p", "http://acme.example/p", "acme.example/p"),
        ("acme.example.", "http://acme.example/", "acme.example"),
        (
            "Bäckerei-Müller.example",
            "http://xn--bckerei-mller-bfb28a.example/",
            "xn--bckerei-mller-bfb28a.example",
        ),
        ("127.0.0.1:8443", "http://127.0.0.1:8443/", "127.0.0.1:8443"),
        ("http://[::1]:81/x", "http://[::1]:81/x", "[::1]:81/x"),
        ("http://www/", "http://www/", "www"),
    ],
)
def test_normalise_website(raw: str, url: str, key: str) -> None:
    assert normalise_website(raw) == (url, key)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "website is empty"),
        ("acme .example", "contains whitespace"),
        ("ftp://acme.example", "scheme 'ftp' is not http or https"),
        ("mailto:info@acme.example", "unsupported scheme 'mailto'"),
        ("http:acme.example", "'//' missing after 'http'"),
        ("http://", "has no host"),
        ("http://user:pw@acme.example", "contains credentials"),
        ("acme.example:http", "is malformed"),
        ("acme.example:99999", "is malformed"),
        ("http://[::1", "is malformed"),
        ("acme..example", "invalid host name"),
        ("acme_plumbing.example", "invalid host name"),
        ("-acme.example", "invalid host name"),
        ("a" * 64 + ".example", "invalid host name"),
        ("999.1.1.1", "invalid IP address"),
    ],
)
def test_malformed_websites_say_why(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match="website") as caught:
        normalise_website(raw)
    assert reason in str(caught.value)


def test_normalising_a_normalised_url_keeps_it() -> None:
    url, key = normalise_website("WWW.Acme.Example:8080/Shop/#x")

    assert normalise_website(url) == (url, key)


# --- LeadIn ---------------------------------------------------------------------------------


def lead_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "Acme Plumbing",
        "website": "www.acme-plumbing.example",
        "phone": "+1 555 0100",
        "address": "1 Main St, Springfield",
    }
    return fields | overrides


def test_lead_in_strips_normalises_and_blanks_none() -> None:
    lead = LeadIn(**lead_fields(name="  Acme Plumbing ", phone="  ", address=None))

    assert lead.name == "Acme Plumbing"
    assert lead.website == "http://www.acme-plumbing.example/"
    assert lead.website_key == "acme-plumbing.example"
    assert (lead.phone, lead.address) == (None, None)


def test_lead_in_takes_a_numeric_phone() -> None:
    assert LeadIn(**lead_fields(phone=5550100)).phone == "5550100"


# --- files ----------------------------------------------------------------------------------

HEADER = "name,website,phone,address"
GOOD_ROWS = [
    "Acme Plumbing,acme-plumbing.example,555 0100,1 Main St",
    "Bolt Electric,https://bolt.example/,555 0101,2 Main St",
]


def csv_file(tmp_path: Path, rows: list[str] = GOOD_ROWS, header: str = HEADER) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def names(report: ImportReport) -> list[str]:
    return [lead.name for lead in report.leads]


def test_csv_good_file(tmp_path: Path) -> None:
    report = parse_leads(csv_file(tmp_path))

    assert names(report) == ["Acme Plumbing", "Bolt Electric"]
    assert report.leads[1].website == "https://bolt.example/"
    assert (report.errors, report.merged) == ([], [])


def test_csv_bad_rows_are_reported_by_line_and_good_rows_kept(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[0],
        ",nameless.example,,",
        'Quoted Address Co,quoted.example,555 0102,"3 Main St\nSuite 4"',  # spans lines 4-5
        "Bad Site,ftp://bad.example,,",
        "",  # blank lines are skipped, but still counted
        "No Site,,,",
        "Too Many,many.example,1,2,3",
        GOOD_ROWS[1],
    ]

    report = parse_leads(csv_file(tmp_path, rows))

    assert names(report) == ["Acme Plumbing", "Quoted Address Co", "Bolt Electric"]
    assert report.leads[1].address == "3 Main St\nSuite 4"
    assert report.errors == [
        RowError(line=3, reason="name is empty"),
        RowError(line=6, reason="website 'ftp://bad.example': scheme 'ftp' is not http or https"),
        RowError(line=8, reason="website is empty"),
        RowError(line=9, reason="row has 5 fields, the header 4"),
    ]


def test_csv_short_rows_leave_the_missing_fields_blank(tmp_path: Path) -> None:
    report = parse_leads(csv_file(tmp_path, ["Acme Plumbing,acme-plumbing.example"]))

    assert report.leads[0].phone is None
    assert report.errors == []


@pytest.mark.parametrize(
    "header",
    [
        "Business Name,URL,Telephone,Street Address",
        "COMPANY,Domain,Phone Number,Full Address",
        "business_name,Website-URL,tel,address",
        " Business ,  Site ,PHONE,Address",
    ],
)
def test_csv_column_aliases(tmp_path: Path, header: str) -> None:
    report = parse_leads(csv_file(tmp_path, header=header))

    assert names(report) == ["Acme Plumbing", "Bolt Electric"]
    assert report.leads[0].phone == "555 0100"
    assert report.leads[0].address == "1 Main St"


def test_csv_prefers_the_best_alias_and_ignores_unknown_columns(tmp_path: Path) -> None:
    header = "company,notes,website,name"
    rows = ["Acme Holdings Ltd,call after 5,acme.example,Acme Plumbing"]

    report = parse_leads(csv_file(tmp_path, rows, header))

    assert names(report) == ["Acme Plumbing"]


def test_csv_semicolons_and_excel_bom(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes("\ufeffName;Website\nAcme;acme.example\n".encode())

    assert names(parse_leads(path)) == ["Acme"]


def test_csv_without_a_website_column_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LeadFileError, match=r"no column for website: one of website, .*domain"):
        parse_leads(csv_file(tmp_path, header="name,phone,address"))


def test_duplicates_by_website_key_are_merged_later_wins(tmp_path: Path) -> None:
    rows = [
        "Acme Plumbing,acme-plumbing.example,555 0100,1 Main St",
        GOOD_ROWS[1],
        "Acme Plumbing & Heating,https://www.acme-plumbing.example/,,9 High St",
    ]

    report = parse_leads(csv_file(tmp_path, rows))

    assert names(report) == ["Acme Plumbing & Heating", "Bolt Electric"]
    merged = report.leads[0]
    assert merged.website == "https://www.acme-plumbing.example/"
    assert (merged.phone, merged.address) == ("555 0100", "9 High St")
    assert report.merged == [MergedRow(line=4, duplicate_of=2, website_key="acme-plumbing.example")]


def json_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leads.json"
    path.write_text(text, encoding="utf-8")
    return path


JSON_WITH_BAD_ITEMS = """[
  {"name": "Acme Plumbing", "website": "acme-plumbing.example"},
  {"name": "No Site"},
  "not an object",
  {
    "name": "Bad Host",
    "website": "bad_host.example"
  },
  {"Business Name": "Bolt Electric", "URL": "bolt.example", "Telephone": 5550101},
  {"name": ["Listed"], "website": "listed.example"}
]
"""


def test_json_bad_items_are_reported_by_the_line_they_start_on(tmp_path: Path) -> None:
    report = parse_leads(json_file(tmp_path, JSON_WITH_BAD_ITEMS))

    assert names(report) == ["Acme Plumbing", "Bolt Electric"]
    assert report.leads[1].phone == "5550101"
    assert [(error.line, error.reason) for error in report.errors] == [
        (3, "website is missing"),
        (4, "expected an object with lead fields"),
        (5, "website 'bad_host.example' has an invalid host name 'bad_host.example'"),
        (10, "name: Input should be a valid string"),
    ]


def test_json_object_with_a_leads_member(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "source": {"leads": "not this"},
            "leads": [{"name": "A", "website": "a.example"}, {"name": "B"}],
        },
        indent=2,
    )

    report = parse_leads(json_file(tmp_path, text))

    assert names(report) == ["A"]
    assert report.errors == [RowError(line=10, reason="website is missing")]


def test_json_is_recognised_without_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "leads.txt"
    path.write_text('[{"name": "A", "website": "a.example"}]')

    assert names(parse_leads(path)) == ["A"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"name": "A",\n "website": }]', "invalid JSON at line 2"),
        ('{"rows": []}', r'expected a list of leads or \{"leads": \[...\]\}'),
        ('"leads"', "expected a list of leads"),
    ],
)
def test_unusable_json_files_raise(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LeadFileError, match=message):
        parse_leads(json_file(tmp_path, text))


def test_unreadable_files_raise(tmp_path: Path) -> None:
    binary = tmp_path / "leads.csv"
    binary.write_bytes(b"name,website\n\xff\xfe\x00garbage\n")

    with pytest.raises(LeadFileError, match="not UTF-8"):
        parse_leads(binary)
    with pytest.raises(LeadFileError, match="cannot read"):
        parse_leads(tmp_path / "missing.csv")
    with pytest.raises(LeadFileError, match="empty"):
        parse_leads(csv_file(tmp_path, rows=[], header="\n"))


def test_records_are_numbered_from_one() -> None:
    records: list[dict[str, Any]] = [
        lead_fields(),
        lead_fields(website="not a url"),
        lead_fields(name="Acme again", phone=None),
    ]

    report = parse_records(records)

    assert names(report) == ["Acme again"]
    assert report.leads[0].phone == "+1 555 0100"
    assert report.errors == [RowError(line=2, reason="website 'not a url' contains whitespace")]
    assert report.merged == [MergedRow(line=3, duplicate_of=1, website_key="acme-plumbing.example")]
