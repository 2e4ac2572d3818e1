"""Reads of parties: the one place a user, clinic, patient, instrument or reagent lot is
looked up, and the lists of them (a clinic user only ever sees its own clinic's patients)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims.errors import NotFound, RuleViolation
from lims.paging import Listing, SortKey, keyset_page, page_by_id
from lims.parties.models import Clinic, Instrument, Patient, ReagentLot, Role, User


def find_user(session: Session, *, username: str) -> User | None:
    """The user with this name (names are stored lower-case), or None."""
    return session.exec(select(User).where(col(User.username) == username.lower())).first()


def get_user(session: Session, *, username: str) -> User:
    """The user with this name; NotFound (404) when there is none."""
    found = find_user(session, username=username)
    if found is None:
        raise NotFound(f"no user {username!r}", field="username")
    return found


def find_clinic(session: Session, *, code: str) -> Clinic | None:
    """The clinic with this code, or None."""
    return session.exec(select(Clinic).where(col(Clinic.code) == code)).first()


def patient_count(session: Session) -> int:
    """How many patients and donors are registered (every clinic)."""
    return session.exec(select(func.count()).select_from(Patient)).one()


def all_clinics(session: Session) -> list[Clinic]:
    """Every clinic, by code (for the lab's filters)."""
    return list(session.exec(select(Clinic).order_by(col(Clinic.code))).all())


def clinic_scope(actor: User) -> int | None:
    """The clinic an actor is confined to (None: lab staff and auditors see every clinic)."""
    if Role(actor.role) is Role.CLINIC:
        if actor.clinic_id is None:
            raise RuleViolation("a clinic account without a clinic cannot see anything")
        return actor.clinic_id
    return None


def get_clinic(session: Session, *, code: str) -> Clinic:
    """The clinic with this code (codes are stored upper-case); NotFound when there is none."""
    found = session.exec(select(Clinic).where(col(Clinic.code) == code.strip().upper())).first()
    if found is None:
        raise NotFound(f"no clinic {code}", field="clinic_code")
    return found


def patients_visible_to(
    session: Session, *, actor: User, limit: int = 50, offset: int = 0, cursor: str | None = None
) -> Listing[Patient]:
    """The patients the actor may see, oldest first (a clinic user: its clinic's only)."""
    query = select(Patient)
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(Patient.clinic_id) == scope)
    return page_by_id(
        query, session, id_column=col(Patient.id), limit=limit, offset=offset, cursor=cursor
    )


# The patients list's sort keys; ties go by patient id (registration order).
PATIENT_SORTS = {
    "registered": SortKey(col(Patient.id), lambda patient: patient.id),
    "coi_id": SortKey(col(Patient.coi_id), lambda patient: patient.coi_id),
    "identifier_2": SortKey(col(Patient.identifier_2), lambda patient: patient.identifier_2),
}


def patients_listed(
    session: Session,
    *,
    actor: User,
    search: str | None = None,
    sort: str = "registered",
    descending: bool = False,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Listing[Patient]:
    """One page of the patients the actor may see, paged by key; ``search`` matches the
    start of the chain-of-identity id (dashes and spaces optional) or the clinic's own
    reference."""
    query = select(Patient)
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(Patient.clinic_id) == scope)
    text = (search or "").strip()
    if text:
        compact = "".join(ch for ch in text.upper() if ch.isalnum())
        coi = compact if not compact.startswith("COI") else compact[3:]
        dashed = "COI-" + "-".join(filter(None, (coi[:4], coi[4:8], coi[8:9])))
        query = query.where(
            col(Patient.coi_id).startswith(dashed) | (col(Patient.identifier_2) == text)
        )
    key = PATIENT_SORTS.get(sort, PATIENT_SORTS["registered"])
    keys = (key,) if key is PATIENT_SORTS["registered"] else (key, PATIENT_SORTS["registered"])
    return keyset_page(
        query,
        session,
        keys=keys,
        descending=descending,
        limit=limit,
        after=after,
        before=before,
    )


def active_instruments(session: Session, *, instrument_type: str) -> list[Instrument]:
    """The instruments of one type that are in service, in the order they were added."""
    return list(
        session.exec(
            select(Instrument)
            .where(col(Instrument.instrument_type) == instrument_type, col(Instrument.active))
            .order_by(col(Instrument.id))
        ).all()
    )


def reagent_lots_of(session: Session, *, reagent_type: str) -> list[ReagentLot]:
    """Every lot of one reagent, in the order they were received."""
    return list(
        session.exec(
            select(ReagentLot)
            .where(col(ReagentLot.reagent_type) == reagent_type)
            .order_by(col(ReagentLot.id))
        ).all()
    )


def instrument_ids(session: Session, *, asset_tags: list[str]) -> list[int]:
    """The ids of instruments named by asset tag, in order; NotFound for an unknown tag."""
    ids = []
    for tag in asset_tags:
        row = session.exec(select(Instrument).where(col(Instrument.asset_tag) == tag)).first()
        if row is None or row.id is None:
            raise NotFound(f"no instrument with asset tag {tag!r}", field="instruments")
        ids.append(row.id)
    return ids


def reagent_lot_id(session: Session, *, reagent_type: str, lot_number: str) -> int:
    """The id of one reagent's lot; NotFound when there is no such lot."""
    row = session.exec(
        select(ReagentLot).where(
            col(ReagentLot.reagent_type) == reagent_type,
            col(ReagentLot.lot_number) == lot_number,
        )
    ).first()
    if row is None or row.id is None:
        raise NotFound(f"no {reagent_type} lot {lot_number!r}", field="reagent_lots")
    return row.id


def users_with_clinics(session: Session) -> list[tuple[User, str | None]]:
    """Every account with its clinic's code (None for staff), by username."""
    rows = session.exec(
        select(User, Clinic.code)
        .join(Clinic, col(Clinic.id) == col(User.clinic_id), isouter=True)
        .order_by(col(User.username))
    ).all()
    return [(user, code) for user, code in rows]
