"""Lead import: bought lists arrive as CSV or JSON in many shapes, and some rows are always bad.

A bad row never sinks the file: it is reported with its line number and reason so someone can fix
the source, and the good rows go in. Only a file that cannot be read at all raises.

Websites are normalised once, here, into a URL to fetch and a ``website_key`` to de-duplicate on:
the same business listed as ``www.acme.com``, ``https://acme.com/`` and ``http://ACME.com#top`` is
one lead.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

DEFAULT_PORTS = {"http": 80, "https": 443}

# Field -> accepted column names, best first: when a file has several (say "name" and "company"),
# the earliest alias in this list is the one used. Matching ignores case, "_", "-" and spacing.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "business name", "business", "company name", "company"),
    "website": ("website", "website url", "url", "site", "web", "domain"),
    "phone": ("phone", "phone number", "telephone", "tel"),
    "address": ("address", "full address", "street address"),
}

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# "mailto:x" or "tel:123" typed into a website column: a scheme that is not a host:port.
_OPAQUE_SCHEME = re.compile(r"^([a-z][a-z0-9+-]*):(?!\d)", re.IGNORECASE)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_JSON_WHITESPACE = " \t\n\r"


class LeadFileError(ValueError):
    """The file as a whole cannot be used: unreadable, not CSV/JSON, or no usable columns."""


def normalise_website(raw: str) -> tuple[str, str]:
    """Return ``(url, website_key)`` for a website as people type it, or raise ValueError.

    The key drops what does not change which site it is (scheme, ``www.``, default port, query,
    fragment, trailing slash) so re-imports and overlapping lists land on the same lead.
    """
    text = raw.strip()
    if not text:
        raise ValueError("website is empty")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"website {text!r} contains whitespace")
    if _SCHEME.match(text) is None:
        opaque = _OPAQUE_SCHEME.match(text)
        if opaque is not None:
            scheme = opaque.group(1).lower()
            problem = "'//' missing after" if scheme in DEFAULT_PORTS else "unsupported scheme"
            raise ValueError(f"website {text!r}: {problem} {scheme!r}")
        text = "http:" + text if text.startswith("//") else "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"website {raw.strip()!r} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"website {raw.strip()!r}: scheme {scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise ValueError(f"website {raw.strip()!r} contains credentials (user@host)")
    host = _normalise_host(parts, raw.strip())
    port_part = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"
    url = urlunsplit((scheme, host + port_part, parts.path or "/", parts.query, ""))
    key = host.removeprefix("www.") + port_part + parts.path.rstrip("/")
    return url, key


def _normalise_host(parts: SplitResult, raw: str) -> str:
    """A lowercase ASCII hostname (IDNA-encoded) or an IP literal, bracketed when IPv6."""
    host = parts.hostname
    if not host:
        raise ValueError(f"website {raw!r} has no host")
    if parts.netloc.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError as exc:
            raise ValueError(f"website {raw!r} has an invalid IPv6 address") from exc
    host = host.rstrip(".")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"website {raw!r} has an invalid host name {host!r}") from exc
    labels = ascii_host.split(".")
    if not all(_LABEL.match(label) for label in labels) or len(ascii_host) > 253:
        raise ValueError(f"website {raw!r} has an invalid host name {host!r}")
    if labels[-1].isdigit():
        raise ValueError(f"website {raw!r} has an invalid IP address {host!r}")
    return ascii_host


class LeadIn(BaseModel):
    """A lead as imported: the website is stored normalised, blanks become None."""

    model_config = ConfigDict(str_strip_whitespace=True, coerce_numbers_to_str=True)

    name: str
    website: str
    phone: str | None = None
    address: str | None = None

    @field_validator("name")
    @classmethod
    def _name_required(cls, value: str) -> str:
        if not value:
            raise ValueError("name is empty")
        return value

    @field_validator("website")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_website(value)[0]

    @field_validator("phone", "address")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def website_key(self) -> str:
        # Normalising is idempotent, so the stored URL yields the same key as the raw input did.
        return normalise_website(self.website)[1]


class RowError(BaseModel):
    line: int
    reason: str


class MergedRow(BaseModel):
    """A row whose website repeats an earlier row's: its values won, the earlier row filled gaps."""

    line: int
    duplicate_of: int
    website_key: str


class ImportReport(BaseModel):
    leads: list[LeadIn]
    errors: list[RowError]
    merged: list[MergedRow]


def parse_leads(path: Path | str) -> ImportReport:
    """Read a CSV or JSON lead file (by suffix, else by its first character)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LeadFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise LeadFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("[", "{"))
    rows = _json_rows(text, path) if is_json else _csv_rows(text, path)
    return _build_report(rows)


def parse_records(records: list[dict[str, Any]]) -> ImportReport:
    """Leads given as a flow parameter; a row's "line" is its 1-based position in the list."""
    return _build_report(enumerate(records, start=1))


