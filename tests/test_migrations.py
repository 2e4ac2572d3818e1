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
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.commit()
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


def test_clinic_time_zone_migration_0010_keeps_clinics(tmp_path: Path) -> None:
    """0010 gives every existing clinic the lab's zone (Asia/Tokyo); downgrade removes it."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'tz.db'}")
    cfg = migrate.alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.execute(
            text(
                "INSERT INTO clinic (code, name, created_at) "
                "VALUES ('GINZA', 'Ginza', '2026-12-01 00:00:00.000000')"
            )
        )
        conn.commit()
        command.upgrade(cfg, "0010")
        conn.commit()
        assert conn.execute(text("SELECT time_zone FROM clinic")).scalar_one() == "Asia/Tokyo"
        command.downgrade(cfg, "0009")
        conn.commit()
    assert "time_zone" not in {c["name"] for c in inspect(engine).get_columns("clinic")}


def test_order_queue_index_migration_0017_up_and_down(tmp_path: Path) -> None:
    """0017 adds the index the lab's order queue sorts by; downgrade removes it."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    cfg = migrate.alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0017")
        conn.commit()
        names = {i["name"] for i in inspect(conn).get_indexes("dose_order")}
        assert "ix_dose_order_planned_use_at" in names
        command.downgrade(cfg, "0010")
        conn.commit()
    names = {i["name"] for i in inspect(engine).get_indexes("dose_order")}
    assert "ix_dose_order_planned_use_at" not in names


def test_order_list_indexes_migration_0019_up_and_down(tmp_path: Path) -> None:
    """0019 adds the indexes the key-paged order lists read; downgrade removes them."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'lists.db'}")
    cfg = migrate.alembic_config()
    wanted = {
        "ix_dose_order_clinic_status_placed",
        "ix_dose_order_clinic_status_planned",
        "ix_dose_order_clinic_placed",
        "ix_dose_order_status_planned",
    }
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0019")
        conn.commit()
        assert wanted <= {i["name"] for i in inspect(conn).get_indexes("dose_order")}
        command.downgrade(cfg, "0018")
        conn.commit()
    assert not wanted & {i["name"] for i in inspect(engine).get_indexes("dose_order")}


def test_search_indexes_migration_0013_up_and_down(tmp_path: Path) -> None:
    """0013 adds the search and portal indexes; downgrading to 0010 removes them."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'search.db'}")
    cfg = migrate.alembic_config()

    def names(table: str) -> set[str]:
        return {str(i["name"]) for i in inspect(engine).get_indexes(table)}

    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013")
        conn.commit()
        assert "ix_dose_order_clinic_planned" in names("dose_order")
        assert "ix_patient_identifier_2" in names("patient")
        assert "ix_reagent_lot_lot_number" in names("reagent_lot")
        command.downgrade(cfg, "0010")
        conn.commit()
    assert "ix_dose_order_clinic_planned" not in names("dose_order")
    assert "ix_patient_identifier_2" not in names("patient")


def test_dose_disposition_migration_0011_upgrades_and_downgrades(tmp_path: Path) -> None:
    """0011 adds the disposition and clinic tables and the order's interval reason."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'dose.db'}")
    cfg = migrate.alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0011")
        conn.commit()
        names = set(inspect(conn).get_table_names())
        assert {"dose_disposition", "dose_at_clinic"} <= names
        command.downgrade(cfg, "0010")
        conn.commit()
    assert "dose_disposition" not in set(inspect(engine).get_table_names())
    assert "interval_reason" not in {c["name"] for c in inspect(engine).get_columns("dose_order")}


def test_lot_recall_migration_0018_up_and_down(tmp_path: Path) -> None:
    """0018 adds the recall tables after 0011; downgrading to 0011 removes them."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'recall.db'}")
    cfg = migrate.alembic_config()
    recall_tables = {"recall", "recall_item", "recall_clinic"}
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0018")
        conn.commit()
        assert recall_tables <= set(inspect(conn).get_table_names())
        uniques = {u["name"] for u in inspect(conn).get_unique_constraints("recall_clinic")}
        assert "uq_recall_clinic_recall_id_clinic_id" in uniques
        command.downgrade(cfg, "0011")
        conn.commit()
    names = set(inspect(engine).get_table_names())
    assert not recall_tables & names and "dose_disposition" in names
