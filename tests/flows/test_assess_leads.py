"""The batch flow for real: Prefect server, Dask cluster, database, sites on loopback."""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun

from leadshop import db
from tasks.registry import DEFAULT
from tests.sites import Reply, serve

pytestmark = pytest.mark.slow

STRICT_HEADERS = {
    "Content-Type": "text/html",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def run_batch(**parameters: Any) -> dict[str, Any]:
    """The flow with a task runner built from this test's settings (fixed at import otherwise)."""
    from flows.assess_leads import assess_leads, task_runner

    summary: dict[str, Any] = assess_leads.with_options(task_runner=task_runner())(**parameters)
    return summary


def task_runs(client: SyncPrefectClient, flow_run_id: str) -> dict[str, TaskRun]:
    runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    )
    return {run.name: run for run in runs}


def rows_by_name(db_url: str, batch_id: str) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in db.batch_rows(db.make_engine(db_url), batch_id)}


def test_batch_is_assessed_stored_and_reported(flow_env: str) -> None:
    with serve({"/": [Reply(headers=STRICT_HEADERS)]}) as strict, serve({"/": [Reply()]}) as bare:
        summary = run_batch(
            leads=[
                {"name": "Strict Dental", "website": strict.url()},
                {"name": "Bare Plumbing", "website": bare.url()},
            ]
        )
    assert (summary["leads"], summary["completed"], summary["failed"]) == (2, 2, 0)
    assert summary["leads_per_hour"] > 0
    rows = rows_by_name(flow_env, summary["batch_id"])
    strict_row, bare_row = rows["Strict Dental"], rows["Bare Plumbing"]
    assert strict_row["status"] == bare_row["status"] == "completed"
    assert strict_row["overall_score"] > bare_row["overall_score"]
    # weakest first: the best prospect leads the ranking
    assert [r["name"] for r in summary["results"]] == ["Bare Plumbing", "Strict Dental"]

    engine = db.make_engine(flow_env)
    stored = db.load_results(engine, summary["batch_id"], strict_row["lead_id"])
    security = next(r for r in stored if r.assessment == "security")
    assert security.status == "completed"
    assert security.data["observatory"]["tests"]["x-frame-options"]["pass"] is True

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(summary["flow_run_id"]))
        assert flow_run.state is not None and flow_run.state.is_completed()
        runs = task_runs(client, summary["flow_run_id"])
        for lead in (strict_row, bare_row):
            for name in ("lead", *DEFAULT, "store"):  # the six assessments, each its own run
                run = runs[f"{name}-{lead['lead_id']}"]
                assert run.state is not None and run.state.is_completed(), run.name
        artifacts = {a.key: a for a in client.read_artifacts() if a.flow_run_id == flow_run.id}
    assert artifacts["assess-leads-progress"].data == 100.0
    table = artifacts["assess-leads-batch"]
    assert "Bare Plumbing" in str(table.data) and "leads/hour" in (table.description or "")
    prospects = str(artifacts["assess-leads-top-prospects"].data)
    assert prospects.index("Bare Plumbing") < prospects.index("Strict Dental")
    link = re.fullmatch(r"\[.*\]\((.+)\)", str(artifacts["assess-leads-reports"].data))
    assert link is not None  # a link artifact is stored as markdown
    index = Path(url2pathname(urlsplit(link[1]).path))
    assert "Bare Plumbing" in index.read_text() and "Strict Dental" in index.read_text()
    for lead in (strict_row, bare_row):
        report = str(artifacts[f"lead-report-{lead['lead_id']}"].data)
        assert lead["name"] in report
        assert index.with_name(f"lead-{lead['lead_id']}.html").is_file()


def test_transient_failure_is_retried_after_one_then_two_seconds(flow_env: str) -> None:
    flaky = [Reply(503, b"busy"), Reply(503, b"busy"), Reply(headers=STRICT_HEADERS)]
    with serve({"/": flaky}) as site:
        summary = run_batch(
            leads=[{"name": "Flaky Bakery", "website": site.url()}], assessments=["security"]
        )
    row = rows_by_name(flow_env, summary["batch_id"])["Flaky Bakery"]
    assert row["status"] == "completed"
    with get_client(sync_client=True) as client:
        run = task_runs(client, summary["flow_run_id"])[f"security-{row['lead_id']}"]
        states = client.read_task_run_states(run.id)
    assert run.run_count == 3
    waits = [
        (s.state_details.scheduled_time - s.timestamp).total_seconds()
        for s in states
        if s.name == "AwaitingRetry" and s.state_details.scheduled_time is not None
    ]
    assert len(waits) == 2
    assert 0.75 <= waits[0] <= 1.25  # 1 s with +-20 % jitter
    assert 1.55 <= waits[1] <= 2.45  # 2 s with +-20 % jitter


