"""The dashboards: the Prefect UI shows a finished batch (run, task runs, artifacts), opened in
headless Chromium as a person would; the Dask dashboard answers while a cluster runs."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from leadshop.browser import launch_env, launch_flags
from leadshop.config import get_settings
from tests.flows.test_assess_leads import run_batch
from tests.sites import Reply, serve

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(os.environ.get("LEADSHOP_TEST_SCREENSHOTS", ".leadshop/test-screenshots"))
UI_TIMEOUT_MS = 60_000


async def show_tab(page: Page, tab: str, expected: str) -> str:
    """Click one of the run page's tabs and wait for ``expected`` to appear in it."""
    await page.get_by_text(tab, exact=True).first.click()
    await page.get_by_text(expected).first.wait_for(timeout=UI_TIMEOUT_MS)
    return await page.inner_text("body")


async def test_prefect_ui_shows_the_batch_its_task_runs_and_artifacts(
    flow_env: str, prefect_api: str
) -> None:
    with serve({}, default=Reply()) as site:
        summary = run_batch(
            leads=[{"name": f"Shop {i}", "website": site.url(f"/{i}")} for i in range(2)],
            assessments=["security"],
        )
    ui = prefect_api.removesuffix("/api")
    run_page = f"{ui}/runs/flow-run/{summary['flow_run_id']}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env: dict[str, str | float | bool] = dict(launch_env())
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=get_settings().chromium_path, args=launch_flags(), env=env
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(run_page, wait_until="domcontentloaded", timeout=UI_TIMEOUT_MS)
            tasks = await show_tab(page, "Task Runs", "store-")
            assert "Completed" in tasks and "assess-chunk" in tasks
            assert {f"security-{row['lead_id']}" for row in summary["results"]} <= set(
                tasks.split()
            )
            await page.screenshot(path=SCREENSHOTS / "prefect-ui-task-runs.png", full_page=True)
            artifacts = await show_tab(page, "Artifacts", "assess-leads-batch")
            assert "assess-leads-progress" in artifacts
            assert "2 leads in" in artifacts  # the table artifact's description
            await page.screenshot(path=SCREENSHOTS / "prefect-ui-artifacts.png", full_page=True)
        finally:
            await browser.close()
    print(f"screenshots in {SCREENSHOTS.resolve()}")


def test_dask_dashboard_answers_while_the_cluster_runs() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        port = httpx.URL(cluster.dashboard_link).port  # the link names the host's address
        status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=30)
    assert status.status_code == 200
    assert "Dask" in status.text and "bokeh" in status.text.lower()
