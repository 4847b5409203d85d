"""docker-compose.yml and the Dockerfile: checked as files, and the stack run as local processes.

No Docker engine runs here, so the slow test reads every service's command, environment, health
check and ``depends_on`` from docker-compose.yml and starts that topology on loopback, in the
order compose would: the machine's PostgreSQL for ``postgres``, the Prefect server on it, a Dask
scheduler with two workers (``--scale dask-worker=2``), the one-shot ``deploy``, the Prefect
worker; then runs a deployment and finds its results in PostgreSQL. ``Loopback`` rewrites only
what must differ on one machine (service names, ports, database names, volume paths), so the file
and the test cannot drift apart: a service added to the file is started here or the test fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import yaml
from dask.utils import parse_bytes
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from leadshop import db
from leadshop.config import Settings
from leadshop.leads import LeadIn
from tests.fixtures_db import POSTGRES_SERVER_URL, _admin_engine
from tests.fixtures_prefect import _wait_for_workers, free_port
from tests.sites import Reply, serve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"  # stands in for .env, the file compose reads
INIT_SQL_DIR = ROOT / "deployments/postgres/initdb"
BIN = Path(sys.executable).parent

SCALE = {"dask-worker": 2}  # `docker compose up --scale dask-worker=2`
EXTERNAL = {"postgres"}  # the machine's PostgreSQL (tests/fixtures_db.py) is the container
# The one setting that differs on purpose: the test's website is on loopback, which the stack
# refuses by default (.env.example).
LOCAL_OVERRIDES = {"LEADSHOP_ALLOW_PRIVATE_NETWORKS": "true"}
STACK_TIMEOUT = 150.0  # a fresh Prefect database migrates for about 25 s
RUN_TIMEOUT = 150.0
HEALTH_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.IGNORECASE)
ONLY_VARIABLE = re.compile(r"\$\{\w+(:?[-?][^}]*)?\}")
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


# --- reading the compose file the way compose does ---------------------------------------------


def compose() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())  # anchors and << resolved
    return spec


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def is_one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "no")).lower() in {"no", "false"}


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def documented(path: Path) -> set[str]:
    """Variables set or shown commented out (``# NAME=...``) in an env file."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE))


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1] or match[4], match[2] or "", match[3] or ""
        current = variables.get(name)
        missing = current is None or (current == "" and operator.startswith(":"))
        if missing and operator.endswith("-"):
            return argument
        if missing and operator.endswith("?"):
            raise ValueError(f"{name} is required: {argument}")
        return current or ""

    return VARIABLE.sub(one, value)


def created_databases() -> set[str]:
    sql = "\n".join(path.read_text() for path in sorted(INIT_SQL_DIR.glob("*.sql")))
    return set(re.findall(r"^\s*CREATE DATABASE\s+\"?(\w+)\"?", sql, re.IGNORECASE | re.MULTILINE))


def container_ports(service: Mapping[str, Any]) -> list[int]:
    published = [str(entry).rsplit(":", 1)[-1] for entry in service.get("ports", [])]
    return [int(port) for port in [*published, *map(str, service.get("expose", []))]]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


# --- static checks ------------------------------------------------------------------------------