def _build_report(rows: Iterable[tuple[int, object]]) -> ImportReport:
    errors: list[RowError] = []
    merged: list[MergedRow] = []
    by_key: dict[str, tuple[int, LeadIn]] = {}
    for line, row in rows:
        if isinstance(row, RowError):  # judged by the reader already
            errors.append(row)
            continue
        if not isinstance(row, Mapping):
            errors.append(RowError(line=line, reason="expected an object with lead fields"))
            continue
        try:
            lead = LeadIn.model_validate(_pick_fields(row))
        except ValidationError as exc:
            errors.append(RowError(line=line, reason=_reason(exc)))
            continue
        key = lead.website_key
        earlier = by_key.get(key)
        if earlier is not None:
            first_line, previous = earlier
            merged.append(MergedRow(line=line, duplicate_of=first_line, website_key=key))
            by_key[key] = (first_line, _merge(previous, lead))
        else:
            by_key[key] = (line, lead)
    return ImportReport(leads=[lead for _, lead in by_key.values()], errors=errors, merged=merged)


def _merge(earlier: LeadIn, later: LeadIn) -> LeadIn:
    """Later wins, but a blank in the later row does not erase what the earlier one knew."""
    return later.model_copy(
        update={
            "phone": later.phone or earlier.phone,
            "address": later.address or earlier.address,
        }
    )


def _reason(exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        cause = error.get("ctx", {}).get("error")
        if error["type"] == "missing":
            reasons.append(f"{field} is missing")
        elif isinstance(cause, ValueError):
            reasons.append(str(cause))  # our validators' messages already name the field
        else:
            reasons.append(f"{field}: {error['msg']}")
    return "; ".join(reasons)


def _canonical(column: str) -> str:
    return " ".join(column.lower().replace("_", " ").replace("-", " ").split())


def _field_columns(columns: Iterable[str]) -> dict[str, str]:
    """Field -> the column that supplies it, chosen by alias priority."""
    by_canonical: dict[str, str] = {}
    for column in columns:
        by_canonical.setdefault(_canonical(column), column)
    chosen: dict[str, str] = {}
    for field, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in by_canonical:
                chosen[field] = by_canonical[alias]
                break
    return chosen


def _pick_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    columns = _field_columns(str(key) for key in row)
    by_name = {str(key): value for key, value in row.items()}
    return {field: by_name[column] for field, column in columns.items()}


def _csv_rows(text: str, path: Path) -> list[tuple[int, object]]:
    lines = text.splitlines(keepends=True)
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise LeadFileError(f"{path}: the file is empty")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            lines[header_at], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines[header_at:], dialect)
    try:
        header = next(reader)
        columns = _field_columns(header)
        missing = [field for field in ("name", "website") if field not in columns]
        if missing:
            expected = "; ".join(
                f"{field}: one of {', '.join(COLUMN_ALIASES[field])}" for field in missing
            )
            raise LeadFileError(f"{path}: header has no column for {expected}")
        rows: list[tuple[int, object]] = []
        ended_at = reader.line_num
        for record in reader:
            line = header_at + ended_at + 1
            ended_at = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(header):
                reason = f"row has {len(record)} fields, the header {len(header)}"
                rows.append((line, RowError(line=line, reason=reason)))
                continue
            rows.append((line, dict(zip(header, record, strict=False))))
    except csv.Error as exc:
        raise LeadFileError(f"{path}: line {header_at + reader.line_num}: {exc}") from exc
    return rows


def _json_rows(text: str, path: Path) -> list[tuple[int, object]]:
    """Each lead object with the line it starts on, found by walking the top-level structure."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LeadFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if isinstance(document, dict):
        if not isinstance(document.get("leads"), list):
            raise LeadFileError(f'{path}: expected a list of leads or {{"leads": [...]}}')
        start = _member_offset(text, "leads")
    elif isinstance(document, list):
        start = _skip_whitespace(text, 0)
    else:
        raise LeadFileError(f'{path}: expected a list of leads or {{"leads": [...]}}')
    return [(text.count("\n", 0, offset) + 1, item) for offset, item in _array_items(text, start)]


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_WHITESPACE:
        pos += 1
    return pos


def _member_offset(text: str, wanted: str) -> int:
    """Offset of the value of top-level member ``wanted`` (the last one, as json.loads keeps)."""
    decoder = json.JSONDecoder()
    pos = _skip_whitespace(text, _skip_whitespace(text, 0) + 1)
    found = -1
    while text[pos] != "}":
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_whitespace(text, _skip_whitespace(text, pos) + 1)  # past ":"
        if key == wanted:
            found = pos
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_whitespace(text, pos)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
    return found


def _array_items(text: str, start: int) -> list[tuple[int, object]]:
    """(offset, value) of each element of the (already validated) array starting at ``start``."""
    decoder = json.JSONDecoder()
    items: list[tuple[int, object]] = []
    pos = _skip_whitespace(text, start + 1)
    while text[pos] != "]":
        value, end = decoder.raw_decode(text, pos)
        items.append((pos, value))
        pos = _skip_whitespace(text, end)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
    return items
