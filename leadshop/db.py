"""The database: leads, one assessment row per lead per batch, and the operations on them.

Everything here is synchronous and each operation is its own short transaction, because the
callers are a Prefect store task on a Dask worker, the CLI and notebooks: none holds a session
open, and several worker processes write to the same database at once. That is why SQLite runs in
WAL mode with a busy timeout and takes its write lock at BEGIN (see ``make_engine``).

Sections are stored as whole result envelopes, one JSON column per built-in assessment and
``extra_results`` for plugins; ``SECTION_COLUMNS`` is the one map between the two.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from leadshop import scoring
from leadshop.config import get_settings
from leadshop.leads import LeadIn
from leadshop.models import AssessmentResult, LeadRecord

AssessmentStatus = Literal["pending", "in_progress", "completed", "partial", "failed"]
STATUSES: tuple[AssessmentStatus, ...] = get_args(AssessmentStatus)
FINISHED: frozenset[AssessmentStatus] = frozenset({"completed", "partial", "failed"})

# Built-in section -> its column; any other section goes to ``extra_results[name]``.
SECTION_COLUMNS: dict[str, str] = {
    "pagespeed": "pagespeed_data",
    "security": "security_headers",
    "gbp": "gbp_data",
    "semrush": "semrush_data",
    "visual": "visual_analysis",
    "llm": "llm_insights",
}
# Sections whose score also gets its own column, for sorting and filtering in SQL.
SCORE_COLUMNS: dict[str, str] = {"pagespeed": "pagespeed_score", "security": "security_score"}

SQLITE_PRAGMAS = ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=30000")

# none_as_null: a missing section is SQL NULL, not the JSON value null, so IS NULL finds it.
JSONType = JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend: SQLite stores no zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (leadshop.db.utcnow())")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    website: Mapped[str] = mapped_column(Text)
    website_key: Mapped[str] = mapped_column(Text, unique=True)
    phone: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def record(self) -> LeadRecord:
        return LeadRecord(
            id=self.id,
            name=self.name,
            website=self.website,
            phone=self.phone,
            address=self.address,
        )


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        # Also the index for "all rows of a batch": batch_id leads it.
        UniqueConstraint("batch_id", "lead_id"),
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES)), name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    pagespeed_data: Mapped[dict[str, Any] | None]
    pagespeed_score: Mapped[int | None]
    security_headers: Mapped[dict[str, Any] | None]
    security_score: Mapped[int | None]
    gbp_data: Mapped[dict[str, Any] | None]
    semrush_data: Mapped[dict[str, Any] | None]
    visual_analysis: Mapped[dict[str, Any] | None]
    llm_insights: Mapped[dict[str, Any] | None]
    extra_results: Mapped[dict[str, Any] | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    overall_score: Mapped[int | None]
    overall_grade: Mapped[str | None] = mapped_column(String(4))
    opportunity: Mapped[int | None]  # scoring.opportunity: the sales ranking, best prospect first
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- engines and migrations -----------------------------------------------------------------

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    """One engine per URL per process: workers call this per task and must reuse the pool.

    The process id is part of the key so a forked child never shares its parent's connections.
    """
    key = (os.getpid(), url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(url)
        return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (below); pragmas need no open transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for the write lock
        # (SQLite answers "database is locked" at once); taking it at BEGIN makes it wait
        # busy_timeout instead. Read-only operations opt out so readers never queue.
        read_only = connection.get_execution_options().get("leadshop_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


@contextmanager
def _writing(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session, session.begin():
        yield session


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only session in a transaction, for this module and read-only callers (reports)."""
    bind = engine.execution_options(leadshop_read_only=True)
    with Session(bind) as session, session.begin():
        yield session


# --- leads ----------------------------------------------------------------------------------


def upsert_leads(engine: Engine, leads: list[LeadIn]) -> list[int]:
    """Insert new leads and refresh known ones (matched by website key); ids in input order.

    A known lead takes the new name, and the new phone and address where they are given: a list
    that lacks a phone number does not erase one we already have.
    """
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    ids: list[int] = []
    with _writing(engine) as session:
        for lead in leads:
            now = utcnow()
            statement = insert(Lead).values(
                name=lead.name,
                website=lead.website,
                website_key=lead.website_key,
                phone=lead.phone,
                address=lead.address,
                created_at=now,
                updated_at=now,
            )
            statement = statement.on_conflict_do_update(
                index_elements=[Lead.website_key],
                set_={
                    "name": statement.excluded.name,
                    "phone": func.coalesce(statement.excluded.phone, Lead.phone),
                    "address": func.coalesce(statement.excluded.address, Lead.address),
                    "updated_at": statement.excluded.updated_at,
                },
            )
            ids.append(session.execute(statement.returning(Lead.id)).scalar_one())
    return ids


