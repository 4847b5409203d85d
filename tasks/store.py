"""The tasks that write to the database; nothing else in tasks/ or flows/ touches it.

A lead's sections are written together by one ``store_lead`` task run (the reduce step), in one
transaction, so a crash leaves the lead ``in_progress`` or fully stored, never half-written.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlalchemy import Engine

from leadshop import db
from leadshop.config import get_settings
from leadshop.leads import ImportReport, parse_leads, parse_records
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.reports.html import batch_folder, write_batch_reports


class Rejected(BaseModel):
    """An input the batch could not take, with where it came from and why."""

    source: str
    line: int
    reason: str


class BatchPlan(BaseModel):
    leads: list[LeadRecord]
    rejected: list[Rejected]


def _engine() -> Engine:
    return db.make_engine(get_settings().resolved_database_url)


def _import(engine: Engine, report: ImportReport, source: str) -> tuple[list[int], list[Rejected]]:
    ids = db.upsert_leads(engine, report.leads) if report.leads else []
    rejected = [Rejected(source=source, line=e.line, reason=e.reason) for e in report.errors]
    return ids, rejected


@task(name="prepare-batch", cache_policy=NO_CACHE, persist_result=False)
def prepare_batch(
    batch_id: str,
    flow_run_id: str | None,
    lead_ids: list[int] | None = None,
    leads: list[dict[str, Any]] | None = None,
    file: str | None = None,
) -> BatchPlan:
    """Import what came as records or a file, look up ids, and create one pending row per lead."""
    url = get_settings().resolved_database_url
    db.migrate(url)
    engine = db.make_engine(url)
    ids: list[int] = []
    rejected: list[Rejected] = []
    for report, source in (
        (parse_leads(Path(file)) if file else None, file or ""),
        (parse_records(leads) if leads else None, "leads"),
    ):
        if report is not None:
            new_ids, new_rejected = _import(engine, report, source)
            ids += new_ids
            rejected += new_rejected
    wanted = list(dict.fromkeys([*ids, *(lead_ids or [])]))
    found = {lead.id: lead for lead in db.get_leads(engine, wanted, missing_ok=True)}
    rejected += [
        Rejected(source="lead_ids", line=i, reason=f"no lead with id {lead_id}")
        for i, lead_id in enumerate(lead_ids or [], start=1)
        if lead_id not in found
    ]
    records = [found[i] for i in wanted if i in found]
    db.create_batch(engine, batch_id, [r.id for r in records], flow_run_id)
    return BatchPlan(leads=records, rejected=rejected)


async def mark_in_progress(batch_id: str, lead_id: int) -> None:
    """Not a task run of its own: a status flip is not worth the per-task-run overhead."""
    await asyncio.to_thread(db.mark_in_progress, _engine(), batch_id, lead_id)


@task(
    name="store",
    task_run_name="store-{lead_id}",
    retries=2,
    retry_delay_seconds=[1, 2],
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def store_lead(batch_id: str, lead_id: int, results: list[AssessmentResult]) -> str:
    """Write every section of one lead at once; returns its status."""
    return await asyncio.to_thread(db.save_results, _engine(), batch_id, lead_id, results)


async def mark_failed(batch_id: str, lead_id: int, reason: str) -> None:
    """A lead whose run crashed or timed out ends ``failed`` at once, not stuck in progress."""
    await asyncio.to_thread(db.mark_failed, _engine(), batch_id, lead_id, reason)


def batch_progress(batch_id: str) -> dict[str, Any]:
    """Counts per status, read by the flow to draw progress while the chunks run."""
    return db.batch_progress(_engine(), batch_id)


@task(name="finish-batch", cache_policy=NO_CACHE, persist_result=False)
def finish_batch(batch_id: str, reason: str) -> list[dict[str, Any]]:
    """Fail whatever never finished (lost worker, stalled cluster), then return the ranked rows."""
    engine = _engine()
    for row in db.batch_rows(engine, batch_id):
        if row["status"] not in db.FINISHED:
            db.mark_failed(engine, batch_id, row["lead_id"], reason)
    return db.batch_rows(engine, batch_id)


@task(name="find-stale-leads", cache_policy=NO_CACHE, persist_result=False)
def stale_leads(days: int, limit: int | None = None) -> list[int]:
    """Leads to re-assess: never assessed with a result, or not within ``days``; lowest ids
    first."""
    url = get_settings().resolved_database_url
    db.migrate(url)
    ids = db.stale_lead_ids(db.make_engine(url), timedelta(days=days))
    return ids[:limit] if limit is not None else ids


@task(name="write-reports", cache_policy=NO_CACHE, persist_result=False)
def write_reports(batch_id: str) -> Path:
    """Every lead's HTML report and the batch index, where ``leadshop report --batch`` puts
    them; returns the index."""
    folder = batch_folder(get_settings().home, batch_id)
    return write_batch_reports(_engine(), batch_id, folder)
