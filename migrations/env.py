"""Alembic environment: one migration chain for SQLite and PostgreSQL.

The engine comes from ``config.attributes["connection"]`` when a caller (lims.migrate,
tests) passes one, else from LIMS_DATABASE_URL. SQLite uses batch mode so ALTERs work.
"""

from alembic import context

from lims.db import make_engine
from lims.models import metadata
from lims.settings import get_settings

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="lims.db.",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `lims db upgrade`")
run_migrations_online()
