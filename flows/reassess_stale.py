"""The nightly flow: re-assess the leads whose results are missing or too old.

Scheduled by the ``reassess-stale/nightly`` deployment (prefect.yaml, 03:00 every night). It
only picks the leads; the work is one ``assess-leads`` run over them, a subflow, so the batch
shows up, is stored and ranked exactly like one started by hand.
"""

from __future__ import annotations

from leadshop.server import ensure_api_url

ensure_api_url()  # before Prefect is imported: see flows/assess_leads.py

from typing import Any  # noqa: E402

from prefect import flow, get_run_logger  # noqa: E402

from flows.assess_leads import assess_leads  # noqa: E402
from tasks.store import stale_leads  # noqa: E402

DEFAULT_DAYS = 30


@flow(name="reassess-stale", log_prints=True)
def reassess_stale(
    days: int = DEFAULT_DAYS, limit: int | None = None, assessments: list[str] | None = None
) -> dict[str, Any]:
    """Re-assess leads never assessed, or last assessed more than ``days`` days ago (at most
    ``limit`` of them, lowest ids first; ``assessments`` as in assess-leads, default all). A
    failed attempt does not count as assessed."""
    if days < 0:
        raise ValueError("days must be 0 or more")
    ids = stale_leads(days, limit)
    if not ids:
        get_run_logger().info("No lead needs re-assessing (older than %d days).", days)
        return {"leads": 0, "lead_ids": []}
    get_run_logger().info("Re-assessing %d leads older than %d days.", len(ids), days)
    summary = assess_leads(lead_ids=ids, assessments=assessments)
    return {**summary, "lead_ids": ids}
