"""The batch flow: leads in, one stored assessment row per lead out.

Reads like its table of contents: prepare the batch, map ``assess_lead`` over the Dask cluster,
report progress as leads finish, end with a table of the batch. A bad lead never fails the
batch; the run ends Completed once every lead has been stored, whatever the grades.
"""

from __future__ import annotations

from leadshop.server import ensure_api_url

# Every Dask worker inherits this process's environment: the API URL must be set before Prefect
# is imported (it reads its settings once), or each process would use a throw-away server.
ensure_api_url()

import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import distributed  # noqa: E402
from prefect import flow, get_run_logger, unmapped  # noqa: E402
from prefect.artifacts import (  # noqa: E402
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from leadshop.config import get_settings  # noqa: E402
from tasks.lead import LEAD_TIMEOUT_SECONDS, LeadOutcome, assess_lead  # noqa: E402
from tasks.registry import ASSESSMENTS, resolve  # noqa: E402
from tasks.store import BatchPlan, mark_unfinished, prepare_batch  # noqa: E402

# If no lead at all finishes for this long, the rest are given up (a lost Dask worker can leave
# its Prefect task run RUNNING forever: PrefectHQ/prefect#21638).
STALL_SECONDS = LEAD_TIMEOUT_SECONDS + 60


def task_runner() -> DaskTaskRunner:
    """An existing scheduler when ``LEADSHOP_DASK_ADDRESS`` is set, else a LocalCluster."""
    settings = get_settings()
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": settings.dask_threads_per_worker,
            "memory_limit": settings.dask_memory_limit,
            "dashboard_address": settings.dask_dashboard_address,
        }
    )


@flow(name="assess-leads", task_runner=task_runner(), log_prints=True)
def assess_leads(
    lead_ids: list[int] | None = None,
    leads: list[dict[str, Any]] | None = None,
    file: str | None = None,
    assessments: list[str] | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    """Assess a batch given as lead ids, lead records (name, website, phone, address) or a file.

    ``assessments`` defaults to every registered one; ``module:attribute`` adds a plugin task.
    """
    started = time.monotonic()
    batch_id = batch_id or uuid.uuid4().hex
    specs = assessments or list(ASSESSMENTS)
    names = [resolve(spec).name for spec in specs]  # an unknown name stops here, before any work
    plan = prepare_batch(batch_id, flow_run.get_id(), lead_ids, leads, file)
    futures = assess_lead.map(plan.leads, unmapped(batch_id), unmapped(specs))
    outcomes = collect(futures, plan, batch_id)
    summary = summarise(batch_id, plan, outcomes, time.monotonic() - started)
    publish(summary, names)
    return summary


def collect(futures: Any, plan: BatchPlan, batch_id: str) -> list[LeadOutcome]:
    """Wait for leads as they finish, updating the progress artifact; never wait forever."""
    total = max(len(plan.leads), 1)
    progress = create_progress_artifact(progress=0.0, key="assess-leads-progress")
    assert isinstance(progress, uuid.UUID)  # the sync call returns the id, not a coroutine
    pending = {future.wrapped_future: future for future in futures}
    outcomes: list[LeadOutcome] = []
    while pending:
        try:
            with next(iter(pending)).client.as_current():
                done, _ = distributed.wait(
                    list(pending), timeout=STALL_SECONDS, return_when="FIRST_COMPLETED"
                )
        except TimeoutError:
            break
        for dask_future in done:
            result = pending.pop(dask_future).result(raise_on_failure=False)
            if isinstance(result, LeadOutcome):
                outcomes.append(result)
        update_progress_artifact(progress, progress=100.0 * (total - len(pending)) / total)
    update_progress_artifact(progress, progress=100.0)
    finished = {outcome.lead_id for outcome in outcomes}
    lost = [lead for lead in plan.leads if lead.id not in finished]
    if lost:
        reason = "no result: the lead's run crashed, timed out or lost its worker"
        mark_unfinished(batch_id, [lead.id for lead in lost], reason)
        outcomes += [LeadOutcome.lost(lead, reason) for lead in lost]
    return outcomes


def summarise(
    batch_id: str, plan: BatchPlan, outcomes: list[LeadOutcome], seconds: float
) -> dict[str, Any]:
    """The batch in figures, weakest leads (the best prospects) first."""
    counts = {status: 0 for status in ("completed", "partial", "failed")}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    ranked = sorted(outcomes, key=lambda o: (o.overall_score is None, o.overall_score or 0))
    return {
        "batch_id": batch_id,
        "flow_run_id": str(flow_run.get_id() or ""),
        "leads": len(outcomes),
        **counts,
        "rejected": [r.model_dump() for r in plan.rejected],
        "seconds": round(seconds, 2),
        "leads_per_hour": round(len(outcomes) * 3600 / seconds, 1) if seconds > 0 else 0.0,
        "results": [o.model_dump() for o in ranked],
    }


def publish(summary: dict[str, Any], names: list[str]) -> None:
    """The batch's table artifact, with throughput and failures in its description."""
    rows = [
        {
            "lead": r["name"],
            "website": r["website"],
            "status": r["status"],
            **{n: (r["sections"].get(n) or {}).get("grade") or "-" for n in names},
            "overall": r["overall_grade"] or "-",
            "score": r["overall_score"],
        }
        for r in summary["results"]
    ]
    rejected = "".join(
        f"\n- rejected {r['source']} line {r['line']}: {r['reason']}" for r in summary["rejected"]
    )
    description = (
        f"**{summary['leads']} leads** in {summary['seconds']} s: "
        f"**{summary['leads_per_hour']} leads/hour**; completed {summary['completed']}, "
        f"partial {summary['partial']}, failed {summary['failed']}, "
        f"rejected inputs {len(summary['rejected'])}.{rejected}"
    )
    create_table_artifact(table=rows, key="assess-leads-batch", description=description)
    get_run_logger().info(description)
