"""The demo facility, written once: its clinics, staff (with the demo password) and clinic
desks, the demo's three people, calibrated instruments and unexpired reagent lots, and the
QC results a passing AAPE lot gets.

``lims demo`` (flows/scenario.py), the benchmarks and the tests' fixtures build on it, each
through the services. Clinics, staff and desks are created once per database (a second demo
run finds them); instruments, reagent lots and people are tagged per run so runs never
clash. The pipeline itself is flows/scenario.py: nothing here records a step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow
from lims.materials.models import Material
from lims.parties.models import DonorType, Role
from lims.parties.queries import find_clinic, find_user
from lims.parties.service import (
    add_instrument,
    add_reagent_lot,
    create_clinic,
    create_user,
    register_patient,
)
from lims.settings import refuse_demo_data
from lims.signatures.passwords import set_password
from lims.sops.service import sync_catalog

# The demo's staff sign with this; a real installation sets each person's own password.
DEMO_PASSWORD = "demo-release-password"
# Lot QC results inside the AAPE lot specification (lims/qc/specs.py), as the demo, the
# benchmarks and the tests enter them.
PASSING_AAPE_QC: dict[str, str] = {
    "sterility": "no growth",
    "endotoxin": "0.5 EU/mL",
    "mycoplasma": "not detected",
    "residual_moisture": "1.2 %",
    "protein": "350 ug/mL",
    "vegf": "711 pg/mL",
    "appearance": "conforms",
}
CLINICS = {"GINZA": "Ginza Hair Clinic", "OSAKA": "Osaka Scalp Centre"}
STAFF = [
    ("tanaka", "Yui Tanaka", Role.TECHNICIAN),
    ("mori", "Aoi Mori", Role.TECHNICIAN),
    ("sato", "Kenji Sato", Role.QA),
]
# Every instrument and reagent type an SOP in the catalogue asks for.
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


@dataclass(frozen=True)
class Person:
    """One of the demo's people: who registers them, how they are identified, their part."""

    clinic: str
    identifier_1: str
    prefix: str
    donor_type: DonorType


# Ginza's patient A (autologous), Osaka's patient B (treated from donor D), donor D.
PEOPLE = {
    "patient": Person("GINZA", "1980-04-12", "GHC", DonorType.AUTOLOGOUS_PATIENT),
    "recipient": Person("OSAKA", "1975-11-02", "OSC", DonorType.RECIPIENT),
    "donor": Person("OSAKA", "1991-06-30", "DON", DonorType.ALLOGENEIC_DONOR),
}


@dataclass
class Facility:
    """Ids and printed references of what :func:`set_up_facility` made or found."""

    clinic_ids: dict[str, int]
    staff_ids: dict[str, int]
    desks: dict[str, str] = field(default_factory=dict)  # clinic code -> desk username
    instrument_ids: dict[str, int] = field(default_factory=dict)
    instrument_tags: dict[str, str] = field(default_factory=dict)
    reagent_ids: dict[str, int] = field(default_factory=dict)
    reagent_lots: dict[str, str] = field(default_factory=dict)  # type -> lot number
    people: dict[str, str] = field(default_factory=dict)  # PEOPLE key -> COI id


def _id(row: object) -> int:
    value = getattr(row, "id", None)
    assert isinstance(value, int)
    return value


def set_up_facility(
    session: Session,
    *,
    tag: str,
    password: str | None = DEMO_PASSWORD,
    desks: Iterable[str] = CLINICS,
    good_until: datetime | None = None,
) -> Facility:
    """The demo's clinics, staff and desks (made once), and its instruments and reagent
    lots tagged ``tag`` (calibrated or unexpired until ``good_until``, default 180 days)."""
    refuse_demo_data()
    sync_catalog(session)
    clinics = {
        code: find_clinic(session, code=code) or create_clinic(session, code=code, name=name)
        for code, name in CLINICS.items()
    }
    staff = {}
    for username, name, role in STAFF:
        person = find_user(session, username=username) or create_user(
            session, username=username, printed_name=name, role=role
        )
        if password is not None and person.password_hash is None:
            set_password(session, user=person, password=password, actor=None)
        staff[username] = _id(person)
    facility = Facility(
        clinic_ids={code: _id(c) for code, c in clinics.items()},
        staff_ids=staff,
    )
    for code in desks:
        username = f"{code.lower()}-desk"
        if find_user(session, username=username) is None:
            create_user(
                session,
                username=username,
                printed_name=f"{CLINICS[code].split()[0]} front desk",
                role=Role.CLINIC,
                clinic=clinics[code],
            )
        facility.desks[code] = username
    add_resources(session, facility=facility, tag=tag, good_until=good_until)
    return facility


def add_resources(
    session: Session, *, facility: Facility, tag: str, good_until: datetime | None = None
) -> None:
    """One instrument of every type and one lot of every reagent, tagged ``tag``."""
    due = good_until or utcnow() + timedelta(days=180)
    for kind in INSTRUMENT_TYPES:
        asset_tag = f"{kind[:12]}-{tag}"
        row = add_instrument(
            session,
            asset_tag=asset_tag,
            instrument_type=kind,
            name=kind.replace("_", " "),
            calibration_due=due,
        )
        facility.instrument_ids[kind], facility.instrument_tags[kind] = _id(row), asset_tag
    for kind in REAGENT_TYPES:
        lot_number = f"{kind[:3]}-{tag}"
        lot = add_reagent_lot(
            session,
            reagent_type=kind,
            lot_number=lot_number,
            supplier="demo supplier",
            expires_at=due,
        )
        facility.reagent_ids[kind], facility.reagent_lots[kind] = _id(lot), lot_number


def register_people(session: Session, *, facility: Facility, tag: str) -> dict[str, str]:
    """Register the demo's people (:data:`PEOPLE`) for run ``tag``; their COI ids by key."""
    for key, person in PEOPLE.items():
        clinic = find_clinic(session, code=person.clinic)
        assert clinic is not None
        facility.people[key] = register_patient(
            session,
            clinic=clinic,
            identifier_1=person.identifier_1,
            identifier_2=f"{person.prefix}-{tag}",
            donor_type=person.donor_type,
        ).coi_id
    return facility.people


# --- reads for the demo's summary --------------------------------------------------------


def database_is_empty(engine: Engine) -> bool:
    """True when no material was ever registered (``lims demo --if-empty``)."""
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(Material)).one() == 0


def material_counts(session: Session) -> dict[tuple[str, str], int]:
    """How many materials there are of each kind in each state."""
    rows = session.exec(
        select(Material.kind, Material.state, func.count()).group_by(
            col(Material.kind), col(Material.state)
        )
    ).all()
    return {(kind, state): n for kind, state, n in rows}


def newest_material(session: Session) -> Material | None:
    """The material registered last (what a one-off run just made)."""
    return session.exec(select(Material).order_by(col(Material.id).desc())).first()


def custody_event_count(session: Session) -> int:
    """How many events the custody ledger holds."""
    return session.exec(select(func.count()).select_from(CustodyEvent)).one()
