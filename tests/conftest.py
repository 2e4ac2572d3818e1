"""Database fixtures: every database test runs on SQLite, and on PostgreSQL as well when
LIMS_TEST_POSTGRES_URL is set (CI sets it; an unreachable server fails the run).

SQLite: the schema is migrated once into a template file, copied for each test.
PostgreSQL: the schema is migrated once into a fresh schema named for this run (so runs
never see each other's data), tables are emptied after each test, and the schema is
dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

os.environ.setdefault("LIMS_ENVIRONMENT", "test")
# Cheap password hashing in tests only (production refuses these values).
os.environ.setdefault("LIMS_ARGON2_TIME_COST", "1")
os.environ.setdefault("LIMS_ARGON2_MEMORY_KIB", "1024")

from lims import migrate
from lims.db import make_engine, utcnow, write_session
from lims.models import metadata
from lims.sops.service import sync_catalog

APPEND_ONLY = ("custody_event", "custody_material")
SLOW_ENV = "LIMS_TEST_SLOW"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (a real Prefect server and worker, the README journey) run only
    when LIMS_TEST_SLOW=1; .ci/run sets it, so CI runs them and `make test` stays quick."""
    if os.environ.get(SLOW_ENV) == "1":
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


PG_URL = os.environ.get("LIMS_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _pg_engine(schema: str) -> Engine:
    return make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "lims.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with write_session(engine) as s:
        sync_catalog(s)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    if not PG_URL:
        pytest.fail("pg_schema requested without LIMS_TEST_POSTGRES_URL")
    schema = f"lims_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # fail, never skip: CI asked for PostgreSQL
        pytest.fail(
            f"LIMS_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}", pytrace=False
        )
    engine = _pg_engine(schema)
    migrate.upgrade(engine)
    engine.dispose()
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_pg(engine: Engine) -> None:
    """Empty every table between tests. The ledger refuses TRUNCATE, so its triggers are
    switched off for this one transaction (as the schema owner), then on again."""
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        for ledger_table in APPEND_ONLY:
            conn.execute(text(f"ALTER TABLE {ledger_table} DISABLE TRIGGER USER"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for ledger_table in APPEND_ONLY:
            conn.execute(text(f"ALTER TABLE {ledger_table} ENABLE TRIGGER USER"))
        conn.execute(text(f"INSERT INTO custody_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with the SOP catalogue loaded and nothing else."""
    if request.param == "sqlite":
        path = tmp_path / "lims.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
        return
    eng = _pg_engine(request.getfixturevalue("pg_schema"))
    _empty_pg(eng)
    with write_session(eng) as s:
        sync_catalog(s)
    yield eng
    eng.dispose()


@dataclass
class World:
    """Ids of the parties and resources most tests need."""

    clinic_id: int
    other_clinic_id: int
    tech_id: int
    tech2_id: int
    qa_id: int
    clinic_user_id: int
    auditor_id: int
    patient_coi: str
    other_patient_coi: str
    donor_coi: str
    instruments: dict[str, int]
    reagents: dict[str, int]
    expired_reagents: dict[str, int]
    overdue_instruments: dict[str, int]


INSTRUMENT_TYPES = [
    "centrifuge",
    "shaking_incubator",
    "cell_counter",
    "biosafety_cabinet",
    "co2_incubator",
    "trigas_incubator",
    "freeze_dryer",
    "karl_fischer_titrator",
    "stereo_microscope",
]
REAGENT_TYPES = ["collagenase", "culture_medium", "sterile_filter"]


@pytest.fixture
def world(engine: Engine) -> World:
    from lims.parties.models import DonorType, Role
    from lims.parties.service import (
        add_instrument,
        add_reagent_lot,
        create_clinic,
        create_user,
        register_patient,
    )

    future = utcnow() + timedelta(days=365)
    past = utcnow() - timedelta(days=1)
    with write_session(engine) as s:
        clinic = create_clinic(s, code="GINZA", name="Ginza Hair Clinic")
        other = create_clinic(s, code="OSAKA", name="Osaka Scalp Centre")
        tech = create_user(s, username="tanaka", printed_name="Yui Tanaka", role=Role.TECHNICIAN)
        tech2 = create_user(s, username="mori", printed_name="Aoi Mori", role=Role.TECHNICIAN)
        qa = create_user(s, username="sato", printed_name="Kenji Sato", role=Role.QA)
        cu = create_user(
            s, username="ginza-desk", printed_name="Ginza desk", role=Role.CLINIC, clinic=clinic
        )
        auditor = create_user(s, username="audit", printed_name="A. Uditor", role=Role.AUDITOR)
        p = register_patient(s, clinic=clinic, identifier_1="1980-04-12", identifier_2="GHC-000123")
        op = register_patient(s, clinic=other, identifier_1="1975-11-02", identifier_2="OSC-000456")
        donor = register_patient(
            s,
            clinic=clinic,
            identifier_1="1990-01-01",
            identifier_2="DONOR-0001",
            donor_type=DonorType.ALLOGENEIC_DONOR,
        )
        instruments = {
            t: add_instrument(
                s, asset_tag=f"{t[:12]}-1", instrument_type=t, name=t, calibration_due=future
            ).id
            for t in INSTRUMENT_TYPES
        }
        overdue = {
            t: add_instrument(
                s, asset_tag=f"{t[:12]}-OLD", instrument_type=t, name=t, calibration_due=past
            ).id
            for t in INSTRUMENT_TYPES
        }
        reagents = {
            t: add_reagent_lot(
                s, reagent_type=t, lot_number=f"{t[:3]}-1", supplier="s", expires_at=future
            ).id
            for t in REAGENT_TYPES
        }
        expired = {
            t: add_reagent_lot(
                s, reagent_type=t, lot_number=f"{t[:3]}-OLD", supplier="s", expires_at=past
            ).id
            for t in REAGENT_TYPES
        }

        def _id(row: Any) -> int:
            assert row.id is not None
            return int(row.id)

        return World(
            clinic_id=_id(clinic),
            other_clinic_id=_id(other),
            tech_id=_id(tech),
            tech2_id=_id(tech2),
            qa_id=_id(qa),
            clinic_user_id=_id(cu),
            auditor_id=_id(auditor),
            patient_coi=p.coi_id,
            other_patient_coi=op.coi_id,
            donor_coi=donor.coi_id,
            instruments=instruments,  # type: ignore[arg-type]
            reagents=reagents,  # type: ignore[arg-type]
            expired_reagents=expired,  # type: ignore[arg-type]
            overdue_instruments=overdue,  # type: ignore[arg-type]
        )
