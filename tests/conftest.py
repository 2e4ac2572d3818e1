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

import pytest
from sqlalchemy import Engine, text

os.environ.setdefault("LIMS_ENVIRONMENT", "test")
# Cheap password hashing in tests only (production refuses these values).
os.environ.setdefault("LIMS_ARGON2_TIME_COST", "1")
os.environ.setdefault("LIMS_ARGON2_MEMORY_KIB", "1024")

from lims import migrate
from lims.db import make_engine, utcnow, write_session
from lims.demo import Facility
from lims.models import metadata
from lims.sops.service import sync_catalog
from tests import examples_recorder

APPEND_ONLY = ("custody_event", "custody_material", "custody_checkpoint", "custody_timestamp")
SLOW_ENV = "LIMS_TEST_SLOW"


# Only under LIMS_RECORD_EXAMPLES (make examples); here, before any test module or
# sub-directory conftest imports create_app.
examples_recorder.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    examples_recorder.write()


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
    facility: Facility  # the good instruments and lots, the staff and desks, by name


@pytest.fixture
def world(engine: Engine) -> World:
    """The demo facility (lims.demo) without passwords, an auditor, three people, and an
    overdue instrument and an expired lot of every type beside the good ones."""
    from lims.demo import set_up_facility
    from lims.parties.models import Clinic, DonorType, Role
    from lims.parties.queries import get_user
    from lims.parties.service import create_user, register_patient

    with write_session(engine) as s:
        facility = set_up_facility(
            s, tag="1", password=None, desks=["GINZA"], good_until=utcnow() + timedelta(days=365)
        )
        stale = set_up_facility(
            s, tag="OLD", password=None, desks=[], good_until=utcnow() - timedelta(days=1)
        )
        clinic, other = (s.get(Clinic, facility.clinic_ids[c]) for c in ("GINZA", "OSAKA"))
        assert clinic is not None and other is not None
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
        assert auditor.id is not None
        return World(
            clinic_id=facility.clinic_ids["GINZA"],
            other_clinic_id=facility.clinic_ids["OSAKA"],
            tech_id=facility.staff_ids["tanaka"],
            tech2_id=facility.staff_ids["mori"],
            qa_id=facility.staff_ids["sato"],
            clinic_user_id=int(get_user(s, username=facility.desks["GINZA"]).id or 0),
            auditor_id=auditor.id,
            patient_coi=p.coi_id,
            other_patient_coi=op.coi_id,
            donor_coi=donor.coi_id,
            instruments=facility.instrument_ids,
            reagents=facility.reagent_ids,
            expired_reagents=stale.reagent_ids,
            overdue_instruments=stale.instrument_ids,
            facility=facility,
        )
