"""Alembic environment: migrates the database whose URL ``leadshop.db.migrate`` hands over.

There is no alembic.ini: the URL travels as a config attribute (never interpolated, so a
password with ``%`` survives), and the engine comes from ``make_engine`` so SQLite gets the same
pragmas here as everywhere else. Run by hand (``alembic revision``), it falls back to the
configured ``LEADSHOP_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context

from leadshop.config import get_settings
from leadshop.db import Base, make_engine

config = context.config
if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: migrate a live database")

url = config.attributes.get("url") or get_settings().resolved_database_url
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
