"""The ``leadshop`` commands as a person types them: the installed script, in its own process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import escape
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from tests.sites import Reply, serve


def leadshop(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with this test's environment (settings, Prefect API URL)."""
    script = Path(sys.executable).with_name("leadshop")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_import_reports_bad_rows_and_keeps_good_ones(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSHOP_DATABASE_URL", sqlite_url)
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "name,website,phone\n"
        "Bob's Plumbing,bobsplumbing.example,555-0100\n"
        ",nameless.example,\n"
        "Typo Tailor,http://exa mple.com,\n"
        "Ann's Bakery,https://www.annsbakery.example/,\n"
    )
    result = leadshop("import", str(leads))
    assert result.returncode == 0, result.stderr
    assert "imported 2 leads" in result.stdout
    assert "line 3" in result.stdout and "line 4" in result.stdout


def test_check_prints_the_envelope_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "true")
    headers = {"Content-Type": "text/html", "X-Frame-Options": "DENY"}
    with serve({"/": [Reply(headers=headers)]}) as site:
        result = leadshop("check", "security", site.url(), "--json")
    assert result.returncode == 0, result.stderr
    envelope = json.loads(result.stdout)
    assert envelope["assessment"] == "security" and envelope["status"] == "completed"
    assert envelope["data"]["observatory"]["tests"]["x-frame-options"]["pass"] is True


def test_check_refuses_a_private_address_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", raising=False)
    result = leadshop("check", "security", "http://127.0.0.1:9/", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["type"] == "BlockedAddress"


@pytest.mark.slow
def test_assess_then_status(flow_env: str, tmp_path: Path) -> None:
    with serve({"/": [Reply()]}) as site:
        leads = tmp_path / "leads.json"
        leads.write_text(json.dumps([{"name": "Corner Cafe", "website": site.url()}]))
        assessed = leadshop("assess", str(leads))
    assert assessed.returncode == 0, assessed.stderr
    assert "Corner Cafe" in assessed.stdout and "/runs/flow-run/" in assessed.stdout
    status = leadshop("status")
    assert status.returncode == 0, status.stderr
    assert "100% finished" in status.stdout and "completed 1" in status.stdout


@pytest.mark.slow
def test_demo_ranks_the_demo_sites(flow_env: str) -> None:
    from leadshop.demo.catalog import CATALOG

    result = leadshop("demo")
    assert result.returncode == 0, result.stderr
    rows = {
        spec.name: line
        for line in result.stdout.splitlines()
        for spec in CATALOG
        if line.startswith("│") and spec.name in line
    }
    assert set(rows) == {spec.name for spec in CATALOG}
    header = next(line for line in result.stdout.splitlines() if line.startswith("┃"))
    columns = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert columns[2:] == ["speed", "sec", "gbp", "seo", "visual", "overall", "opp"]
    cells = {name: [c.strip() for c in line.strip("│").split("│")] for name, line in rows.items()}
    for spec in CATALOG:  # each site's security cell shows the grade its posture is built for
        assert cells[spec.name][columns.index("sec")] == spec.grade, rows[spec.name]
    ranked = sorted(rows, key=lambda name: result.stdout.index(rows[name]))
    chances = [int(cells[name][-1]) for name in ranked]
    assert chances == sorted(chances, reverse=True)  # the best prospects lead the ranking
    assert "/runs/flow-run/" in result.stdout
    [index] = re.findall(r"Reports: (file://\S+)", result.stdout)
    page = Path(url2pathname(urlsplit(index).path)).read_text()
    assert all(escape(spec.name) in page for spec in CATALOG)


@pytest.mark.slow
def test_doctor_reports_the_services_and_the_browser_tooling(dask_scheduler: str) -> None:
    result = leadshop("doctor")
    assert result.returncode == 0, result.stderr
    rows = {
        cells[0]: (cells[1], cells[2])
        for line in result.stdout.splitlines()
        if (cells := [cell.strip() for cell in line.strip("│ ").split("│")]) and len(cells) == 3
    }
    assert rows["prefect api"] == ("yes", os.environ["PREFECT_API_URL"])
    assert rows["dask scheduler"] == ("yes", f"{dask_scheduler}: 2 workers")
    assert rows["database"][0] == "yes"
    assert rows["chromium"][1].startswith("Chromium ")
    assert rows["lighthouse"] == ("yes", "12.2.3")
    assert rows["llm"] == ("yes", "rules")
