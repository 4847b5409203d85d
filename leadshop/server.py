"""A local Prefect server in the background, for people without one.

Every process taking part in a flow run (the flow, each Dask worker) must talk to the same
Prefect API: without ``PREFECT_API_URL`` each would start a throw-away server of its own and the
task runs would scatter. So the front doors make sure one answers before Prefect is imported.
This module only starts processes and speaks HTTP; it does not import Prefect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from leadshop.config import Settings, get_settings

START_TIMEOUT = 120.0  # a fresh database migrates for about 25 s on these machines


@dataclass(frozen=True)
class ServerStatus:
    api_url: str
    healthy: bool
    pid: int | None  # ours, when we started it
    log_file: Path


def ui_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")


def flow_run_url(api_url: str, flow_run_id: str) -> str:
    return f"{ui_url(api_url)}/runs/flow-run/{flow_run_id}"


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    home = (settings.home / "prefect").resolve()
    return home, home / "server.pid", home / "server.log"


def _local_api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prefect_port}/api"


def _our_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def status(settings: Settings | None = None) -> ServerStatus:
    settings = settings or get_settings()
    _, pid_file, log_file = _paths(settings)
    api_url = os.environ.get("PREFECT_API_URL") or _local_api_url(settings)
    return ServerStatus(api_url, is_healthy(api_url), _our_pid(pid_file), log_file)


def start(settings: Settings | None = None, timeout: float = START_TIMEOUT) -> str:
    """Start the local server unless one answers already; return its API URL once healthy."""
    settings = settings or get_settings()
    home, pid_file, log_file = _paths(settings)
    api_url = _local_api_url(settings)
    if is_healthy(api_url):
        return api_url
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(settings.prefect_port),
    }
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).with_name("prefect")
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command that started it
        )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(api_url):
            return api_url
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited early; see {log_file}")
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server did not answer within {timeout:g} s; see {log_file}")


def stop(settings: Settings | None = None, timeout: float = 20.0) -> bool:
    """Stop the server we started (its whole process group). False when none of ours runs."""
    settings = settings or get_settings()
    _, pid_file, _ = _paths(settings)
    pid = _our_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _our_pid(pid_file) is not None:
        time.sleep(0.2)
    if _our_pid(pid_file) is not None:
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def ensure_api_url(settings: Settings | None = None) -> str:
    """``PREFECT_API_URL`` if set, else the local server's (started if needed), exported.

    Call before Prefect is imported: Prefect reads its settings once, at import.
    """
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        return existing
    api_url = start(settings)
    os.environ["PREFECT_API_URL"] = api_url
    return api_url