def test_services_restart_report_health_and_start_in_order() -> None:
    found = services()
    assert {"postgres", "prefect-server", "dask-scheduler", "dask-worker", "prefect-worker"} <= {
        name for name, service in found.items() if not is_one_shot(service)
    }
    assert {name for name, service in found.items() if is_one_shot(service)} == {"deploy"}
    for name, service in found.items():
        if is_one_shot(service):
            assert service["restart"] == "no" and "healthcheck" not in service, name
            continue
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        assert check["test"][0] == "CMD" and check["interval"] and check["retries"], name
        for dependency, condition in service.get("depends_on", {}).items():
            needed = condition["condition"]
            assert needed in {"service_healthy", "service_completed_successfully"}, name
            assert (needed == "service_healthy") == (not is_one_shot(found[dependency]))
    assert found["prefect-server"]["command"][:3] == ["prefect", "server", "start"]
    assert "pg_isready" in found["postgres"]["healthcheck"]["test"]
    assert any("/api/health" in part for part in found["prefect-server"]["healthcheck"]["test"])
    assert any(part.endswith("/health") for part in found["dask-scheduler"]["healthcheck"]["test"])
    pool = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]["work_pools"]
    worker = found["prefect-worker"]["command"]
    assert worker[:3] == ["prefect", "worker", "start"]
    assert worker[worker.index("--pool") + 1] == pool["leadshop"]["name"]
    assert worker[worker.index("--type") + 1] == "process"
    assert found["deploy"]["command"] == ["leadshop", "deploy"]
    assert found["deploy"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_prefect_runs_on_postgres_and_the_app_reads_the_stack_from_its_environment() -> None:
    spec, found = compose(), services()
    server_db = make_url(
        found["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    )
    assert (server_db.drivername, server_db.host) == ("postgresql+asyncpg", "postgres")
    app = {name: service for name, service in found.items() if "env_file" in service}
    assert {"dask-scheduler", "dask-worker", "prefect-worker", "deploy"} <= set(app)
    for name, service in app.items():
        env = service["environment"]
        assert service["env_file"] == ".env", name
        assert env.items() >= app["dask-worker"]["environment"].items(), name  # one environment
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api", name
        assert env["LEADSHOP_DASK_ADDRESS"] == "tcp://dask-scheduler:8786", name
        results = make_url(env["LEADSHOP_DATABASE_URL"])
        assert (results.drivername, results.host, results.database) == (
            "postgresql+psycopg",
            "postgres",
            found["postgres"]["environment"]["POSTGRES_DB"],
        )
    # Where tasks run and flows read their output, home and artifacts are volumes' mount points,
    # the artifacts one shared, so reports find the screenshots the dask workers wrote.
    runners = {"dask-worker", "prefect-worker"}
    mounts = {n: dict(v.split(":")[1::-1] for v in found[n]["volumes"]) for n in runners}
    env = app["dask-worker"]["environment"]
    for setting in ("LEADSHOP_HOME", "LEADSHOP_ARTIFACTS_DIR"):
        [volume] = {mounts[n][env[setting]] for n in runners}
        assert volume in spec["volumes"], setting
    assert "pgdata" in spec["volumes"]  # the database survives `docker compose down`


def test_postgres_init_script_creates_every_database_the_stack_uses() -> None:
    found = services()
    urls = [
        make_url(value)
        for value in strings(found)
        if value.startswith("postgresql") and "://" in value
    ]
    assert {"leadshop", "prefect"} == {url.database for url in urls}
    assert created_databases() == {url.database for url in urls} - {
        found["postgres"]["environment"]["POSTGRES_DB"]
    }
    mounts = found["postgres"]["volumes"]
    assert f"./{INIT_SQL_DIR.relative_to(ROOT)}:/docker-entrypoint-initdb.d:ro" in mounts


def test_no_secret_is_written_into_the_compose_file() -> None:
    found = services()
    for name, service in found.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert ONLY_VARIABLE.fullmatch(str(value)), (name, key)
        assert not any(SECRET_NAME.search(key) and "API" in key for key in service)
    for value in strings(found):
        if "://" in value and "@" in value:
            password = make_url(value).password
            assert password is None or ONLY_VARIABLE.fullmatch(str(password)), value
    raw = COMPOSE_FILE.read_text()
    assert not re.search(r"password\w*\s*(?:=|:\s)\s*(?!\$\{)\S", raw, re.IGNORECASE)
    for ignore in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore).read_text().split(), ignore


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    shown = documented(ENV_EXAMPLE)
    used = {m[1] or m[4] for m in VARIABLE.finditer(COMPOSE_FILE.read_text()) if m[0] != "$$"}
    assert used <= shown
    secrets = {
        f"LEADSHOP_{name.upper()}"
        for name, info in Settings.model_fields.items()
        if SecretStr in get_args(info.annotation)
    }
    assert secrets and secrets <= shown
    assert {"POSTGRES_PASSWORD", "LEADSHOP_LLM_BASE_URL", "LEADSHOP_LLM_MODEL"} <= shown
    values = read_env_file(ENV_EXAMPLE)
    assert all(values.get(name, "") == "" for name in secrets)  # keys are the user's to add


def test_dask_worker_scales_with_a_memory_limit() -> None:
    worker = services()["dask-worker"]
    assert "container_name" not in worker and "hostname" not in worker
    assert "ports" not in worker  # --scale would collide on a published host port
    command = worker["command"]
    dask_limit = parse_bytes(command[command.index("--memory-limit") + 1])
    limits = worker.get("deploy", {}).get("resources", {}).get("limits", {})
    container_limit = parse_bytes(str(limits.get("memory") or worker["mem_limit"]))
    assert 0 < dask_limit < container_limit  # headroom for Chromium and Node beside the worker
    assert command[2].startswith("tcp://dask-scheduler:")


def test_dockerfile_builds_one_image_with_browser_node_lighthouse_and_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # one line a command
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert bases[-1] == "python:3.11-slim-bookworm"
    assert any(base.startswith("node:20") for base in bases)
    install = re.search(r"apt-get install .*", dockerfile)
    assert install and {"chromium", "libnss3-tools"} <= set(install[0].split())
    assert "COPY package.json package-lock.json ./" in dockerfile
    assert re.search(r"^RUN npm ci\b", dockerfile, re.MULTILINE)
    assert re.search(r"pip install (-e )?\.", dockerfile)
    assert re.search(r"^WORKDIR /app$", dockerfile, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "node_modules", ".leadshop", ".env", ".git"} <= set(ignored)
    images = {service.get("image") for service in services().values() if "build" in service}
    assert len(images) == 1  # every service of ours runs the one image


# --- the stack as local processes ---------------------------------------------------------------


@dataclass
class Loopback:
    """What must differ when the stack runs on one machine, and nothing else."""

    hosts: set[str]  # compose service names, all reached on 127.0.0.1
    ports: dict[int, int]  # container port -> local port
    databases: dict[str, str]  # compose database name -> throw-away database
    paths: dict[str, Path]  # volume mount point -> temporary folder
    postgres: URL  # the machine's server: user, host, port
    variables: dict[str, str]  # .env.example, as compose would read .env
    prefect_home: Path

    def text(self, value: str, own_ports: Mapping[int, int]) -> str:
        names = "|".join(re.escape(host) for host in sorted(self.hosts, key=len, reverse=True))
        value = re.sub(rf"(?<![\w.-])(?:{names})(?=:\d)", "127.0.0.1", value)
        value = re.sub(r"(?<![\w.-])(?:0\.0\.0\.0|localhost)(?![\w-])", "127.0.0.1", value)
        ports = {**self.ports, **own_ports}
        value = re.sub(r"(?<!\d)\d{2,5}(?!\d)", lambda m: str(ports.get(int(m[0]), m[0])), value)
        for target, path in self.paths.items():
            if value == target or value.startswith(f"{target}/"):
                value = f"{path}{value[len(target) :]}"
        if value.startswith("postgresql") and "://" in value:
            url = make_url(value)
            value = url.set(
                username=self.postgres.username,
                password=self.postgres.password,
                host=self.postgres.host,
                port=self.postgres.port,
                database=self.databases[str(url.database)],
            ).render_as_string(hide_password=False)
        return value

    def argv(self, command: list[str], own_ports: Mapping[int, int]) -> list[str]:
        if not command:  # the image's own command: an external service's
            return []
        program, *args = (self.text(str(part), own_ports) for part in command)
        if program == "python":
            program = sys.executable
        elif (BIN / program).exists():
            program = str(BIN / program)
        return [program, *args]

    def environment(
        self, service: Mapping[str, Any], own_ports: Mapping[int, int]
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADSHOP_"))}
        env.update(
            PREFECT_HOME=str(self.prefect_home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            COLUMNS="200",
        )
        if "env_file" in service:
            env.update(self.variables)
        for name, value in (service.get("environment") or {}).items():
            env[name] = self.text(interpolate(str(value), self.variables), own_ports)
        if "env_file" in service:
            env.update(LOCAL_OVERRIDES)
        return env


@dataclass
class Instance:
    """One container of a service: a process (none for an external service) and its log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health: list[str] | None
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,  # the image's WORKDIR, /app
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with its children
            )

    def healthy(self) -> bool:
        if self.health is None:
            return True
        try:
            done = subprocess.run(
                self.health, cwd=ROOT, env=self.env, capture_output=True, timeout=HEALTH_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def signal(self, number: int) -> None:
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)

    def tail(self, lines: int = 40) -> str:
        said = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- {self.name} ({self.log}):\n" + "\n".join(said[-lines:])


@dataclass
class Stack:
    """`docker compose up` for local processes: starts each service once its ``depends_on``
    conditions hold, polls its health check, runs one-shots to completion."""

    spec: dict[str, Any]
    local: Loopback
    logs: Path
    instances: dict[str, list[Instance]] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)

    def up(self, timeout: float) -> None:
        services: dict[str, dict[str, Any]] = self.spec["services"]
        waiting = list(services)
        deadline = time.monotonic() + timeout
        while waiting or set(self.instances) - self.healthy - self.completed:
            for name in [n for n in waiting if self._ready(services[n])]:
                self._start(name, services[name])
                waiting.remove(name)
            for name in set(self.instances) - self.healthy - self.completed:
                self._poll(name, services[name])
            if time.monotonic() > deadline:
                pending = sorted(set(services) - self.healthy - self.completed)
                raise AssertionError(f"not up within {timeout:g} s: {pending}\n{self.tails()}")
            time.sleep(0.5)

    def _ready(self, service: Mapping[str, Any]) -> bool:
        done = {"service_healthy": self.healthy, "service_completed_successfully": self.completed}
        conditions = service.get("depends_on", {})
        return all(dep in done[c["condition"]] for dep, c in conditions.items())

    def _start(self, name: str, service: Mapping[str, Any]) -> None:
        self.instances[name] = []
        for index in range(1, SCALE.get(name, 1) + 1):
            # a second replica listens on ports of its own; references elsewhere keep the first's
            own = {port: free_port() for port in container_ports(service)} if index > 1 else {}
            check = service.get("healthcheck", {}).get("test")
            instance = Instance(
                name=f"{name}-{index}",
                argv=self.local.argv(service.get("command", []), own),
                env=self.local.environment(service, own),
                health=self.local.argv(check[1:], own) if check else None,
                log=self.logs / f"{name}-{index}.log",
            )
            if name not in EXTERNAL:
                instance.start()
            self.instances[name].append(instance)

    def _poll(self, name: str, service: Mapping[str, Any]) -> None:
        instances = self.instances[name]
        codes = [i.process.poll() for i in instances if i.process is not None]
        if is_one_shot(service):
            if codes == [0]:
                self.completed.add(name)
            elif codes != [None]:
                raise AssertionError(f"{name} exited with {codes}\n{self.tails()}")
        elif any(code is not None for code in codes):
            raise AssertionError(f"{name} exited early: {codes}\n{self.tails()}")
        elif all(instance.healthy() for instance in instances):
            self.healthy.add(name)

    def instance(self, name: str) -> Instance:
        return self.instances[name][0]

    def tails(self) -> str:
        return "\n".join(i.tail() for group in self.instances.values() for i in group if i.process)

    def down(self) -> None:
        running = [i for group in reversed(self.instances.values()) for i in group if i.process]
        for instance in running:
            instance.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for instance in running:
            assert instance.process is not None
            with suppress(subprocess.TimeoutExpired):
                instance.process.wait(max(0.1, deadline - time.monotonic()))
            instance.signal(signal.SIGKILL)  # whatever of its group still runs
            with suppress(subprocess.TimeoutExpired):
                instance.process.wait(5)


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A database of its own on the tests' PostgreSQL server, dropped afterwards."""
    admin = _admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def loopback(spec: dict[str, Any], results_url: str, prefect_url: str, tmp: Path) -> Loopback:
    found: dict[str, dict[str, Any]] = spec["services"]
    server = make_url(POSTGRES_SERVER_URL)
    [prefect_db] = created_databases()
    ports: dict[int, int] = {}
    for name, service in found.items():
        for port in container_ports(service):
            ports[port] = int(server.port or 5432) if name in EXTERNAL else free_port()
    mounts = {
        volume.split(":")[1]
        for name, service in found.items()
        if name not in EXTERNAL
        for volume in service.get("volumes", [])
    }
    return Loopback(
        hosts=set(found),
        ports=ports,
        databases={
            found["postgres"]["environment"]["POSTGRES_DB"]: str(make_url(results_url).database),
            prefect_db: str(make_url(prefect_url).database),
        },
        paths={mount: tmp / "volumes" / mount.strip("/").replace("/", "-") for mount in mounts},
        postgres=server,
        variables=read_env_file(ENV_EXAMPLE),
        prefect_home=tmp / "prefect-home",
    )


def wait_for_flow_run(api_url: str, flow_run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = httpx.get(f"{api_url}/flow_runs/{flow_run_id}", timeout=10).json()
        if run["state"]["type"] in TERMINAL or time.monotonic() > deadline:
            return run
        time.sleep(1)


@pytest.mark.slow
@pytest.mark.postgres
def test_the_compose_topology_runs_a_deployment_on_dask_and_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    spec = compose()
    found: dict[str, dict[str, Any]] = spec["services"]
    (tmp_path / "logs").mkdir()
    with throwaway_database("leadshop_test_prefect") as prefect_url:
        local = loopback(spec, pg_url, prefect_url, tmp_path)
        for path in local.paths.values():
            path.mkdir(parents=True)
        stack = Stack(spec, local, tmp_path / "logs")
        try:
            stack.up(STACK_TIMEOUT)
            # Every service in the file was started (or, for postgres, is the machine's) and
            # is healthy; the one-shots ran to success.
            assert stack.healthy == {n for n, s in found.items() if not is_one_shot(s)}
            assert stack.completed == {n for n, s in found.items() if is_one_shot(s)}
            assert {n for n, g in stack.instances.items() if g[0].process} == set(found) - EXTERNAL
            worker_env = stack.instance("prefect-worker").env
            api_url, dask_address = (
                worker_env["PREFECT_API_URL"],
                worker_env["LEADSHOP_DASK_ADDRESS"],
            )
            results_url = worker_env["LEADSHOP_DATABASE_URL"]
            assert results_url.startswith("postgresql+psycopg://") and dask_address

            from distributed import Client

            _wait_for_workers(dask_address, SCALE["dask-worker"])
            with Client(dask_address, timeout=30) as client:
                assert len(client.scheduler_info()["workers"]) == SCALE["dask-worker"]

            engine = db.make_engine(results_url)
            db.migrate(results_url)
            with serve({}, default=Reply()) as site:
                lead_ids = db.upsert_leads(
                    engine, [LeadIn(name=n, website=site.url(f"/{n}")) for n in ("deli", "cafe")]
                )
                started = subprocess.run(
                    [
                        str(BIN / "prefect"),
                        "deployment",
                        "run",
                        "assess-leads/adhoc",
                        "--param",
                        f"lead_ids={json.dumps(lead_ids)}",
                        "--param",
                        'assessments=["security"]',
                    ],
                    cwd=ROOT,
                    env=stack.instance("deploy").env,  # an operator's shell with the stack's env
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert started.returncode == 0, started.stdout + started.stderr
                flow_run_id = re.findall(r"UUID: ([0-9a-f-]{36})", started.stdout)[-1]
                run = wait_for_flow_run(api_url, flow_run_id, RUN_TIMEOUT)
            assert run["state"]["type"] == "COMPLETED", f"{run['state']}\n{stack.tails()}"

            # The tasks ran on this scheduler's workers (with LEADSHOP_DASK_ADDRESS set the flow
            # cannot start a LocalCluster).
            with Client(dask_address, timeout=30) as client:
                finished = client.run_on_scheduler(
                    lambda dask_scheduler: {
                        entry[0] for entry in dask_scheduler.transition_log if entry[2] == "memory"
                    }
                )
                transitions = client.run(lambda dask_worker: dask_worker.state.transition_counter)
            assert finished and len(transitions) == SCALE["dask-worker"], (finished, transitions)
            assert sum(transitions.values()) > 0, transitions
        finally:
            stack.down()

        # The Prefect server kept the run in its PostgreSQL database.
        prefect_engine = create_engine(
            make_url(prefect_url).set(drivername="postgresql+psycopg"), poolclass=NullPool
        )
        with prefect_engine.connect() as connection:
            state = connection.execute(
                text("select state_type from flow_run where id = :id"), {"id": flow_run_id}
            ).scalar_one()
            task_runs = connection.execute(
                text("select count(*) from task_run where flow_run_id = :id"), {"id": flow_run_id}
            ).scalar_one()
        prefect_engine.dispose()
        assert (state, task_runs >= len(lead_ids)) == ("COMPLETED", True)

    rows = db.batch_rows(engine, db.latest_batch_id(engine) or "")
    assert sorted((r["lead_id"], r["status"], r["security_status"]) for r in rows) == [
        (lead_id, "completed", "completed") for lead_id in sorted(lead_ids)
    ]
    assert all(row["security_grade"] for row in rows)
