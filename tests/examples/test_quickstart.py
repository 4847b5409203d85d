"""The notebook a data person starts from, executed headlessly as they would run it."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from leadshop.demo.catalog import CATALOG
from tests.fixtures_prefect import set_flow_env

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"
CELL_TIMEOUT = 420  # the batch cell: three leads, six assessments each, Lighthouse included


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


@pytest.mark.slow
def test_quickstart_notebook_runs_and_shows_the_batch(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_flow_env(monkeypatch, f"sqlite:///{tmp_path / 'notebook.db'}", tmp_path)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")

    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3")
    client.execute(cwd=str(tmp_path))

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    names = [spec.name for spec in CATALOG[:3]]
    assert ast.literal_eval(code[0].outputs[-1]["data"]["text/plain"]) == names
    assert printed(code[1]).startswith("3 leads: 3 completed, 0 partial, 0 failed")
    records = [ast.literal_eval(line) for line in printed(code[2]).splitlines()]
    assert sorted(record["name"] for record in records) == sorted(names)
    security = {spec.name: spec.grade for spec in CATALOG[:3]}
    for record in records:
        assert record["security"] == security[record["name"]]
        assert record["overall_grade"] and all(record[s] for s in ("pagespeed", "visual", "gbp"))
    opportunities = [record["opportunity"] for record in records]
    assert opportunities == sorted(opportunities, reverse=True)
    detail = printed(code[3]).splitlines()
    assert detail[0] == records[0]["name"]
    assert {line.split()[0] for line in detail[1:]} == {
        "pagespeed",
        "security",
        "gbp",
        "semrush",
        "visual",
        "llm",
    }
    assert printed(code[4]).split(" - ")[0] in ("hot", "warm", "cold")
