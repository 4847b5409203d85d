"""Real services for the pipeline tests: one Prefect server per session, Dask on loopback.

The server is started from ``pytest_configure``, before any test module imports Prefect: Prefect
reads ``PREFECT_API_URL`` once, at import, and so does every Dask worker process spawned later.
It migrates its fresh database while the tests are collected and the unit tests run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadshop import server
from leadshop.config import Settings, get_settings

_started: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="leadshop-tests-"))
    settings = Settings(home=home, prefect_port=free_port())
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{settings.prefect_port}/api"
    os.environ["PREFECT_HOME"] = str(home / "client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    outcome: dict[str, Any] = {}

    def start() -> None:
        try:
            outcome["url"] = server.start(settings)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    _started.update(settings=settings, thread=thread, outcome=outcome)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _started:
        return
    _started["thread"].join()
    if "prefect" in sys.modules:  # send queued logs and events while the server still answers
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    server.stop(_started["settings"])


@pytest.fixture(scope="session")
def prefect_api() -> str:
    _started["thread"].join()
    outcome = _started["outcome"]
    if "error" in outcome:
        pytest.fail(f"the test Prefect server did not start: {outcome['error']}")
    return str(outcome["url"])


def set_flow_env(monkeypatch: pytest.MonkeyPatch, db_url: str, folder: Path) -> None:
    """The environment a test's flow runs (and the processes it starts) see: this database,
    a home and artifacts under ``folder``, one small LocalCluster, loopback sites allowed."""
    for name, value in {
        "LEADSHOP_DATABASE_URL": db_url,
        "LEADSHOP_HOME": str(folder / "home"),
        "LEADSHOP_ARTIFACTS_DIR": str(folder / "artifacts"),
        "LEADSHOP_ALLOW_PRIVATE_NETWORKS": "true",
        "LEADSHOP_DASK_ADDRESS": "",
        "LEADSHOP_DASK_WORKERS": "1",
        "LEADSHOP_DASK_THREADS_PER_WORKER": "4",
        "LEADSHOP_DASK_DASHBOARD_ADDRESS": ":0",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture
def flow_env(
    prefect_api: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Settings for a flow run on a small LocalCluster that may fetch loopback sites."""
    set_flow_env(monkeypatch, db_url, tmp_path)
    yield db_url
    get_settings.cache_clear()


@pytest.fixture
def dask_scheduler(flow_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A ``dask scheduler`` and a ``dask worker`` as processes, the way an operator runs them.

    The worker's environment is fixed when it starts, as on a real cluster: it gets this test's
    settings and finds the test package (plugin assessments) on its path.
    """
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    scheduler = subprocess.Popen(
        [
            str(bin_dir / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            str(bin_dir / "dask"),
            "worker",
            address,
            "--nthreads",
            "4",
            "--nworkers",
            "2",
            "--no-dashboard",
            "--memory-limit",
            "2GiB",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_workers(address, 2)
        monkeypatch.setenv("LEADSHOP_DASK_ADDRESS", address)
        get_settings.cache_clear()
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_workers(address: str, count: int, timeout: float = 60.0) -> None:
    from distributed import Client

    deadline = time.monotonic() + timeout
    with Client(address, timeout=timeout) as client:
        while len(client.scheduler_info()["workers"]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} dask workers did not join {address}")
            time.sleep(0.2)
