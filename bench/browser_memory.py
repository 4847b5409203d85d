"""Seconds and peak memory per lead of the browser-based assessments, on the demo sites.

    python -m bench.browser_memory [--assessment pagespeed --assessment visual]

The process running the assessment stands in for a Dask worker. A sampler thread reads, every
100 ms, the RSS of this process and the summed PSS of its child process trees (Chromium, and
Lighthouse's Node; PSS, because summed RSS counts the libraries Chromium's processes share once
per process), and keeps the peak per lead. PRP-002's budget is 512 MB per assessment.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from leadshop.models import LeadRecord

SAMPLE_SECONDS = 0.1
MIB = 2**20


class PeakSampler:
    """Peak RSS of this process and PSS of its descendants, sampled in the background."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.worker = 0
        self.browser = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            children = 0
            for child in self.me.children(recursive=True):
                try:
                    children += child.memory_full_info().pss
                except psutil.Error:
                    continue
            self.worker = max(self.worker, self.me.memory_info().rss)
            self.browser = max(self.browser, children)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assessment", action="append", choices=("pagespeed", "visual"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="leadshop-bench-"))
    os.environ.update(LEADSHOP_ALLOW_PRIVATE_NETWORKS="true", LEADSHOP_HOME=str(home))

    from leadshop.demo.sites import DemoSites

    with DemoSites(home / "demo-ca") as demo:
        os.environ["SSL_CERT_FILE"] = str(demo.ca.trust_bundle)
        leads = [
            LeadRecord(id=i, name=site.name, website=site.url)
            for i, site in enumerate(demo.sites, start=1)
        ]
        print(
            f"{'assessment':<10} {'lead':<32} {'s':>6} {'worker MiB':>11} {'browser PSS MiB':>16}"
        )
        for name in args.assessment or ["pagespeed", "visual"]:
            asyncio.run(measure(name, leads))


async def measure(name: str, leads: list[LeadRecord]) -> None:
    """All leads on one event loop, as a worker thread runs its chunk (browsers are reused)."""
    assess = importlib.import_module(f"tasks.{name}").assess
    seconds: list[float] = []
    for lead in leads:
        with PeakSampler() as peak:
            started = time.monotonic()
            result = await assess(lead)
            seconds.append(time.monotonic() - started)
        print(
            f"{name:<10} {lead.name[:32]:<32} {seconds[-1]:6.1f} "
            f"{peak.worker / MIB:11.0f} {peak.browser / MIB:16.0f}  {result.grade} ({result.score})"
        )
    print(f"{name:<10} median {statistics.median(seconds):.1f} s per lead")


if __name__ == "__main__":
    main()
