"""``leadshop``: the command-line front door.

The one kernel module allowed to import flows and tasks (to run them). Prefect is imported only
inside the commands that need it, after ``PREFECT_API_URL`` is settled, because Prefect reads its
settings once, at import.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from leadshop import db, server
from leadshop.config import get_settings
from leadshop.leads import parse_leads
from leadshop.models import AssessmentResult, LeadRecord
from leadshop.reports import html

app = typer.Typer(help="Assess local businesses' websites, grade them and rank the leads.")
server_app = typer.Typer(help="The local Prefect server that tracks flow runs.")
app.add_typer(server_app, name="server")
console = Console()
DEMO_BASE_PORT = 18400


def _engine() -> Any:
    url = get_settings().resolved_database_url
    db.migrate(url)
    return db.make_engine(url)


@app.command("import")
def import_leads(file: Path) -> None:
    """Import leads from a CSV or JSON file; bad rows are listed, good rows still go in."""
    report = parse_leads(file)
    ids = db.upsert_leads(_engine(), report.leads) if report.leads else []
    for error in report.errors:
        console.print(f"[yellow]line {error.line}[/]: {error.reason}")
    console.print(f"imported {len(ids)} leads from {file}; {len(report.errors)} rows rejected")
    if not ids and report.errors:
        raise typer.Exit(1)


# Short column names keep the ranked table inside an 80-column terminal.
SHORT_NAMES = {"pagespeed": "speed", "security": "sec", "semrush": "seo"}
TABLE_CAPTION = (
    "speed = pagespeed, sec = security, seo = semrush; opp = opportunity, 0-100: weak sites "
    "with fixable findings score high"
)


def render_batch(batch_id: str) -> None:
    """The ranked table of a batch, best prospects (weak sites with fixable findings) first:
    one grade per graded section, so it fits a terminal; reports and exports have the rest."""
    rows = db.batch_rows(_engine(), batch_id)
    shown = [
        key.removesuffix("_grade")
        for key in (rows[0] if rows else {})
        if key.endswith("_grade") and key != "overall_grade" and any(row[key] for row in rows)
    ]
    table = Table(title=f"batch {batch_id}", caption=TABLE_CAPTION)
    table.add_column("#", justify="right")
    table.add_column("lead", overflow="fold", min_width=12)
    for column in (*shown, "overall", "opp"):
        table.add_column(SHORT_NAMES.get(column, column), no_wrap=True)
    for rank, row in enumerate(rows, start=1):
        cells = [_grade_cell(row, section) for section in shown]
        overall = (
            f"{row['overall_grade']} ({row['overall_score']})" if row["overall_grade"] else "-"
        )
        chance = "-" if row["opportunity"] is None else str(row["opportunity"])
        table.add_row(str(rank), row["name"], *cells, overall, chance)
    console.print(table)
    for row in rows:
        if row["error_message"]:
            console.print(f"[red]{row['name']}[/]: {row['error_message']}")


def _grade_cell(row: dict[str, Any], section: str) -> str:
    status = row[f"{section}_status"]
    if status == "failed":
        return "[red]failed[/]"
    return str(row[f"{section}_grade"] or status or "-")


def _run_flow(**parameters: Any) -> dict[str, Any]:
    """Run the flow here, drawing a progress bar from the database while it runs."""
    api_url = server.ensure_api_url()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.assess_leads import assess_leads  # after the API URL is settled

    batch_id = parameters.setdefault("batch_id", os.urandom(16).hex())
    engine = _engine()
    done = threading.Event()

    def draw() -> None:
        columns = (TextColumn("assessing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(
            *columns, console=console, redirect_stdout=False, redirect_stderr=False
        ) as progress:
            bar = progress.add_task("leads", total=None)
            while not done.wait(0.5):
                try:
                    state = db.batch_progress(engine, batch_id)
                except LookupError:  # the flow has not created the batch yet
                    continue
                progress.update(bar, total=state["total"] or None, completed=state["finished"])

    drawer = threading.Thread(target=draw, daemon=True)
    drawer.start()
    try:
        summary: dict[str, Any] = assess_leads(**parameters)
    finally:
        done.set()
        drawer.join()
    render_batch(batch_id)
    for rejected in summary["rejected"]:
        console.print(
            f"[yellow]rejected {rejected['source']} line {rejected['line']}[/]: "
            f"{rejected['reason']}"
        )
    console.print(
        f"{summary['leads']} leads in {summary['seconds']} s ({summary['leads_per_hour']} "
        f"leads/hour). Flow run: {server.flow_run_url(api_url, summary['flow_run_id'])}"
    )
    index = html.batch_folder(get_settings().home, batch_id) / html.INDEX_FILE
    if index.is_file():
        console.print(f"Reports: {index.as_uri()}")
    return summary


@app.command()
def assess(
    file: Annotated[Path | None, typer.Argument(help="CSV or JSON of leads to import")] = None,
    lead_id: Annotated[list[int] | None, typer.Option("--lead-id", help="a lead id")] = None,
    all_leads: Annotated[bool, typer.Option("--all", help="every lead in the database")] = False,
    assessment: Annotated[list[str] | None, typer.Option(help="run only these")] = None,
) -> None:
    """Assess leads (imported from FILE, by id, or all) in one batch and print the ranking."""
    ids = list(lead_id or [])
    if all_leads:
        ids += db.all_lead_ids(_engine())
    if file is None and not ids:
        raise typer.BadParameter("give a FILE, --lead-id or --all")
    _run_flow(lead_ids=ids or None, file=str(file) if file else None, assessments=assessment)


@app.command()
def status(
    batch: Annotated[str | None, typer.Option(help="batch id (default: latest)")] = None,
) -> None:
    """A batch's completion percentage and each lead's state."""
    engine = _engine()
    batch_id = batch or db.latest_batch_id(engine)
    if batch_id is None:
        console.print("no batch yet: run `leadshop assess`")
        raise typer.Exit(1)
    state = db.batch_progress(engine, batch_id)
    counts = ", ".join(f"{k} {v}" for k, v in state["counts"].items())
    console.print(
        " · ".join(f"{n} {'up' if ok else 'DOWN'}: {d}" for n, ok, d in _service_checks())
    )
    console.print(f"batch {batch_id}: {state['percent']:.0f}% finished ({counts})")
    render_batch(batch_id)


@app.command()
def report(
    lead_id: Annotated[int | None, typer.Argument(help="omit for the whole batch")] = None,
    batch: Annotated[str | None, typer.Option(help="batch id (default: latest)")] = None,
    out: Annotated[Path | None, typer.Option(help="the file, or for a batch the folder")] = None,
) -> None:
    """Write a self-contained HTML report for one lead (its latest batch unless --batch), or
    for every lead of a batch with a ranked index.html; prints the path."""
    engine, home = _engine(), get_settings().home
    try:
        if lead_id is not None:
            target = out or home / "reports" / html.LEAD_FILE.format(lead_id=lead_id)
            if target.is_dir():
                target = target / html.LEAD_FILE.format(lead_id=lead_id)
            written = html.write_lead_report(engine, lead_id, target, batch)
        else:
            batch_id = batch or _latest_batch(engine)
            folder = out or html.batch_folder(home, batch_id)
            written = html.write_batch_reports(engine, batch_id, folder)
    except LookupError as exc:
        typer.echo(exc.args[0], err=True)
        raise typer.Exit(1) from exc
    typer.echo(str(written.resolve()))


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="the file to write")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    batch: Annotated[str | None, typer.Option(help="batch id (default: latest)")] = None,
) -> None:
    """Write a batch's ranked list (best prospects first) as CSV or JSON, every section's
    status, score and grade included; CSV cells are safe to open in a spreadsheet."""
    from leadshop.reports.export import ExportFormat, write_export

    if fmt not in set(ExportFormat):
        raise typer.BadParameter("csv or json", param_hint="--format")
    engine = _engine()
    batch_id = batch or _latest_batch(engine)
    try:
        count = write_export(engine, batch_id, ExportFormat(fmt), out)
    except LookupError as exc:
        typer.echo(exc.args[0], err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"exported {count} leads of batch {batch_id} to {out.resolve()}")


def _latest_batch(engine: Any) -> str:
    batch_id = db.latest_batch_id(engine)
    if batch_id is None:
        console.print("no batch yet: run `leadshop assess`")
        raise typer.Exit(1)
    return batch_id


@app.command()
def check(
    assessment: str,
    url: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the envelope as JSON")] = False,
) -> None:
    """Run one assessment on one URL, without Prefect, and print its envelope (``llm`` runs
    the other five first, as the flow does, and reads their envelopes)."""
    from tasks.registry import ASSESSMENTS, FOLLOW_UPS

    lead = LeadRecord(id=0, name=url, website=url)
    inputs: tuple[list[AssessmentResult], ...] = ()
    if assessment in FOLLOW_UPS:
        inputs = ([_checked(name, lead) for name in ASSESSMENTS],)
    result = _checked(assessment, lead, *inputs)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        console.print(
            f"[bold]{assessment}[/] {result.status}: grade {result.grade} score "
            f"{result.score}\n{result.summary}"
        )
        for finding in result.findings:
            console.print(f"- [{finding.severity}] {finding.title}: {finding.recommendation}")
    if result.status == "failed":
        raise typer.Exit(1)


def _checked(assessment: str, lead: LeadRecord, *inputs: object) -> AssessmentResult:
    """One assessment's envelope; an exception becomes a failed envelope, as in the flow."""
    started = time.monotonic()
    try:
        module = importlib.import_module(f"tasks.{assessment}")
        result: AssessmentResult = asyncio.run(module.assess(lead, *inputs))
    except Exception as exc:
        result = AssessmentResult.failure(assessment, exc, int((time.monotonic() - started) * 1000))
    return result


PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where prefect.yaml and flows/ live
WORK_POOL = "leadshop"


@app.command()
def deploy() -> None:
    """Create the ``leadshop`` process work pool if it is missing, then register every
    deployment in prefect.yaml (assess-leads/adhoc, reassess-stale/nightly) with the server."""
    env = {**os.environ, "PREFECT_API_URL": server.ensure_api_url(), "PWD": str(PROJECT_ROOT)}
    prefect = [sys.executable, "-m", "prefect"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*prefect, *args]
        return subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
        )

    if run("work-pool", "inspect", WORK_POOL).returncode != 0:
        created = run("work-pool", "create", WORK_POOL, "--type", "process")
        if created.returncode != 0:
            console.print(created.stdout + created.stderr)
            raise typer.Exit(1)
        console.print(f"created the process work pool [bold]{WORK_POOL}[/]")
    deployed = run("--no-prompt", "deploy", "--all")
    if deployed.returncode != 0:
        console.print(deployed.stdout + deployed.stderr)
        raise typer.Exit(1)
    console.print(
        "deployed assess-leads/adhoc and reassess-stale/nightly (03:00 UTC).\n"
        f"Start a worker:  prefect worker start --pool {WORK_POOL}\n"
        "Run a batch:     prefect deployment run 'assess-leads/adhoc' "
        "--param lead_ids='[1, 2]'"
    )


