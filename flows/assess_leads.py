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
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from leadshop.config import get_settings  # noqa: E402
from leadshop.models import LeadRecord  # noqa: E402
from leadshop.reports.html import LEAD_FILE  # noqa: E402
from leadshop.reports.markdown import escape_cell, top_prospects_markdown  # noqa: E402
from tasks.lead import LEAD_TIMEOUT_SECONDS, assess_chunk  # noqa: E402
from tasks.registry import DEFAULT, resolve  # noqa: E402
from tasks.store import (  # noqa: E402
    BatchPlan,
    batch_progress,
    finish_batch,
    prepare_batch,
    write_reports,
)

PROGRESS_SECONDS = 2.0
LINKED_REPORTS = 5  # the best prospects whose reports get a link artifact of their own
# If no lead finishes for this long, the rest are given up: a lost Dask worker can leave its
# Prefect task run RUNNING forever (PrefectHQ/prefect#21638); every lead has its own timeout.
STALL_SECONDS = LEAD_TIMEOUT_SECONDS + 60
LOST = "no result: the lead's run was lost (worker died or the cluster stalled)"


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
    specs = assessments or list(DEFAULT)
    names = [resolve(spec).name for spec in specs]  # an unknown name stops here, before any work
    plan = prepare_batch(batch_id, flow_run.get_id(), lead_ids, leads, file)
    chunks = split(plan.leads, worker_threads())
    watch(assess_chunk.map(chunks, unmapped(batch_id), unmapped(specs)), batch_id)
    rows = finish_batch(batch_id, LOST)
    summary = summarise(batch_id, plan, rows, time.monotonic() - started)
    publish(summary, names)
    if rows:
        publish_reports(batch_id, rows)
    return summary


def worker_threads() -> int:
    context = FlowRunContext.get()
    assert context is not None and isinstance(context.task_runner, DaskTaskRunner)
    threads: dict[str, int] = context.task_runner.client.nthreads()
    return max(1, sum(threads.values()))


def split(leads: list[LeadRecord], parts: int) -> list[list[LeadRecord]]:
    """Round-robin, so each worker thread gets a share of every part of the list."""
    parts = max(1, min(parts, len(leads)))
    return [leads[i::parts] for i in range(parts)] if leads else []


def watch(futures: Any, batch_id: str) -> None:
    """Wait for the chunks, drawing the progress artifact from the database; never forever."""
    progress = create_progress_artifact(progress=0.0, key="assess-leads-progress")
    assert isinstance(progress, uuid.UUID)  # the sync call returns the id, not a coroutine
    pending = [future.wrapped_future for future in futures]
    finished, last_change = 0, time.monotonic()
    while True:
        try:
            if pending:
                with pending[0].client.as_current():
                    distributed.wait(pending, timeout=PROGRESS_SECONDS)
            done = True
        except TimeoutError:
            done = False
        state = batch_progress(batch_id)
        if state["finished"] != finished or done:
            finished, last_change = state["finished"], time.monotonic()
            update_progress_artifact(progress, progress=float(state["percent"]))
        if done or time.monotonic() - last_change > STALL_SECONDS:
            return


def summarise(
    batch_id: str, plan: BatchPlan, rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """The batch in figures; ``results`` are the stored rows, best prospects first."""
    counts = {
        status: sum(row["status"] == status for row in rows)
        for status in ("completed", "partial", "failed")
    }
    return {
        "batch_id": batch_id,
        "flow_run_id": str(flow_run.get_id() or ""),
        "leads": len(rows),
        **counts,
        "rejected": [r.model_dump() for r in plan.rejected],
        "seconds": round(seconds, 2),
        "leads_per_hour": round(len(rows) * 3600 / seconds, 1) if seconds > 0 else 0.0,
        "results": rows,
    }


def publish(summary: dict[str, Any], names: list[str]) -> None:
    """The batch's table artifact, with throughput and failures in its description."""
    table = [
        {
            "lead": row["name"],
            "website": row["website"],
            "status": row["status"],
            **{
                name: row.get(f"{name}_grade") or row.get(f"{name}_status") or "-" for name in names
            },
            "overall": row["overall_grade"] or "-",
            "score": row["overall_score"],
        }
        for row in summary["results"]
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
    create_table_artifact(table=table, key="assess-leads-batch", description=description)
    get_run_logger().info(description)


def publish_reports(batch_id: str, rows: list[dict[str, Any]]) -> None:
    """The top prospects as markdown, and links to the reports written for the batch. A report
    that cannot be written costs its links, never the batch."""
    create_markdown_artifact(
        markdown=top_prospects_markdown(rows), key="assess-leads-top-prospects"
    )
    state = write_reports(batch_id, return_state=True)
    if not state.is_completed():
        get_run_logger().warning("No reports for batch %s: %s", batch_id, state.message)
        return
    index = state.result()
    create_link_artifact(
        link=index.as_uri(), link_text="All reports of the batch", key="assess-leads-reports"
    )
    for row in rows[:LINKED_REPORTS]:
        report = index.parent / LEAD_FILE.format(lead_id=row["lead_id"])
        create_link_artifact(
            link=report.as_uri(),
            link_text=f"Report: {escape_cell(row['name'])}",
            key=f"lead-report-{row['lead_id']}",
        )
