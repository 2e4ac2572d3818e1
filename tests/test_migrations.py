"""One migration chain for both databases: it upgrades an empty database and matches the
models exactly (so nobody ships a model change without its migration)."""

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from lims import migrate
from lims.db import make_engine
from lims.models import metadata
from tests.conftest import PG_URL

TABLES = set(metadata.tables) | {"alembic_version"}


def _check_fresh_upgrade(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    assert diff == []


def test_upgrade_empty_sqlite_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    _check_fresh_upgrade(engine)
    migrate.upgrade(engine)  # idempotent
    from alembic import command

    cfg = migrate.alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}


@pytest.mark.skipif(not PG_URL, reason="LIMS_TEST_POSTGRES_URL not set (CI sets it)")
def test_upgrade_empty_postgresql_schema() -> None:
    schema = f"lims_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        _check_fresh_upgrade(engine)
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_database_refuses_negative_remaining(engine: Engine, world: object) -> None:
    """The CHECK constraint is a last line of defence under the service's own check."""
    from sqlalchemy.exc import IntegrityError

    from lims.db import write_session
    from tests.builders import Lab

    lab = Lab.start(engine, world)  # type: ignore[arg-type]
    lipo = lab.lipoaspirate("10 mL")
    with pytest.raises(IntegrityError), write_session(engine) as s:
        s.execute(
            text("UPDATE material SET remaining_canonical = '-0.5' WHERE material_id = :m"),
            {"m": lipo},
        )


def test_checkpoint_migration_0009_up_and_down(tmp_path: Path) -> None:
    """0009 adds the append-only custody_checkpoint table on top of 0008, and removes it."""
    from alembic import command
    from sqlalchemy.exc import DatabaseError

    engine = make_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    cfg = migrate.alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
        conn.commit()
    assert "custody_checkpoint" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0009"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO custody_checkpoint (tree_size, root_hash, last_hash, made_at, "
                "key_id, signature) VALUES (1, 'r', 'h', '2026-12-02 00:00:00.000000', 'k', 's')"
            )
        )
    for statement in (
        "UPDATE custody_checkpoint SET tree_size = 2",
        "DELETE FROM custody_checkpoint",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
        conn.commit()
    assert "custody_checkpoint" not in inspect(engine).get_table_names()
    assert migrate.current_revision(engine) == "0008"