@server_app.command("start")
def server_start() -> None:
    """Start the local Prefect server in the background (SQLite under .leadshop/)."""
    api_url = server.start()
    console.print(f"Prefect API {api_url}; UI {server.ui_url(api_url)}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server started by leadshop."""
    console.print("stopped" if server.stop() else "no leadshop-started server is running")


@server_app.command("status")
def server_status() -> None:
    state = server.status()
    health = "answers" if state.healthy else "does not answer"
    console.print(f"{state.api_url} {health}; started by leadshop: pid {state.pid or '-'}")
    if not state.healthy:
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Serve the demo sites on loopback, assess them, print the ranking and the run's address."""
    from leadshop.demo.sites import DemoSites, write_leads_csv

    settings = get_settings()
    try:  # the same ports each time, so a second demo finds the same leads, not new ones
        demo_sites = DemoSites(settings.home / "demo-ca", base_port=DEMO_BASE_PORT).start()
    except OSError:
        demo_sites = DemoSites(settings.home / "demo-ca").start()
    try:
        # Workers inherit this environment: they may fetch loopback and trust the demo CA.
        os.environ["LEADSHOP_ALLOW_PRIVATE_NETWORKS"] = "true"
        os.environ["SSL_CERT_FILE"] = str(demo_sites.ca.trust_bundle)
        get_settings.cache_clear()
        leads_file = settings.home / "demo-leads.csv"
        write_leads_csv(leads_file, demo_sites.sites)
        for site in demo_sites.sites:
            console.print(f"demo site {site.url}  {site.name} (built to grade {site.grade})")
        _run_flow(file=str(leads_file))
    finally:
        demo_sites.stop()
    console.print("The Prefect server keeps running for the UI; `leadshop server stop` stops it.")


@app.command()
def doctor() -> None:
    """What is installed, reachable and configured: packages, the database, the Prefect API,
    the Dask scheduler and its workers, the browser tooling, and which paid services are used."""
    settings = get_settings()
    checks: list[tuple[str, bool, str]] = [("python", True, platform.python_version())]
    for package in ("prefect", "prefect-dask", "dask", "distributed", "sqlalchemy", "playwright"):
        try:
            checks.append((package, True, metadata.version(package)))
        except metadata.PackageNotFoundError:
            checks.append((package, False, "not installed"))
    checks += _service_checks()
    checks.append(_tool("chromium", [settings.chromium_path, "--version"]))
    lighthouse = settings.lighthouse_path or str(PROJECT_ROOT / "node_modules/.bin/lighthouse")
    checks.append(_tool("lighthouse", [lighthouse, "--version"]))
    checks.append(_tool("certutil", ["certutil"], expect_output=False))
    for service, key, url in (
        ("pagespeed", settings.pagespeed_api_key, "PageSpeed Insights"),
        ("gbp", settings.places_api_key, "Google Places"),
        ("semrush", settings.semrush_api_key, "SEMrush"),
    ):
        configured = key is not None and bool(key.get_secret_value())
        checks.append((service, True, f"{url} (key set)" if configured else "local fallback"))
    llm = f"{settings.llm_base_url} ({settings.llm_model})" if settings.llm_base_url else "rules"
    checks.append(("llm", True, llm))
    table = Table("check", "ok", "detail")
    for name, ok, detail in checks:
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", detail)
    console.print(table)


def _service_checks() -> list[tuple[str, bool, str]]:
    """The database, the Prefect API and the Dask scheduler with its workers."""
    settings = get_settings()
    api_url = os.environ.get("PREFECT_API_URL") or server.status().api_url
    checks = [
        _probe("database", lambda: _ping_database(settings.resolved_database_url)),
        ("prefect api", server.is_healthy(api_url), api_url),
    ]
    if settings.dask_address:
        checks.append(_probe("dask scheduler", lambda: _ping_dask(settings.dask_address)))
    else:
        workers = f"{settings.dask_workers} workers x {settings.dask_threads_per_worker} threads"
        checks.append(("dask", True, f"a LocalCluster per flow run ({workers})"))
    return checks


def _tool(name: str, command: list[str], expect_output: bool = True) -> tuple[str, bool, str]:
    """A program's version line (or, for one without a version flag, its path); missing or
    silent when it should speak is a failed check."""
    path = shutil.which(command[0])
    if path is None:
        return name, False, f"{command[0]} not found: run `make install`"
    if not expect_output:
        return name, True, path
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return name, False, f"{type(exc).__name__}: {exc}"
    said = (done.stdout or done.stderr).strip().splitlines()
    return name, bool(said), said[0] if said else f"{command[0]} printed nothing"


def _probe(name: str, fn: Any) -> tuple[str, bool, str]:
    try:
        return name, True, str(fn())
    except Exception as exc:
        return name, False, f"{type(exc).__name__}: {exc}"


def _ping_database(url: str) -> str:
    with db.make_engine(url).connect() as connection:
        connection.execute(text("select 1"))
    return url.split("@")[-1]


def _ping_dask(address: str) -> str:
    from distributed import Client

    with Client(address, timeout=5) as client:
        return f"{address}: {len(client.scheduler_info()['workers'])} workers"


if __name__ == "__main__":
    app()