def test_one_failing_assessment_leaves_a_partial_lead(flow_env: str) -> None:
    with serve({"/": [Reply(404, b"gone")]}) as site:
        summary = run_batch(
            leads=[{"name": "Gone Florist", "website": site.url()}],
            assessments=["security", "tests.flows.plugins:echo_task"],
        )
    row = rows_by_name(flow_env, summary["batch_id"])["Gone Florist"]
    assert row["status"] == "partial"
    assert "security: HTTPStatusError" in row["error_message"]
    stored = {
        r.assessment: r
        for r in db.load_results(db.make_engine(flow_env), summary["batch_id"], row["lead_id"])
    }
    assert stored["security"].status == "failed"
    assert stored["security"].error is not None and not stored["security"].error.retryable
    assert stored["echo"].status == "completed" and stored["echo"].score == 80
    with get_client(sync_client=True) as client:
        run = task_runs(client, summary["flow_run_id"])[f"security-{row['lead_id']}"]
    assert run.run_count == 1  # a 404 is not worth a retry


def test_bad_leads_never_fail_the_batch(flow_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "false")
    from leadshop.config import get_settings

    get_settings.cache_clear()
    summary = run_batch(
        leads=[
            {"name": "Typo Tailor", "website": "http://exa mple.com/"},
            {"name": "Metadata Motors", "website": "http://169.254.169.254/"},
            {"name": "Vanished Vets", "website": "http://no-such-business.invalid/"},
        ],
        lead_ids=[987654],
        assessments=["security"],
    )
    rejected = {(r["source"], r["line"]): r["reason"] for r in summary["rejected"]}
    assert "website" in rejected[("leads", 1)]
    assert "987654" in rejected[("lead_ids", 1)]
    rows = rows_by_name(flow_env, summary["batch_id"])
    assert set(rows) == {"Metadata Motors", "Vanished Vets"}
    assert rows["Metadata Motors"]["status"] == "failed"
    assert "BlockedAddress" in rows["Metadata Motors"]["error_message"]
    assert "cloud metadata" in rows["Metadata Motors"]["error_message"]
    assert "UnresolvableHost" in rows["Vanished Vets"]["error_message"]
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(summary["flow_run_id"]))
        runs = task_runs(client, summary["flow_run_id"])
    assert flow_run.state is not None and flow_run.state.is_completed()
    for row in rows.values():
        assert runs[f"security-{row['lead_id']}"].run_count == 1


def test_batch_runs_on_an_existing_dask_scheduler(flow_env: str, dask_scheduler: str) -> None:
    from distributed import Client

    with serve({f"/shop{i}": [Reply(headers=STRICT_HEADERS)] for i in range(4)}) as site:
        summary = run_batch(
            leads=[{"name": f"Shop {i}", "website": site.url(f"/shop{i}")} for i in range(4)],
            assessments=["security"],
        )
    assert summary["completed"] == 4
    with Client(dask_scheduler) as client:
        keys = client.run_on_scheduler(
            lambda dask_scheduler: [str(k) for k in dask_scheduler.task_prefixes]
        )
    assert "assess_chunk" in keys  # the Dask key prefix of the mapped task


def test_status_moves_through_in_progress_as_it_happens(flow_env: str) -> None:
    batch_id = "watched-batch"
    db.migrate(flow_env)
    engine = db.make_engine(flow_env)
    seen: set[str] = set()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            run_batch,
            leads=[{"name": "Slow Saddlery", "website": "http://slow.example/"}],
            assessments=["tests.flows.plugins:slow_task"],
            batch_id=batch_id,
        )
        while not running.done():
            with contextlib.suppress(LookupError):  # the batch is not created yet
                counts = db.batch_progress(engine, batch_id)["counts"]
                seen |= {status for status, count in counts.items() if count}
            time.sleep(0.2)
        summary = running.result()
    assert {"pending", "in_progress", "completed"} <= seen
    assert summary["completed"] == 1
