"""Dose orders: a clinic orders, the lab allocates, labels, dispatches; the clinic receives.

Tenancy is enforced here, not in the API: a clinic user only ever finds its own clinic's
patients and orders, and another clinic's are reported as not found (no existence leak).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.dispatch.gate import DispatchRequest, dispatch_verify
from lims.doses.clinic import record_receipt
from lims.doses.coldchain import assess, read_logger_csv
from lims.doses.logger import keep_logger_file
from lims.doses.spec import check_planned_use
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.identity.codes import parse_coi_id
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.service import hand_over
from lims.orders.course import check_course
from lims.orders.models import DoseOrder, OrderStatus, Product
from lims.orders.schemas import OrderDetails, order_details
from lims.orders.status import set_order_status
from lims.orders.stock import AAPE_RECONSTITUTION_PER_VIAL, find_lot, vials_needed
from lims.parties.models import LAB_STAFF, Clinic, Patient, Role, User
from lims.parties.queries import clinic_scope
from lims.steps.service import InputBooking, OutputRequest, record_step
from lims.units import Quantity, QuantityKind, parse_quantity, quantize

LAB_ROLES = LAB_STAFF


# --- tenancy ---------------------------------------------------------------------------


def patient_for(session: Session, *, actor: User, coi_id: str) -> Patient:
    """A patient the actor may see, by chain-of-identity id; others are 'not found'."""
    coi = parse_coi_id(coi_id)
    query = select(Patient).where(col(Patient.coi_id) == coi)
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(Patient.clinic_id) == scope)
    patient = session.exec(query).first()
    if patient is None:
        raise NotFound(f"no patient {coi}", field="coi_id")
    return patient


def order_for(session: Session, *, actor: User, number: str, lock: bool = False) -> DoseOrder:
    """An order the actor may see; another clinic's order is 'not found'."""
    query = select(DoseOrder).where(col(DoseOrder.number) == (number or "").strip().upper())
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    order = session.exec(query).first()
    if order is None:
        raise NotFound(f"no order {number}", field="order")
    return order


# --- placing and cancelling --------------------------------------------------------------


def place(session: Session, *, actor: User, patient: Patient, details: OrderDetails) -> DoseOrder:
    """A clinic orders one dose for one treatment session of its patient (``details`` were
    checked when the model was built)."""
    scope = clinic_scope(actor)
    if Role(actor.role) not in (LAB_ROLES | {Role.CLINIC}):
        raise RuleViolation(f"a {actor.role} account cannot place orders")
    if scope is not None and patient.clinic_id != scope:
        raise NotFound(f"no patient {patient.coi_id}", field="coi_id")
    # Not part of the model: a flow re-run validates its request again, days later.
    check_planned_use(details.planned_use_at, now=utcnow())
    # A session once per course, spaced as the published schedules space them; out of
    # interval only with the prescriber's reason (kept on the order).
    interval_reason = check_course(session, patient=patient, details=details)
    quantity = details.dose
    order = DoseOrder(
        # A placeholder unique to this transaction until the id gives the number: one
        # shared value ("pending") made every concurrent order wait on the unique index
        # for the previous order's whole transaction (bench/api.py, docs/performance.md).
        number=f"tmp-{secrets.token_hex(6)}",
        clinic_id=patient.clinic_id,
        patient_id=patient.id,  # type: ignore[arg-type]
        product=details.product,
        dose_value=quantity.value,
        dose_unit=quantity.unit,
        dose_kind=quantity.kind,
        dose_canonical=quantity.canonical,
        session_number=details.session_number,
        sessions_total=details.sessions_total,
        planned_use_at=details.planned_use_at,
        ship_to=details.ship_to,
        prescriber=details.prescriber,
        consent_ref=details.consent_ref,
        notes=details.notes,
        interval_reason=interval_reason,
        status=OrderStatus.PLACED,
        placed_by_id=actor.id,  # type: ignore[arg-type]
    )
    session.add(order)
    session.flush()
    order.number = f"ORD-{order.id:06d}"
    session.add(order)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="order.placed",
        entity="order",
        entity_id=order.number,
        new={
            "patient": patient.coi_id,
            "product": details.product,
            "dose": quantity,
            "session": f"{details.session_number}/{details.sessions_total}",
            "planned_use_at": details.planned_use_at,
            "ship_to": order.ship_to,
            "prescriber": order.prescriber,
            "consent_ref": order.consent_ref,
            "interval_reason": interval_reason,
        },
    )
    return order


