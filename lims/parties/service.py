"""Set up the parties: clinics, patients and donors, users, instruments, reagent lots."""

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.identity.codes import new_coi_id, parse_coi_id
from lims.parties.models import (
    SYSTEM_USERNAME,
    Clinic,
    DonorType,
    Instrument,
    Patient,
    ReagentLot,
    Role,
    User,
)


def _text(value: str, field: str, *, max_len: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} is required", field=field)
    value = value.strip()
    if len(value) > max_len:
        raise InvalidInput(f"{field} is longer than {max_len} characters", field=field)
    return value


def check_time_zone(value: str) -> str:
    """An IANA time-zone name (``Asia/Tokyo``); anything else is refused."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _text(value, "time_zone", max_len=64)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not a time zone; give an IANA name such as Asia/Tokyo",
            field="time_zone",
        ) from None
    return name


def create_clinic(
    session: Session,
    *,
    code: str,
    name: str,
    time_zone: str = "Asia/Tokyo",
    actor: User | None = None,
) -> Clinic:
    """Register a clinic (a tenant: it sees only its own patients and orders)."""
    clinic = Clinic(
        code=_text(code, "code", max_len=16).upper(),
        name=_text(name, "name", max_len=200),
        time_zone=check_time_zone(time_zone),
    )
    if session.exec(select(Clinic).where(col(Clinic.code) == clinic.code)).first():
        raise RuleViolation(f"clinic {clinic.code} already exists", field="code")
    session.add(clinic)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="clinic.created",
        entity="clinic",
        entity_id=clinic.code,
        new={"code": clinic.code, "name": clinic.name, "time_zone": clinic.time_zone},
    )
    return clinic


def register_patient(
    session: Session,
    *,
    clinic: Clinic,
    identifier_1: str,
    identifier_2: str,
    donor_type: DonorType = DonorType.AUTOLOGOUS_PATIENT,
    actor: User | None = None,
) -> Patient:
    """Register a patient or donor; returns it with a new pseudonymous chain-of-identity id."""
    id1 = _text(identifier_1, "identifier_1")
    id2 = _text(identifier_2, "identifier_2")
    if id1 == id2:
        raise InvalidInput("the two identifiers must differ", field="identifier_2")
    duplicate = session.exec(
        select(Patient).where(
            col(Patient.clinic_id) == clinic.id,
            col(Patient.identifier_1) == id1,
            col(Patient.identifier_2) == id2,
        )
    ).first()
    if duplicate:
        raise RuleViolation(
            f"clinic {clinic.code} already has a patient with these identifiers "
            f"({duplicate.coi_id})"
        )
    for _attempt in range(5):
        patient = Patient(
            coi_id=new_coi_id(),
            clinic_id=clinic.id,  # type: ignore[arg-type]
            donor_type=donor_type,
            identifier_1=id1,
            identifier_2=id2,
        )
        try:
            with session.begin_nested():
                session.add(patient)
        except IntegrityError:  # a 1-in-10^12 collision of random ids: draw again
            continue
        # The identifiers themselves stay out of the ledger: it is exported to auditors.
        ledger.append(
            session,
            actor=actor,
            action="patient.registered",
            entity="patient",
            entity_id=patient.coi_id,
            new={
                "clinic": clinic.code,
                "donor_type": donor_type,
                "identifiers_sha256": _identifiers_digest(id1, id2),
            },
        )
        return patient
    raise RuleViolation("could not allocate a unique chain-of-identity id")


def _identifiers_digest(id1: str, id2: str) -> str:
    import hashlib

    return hashlib.sha256(f"{id1}\x1f{id2}".encode()).hexdigest()


def get_patient(session: Session, *, coi_id: str) -> Patient:
    coi = parse_coi_id(coi_id)
    patient = session.exec(select(Patient).where(col(Patient.coi_id) == coi)).first()
    if patient is None:
        raise NotFound(f"no patient {coi}", field="coi_id")
    return patient


def create_user(
    session: Session,
    *,
    username: str,
    printed_name: str,
    role: Role,
    clinic: Clinic | None = None,
    actor: User | None = None,
) -> User:
    """Create a user; a clinic user belongs to exactly one clinic, staff to none."""
    if (role is Role.CLINIC) != (clinic is not None):
        raise InvalidInput(
            "a clinic user needs a clinic, and only a clinic user has one", field="clinic"
        )
    name = _text(username, "username").lower()
    if name == SYSTEM_USERNAME:
        raise RuleViolation(
            f"{name!r} is reserved for the LIMS's automatic processes", field="username"
        )
    if session.exec(select(User).where(col(User.username) == name)).first():
        raise RuleViolation(f"user {name} already exists", field="username")
    user = User(
        username=name,
        printed_name=_text(printed_name, "printed_name", max_len=200),
        role=role,
        clinic_id=clinic.id if clinic else None,
    )
    session.add(user)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="user.created",
        entity="user",
        entity_id=user.username,
        new={
            "printed_name": user.printed_name,
            "role": role,
            "clinic": clinic.code if clinic else None,
        },
    )
    return user


def add_instrument(
    session: Session,
    *,
    asset_tag: str,
    instrument_type: str,
    name: str,
    calibration_due: datetime,
    actor: User | None = None,
) -> Instrument:
    """Register an instrument with the date its calibration falls due."""
    inst = Instrument(
        asset_tag=_text(asset_tag, "asset_tag", max_len=32),
        instrument_type=_text(instrument_type, "instrument_type", max_len=40),
        name=_text(name, "name", max_len=200),
        calibration_due=calibration_due,
    )
    if session.exec(select(Instrument).where(col(Instrument.asset_tag) == inst.asset_tag)).first():
        raise RuleViolation(f"instrument {inst.asset_tag} already exists", field="asset_tag")
    session.add(inst)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="instrument.added",
        entity="instrument",
        entity_id=inst.asset_tag,
        new={"type": inst.instrument_type, "name": inst.name, "calibration_due": calibration_due},
    )
    return inst


def add_reagent_lot(
    session: Session,
    *,
    reagent_type: str,
    lot_number: str,
    supplier: str,
    expires_at: datetime,
    actor: User | None = None,
) -> ReagentLot:
    """Register a reagent lot with its expiry."""
    lot = ReagentLot(
        reagent_type=_text(reagent_type, "reagent_type", max_len=40),
        lot_number=_text(lot_number, "lot_number"),
        supplier=_text(supplier, "supplier", max_len=200),
        expires_at=expires_at,
    )
    existing = session.exec(
        select(ReagentLot).where(
            col(ReagentLot.reagent_type) == lot.reagent_type,
            col(ReagentLot.lot_number) == lot.lot_number,
        )
    ).first()
    if existing is not None:
        raise RuleViolation(
            f"{lot.reagent_type} lot {lot.lot_number} already exists", field="lot_number"
        )
    session.add(lot)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="reagent_lot.added",
        entity="reagent_lot",
        entity_id=f"{lot.reagent_type}:{lot.lot_number}",
        new={"supplier": lot.supplier, "expires_at": expires_at},
    )
    return lot
