"""Throughput of the assess-leads flow over N leads on loopback sites.

    python -m bench.throughput --leads 50 [--structure chunked|per-lead|per-task] [--latency-ms 100]
        [--assessment security --assessment semrush ...]  (default: security only, the figures
        measure the pipeline; the browser assessments are measured by bench.browser_memory)

Prints leads/hour, task runs/second and CPU milliseconds per task run (this process and its
Dask worker processes; the Prefect server's CPU separately). ``chunked`` is the flow as shipped
(one Dask task per worker thread, its leads and their assessments awaited inside as nested task
runs); ``per-lead`` and ``per-task`` are the alternatives, for side-by-side figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from typing import Any
from uuid import UUID

import psutil

from tests.sites import Reply, serve

RUSAGE = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
PAGE_HEADERS = {
    "Content-Type": "text/html",
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def cpu_seconds(process: psutil.Process | None) -> float:
    """CPU of a process tree so far; for this process, also its reaped children (Dask workers)."""
    if process is None:
        return 0.0
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
        if proc.pid == os.getpid():
            total += times.children_user + times.children_system
    return total


def count_task_runs(flow_run_id: str, settle_seconds: float = 3.0) -> int:
    """Task runs reach the server as events, after the fact: count until the number settles."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    counts: list[int] = []
    with get_client(sync_client=True) as client:
        while len(counts) < 2 or counts[-1] != counts[-2]:
            total = 0
            while page := client.read_task_runs(
                flow_run_filter=flow_filter, offset=total, limit=200
            ):
                total += len(page)
            counts.append(total)
            time.sleep(settle_seconds)
    return counts[-1]


def alternative_flow(structure: str) -> Any:
    """The structures not taken, on the same tasks, for side-by-side figures.

    ``per-task``: every assessment and store submitted to Dask on its own.
    ``per-lead``: one Dask task per lead, awaiting its assessments inside.
    """
    from prefect import flow, unmapped
    from prefect.futures import wait
    from prefect.runtime import flow_run

    from flows.assess_leads import task_runner
    from tasks.lead import assess_lead
    from tasks.registry import ASSESSMENTS, resolve
    from tasks.store import prepare_batch, store_lead

    @flow(name=f"assess-leads-{structure}", task_runner=task_runner())
    def assess_leads_alternative(
        leads: list[dict[str, Any]], batch_id: str, assessments: list[str]
    ) -> dict[str, Any]:
        plan = prepare_batch(batch_id, flow_run.get_id(), leads=leads)
        if structure == "per-lead":
            wait(assess_lead.map(plan.leads, unmapped(batch_id), unmapped(assessments)))
        else:
            tasks: list[Any] = [resolve(name) for name in assessments if name in ASSESSMENTS]
            wait(
                [
                    store_lead.submit(batch_id, lead.id, [t.submit(lead) for t in tasks])
                    for lead in plan.leads
                ]
            )
        return {"flow_run_id": str(flow_run.get_id()), "leads": len(plan.leads)}

    return assess_leads_alternative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=50)
    parser.add_argument(
        "--structure", choices=("chunked", "per-lead", "per-task"), default="chunked"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="each page answer's delay")
    parser.add_argument("--assessment", action="append", help="registered name; repeatable")
    args = parser.parse_args()
    assessments = args.assessment or ["security"]

    home = tempfile.mkdtemp(prefix="leadshop-bench-")
    os.environ.update(
        LEADSHOP_DATABASE_URL=f"sqlite:///{home}/bench.db",
        LEADSHOP_ALLOW_PRIVATE_NETWORKS="true",
        LEADSHOP_DASK_DASHBOARD_ADDRESS=":0",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    from leadshop import server

    api_url = server.ensure_api_url()
    server_pid = server.status().pid
    server_process = psutil.Process(server_pid) if server_pid else None

    from flows.assess_leads import assess_leads

    page = Reply(headers=PAGE_HEADERS, delay=args.latency_ms / 1000)
    with serve({}, default=page) as site:
        leads = [
            {"name": f"Shop {i}", "website": site.url(f"/shop/{i}")} for i in range(args.leads)
        ]
        me = psutil.Process()
        cpu_before, server_before = cpu_seconds(me), cpu_seconds(server_process)
        started = time.monotonic()
        if args.structure == "chunked":
            summary = assess_leads(leads=leads, assessments=assessments)
        else:
            flow = alternative_flow(args.structure)
            summary = flow(leads=leads, batch_id=os.urandom(8).hex(), assessments=assessments)
        seconds = time.monotonic() - started
        cpu = cpu_seconds(me) - cpu_before
        server_cpu = cpu_seconds(server_process) - server_before
    runs = count_task_runs(summary["flow_run_id"])
    print(f"structure            {args.structure}, assessments {', '.join(assessments)}")
    print(f"leads                {summary['leads']} (page latency {args.latency_ms} ms)")
    print(f"wall seconds         {seconds:.1f} (cluster start and teardown included)")
    print(f"leads/hour           {summary['leads'] * 3600 / seconds:.0f}")
    print(f"task runs            {runs}")
    print(f"task runs/second     {runs / seconds:.1f}")
    print(f"CPU ms per task run  {1000 * cpu / runs:.0f} (flow process + Dask workers)")
    if server_process is not None:
        print(
            f"server CPU ms/run    {1000 * server_cpu / runs:.0f} (the Prefect server at {api_url})"
        )
    own, workers = (resource.getrusage(who).ru_maxrss / 1024 for who in RUSAGE)
    print(f"peak RSS             {own:.0f} MiB flow process, {workers:.0f} MiB largest worker")


if __name__ == "__main__":
    main()