def place_order(
    session: Session,
    *,
    actor: User,
    patient: Patient,
    product: Product | str,
    dose: object,
    session_number: int,
    sessions_total: int,
    planned_use_at: datetime,
    ship_to: str,
    prescriber: str,
    consent_ref: str,
    notes: str | None = None,
    interval_reason: str | None = None,
) -> DoseOrder:
    """``place`` from plain values (a web form, a script), checked by OrderDetails."""
    details = order_details(
        product=product,
        dose=dose,
        session_number=session_number,
        sessions_total=sessions_total,
        planned_use_at=planned_use_at,
        ship_to=ship_to,
        prescriber=prescriber,
        consent_ref=consent_ref,
        notes=notes,
        interval_reason=interval_reason,
    )
    return place(session, actor=actor, patient=patient, details=details)


def cancel_order(session: Session, *, order: DoseOrder, actor: User, reason: str) -> DoseOrder:
    """Cancel before dispatch; an allocated or labelled dose is cancelled with it and held
    for QA's disposition (lims.doses.disposition: back to its lot, or destroyed)."""
    reason = ledger.require_reason(reason, "cancelling an order")
    if order.status in (OrderStatus.DISPATCHED, OrderStatus.RECEIVED):
        raise RuleViolation(
            f"order {order.number} is {order.status}: a dispatched dose cannot be cancelled; "
            "the clinic returns or discards it"
        )
    if order.status not in (OrderStatus.PLACED, OrderStatus.ALLOCATED):
        raise RuleViolation(
            f"order {order.number} is {order.status}; only an order not yet "
            "dispatched can be cancelled"
        )
    if order.dose_material_id is not None:
        dose = session.get(Material, order.dose_material_id)
        assert dose is not None
        if dose.state not in ("ALLOCATED", "LABELED", "DISPATCH_VERIFIED"):
            raise RuleViolation(f"its dose is {dose.state}; it can no longer be cancelled")
        transition(
            session,
            material=dose,
            to_state="CANCELLED",
            actor=actor,
            reason=f"order {order.number} cancelled: {reason}; awaits QA disposition",
        )
    order.cancel_reason = reason
    set_order_status(session, order, OrderStatus.CANCELLED, actor, reason=reason)
    return order


# --- allocation -----------------------------------------------------------------------


def allocate_order(
    session: Session, *, order: DoseOrder, actor: User, lot: Material | None = None
) -> Material:
    """Allocate released stock to the order (the DOSE-ALLOCATE step: identity checked,
    stock locked, exact arithmetic); a retry returns the same dose."""
    if Role(actor.role) not in LAB_ROLES:
        raise RuleViolation(f"a {actor.role} account cannot allocate stock")
    order = order_for(session, actor=actor, number=order.number, lock=True)
    if order.status != OrderStatus.PLACED:
        raise RuleViolation(f"order {order.number} is {order.status}, not PLACED")
    lot = lot or find_lot(session, order=order)
    patient = session.get(Patient, order.patient_id)
    assert patient is not None
    needed = vials_needed(session, order=order, lot=lot)
    cells = order.product == Product.DP_CELLS
    # Typed, not printed and parsed again: the step books exactly this Decimal.
    amount = Quantity(
        value=needed,
        unit="cells" if cells else "vials",
        kind=QuantityKind.CELLS if cells else QuantityKind.VIALS,
        canonical=quantize(needed),
    )
    parameters: dict[str, object] = {
        "recipient_coi": patient.coi_id,
        "recipient_identifier_1": patient.identifier_1,
        "recipient_identifier_2": patient.identifier_2,
        "session_number": order.session_number,
    }
    if order.product == Product.AAPE:
        parameters["reconstitution_volume"] = AAPE_RECONSTITUTION_PER_VIAL
    result = record_step(
        session,
        sop_code="DOSE-ALLOCATE",
        actor=actor,
        inputs=[InputBooking(lot.material_id, amount)],
        outputs=[OutputRequest(amount)],
        parameters=parameters,
        notes=f"order {order.number}",
        idempotency_key=f"order:{order.number}:allocate",
    )
    (dose,) = result.outputs
    order.dose_material_id = dose.id
    set_order_status(
        session,
        order,
        OrderStatus.ALLOCATED,
        actor,
        dose=dose.material_id,
        lot=lot.material_id,
        amount=str(amount),
    )
    return dose


