"""The deployments as an operator runs them: `leadshop deploy`, a process worker, `prefect
deployment run`, against the test session's real Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from leadshop import db
from leadshop.leads import LeadIn
from tests.fixtures_prefect import set_flow_env
from tests.leadshop.test_cli import leadshop
from tests.sites import Reply, serve

ROOT = Path(__file__).resolve().parents[2]


def prefect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_prefect_yaml_shares_the_pool_and_schedules_the_nightly_run() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {"adhoc", "nightly"}
    assert deployments["adhoc"]["entrypoint"] == "flows.assess_leads.assess_leads"
    assert deployments["nightly"]["entrypoint"] == "flows.reassess_stale.reassess_stale"
    for deployment in deployments.values():
        assert deployment["work_pool"] == spec["definitions"]["work_pools"]["leadshop"]
        assert deployment["enforce_parameter_schema"] is True
    assert deployments["nightly"]["schedules"] == [spec["definitions"]["schedules"]["nightly"]]
    assert spec["definitions"]["schedules"]["nightly"]["cron"] == "0 3 * * *"


@pytest.mark.slow
def test_a_deployment_run_is_picked_up_by_a_worker_and_stored(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'deployed.db'}"
    set_flow_env(monkeypatch, url, tmp_path)
    db.migrate(url)
    with serve({"/": [Reply()]}) as site:
        [lead_id] = db.upsert_leads(db.make_engine(url), [LeadIn(name="Deli", website=site.url())])

        deployed = leadshop("deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        listed = prefect("deployment", "ls")
        assert "assess-leads/adhoc" in listed.stdout and "reassess-stale/nightly" in listed.stdout

        refused = prefect("deployment", "run", "assess-leads/adhoc", "--param", 'lead_ids="7"')
        assert refused.returncode != 0  # the parameter schema is enforced

        started = prefect(
            "deployment",
            "run",
            "assess-leads/adhoc",
            "--param",
            f"lead_ids={json.dumps([lead_id])}",
            "--param",
            'assessments=["security"]',
        )
        assert started.returncode == 0, started.stdout + started.stderr
        worker = prefect("worker", "start", "--pool", "leadshop", "--run-once", timeout=400)
        assert worker.returncode == 0, worker.stdout + worker.stderr

    [row] = db.batch_rows(db.make_engine(url), db.latest_batch_id(db.make_engine(url)) or "")
    assert (row["lead_id"], row["status"], row["security_status"]) == (
        lead_id,
        "completed",
        "completed",
    )
    assert row["security_grade"]


@pytest.mark.slow
def test_reassess_stale_runs_only_what_is_missing_or_old(flow_env: str) -> None:
    from flows.reassess_stale import reassess_stale

    engine = db.make_engine(flow_env)
    db.migrate(flow_env)
    with serve({}, default=Reply()) as site:
        fresh, stale = db.upsert_leads(
            engine, [LeadIn(name=n, website=site.url(f"/{n}")) for n in ("fresh", "stale")]
        )
        first = reassess_stale(days=30, limit=1, assessments=["security"])
        second = reassess_stale(days=30, assessments=["security"])
        third = reassess_stale(days=30, assessments=["security"])
    assert (first["lead_ids"], second["lead_ids"], third["lead_ids"]) == ([fresh], [stale], [])
    assert second["completed"] == 1 and third["leads"] == 0
