"""The ranked list of a batch as CSV or JSON, for spreadsheets and CRMs.

Rows come from ``db.batch_rows`` in its order (best prospect first) with a ``rank`` in front:
the lead's fields, the row's status, every section's ``_status``, ``_score`` and ``_grade``, the
overall score and grade. Both formats carry the same keys.

CSV cells are neutralised against formula injection as OWASP advises: a text cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so a spreadsheet shows
it as text instead of running it (a business named ``=HYPERLINK(...)``, a hacked site's text).
Only text is touched: a number, negative or not, is written as a number, so sorting by score
still works; a phone number written as text ``+1 503...`` does get the quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from leadshop import db

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD = "'"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


def neutralise(value: Any) -> Any:
    """A CSV cell value a spreadsheet will not evaluate; numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return FORMULA_GUARD + value
    return value


def export_rows(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    """The batch's ranked rows, each led by its ``rank``; LookupError for an unknown batch."""
    rows = db.batch_rows(engine, batch_id)
    if not rows:
        raise LookupError(f"no batch {batch_id!r}")
    return [{"rank": rank, **row} for rank, row in enumerate(rows, start=1)]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Header and rows, every text cell neutralised; the csv module quotes what needs it."""
    buffer = io.StringIO(newline="")
    columns = list(rows[0]) if rows else []
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(column) for column in columns])
    writer.writerows(_cells(row, columns) for row in rows)
    return buffer.getvalue()


def _cells(row: Mapping[str, Any], columns: Iterable[str]) -> list[Any]:
    return ["" if row.get(column) is None else neutralise(row.get(column)) for column in columns]


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """A list of objects with the same keys as the CSV; values as stored, null for none."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"


def write_export(engine: Engine, batch_id: str, fmt: ExportFormat, out: Path) -> int:
    """Write the batch's ranked list to ``out`` (UTF-8); returns how many leads it holds."""
    rows = export_rows(engine, batch_id)
    text = to_csv(rows) if fmt is ExportFormat.csv else to_json(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as file:
        file.write(text)
    return len(rows)