def get_leads(engine: Engine, ids: Iterable[int], *, missing_ok: bool = False) -> list[LeadRecord]:
    """The leads with these ids, in that order; LookupError names any that do not exist
    unless ``missing_ok`` (then they are left out)."""
    wanted = list(ids)
    with reading(engine) as session:
        found = {
            lead.id: lead.record()
            for lead in session.scalars(select(Lead).where(Lead.id.in_(wanted)))
        }
    missing = [lead_id for lead_id in dict.fromkeys(wanted) if lead_id not in found]
    if missing and not missing_ok:
        raise _missing_leads(missing)
    return [found[lead_id] for lead_id in wanted if lead_id in found]


def _missing_leads(ids: list[int]) -> LookupError:
    listed = ", ".join(map(str, ids))
    return LookupError(
        f"no lead with id {listed}" if len(ids) == 1 else f"no leads with ids {listed}"
    )


def all_lead_ids(engine: Engine) -> list[int]:
    with reading(engine) as session:
        return list(session.scalars(select(Lead.id).order_by(Lead.id)))


def stale_lead_ids(engine: Engine, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Leads never assessed with a result (completed or partial), or last assessed before
    ``now - older_than``: what the nightly re-assessment picks up. A failed attempt does not
    count as an assessment, so a lead whose site was down is tried again the next night."""
    cutoff = (now or utcnow()) - older_than
    assessed = (
        select(Assessment.lead_id, func.max(Assessment.completed_at).label("last"))
        .where(Assessment.status.in_(("completed", "partial")))
        .group_by(Assessment.lead_id)
        .subquery()
    )
    query = (
        select(Lead.id)
        .outerjoin(assessed, assessed.c.lead_id == Lead.id)
        .where((assessed.c.last.is_(None)) | (assessed.c.last < cutoff))
        .order_by(Lead.id)
    )
    with reading(engine) as session:
        return list(session.scalars(query))


# --- assessments ----------------------------------------------------------------------------


def create_batch(
    engine: Engine, batch_id: str, lead_ids: Iterable[int], flow_run_id: str | None
) -> None:
    """One ``pending`` row per lead; leads that already have a row in this batch keep it.

    Keeping rows makes a retried flow run safe to call this again.
    """
    wanted = list(dict.fromkeys(lead_ids))
    with _writing(engine) as session:
        known = set(session.scalars(select(Lead.id).where(Lead.id.in_(wanted))))
        missing = [lead_id for lead_id in wanted if lead_id not in known]
        if missing:
            raise _missing_leads(missing)
        existing = set(
            session.scalars(
                select(Assessment.lead_id).where(
                    Assessment.batch_id == batch_id, Assessment.lead_id.in_(wanted)
                )
            )
        )
        session.add_all(
            Assessment(lead_id=lead_id, batch_id=batch_id, flow_run_id=flow_run_id)
            for lead_id in wanted
            if lead_id not in existing
        )


def _row(session: Session, batch_id: str, lead_id: int) -> Assessment:
    row = session.scalar(
        select(Assessment).where(Assessment.batch_id == batch_id, Assessment.lead_id == lead_id)
    )
    if row is None:
        raise LookupError(f"no assessment for lead {lead_id} in batch {batch_id!r}")
    return row


def mark_in_progress(engine: Engine, batch_id: str, lead_id: int) -> None:
    with _writing(engine) as session:
        row = _row(session, batch_id, lead_id)
        row.status = "in_progress"
        row.started_at = utcnow()


def assessment_status(results: list[AssessmentResult]) -> AssessmentStatus:
    """PRP-002's rule: any failure makes it partial, all failed (or nothing ran) makes it failed."""
    failed = sum(result.status == "failed" for result in results)
    if failed == 0 and results:
        return "completed"
    return "failed" if failed == len(results) else "partial"


def save_results(
    engine: Engine,
    batch_id: str,
    lead_id: int,
    results: list[AssessmentResult],
    weights: Mapping[str, float] | None = None,
) -> str:
    """Write every section of one lead in one transaction; returns the row's status.

    Sections from an earlier save are cleared first, so a re-run never leaves stale ones behind.
    ``weights`` (default: the settings') weigh the sections in the overall score.
    """
    names = [result.assessment for result in results]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"more than one result for {', '.join(repeated)}")
    status = assessment_status(results)
    extra: dict[str, Any] = {}
    errors: list[str] = []
    with _writing(engine) as session:
        row = _row(session, batch_id, lead_id)
        for column in (*SECTION_COLUMNS.values(), *SCORE_COLUMNS.values()):
            setattr(row, column, None)
        for result in results:
            envelope = result.model_dump(mode="json")
            target = SECTION_COLUMNS.get(result.assessment)
            if target is None:
                extra[result.assessment] = envelope
            else:
                setattr(row, target, envelope)
            if result.assessment in SCORE_COLUMNS:
                setattr(row, SCORE_COLUMNS[result.assessment], result.score)
            if result.status == "failed":
                errors.append(_error_line(result))
        overall = scoring.overall(
            results, get_settings().section_weights if weights is None else weights
        )
        row.extra_results = extra or None
        row.status = status
        row.error_message = "\n".join(errors) or (None if results else "no assessment ran")
        row.overall_score = overall
        row.overall_grade = None if overall is None else scoring.grade_for(overall)
        row.opportunity = scoring.opportunity(results, overall)
        row.completed_at = utcnow()
    return status


