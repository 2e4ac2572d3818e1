"""The clinic's end of custody (domain.md D): quarantine on a cold-chain excursion and
QA's decision, reconstitution with its in-use clock, administration at the bedside with
both scans, return and discard. Each is a state change and a custody event on the dose.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from lims.amounts import amount_text
from lims.custody import ledger
from lims.db import utcnow
from lims.doses.coldchain import ColdChain
from lims.doses.models import DoseAtClinic
from lims.doses.spec import in_use_limit, spec_for
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.identity.codes import format_material_id, parse_coi_id, parse_material_id
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.parties.models import Patient, Role, User
from lims.parties.queries import clinic_scope
from lims.qc.deviations import close_deviation, open_deviation
from lims.qc.models import Deviation
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from lims.units import QuantityKind, parse_quantity

QUARANTINE = "CLINIC_QUARANTINE"


def dose_for(session: Session, *, actor: User, material_id: str) -> tuple[Material, DoseOrder]:
    """A dose the actor may see, with its order; another clinic's is 'not found'."""
    wanted = parse_material_id(material_id)
    query = (
        select(Material, DoseOrder)
        .join(DoseOrder, col(DoseOrder.dose_material_id) == col(Material.id))
        .where(col(Material.material_id) == wanted)
    )
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    row = session.exec(query).first()
    if row is None:
        raise NotFound(f"no dose {format_material_id(wanted)}", field="dose")
    return row[0], row[1]


def at_clinic(session: Session, *, dose: Material) -> DoseAtClinic:
    row = session.exec(select(DoseAtClinic).where(col(DoseAtClinic.dose_id) == dose.id)).first()
    return row or DoseAtClinic(dose_id=dose.id)  # type: ignore[arg-type]


def _save(session: Session, row: DoseAtClinic) -> None:
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


def record_receipt(
    session: Session, *, dose: Material, product: str, chain: ColdChain, actor: User
) -> Material:
    """A received dose: RECEIVED_AT_CLINIC, or CLINIC_QUARANTINE with a deviation for QA."""
    row = at_clinic(session, dose=dose)
    row.logger_readings, row.logger_min, row.logger_max = chain.readings, chain.low, chain.high
    if chain.excursion is None:
        transition(session, material=dose, to_state="RECEIVED_AT_CLINIC", actor=actor)
        _save(session, row)
        return dose
    deviation = open_deviation(
        session,
        material=dose,
        description=f"cold-chain excursion at receipt: {chain.excursion}",
        actor=actor,
    )
    transition(
        session,
        material=dose,
        to_state=QUARANTINE,
        actor=actor,
        reason=f"cold-chain excursion ({deviation.number}): {chain.excursion}; "
        f"held for QA, not to be used",
    )
    row.excursion, row.deviation_id = chain.excursion, deviation.id
    _save(session, row)
    return dose


