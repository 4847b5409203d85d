"""The database on real SQLite and PostgreSQL: schema, constraints and the operations' rules."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, delete, func, inspect, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from leadshop import db
from leadshop.leads import LeadIn
from leadshop.models import AssessmentResult, Finding

BATCH = "batch-1"


def lead_in(**overrides: Any) -> LeadIn:
    fields: dict[str, Any] = {
        "name": "Acme Plumbing",
        "website": "https://www.acme-plumbing.example/",
        "phone": "+1 555 0100",
        "address": "1 Main St, Springfield",
    }
    return LeadIn(**(fields | overrides))


def result(**overrides: Any) -> AssessmentResult:
    """A completed, scored section; tests change one thing."""
    fields: dict[str, Any] = {
        "assessment": "pagespeed",
        "status": "completed",
        "source": "lighthouse",
        "score": 80,
        "grade": "B-",
        "summary": "Loads in 2.1 s on mobile.",
        "data": {"lcp_ms": 2100},
        "duration_ms": 1200,
        "algorithm_version": "1",
    }
    return AssessmentResult(**(fields | overrides))


def failed(assessment: str, message: str = "took too long") -> AssessmentResult:
    return AssessmentResult.failure(assessment, TimeoutError(message), duration_ms=90_000)


def six_completed(score: int = 80) -> list[AssessmentResult]:
    return [result(assessment=name, score=score) for name in db.SECTION_COLUMNS]


def one_lead_batch(engine: Engine, **lead: Any) -> int:
    [lead_id] = db.upsert_leads(engine, [lead_in(**lead)])
    db.create_batch(engine, BATCH, [lead_id], flow_run_id="run-1")
    return lead_id


def assessment_row(engine: Engine, lead_id: int, batch_id: str = BATCH) -> db.Assessment:
    with Session(engine) as session:
        row = session.scalars(
            select(db.Assessment).where(
                db.Assessment.batch_id == batch_id, db.Assessment.lead_id == lead_id
            )
        ).one()
        session.expunge(row)
        return row


# --- schema ---------------------------------------------------------------------------------


def test_migrations_create_the_schema_the_models_describe(db_url: str) -> None:
    db.migrate(db_url)
    db.migrate(db_url)  # a second run is a no-op

    engine = db.make_engine(db_url)
    assert {"leads", "assessments", "alembic_version"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.Base.metadata) == []


@pytest.mark.postgres
def test_json_columns_are_jsonb_on_postgres(pg_url: str) -> None:
    db.migrate(pg_url)

    columns = {
        c["name"]: c["type"] for c in inspect(db.make_engine(pg_url)).get_columns("assessments")
    }
    json_columns = [*db.SECTION_COLUMNS.values(), "extra_results"]
    assert {name: type(columns[name]) for name in json_columns} == dict.fromkeys(
        json_columns, JSONB
    )


def test_foreign_key_cascades_lead_deletion_to_assessments(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    db.create_batch(db_engine, "batch-2", [lead_id], flow_run_id=None)

    with Session(db_engine) as session, session.begin():
        session.execute(delete(db.Lead).where(db.Lead.id == lead_id))

    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(db.Assessment)) == 0


def test_an_assessment_cannot_point_at_a_missing_lead(db_engine: Engine) -> None:
    with pytest.raises(LookupError, match="no lead with id 42"):
        db.create_batch(db_engine, BATCH, [42], flow_run_id=None)


def test_sqlite_engine_creates_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'leadshop.db'}"

    engine = db.make_engine(url)

    assert engine is db.make_engine(url)
    with engine.connect() as connection:
        pragmas = [
            connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        ]
    assert pragmas == [1, "wal", 30000]
    assert (tmp_path / "new" / "dir" / "leadshop.db").exists()


def test_timestamps_are_aware_utc(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    db.mark_in_progress(db_engine, BATCH, lead_id)
    db.save_results(db_engine, BATCH, lead_id, six_completed())

    row = assessment_row(db_engine, lead_id)

    stamps = [row.created_at, row.started_at, row.completed_at]
    assert all(stamp is not None and stamp.tzinfo == UTC for stamp in stamps)


# --- leads ----------------------------------------------------------------------------------


def test_upsert_returns_ids_in_input_order(db_engine: Engine) -> None:
    ids = db.upsert_leads(
        db_engine,
        [lead_in(website="b.example"), lead_in(website="a.example"), lead_in(website="c.example")],
    )

    assert len(set(ids)) == 3
    assert [lead.website for lead in db.get_leads(db_engine, ids)] == [
        "http://b.example/",
        "http://a.example/",
        "http://c.example/",
    ]
    assert db.all_lead_ids(db_engine) == sorted(ids)


def test_upsert_matches_by_website_key_and_updates(db_engine: Engine) -> None:
    [first] = db.upsert_leads(db_engine, [lead_in()])
    created = db.get_leads(db_engine, [first])[0]

    [again, other] = db.upsert_leads(
        db_engine,
        [
            lead_in(
                website="http://acme-plumbing.example",
                name="Acme Plumbing & Heating",
                phone=None,
                address="2 Main St",
            ),
            lead_in(website="other.example"),
        ],
    )

    assert again == first != other
    updated = db.get_leads(db_engine, [first])[0]
    assert updated.name == "Acme Plumbing & Heating"
    assert updated.address == "2 Main St"
    assert updated.phone == created.phone  # a blank does not erase what we knew
    with Session(db_engine) as session:
        lead = session.get_one(db.Lead, first)
        assert lead.updated_at > lead.created_at


def test_get_leads_names_the_missing_ids(db_engine: Engine) -> None:
    [lead_id] = db.upsert_leads(db_engine, [lead_in()])

    with pytest.raises(LookupError, match=r"no leads with ids 99, 98"):
        db.get_leads(db_engine, [99, lead_id, 98])


# --- saving results -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["completed", "completed"], "completed"),
        (["completed", "skipped"], "completed"),
        (["skipped"], "completed"),
        (["completed", "failed"], "partial"),
        (["skipped", "failed"], "partial"),
        (["failed", "failed"], "failed"),
        ([], "failed"),
    ],
)
def test_assessment_status_rules(statuses: list[str], expected: str) -> None:
    results = [
        failed(f"s{i}") if status == "failed" else result(assessment=f"s{i}", status=status)
        for i, status in enumerate(statuses)
    ]

    assert db.assessment_status(results) == expected


def test_save_results_writes_every_section_to_its_column(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    results = [result(assessment=name, score=60 + i) for i, name in enumerate(db.SECTION_COLUMNS)]

    status = db.save_results(db_engine, BATCH, lead_id, results)

    row = assessment_row(db_engine, lead_id)
    assert status == row.status == "completed"
    for envelope, column in zip(results, db.SECTION_COLUMNS.values(), strict=True):
        assert getattr(row, column) == envelope.model_dump(mode="json")
    assert (row.pagespeed_score, row.security_score) == (60, 61)
    assert (row.overall_score, row.overall_grade) == (62, "C+")
    assert row.error_message is None and row.extra_results is None
    assert db.load_results(db_engine, BATCH, lead_id) == results


def test_a_failed_section_is_kept_beside_the_completed_ones(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    results = [
        result(assessment="pagespeed", score=90),
        failed("security", "read timed out\nafter 90 s"),
        result(assessment="gbp", status="skipped", score=None, summary="No Places key."),
        result(assessment="semrush", score=70),
    ]

    status = db.save_results(db_engine, BATCH, lead_id, results)

    row = assessment_row(db_engine, lead_id)
    assert status == row.status == "partial"
    assert row.error_message == "security: TimeoutError: read timed out after 90 s"
    assert row.security_headers is not None
    assert row.security_headers["error"]["type"] == "TimeoutError"
    assert row.security_score is None
    assert row.pagespeed_data is not None and row.pagespeed_data["score"] == 90
    # failed and skipped left out, the rest weighted: (90 * 0.25 + 70 * 0.2) / 0.45 = 81.1
    assert (row.overall_score, row.overall_grade) == (81, "B+")
    assert row.visual_analysis is None
    assert db.load_results(db_engine, BATCH, lead_id) == results


def test_all_failed_is_failed_with_every_error(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)

    status = db.save_results(db_engine, BATCH, lead_id, [failed("pagespeed"), failed("visual")])

    row = assessment_row(db_engine, lead_id)
    assert status == "failed"
    assert row.error_message == (
        "pagespeed: TimeoutError: took too long\nvisual: TimeoutError: took too long"
    )
    assert (row.overall_score, row.overall_grade) == (None, None)


def test_no_results_is_failed_and_says_so(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)

    assert db.save_results(db_engine, BATCH, lead_id, []) == "failed"
    assert assessment_row(db_engine, lead_id).error_message == "no assessment ran"


def test_plugin_sections_go_to_extra_results(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    plugin = result(assessment="accessibility", score=40, grade="F")

    db.save_results(db_engine, BATCH, lead_id, [result(), plugin])

    row = assessment_row(db_engine, lead_id)
    assert row.extra_results == {"accessibility": plugin.model_dump(mode="json")}
    assert row.overall_score == 62  # (80 * 0.25 + 40 * 0.2) / 0.45: a plugin counts as average
    [ranked] = db.batch_rows(db_engine, BATCH)
    assert (ranked["accessibility_status"], ranked["accessibility_score"]) == ("completed", 40)


def test_saving_again_replaces_every_section(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    db.save_results(db_engine, BATCH, lead_id, [*six_completed(), result(assessment="plugin")])

    db.save_results(db_engine, BATCH, lead_id, [failed("pagespeed")])

    row = assessment_row(db_engine, lead_id)
    assert row.status == "failed"
    assert row.pagespeed_data is not None and row.pagespeed_data["status"] == "failed"
    assert (row.security_headers, row.extra_results, row.security_score) == (None, None, None)


def test_save_results_rejects_two_results_for_one_section(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)

    with pytest.raises(ValueError, match="more than one result for pagespeed"):
        db.save_results(db_engine, BATCH, lead_id, [result(), result()])


def test_saving_for_a_lead_outside_the_batch_is_an_error(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)

    with pytest.raises(LookupError, match="no assessment for lead"):
        db.save_results(db_engine, "another-batch", lead_id, six_completed())


def test_mark_failed_never_overwrites_saved_results(db_engine: Engine) -> None:
    done, stuck = db.upsert_leads(db_engine, [lead_in(), lead_in(website="stuck.example")])
    db.create_batch(db_engine, BATCH, [done, stuck], flow_run_id=None)
    db.save_results(db_engine, BATCH, done, six_completed())
    db.mark_in_progress(db_engine, BATCH, stuck)

    assert db.mark_failed(db_engine, BATCH, done, "worker died") is False
    assert db.mark_failed(db_engine, BATCH, stuck, "worker died") is True

    assert assessment_row(db_engine, done).status == "completed"
    stuck_row = assessment_row(db_engine, stuck)
    assert (stuck_row.status, stuck_row.error_message) == ("failed", "worker died")


# --- reading a batch ------------------------------------------------------------------------


def test_batch_rows_rank_the_weakest_first_and_unscored_last(db_engine: Engine) -> None:
    strong, weak, broken, pending = db.upsert_leads(
        db_engine,
        [
            lead_in(website=f"{name}.example", name=name)
            for name in ("strong", "weak", "broken", "pending")
        ],
    )
    db.create_batch(db_engine, BATCH, [strong, weak, broken, pending], flow_run_id=None)
    db.save_results(db_engine, BATCH, strong, six_completed(score=95))
    db.save_results(db_engine, BATCH, weak, [result(score=30, grade="F"), failed("security")])
    db.save_results(db_engine, BATCH, broken, [failed("pagespeed")])

    rows = db.batch_rows(db_engine, BATCH)

    assert [row["name"] for row in rows] == ["weak", "strong", "broken", "pending"]
    first = rows[0]
    assert first["lead_id"] == weak
    assert first["website"] == "http://weak.example/"
    assert (first["status"], first["overall_score"], first["overall_grade"]) == ("partial", 30, "D")
    assert (first["pagespeed_status"], first["pagespeed_score"], first["pagespeed_grade"]) == (
        "completed",
        30,
        "F",
    )
    assert (first["security_status"], first["security_score"]) == ("failed", None)
    assert first["gbp_status"] is None
    assert first["error_message"] == "security: TimeoutError: took too long"
    assert len({frozenset(row) for row in rows}) == 1  # every row has the same columns


def test_batch_rows_put_the_best_prospect_first(db_engine: Engine) -> None:
    """Two equally weak sites: the one with high-impact findings the agency can fix ranks first;
    weights passed to save_results decide the overall score."""
    vague, fixable = db.upsert_leads(
        db_engine, [lead_in(website=f"{name}.example", name=name) for name in ("vague", "fixable")]
    )
    db.create_batch(db_engine, BATCH, [vague, fixable], flow_run_id=None)
    high = Finding(id="csp", severity="high", title="No CSP", recommendation="Add a CSP.")
    weights = {"pagespeed": 1.0, "security": 0.0}
    db.save_results(
        db_engine,
        BATCH,
        vague,
        [result(score=40), result(assessment="security", score=100)],
        weights,
    )
    db.save_results(db_engine, BATCH, fixable, [result(score=40, findings=[high] * 4)], weights)

    rows = db.batch_rows(db_engine, BATCH)

    assert [row["name"] for row in rows] == ["fixable", "vague"]
    assert [row["overall_score"] for row in rows] == [40, 40]  # security weighs nothing here
    assert [row["opportunity"] for row in rows] == [60, 30]


def test_batch_progress_counts_each_status(db_engine: Engine) -> None:
    ids = db.upsert_leads(db_engine, [lead_in(website=f"l{i}.example") for i in range(4)])
    db.create_batch(db_engine, BATCH, ids, flow_run_id="run-1")
    db.save_results(db_engine, BATCH, ids[0], six_completed())
    db.save_results(db_engine, BATCH, ids[1], [failed("pagespeed")])
    db.mark_in_progress(db_engine, BATCH, ids[2])

    progress = db.batch_progress(db_engine, BATCH)

    assert progress == {
        "batch_id": BATCH,
        "total": 4,
        "counts": {"pending": 1, "in_progress": 1, "completed": 1, "partial": 0, "failed": 1},
        "finished": 2,
        "percent": 50.0,
    }


def test_batch_progress_of_an_unknown_batch_is_an_error(db_engine: Engine) -> None:
    with pytest.raises(LookupError, match="no batch 'nope'"):
        db.batch_progress(db_engine, "nope")


def test_latest_batch_is_the_newest_created(db_engine: Engine) -> None:
    assert db.latest_batch_id(db_engine) is None
    [lead_id] = db.upsert_leads(db_engine, [lead_in()])

    for batch_id in ("first", "second"):
        db.create_batch(db_engine, batch_id, [lead_id], flow_run_id=None)

    assert db.latest_batch_id(db_engine) == "second"


def test_create_batch_again_keeps_existing_rows(db_engine: Engine) -> None:
    lead_id = one_lead_batch(db_engine)
    db.save_results(db_engine, BATCH, lead_id, six_completed())
    [other] = db.upsert_leads(db_engine, [lead_in(website="other.example")])

    db.create_batch(db_engine, BATCH, [lead_id, other, other], flow_run_id="run-2")

    assert db.batch_progress(db_engine, BATCH)["counts"] == {
        "pending": 1,
        "in_progress": 0,
        "completed": 1,
        "partial": 0,
        "failed": 0,
    }


# --- concurrency ----------------------------------------------------------------------------

WRITERS = 4
LEADS_PER_WRITER = 15


def _save_all(url: str, lead_ids: list[int]) -> int:
    """One writer, as a Dask worker's store task would run (module level so spawn can import it)."""
    engine = db.make_engine(url)
    for lead_id in lead_ids:
        db.mark_in_progress(engine, BATCH, lead_id)
        db.save_results(engine, BATCH, lead_id, six_completed(score=lead_id % 101))
    return len(lead_ids)


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_concurrent_writers_on_sqlite_lose_nothing(sqlite_url: str, pool: str) -> None:
    db.migrate(sqlite_url)
    engine = db.make_engine(sqlite_url)
    ids = db.upsert_leads(
        engine, [lead_in(website=f"l{i}.example") for i in range(WRITERS * LEADS_PER_WRITER)]
    )
    db.create_batch(engine, BATCH, ids, flow_run_id=None)
    executor: Executor = (
        ThreadPoolExecutor(WRITERS)
        if pool == "threads"
        else ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn"))
    )

    with executor:
        shares = [ids[i::WRITERS] for i in range(WRITERS)]
        saved = sum(executor.map(_save_all, [sqlite_url] * WRITERS, shares))

    assert saved == len(ids)
    progress = db.batch_progress(engine, BATCH)
    assert progress["counts"]["completed"] == len(ids)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_stale_leads_are_the_unassessed_the_failed_and_the_old(db_engine: Engine) -> None:
    fresh, old, failing, never = db.upsert_leads(
        db_engine, [lead_in(website=f"{name}.example") for name in ("fresh", "old", "fail", "new")]
    )
    db.create_batch(db_engine, "b1", [fresh, old, failing], flow_run_id=None)
    for lead_id in (fresh, old):
        db.save_results(db_engine, "b1", lead_id, [result()])
    db.save_results(db_engine, "b1", failing, [failed("pagespeed")])
    with Session(db_engine) as session, session.begin():
        row = session.scalars(select(db.Assessment).where(db.Assessment.lead_id == old)).one()
        row.completed_at = db.utcnow() - timedelta(days=40)

    assert db.stale_lead_ids(db_engine, timedelta(days=30)) == [old, failing, never]
    assert db.stale_lead_ids(db_engine, timedelta(days=50)) == [failing, never]
    db.create_batch(db_engine, "b2", [old], flow_run_id=None)
    db.save_results(db_engine, "b2", old, [result(status="skipped", score=None)])  # completed
    assert db.stale_lead_ids(db_engine, timedelta(days=30)) == [failing, never]
    later = db.utcnow() + timedelta(days=31)
    assert db.stale_lead_ids(db_engine, timedelta(days=30), now=later) == [
        fresh,
        old,
        failing,
        never,
    ]