def _error_line(result: AssessmentResult) -> str:
    if result.error is None:
        return f"{result.assessment}: failed without an error record"
    message = " ".join(result.error.message.split())
    return f"{result.assessment}: {result.error.type}: {message}"


def mark_failed(engine: Engine, batch_id: str, lead_id: int, message: str) -> bool:
    """Fail a lead whose worker died or timed out; False if it had already finished.

    A late timeout must not overwrite results that were saved after all.
    """
    with _writing(engine) as session:
        row = _row(session, batch_id, lead_id)
        if row.status in FINISHED:
            return False
        row.status = "failed"
        row.error_message = message
        row.completed_at = utcnow()
        return True


def load_results(engine: Engine, batch_id: str, lead_id: int) -> list[AssessmentResult]:
    """The stored envelopes of one lead's assessment, built-in sections first."""
    with reading(engine) as session:
        row = _row(session, batch_id, lead_id)
        stored = [getattr(row, column) for column in SECTION_COLUMNS.values()]
        stored.extend((row.extra_results or {}).values())
    return [AssessmentResult.model_validate(envelope) for envelope in stored if envelope]


def batch_rows(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    """The ranked list: one flat row per lead, best prospect (highest ``opportunity``) first,
    then the weakest web presence; leads that could not be scored last.

    Section status, score and grade are read inside the database, so a batch of large
    envelopes (a Lighthouse report is megabytes) is never loaded whole. Every row has the same
    keys: ``<section>_status``, ``<section>_score`` and ``<section>_grade`` for the built-in
    sections and for any plugin section present in the batch.
    """
    sections = []
    for name, column in SECTION_COLUMNS.items():
        envelope = getattr(Assessment, column)
        sections += [
            envelope["status"].as_string().label(f"{name}_status"),
            envelope["score"].as_integer().label(f"{name}_score"),
            envelope["grade"].as_string().label(f"{name}_grade"),
        ]
    query = (
        select(
            Lead.id.label("lead_id"),
            Lead.name,
            Lead.website,
            Lead.phone,
            Lead.address,
            Assessment.status,
            *sections,
            Assessment.extra_results,
            Assessment.overall_score,
            Assessment.overall_grade,
            Assessment.opportunity,
            Assessment.error_message,
        )
        .join(Lead, Lead.id == Assessment.lead_id)
        .where(Assessment.batch_id == batch_id)
        .order_by(
            Assessment.opportunity.desc().nulls_last(),
            Assessment.overall_score.asc().nulls_last(),
            Lead.id,
        )
    )
    with reading(engine) as session:
        rows = [dict(row._mapping) for row in session.execute(query)]
    plugins = sorted({name for row in rows for name in row["extra_results"] or {}})
    for row in rows:
        extra = row.pop("extra_results") or {}
        for name in plugins:
            envelope = extra.get(name) or {}
            for key in ("status", "score", "grade"):
                row[f"{name}_{key}"] = envelope.get(key)
    return rows


def latest_batch_id(engine: Engine) -> str | None:
    query = select(Assessment.batch_id).order_by(Assessment.created_at.desc(), Assessment.id.desc())
    with reading(engine) as session:
        return session.scalar(query.limit(1))


def batch_progress(engine: Engine, batch_id: str) -> dict[str, Any]:
    """Total, rows per status and the share finished (completed, partial or failed), in percent."""
    query = (
        select(Assessment.status, func.count())
        .where(Assessment.batch_id == batch_id)
        .group_by(Assessment.status)
    )
    with reading(engine) as session:
        found: dict[str, int] = {status: count for status, count in session.execute(query).tuples()}
    total = sum(found.values())
    if total == 0:
        raise LookupError(f"no batch {batch_id!r}")
    counts = {status: found.get(status, 0) for status in STATUSES}
    finished = sum(counts[status] for status in FINISHED)
    return {
        "batch_id": batch_id,
        "total": total,
        "counts": counts,
        "finished": finished,
        "percent": round(100 * finished / total, 1),
    }
