"""Leads end to end: each lead's assessments side by side, then its store step.

The unit mapped across Dask is a *chunk* of leads, not a lead. Every Dask submission re-creates a
Prefect engine, settings and API client on the worker; measured here (bench/throughput.py and
DESIGN.md) that is 150-250 ms of worker CPU per submitted task run, against ~25 ms for a task run
awaited inside another. So each worker thread gets one chunk and runs its leads as nested task
runs on one event loop, their waits on slow sites overlapping; every lead and assessment still
has its own task run, retries and state in the UI.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from leadshop.models import AssessmentResult, LeadRecord
from tasks.registry import (
    FOLLOW_UPS,
    QUEUED_TIMEOUT_SECONDS,
    RETRY_DELAYS,
    TIMEOUT_SECONDS,
    resolve,
)
from tasks.store import mark_failed, mark_in_progress, store_lead

# The slowest assessment's worst case: a queued first attempt, three more, the waits between
# them; then the store.
LEAD_TIMEOUT_SECONDS = QUEUED_TIMEOUT_SECONDS + TIMEOUT_SECONDS * 3 + sum(RETRY_DELAYS) * 2 + 60
LEADS_AT_ONCE = 10  # leads in flight per chunk (per worker thread)


async def run_assessment(spec: str, lead: LeadRecord, *inputs: Any) -> AssessmentResult:
    """The assessment's envelope; a failure after its retries becomes a failed envelope.
    ``inputs`` follow the lead: a follow-up's are the other assessments' envelopes."""
    started = time.monotonic()
    name = spec
    try:
        assessment = resolve(spec)
        name = assessment.name
        call: Any = assessment  # Task's typing has no overload for return_state on async tasks
        state: State[AssessmentResult] = await call(lead, *inputs, return_state=True)
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
async def assess_lead(lead: LeadRecord, batch_id: str, assessments: list[str]) -> str:
    """One lead: in_progress, its assessments in parallel, then the follow-ups (llm) with their
    envelopes, then one store; returns its status."""
    await mark_in_progress(batch_id, lead.id)
    first = [spec for spec in assessments if spec not in FOLLOW_UPS]
    results = list(await asyncio.gather(*(run_assessment(s, lead) for s in first)))
    for spec in assessments:
        if spec in FOLLOW_UPS:
            results.append(await run_assessment(spec, lead, list(results)))
    return await store_lead(batch_id, lead.id, results)


@task(name="assess-chunk", cache_policy=NO_CACHE, persist_result=False)
async def assess_chunk(leads: list[LeadRecord], batch_id: str, assessments: list[str]) -> int:
    """Some leads of a batch, ``LEADS_AT_ONCE`` at a time; a lead that crashes or times out is
    stored as failed at once, and the others carry on. Returns how many leads were handled."""
    gate = asyncio.Semaphore(LEADS_AT_ONCE)

    async def one(lead: LeadRecord) -> None:
        async with gate:
            call: Any = assess_lead
            state: State[str] = await call(lead, batch_id, assessments, return_state=True)
            if not state.is_completed():
                await mark_failed(
                    batch_id,
                    lead.id,
                    f"the lead's run ended {state.name}: {state.message or 'no message'}",
                )

    await asyncio.gather(*(one(lead) for lead in leads))
    return len(leads)
