"""The read-only queries the reports need beyond ``leadshop.db``'s operations.

A report shows when things were measured, so it needs the assessment row itself (status, times,
scores), not only the envelopes ``db.load_results`` returns. These queries only read, and they
open their transaction without SQLite's write lock (the option ``leadshop.db`` defines for
readers), so rendering a report never queues behind a running batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from leadshop import db
from leadshop.models import AssessmentResult, LeadRecord


@dataclass(frozen=True)
class LeadAssessment:
    """One lead's assessment in one batch: the row's bookkeeping and its sections' envelopes."""

    lead: LeadRecord
    batch_id: str
    status: str
    overall_score: int | None
    overall_grade: str | None
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    results: dict[str, AssessmentResult] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchTimes:
    """When a batch's first lead started and its last one finished."""

    started_at: datetime | None
    completed_at: datetime | None


def latest_batch_of_lead(engine: Engine, lead_id: int) -> str | None:
    """The batch that most recently created a row for this lead, or None if none did."""
    query = (
        select(db.Assessment.batch_id)
        .where(db.Assessment.lead_id == lead_id)
        .order_by(db.Assessment.created_at.desc(), db.Assessment.id.desc())
        .limit(1)
    )
    with db.reading(engine) as session:
        return session.scalar(query)


def load_lead_assessment(engine: Engine, lead_id: int, batch_id: str) -> LeadAssessment:
    """Everything a lead's report shows; LookupError when the lead has no row in the batch."""
    query = select(db.Assessment, db.Lead).join(db.Lead, db.Lead.id == db.Assessment.lead_id)
    query = query.where(db.Assessment.batch_id == batch_id, db.Assessment.lead_id == lead_id)
    with db.reading(engine) as session:
        found = session.execute(query).tuples().first()
        if found is None:
            raise LookupError(f"no assessment for lead {lead_id} in batch {batch_id!r}")
        row, lead = found
        assessment = LeadAssessment(
            lead=lead.record(),
            batch_id=row.batch_id,
            status=row.status,
            overall_score=row.overall_score,
            overall_grade=row.overall_grade,
            started_at=row.started_at,
            completed_at=row.completed_at,
            error_message=row.error_message,
        )
    results = db.load_results(engine, batch_id, lead_id)
    assessment.results.update((result.assessment, result) for result in results)
    return assessment


def batch_times(engine: Engine, batch_id: str) -> BatchTimes:
    query = select(func.min(db.Assessment.started_at), func.max(db.Assessment.completed_at))
    with db.reading(engine) as session:
        started, completed = session.execute(query.where(db.Assessment.batch_id == batch_id)).one()
    return BatchTimes(started_at=started, completed_at=completed)
