"""Reports: a self-contained HTML page per lead with a ranked index (``html``), the ranked list as
CSV or JSON (``export``) and the top prospects as a markdown table for the flow's artifact
(``markdown``).

Everything here reads the database and never writes it, and everything a website said is
treated as hostile wherever it lands: escaped in HTML and markdown, neutralised in CSV.
"""

from leadshop.reports.export import ExportFormat, export_rows, write_export
from leadshop.reports.html import render_index, render_lead, write_batch_reports, write_lead_report
from leadshop.reports.markdown import top_prospects_markdown

__all__ = [
    "ExportFormat",
    "export_rows",
    "render_index",
    "render_lead",
    "top_prospects_markdown",
    "write_batch_reports",
    "write_export",
    "write_lead_report",
]
