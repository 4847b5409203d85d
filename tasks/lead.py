"""One lead, end to end: its assessments side by side, then the store step.

This is the unit mapped across the Dask cluster. The assessments are awaited here as child task
runs (each keeps its own retries and state in the UI) instead of being submitted one by one to
Dask: a Dask submission cost about 250 ms of worker CPU per task run on these machines, and
awaiting them lets one lead's waits on slow sites overlap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from pydantic import BaseModel

from leadshop.models import AssessmentResult, LeadRecord
from leadshop.scoring import grade_for, overall
from tasks.registry import RETRY_DELAYS, TIMEOUT_SECONDS, resolve
from tasks.store import mark_in_progress, store_lead

# An assessment's worst case is four attempts with the waits between them; then the store.
LEAD_TIMEOUT_SECONDS = TIMEOUT_SECONDS * 4 + sum(RETRY_DELAYS) * 2 + 60


class Section(BaseModel):
    status: str
    score: int | None = None
    grade: str | None = None
    error: str | None = None


class LeadOutcome(BaseModel):
    """What the flow needs to report a lead without reading the database back."""

    lead_id: int
    name: str
    website: str
    status: str
    overall_score: int | None
    overall_grade: str | None
    sections: dict[str, Section]
    error: str | None = None

    @classmethod
    def lost(cls, lead: LeadRecord, reason: str) -> LeadOutcome:
        return cls(
            lead_id=lead.id,
            name=lead.name,
            website=lead.website,
            status="failed",
            overall_score=None,
            overall_grade=None,
            sections={},
            error=reason,
        )


async def run_assessment(spec: str, lead: LeadRecord) -> AssessmentResult:
    """The assessment's envelope; a failure after its retries becomes a failed envelope."""
    started = time.monotonic()
    name = spec
    try:
        assessment = resolve(spec)
        name = assessment.name
        call: Any = assessment  # Task's typing has no overload for return_state on async tasks
        state: State[AssessmentResult] = await call(lead, return_state=True)
        outcome = await state.aresult(raise_on_failure=False)
    except Exception as exc:  # an unknown plugin name, an engine error: still only this section
        outcome = exc
    if isinstance(outcome, AssessmentResult):
        return outcome
    if not isinstance(outcome, BaseException):
        outcome = TypeError(f"{name} returned {type(outcome).__name__}, not an envelope")
    return AssessmentResult.failure(name, outcome, int((time.monotonic() - started) * 1000))


@task(
    name="assess-lead",
    task_run_name="lead-{lead.id}",
    timeout_seconds=LEAD_TIMEOUT_SECONDS,
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def assess_lead(lead: LeadRecord, batch_id: str, assessments: list[str]) -> LeadOutcome:
    await mark_in_progress(batch_id, lead.id)
    results = list(await asyncio.gather(*(run_assessment(n, lead) for n in assessments)))
    status = await store_lead(batch_id, lead.id, results)
    scored = [r.score for r in results if r.status == "completed" and r.score is not None]
    total = overall(scored)
    return LeadOutcome(
        lead_id=lead.id,
        name=lead.name,
        website=lead.website,
        status=status,
        overall_score=total,
        overall_grade=grade_for(total) if total is not None else None,
        sections={
            r.assessment: Section(
                status=r.status,
                score=r.score,
                grade=r.grade,
                error=f"{r.error.type}: {r.error.message}" if r.error else None,
            )
            for r in results
        },
    )
