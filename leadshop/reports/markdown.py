"""The best prospects of a batch as a markdown table, for the flow's Prefect artifact.

Prefect renders artifact markdown, HTML included, so every cell is escaped: lead names and
websites come from lead lists and websites, and one ``|`` or newline would break the table, one
``<script>`` or ``[link](javascript:...)`` would be markup. Only the characters that mean
something inside a table cell are escaped (list and heading markers only count at a line's
start, which a cell never is). A renderer may still autolink a bare ``http(s)://`` address;
nothing else becomes a link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from leadshop.reports.html import FOLLOW_UP, section_columns

WEAKEST_SHOWN = 2  # sections named per lead: its two lowest-scored, failures first
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def escape_cell(value: object) -> str:
    """Text safe inside a markdown table cell: one line, no markup, no HTML."""
    text = " ".join(str(value).split())  # newlines and tabs end a table row
    text = "".join(_HTML_SPECIAL.get(char, char) for char in text)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def weakest_sections(row: Mapping[str, Any], sections: Sequence[str]) -> str:
    """The sections that drag the lead down: failed ones, then the lowest scores."""
    failed = [(-1, name, "failed") for name in sections if row.get(f"{name}_status") == "failed"]
    scored = [
        (row[f"{name}_score"], name, f"{row.get(f'{name}_grade') or '-'} ({row[f'{name}_score']})")
        for name in sections
        if isinstance(row.get(f"{name}_score"), int)
    ]
    picked = sorted(failed) + sorted(scored)
    return ", ".join(f"{name} {label}" for _, name, label in picked[:WEAKEST_SHOWN]) or "-"


def top_prospects_markdown(rows: Sequence[Mapping[str, Any]], limit: int = 10) -> str:
    """A table of the first ``limit`` rows of ``db.batch_rows`` (already ranked): rank, lead,
    website, overall grade and the weakest sections."""
    if not rows:
        return "No leads in this batch.\n"
    sections = [name for name in section_columns(rows) if name != FOLLOW_UP]
    lines = [
        f"## Top {min(limit, len(rows))} prospects of {len(rows)}",
        "",
        "| # | Lead | Website | Overall | Weakest sections |",
        "|---:|---|---|---|---|",
    ]
    for rank, row in enumerate(rows[:limit], start=1):
        grade = row.get("overall_grade")
        overall = f"{grade} ({row.get('overall_score')})" if grade else "not scored"
        cells = (
            row.get("name", ""),
            row.get("website", ""),
            overall,
            weakest_sections(row, sections),
        )
        lines.append(f"| {rank} | " + " | ".join(escape_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
