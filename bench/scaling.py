"""Throughput of an I/O-bound batch with 1, 2 and 4 Dask workers (PRP-002: 4 workers ~ 4x).

    python -m bench.scaling [--workers 1 2 4] [--leads 80]

The batch runs the assessments that wait on paid APIs (pagespeed through PageSpeed Insights,
gbp through Places, semrush through SEMrush, llm through an OpenAI-compatible server) against
local stand-ins that answer in each service's wire format, from the recorded answers in
``tests/fixtures/``, after a delay per request (``LATENCY``: real services take longer, PSI
especially; the figures scale with these). Each worker count runs in a fresh process, on a
LocalCluster of that many single-thread workers (one chunk of leads per worker, each chunk
``LEADS_AT_ONCE`` leads in flight), against the same Prefect server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.sites import running

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
ASSESSMENTS = ["pagespeed", "gbp", "semrush", "llm"]
LATENCY = {"psi": 3.0, "places": 0.3, "semrush": 0.4, "llm": 1.5}  # seconds per request
INSIGHTS = {
    "summary": "A slow mobile site and a thin Google profile cost this business calls.",
    "top_issues": [
        {
            "title": "Slow on phones",
            "evidence": "Largest contentful paint 6.1 s on mobile.",
            "business_impact": "Visitors leave before the page shows.",
            "fix": "Compress the hero image and defer scripts.",
        }
    ],
    "recommended_services": ["Performance optimisation", "Local SEO"],
    "outreach_email": {"subject": "Your site on phones", "body": "Hello, ..."},
    "priority": "hot",
}


def completion() -> bytes:
    message = {"role": "assistant", "content": json.dumps(INSIGHTS), "refusal": None}
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "bench-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 200, "total_tokens": 1100},
        }
    ).encode()


class StandIns(BaseHTTPRequestHandler):
    """PSI, Places, SEMrush and chat completions on one loopback port, told apart by path."""

    protocol_version = "HTTP/1.1"
    answers: dict[str, tuple[str, str, bytes]] = {}

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/psi"):
            self.answer("psi")
        elif path.startswith("/semrush/analytics"):
            self.answer("semrush", "backlinks")
        elif path.startswith("/semrush"):
            self.answer("semrush", "domain_rank" if "domain_rank" in query else "missing")
        else:
            self.answer("missing")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        service = "places" if self.path.startswith("/places") else "llm"
        self.answer(service)

    def answer(self, service: str, key: str = "") -> None:
        time.sleep(LATENCY.get(service, 0))
        status, kind, body = self.answers.get(key or service, ("404", "text/plain", b"no route"))
        self.send_response(int(status))
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


StandIns.answers = {
    "psi": ("200", "application/json", (FIXTURES / "pagespeed" / "psi.json").read_bytes()),
    "places": ("200", "application/json", (FIXTURES / "gbp" / "search-text.json").read_bytes()),
    "domain_rank": ("200", "text/plain", (FIXTURES / "semrush" / "domain_rank.csv").read_bytes()),
    "backlinks": (
        "200",
        "text/plain",
        (FIXTURES / "semrush" / "backlinks_overview.csv").read_bytes(),
    ),
    "llm": ("200", "application/json", completion()),
}


def environment(base: str, workers: int, home: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADSHOP_DATABASE_URL": f"sqlite:///{home}/scaling-{workers}.db",
        "LEADSHOP_HOME": home,
        "LEADSHOP_DASK_ADDRESS": "",
        "LEADSHOP_DASK_WORKERS": str(workers),
        "LEADSHOP_DASK_THREADS_PER_WORKER": "1",
        "LEADSHOP_DASK_DASHBOARD_ADDRESS": ":0",
        "LEADSHOP_PAGESPEED_API_KEY": "bench-key",
        "LEADSHOP_PAGESPEED_API_URL": f"{base}/psi/runPagespeed",
        "LEADSHOP_PLACES_API_KEY": "bench-key",
        "LEADSHOP_PLACES_API_URL": f"{base}/places/v1",
        "LEADSHOP_SEMRUSH_API_KEY": "bench-key",
        "LEADSHOP_SEMRUSH_API_URL": f"{base}/semrush",
        "LEADSHOP_LLM_BASE_URL": f"{base}/llm/v1",
        "LEADSHOP_LLM_API_KEY": "bench-key",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def run_one(leads: int) -> None:
    """In the child: one batch on this process's settings, its figures as a JSON line."""
    from flows.assess_leads import assess_leads

    records = [
        {"name": f"Shop {i}", "website": f"https://shop{i}.example/", "phone": "(503) 555-0100"}
        for i in range(leads)
    ]
    started = time.monotonic()
    summary = assess_leads(leads=records, assessments=ASSESSMENTS)
    seconds = time.monotonic() - started
    failed = summary["failed"] + summary["partial"]
    print(json.dumps({"leads": summary["leads"], "seconds": seconds, "not_completed": failed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--leads", type=int, default=80)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args.leads)
        return

    from leadshop import server

    os.environ["PREFECT_API_URL"] = server.ensure_api_url()
    home = tempfile.mkdtemp(prefix="leadshop-scaling-")
    stand_ins = ThreadingHTTPServer(("127.0.0.1", 0), StandIns)
    stand_ins.daemon_threads = True
    base = f"http://127.0.0.1:{stand_ins.server_port}"
    latencies = ", ".join(f"{name} {seconds:g} s" for name, seconds in LATENCY.items())
    print(f"{args.leads} leads, assessments {', '.join(ASSESSMENTS)}; stand-in latency {latencies}")
    print(f"{'workers':>7} {'seconds':>8} {'leads/hour':>11} {'x first':>8} {'not completed':>14}")
    rates: dict[int, float] = {}
    with running(stand_ins):
        for workers in args.workers:
            child = subprocess.run(
                [sys.executable, "-m", "bench.scaling", "--child", "--leads", str(args.leads)],
                env=environment(base, workers, home),
                capture_output=True,
                text=True,
                check=False,
            )
            figures = _last_json(child.stdout)
            if figures is None:
                print(f"{workers:>7} failed: {child.stderr.strip()[-2000:]}")
                continue
            rates[workers] = figures["leads"] * 3600 / figures["seconds"]
            ratio = rates[workers] / rates[min(rates)]
            print(
                f"{workers:>7} {figures['seconds']:8.1f} {rates[workers]:11.0f} "
                f"{ratio:8.2f} {figures['not_completed']:>14}"
            )
    if len(rates) > 1:
        print(f"median leads/hour {statistics.median(rates.values()):.0f}")


def _last_json(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    return None


if __name__ == "__main__":
    main()