def decide_quarantine(
    session: Session, *, dose: Material, actor: User, password: str, release: bool, reason: str
) -> Material:
    """QA releases a quarantined dose for use or rejects it (discarded), with a signature."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("a dose in quarantine at the clinic is released or rejected by QA")
    reason = ledger.require_reason(reason, "a quarantine decision")
    if dose.state != QUARANTINE:
        raise RuleViolation(
            f"dose {format_material_id(dose.material_id)} is {dose.state}, not in quarantine"
        )
    sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.RELEASED if release else Meaning.REVIEWED,
        record_type="material",
        record_id=dose.material_id,
        comment=f"{'released' if release else 'rejected'} after excursion: {reason}",
    )
    row = at_clinic(session, dose=dose)
    if row.deviation_id is not None:
        deviation = session.get(Deviation, row.deviation_id)
        if deviation is not None and deviation.closed_at is None:
            close_deviation(session, deviation=deviation, resolution=reason, actor=actor)
    target = "RECEIVED_AT_CLINIC" if release else "DISCARDED"
    return transition(
        session,
        material=dose,
        to_state=target,
        actor=actor,
        reason=f"QA {'released' if release else 'rejected'} after excursion: {reason}",
    )


def _when(at: datetime | None, what: str) -> datetime:
    now = utcnow()
    at = at or now
    if at.tzinfo is None or at > now + timedelta(minutes=5):
        raise InvalidInput(f"{what} must be a time-zoned time, not in the future", field="at")
    return at


def reconstitute(
    session: Session,
    *,
    dose: Material,
    product: str,
    actor: User,
    diluent_lot: str,
    volume: object,
    at: datetime | None = None,
) -> DoseAtClinic:
    """Reconstitute a received dose: diluent lot, volume, time; starts the in-use clock."""
    limit = in_use_limit(product)
    if limit is None:
        raise RuleViolation(f"{spec_for(product).name} is given as supplied, not reconstituted")
    if dose.state != "RECEIVED_AT_CLINIC":
        raise RuleViolation(
            f"dose {format_material_id(dose.material_id)} is {dose.state}; only a dose "
            "received at the clinic (not in quarantine) is reconstituted"
        )
    lot = (diluent_lot or "").strip()
    if not lot or len(lot) > 64:
        raise InvalidInput("the diluent lot (1-64 characters) is required", field="diluent_lot")
    amount = parse_quantity(volume, QuantityKind.VOLUME, field="volume")
    if amount.canonical <= 0:
        raise InvalidInput("the reconstitution volume must be more than zero", field="volume")
    when = _when(at, "the reconstitution time")
    row = at_clinic(session, dose=dose)
    row.reconstituted_at, row.diluent_lot = when, lot
    row.reconstitution_volume, row.in_use_until = amount.canonical, when + limit
    transition(
        session,
        material=dose,
        to_state="RECONSTITUTED",
        actor=actor,
        reason=f"{amount} of diluent lot {lot}; use by {row.in_use_until:%Y-%m-%d %H:%M} UTC",
    )
    _save(session, row)
    return row


def administer(
    session: Session,
    *,
    dose: Material,
    actor: User,
    scanned_label: str,
    scanned_patient: str,
    administered_by: str,
    volume_given: object | None = None,
    at: datetime | None = None,
) -> DoseAtClinic:
    """Give the dose at the bedside: the label and the patient's id are scanned and must
    both be this dose's; who, when, volume given; what is left is discarded."""
    name = format_material_id(dose.material_id)
    try:
        label = parse_material_id(scanned_label)
    except InvalidInput as exc:
        raise RuleViolation(
            f"do not administer: the label scan is not a dose id ({exc})", field="scanned_label"
        ) from None
    if label != dose.material_id:
        raise RuleViolation(
            f"do not administer: the scanned label is {format_material_id(label)}, "
            f"this is dose {name}",
            field="scanned_label",
        )
    recipient = session.get(Patient, dose.recipient_id or dose.patient_id)
    assert recipient is not None
    try:
        patient = parse_coi_id(scanned_patient)
    except InvalidInput:
        raise RuleViolation(
            "do not administer: the patient scan is not a chain-of-identity id",
            field="scanned_patient",
        ) from None
    if patient != recipient.coi_id:
        raise RuleViolation(
            f"do not administer: wrong patient. Dose {name} is for {recipient.coi_id}; "
            f"the patient scanned is {patient}",
            field="scanned_patient",
        )
    who = (administered_by or "").strip()
    if not who or len(who) > 200:
        raise InvalidInput("who administered the dose is required", field="administered_by")
    row = at_clinic(session, dose=dose)
    when = _when(at, "the administration time")
    if dose.state not in ("RECONSTITUTED", "RECEIVED_AT_CLINIC"):
        raise RuleViolation(f"dose {name} is {dose.state}; it cannot be administered")
    if row.in_use_until is not None and when > row.in_use_until:
        raise RuleViolation(
            f"dose {name} passed its in-use limit at {row.in_use_until:%Y-%m-%d %H:%M} UTC; "
            "discard it"
        )
    given = remainder = None
    if row.reconstitution_volume is not None:
        volume = parse_quantity(volume_given, QuantityKind.VOLUME, field="volume_given")
        if volume.canonical <= 0 or volume.canonical > row.reconstitution_volume:
            raise InvalidInput(
                f"the volume given must be more than 0 mL and at most the "
                f"{amount_text(row.reconstitution_volume, 'mL')} reconstituted",
                field="volume_given",
            )
        given, remainder = volume.canonical, row.reconstitution_volume - volume.canonical
    row.administered_at, row.administered_by = when, who[:200]
    row.volume_given, row.remainder_discarded = given, remainder
    reason = f"by {who} at {when:%Y-%m-%d %H:%M} UTC; bedside scan of label and {patient}"
    if given is not None and remainder is not None:
        reason += f"; {amount_text(given, 'mL')} given, {amount_text(remainder, 'mL')} discarded"
    transition(session, material=dose, to_state="ADMINISTERED", actor=actor, reason=reason)
    _save(session, row)
    return row


def end_at_clinic(
    session: Session, *, dose: Material, actor: User, to_state: str, reason: str
) -> Material:
    """Return an unused dose to the lab, or discard it at the clinic (a reason either way)."""
    if to_state not in ("RETURNED", "DISCARDED"):
        raise InvalidInput("a dose at the clinic is RETURNED or DISCARDED", field="to_state")
    if dose.state == QUARANTINE and Role(actor.role) is not Role.QA:
        raise RuleViolation("a dose in quarantine waits for QA's decision")
    return transition(session, material=dose, to_state=to_state, actor=actor, reason=reason)


def remainder_text(value: Decimal | None) -> str | None:
    return amount_text(value, "mL") if value is not None else None