# --- dispatch and receipt -----------------------------------------------------------------


def dispatch_order(
    session: Session,
    *,
    order: DoseOrder,
    actor: User,
    scanned_label: str,
    shipper: str,
    temperature_logger: str,
    transit: str | dict[str, str] | Quantity,
) -> Material:
    """Run the dispatch gate with the order's identity, then hand the dose to the courier."""
    if Role(actor.role) not in LAB_ROLES:
        raise RuleViolation(f"a {actor.role} account cannot dispatch")
    if order.status != OrderStatus.ALLOCATED or order.dose_material_id is None:
        raise RuleViolation(
            f"order {order.number} is {order.status}; only an allocated order is dispatched"
        )
    dose = session.get(Material, order.dose_material_id)
    patient = session.get(Patient, order.patient_id)
    assert dose is not None and patient is not None
    request = DispatchRequest(
        recipient_coi=patient.coi_id,
        identifier_1=patient.identifier_1,
        identifier_2=patient.identifier_2,
        planned_use_at=order.planned_use_at,
        transit=transit,
        scanned_label=scanned_label,
        shipper=shipper,
        temperature_logger=temperature_logger,
    )
    dispatch_verify(session, dose=dose, request=request, actor=actor)
    transition(session, material=dose, to_state="IN_TRANSIT", actor=actor)
    hand_over(
        session,
        material=dose,
        to_custodian=f"courier:{shipper.strip()}"[:120],
        actor=actor,
        reason=f"order {order.number}; logger {temperature_logger}",
    )
    set_order_status(
        session,
        order,
        OrderStatus.DISPATCHED,
        actor,
        shipper=shipper,
        temperature_logger=temperature_logger,
    )
    return dose


def confirm_receipt(
    session: Session,
    *,
    order: DoseOrder,
    actor: User,
    received_at: datetime,
    temperature: object,
    received_by: str,
    logger_csv: str | None = None,
) -> DoseOrder:
    """The clinic confirms the dose arrived: when, at what temperature, who took it, and the
    shipment's logger readings; an excursion puts the dose in quarantine for QA."""
    if Role(actor.role) not in (LAB_ROLES | {Role.CLINIC}):
        raise RuleViolation(f"a {actor.role} account cannot confirm receipt")
    if order.status != OrderStatus.DISPATCHED or order.dose_material_id is None:
        raise RuleViolation(
            f"order {order.number} is {order.status}; only a dispatched order can be received"
        )
    if received_at.tzinfo is None or received_at > utcnow() + timedelta(minutes=5):
        raise InvalidInput(
            "receipt time must be a time-zoned time, not in the future", field="received_at"
        )
    temp = parse_quantity(temperature, QuantityKind.TEMPERATURE, field="temperature")
    if not isinstance(received_by, str) or not received_by.strip():
        raise InvalidInput("who received the dose is required", field="received_by")
    readings = read_logger_csv(logger_csv) if logger_csv else []
    dose = session.get(Material, order.dose_material_id)
    clinic = session.get(Clinic, order.clinic_id)
    assert dose is not None and clinic is not None
    hand_over(
        session,
        material=dose,
        to_custodian=f"clinic:{clinic.code}",
        actor=actor,
        reason=f"received {received_at:%Y-%m-%d %H:%M} UTC at {temp} by {received_by.strip()}",
    )
    chain = assess(order.product, receipt_temperature=temp.canonical, readings=readings)
    record_receipt(session, dose=dose, product=order.product, chain=chain, actor=actor)
    kept = (
        keep_logger_file(session, dose=dose, text=logger_csv, readings=len(readings), actor=actor)
        if logger_csv
        else None
    )
    order.received_at = received_at
    order.received_temperature = temp.canonical
    order.received_by = received_by.strip()[:200]
    set_order_status(
        session,
        order,
        OrderStatus.RECEIVED,
        actor,
        received_at=received_at,
        temperature=temp,
        received_by=order.received_by,
        logger_readings=chain.readings,
        logger_sha256=kept.sha256 if kept else None,
        excursion=chain.excursion,
    )
    return order


def dose_of(session: Session, *, order: DoseOrder) -> Material | None:
    return session.get(Material, order.dose_material_id) if order.dose_material_id else None
