"""Dispatch gate (domain.md section C; 21 CFR 1271.265, 1271.370, FACT-JACIE).

All checks run and every failed one is named, so a packer sees the whole list at once:
identity of order and material, source lot released and not on hold, no open recall
reaching the dose, expiry after planned use plus transit, the label scanned back to this
dose with a valid check character, a qualified shipper and temperature logger, and
signatures by a packer and a second, different verifier on the dose record as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims.db import utcnow
from lims.errors import LimsError, RuleViolation
from lims.identity.codes import format_material_id, parse_coi_id, parse_material_id
from lims.lifecycle import transition
from lims.materials.models import LineageEdge, Material
from lims.parties.models import Patient, User
from lims.recalls.queries import open_recall_of
from lims.signatures.models import Meaning
from lims.signatures.service import signatures_for
from lims.units import Quantity, QuantityKind, parse_quantity


class DispatchRefused(RuleViolation):
    code = "dispatch_refused"

    def __init__(self, dose_id: str, reasons: list[GateFailure]) -> None:
        failures = [str(r) for r in reasons]
        super().__init__(
            f"dose {format_material_id(dose_id)} may not be dispatched: " + "; ".join(failures),
            failures=failures,
        )
        self.failures = failures
        self.reasons = reasons


@dataclass(frozen=True)
class DispatchRequest:
    """What the order and the packing bench say about this shipment."""

    recipient_coi: str
    identifier_1: str
    identifier_2: str
    planned_use_at: datetime
    transit: str | dict[str, str] | Quantity  # e.g. "18 h" or {"value": "18", "unit": "h"}
    scanned_label: str
    shipper: str
    temperature_logger: str


@dataclass(frozen=True)
class GateFailure:
    """One failed check: a stable code (for pages and tests), the check's name, the reason
    in people's words, and the packing form's field it concerns (if one)."""

    code: str
    check: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


def check_dispatch(
    session: Session, *, dose: Material, request: DispatchRequest, now: datetime | None = None
) -> list[str]:
    """Return the name and reason of every failed check (empty: the dose may go)."""
    return [str(f) for f in gate_failures(session, dose=dose, request=request, now=now)]


def gate_failures(
    session: Session, *, dose: Material, request: DispatchRequest, now: datetime | None = None
) -> list[GateFailure]:
    """Every failed check, structured (empty: the dose may go)."""
    now = now or utcnow()
    failures: list[GateFailure] = []

    def fail(code: str, check: str, message: str, field: str | None = None) -> None:
        failures.append(GateFailure(code, check, message, field))

    if dose.kind != "dose":
        return [
            GateFailure(
                "not_a_dose",
                "identity",
                f"{format_material_id(dose.material_id)} is a {dose.kind}, not a dose",
            )
        ]
    if dose.state != "LABELED":
        fail("not_labeled", "state", f"the dose is {dose.state}; it must be LABELED")

    # Identity: the order's patient is the dose's recipient, on COI and both identifiers.
    recipient = session.get(Patient, dose.recipient_id) if dose.recipient_id else None
    try:
        coi = parse_coi_id(request.recipient_coi)
    except LimsError as exc:
        coi = None
        fail("order_coi_invalid", "identity", str(exc))
    if recipient is None:
        fail("no_recipient", "identity", "the dose has no recipient")
    elif coi is not None and coi != recipient.coi_id:
        fail(
            "wrong_patient",
            "identity",
            f"the order is for {coi}, the dose is for {recipient.coi_id}",
        )
    elif (request.identifier_1.strip(), request.identifier_2.strip()) != (
        recipient.identifier_1,
        recipient.identifier_2,
    ):
        fail(
            "identifiers_differ",
            "identity",
            "the order's two identifiers do not match the recipient",
        )
    if recipient is not None and dose.use == "autologous" and dose.patient_id != recipient.id:
        fail(
            "autologous_other_patient",
            "identity",
            "an autologous dose may only go to its own patient",
        )

    # The source lot: released, not on hold, recalled or expired.
    parents = session.exec(
        select(Material)
        .join(LineageEdge, col(LineageEdge.parent_id) == col(Material.id))
        .where(col(LineageEdge.child_id) == dose.id)
    ).all()
    if not parents:
        fail("no_source_lot", "lot", "the dose has no source lot")
    for lot in parents:
        if lot.state != "RELEASED":
            fail(
                "lot_not_released",
                "lot",
                f"source {format_material_id(lot.material_id)} is {lot.state}, not RELEASED",
            )

    # A recall that reached this dose (its lot or one it was made from): nothing goes out.
    recall = open_recall_of(session, material=dose)
    if recall is not None:
        fail(
            "dose_recalled",
            "recall",
            f"the dose is under recall {recall.number} ({recall.reason}); it may not leave the lab",
        )

    # Expiry after planned use, and the planned use reachable after transit.
    try:
        transit = (
            request.transit
            if isinstance(request.transit, Quantity)
            else parse_quantity(request.transit, QuantityKind.DURATION, field="transit")
        )
        arrival = now + timedelta(minutes=float(transit.canonical))
        if arrival > request.planned_use_at:
            fail(
                "arrives_late",
                "expiry",
                f"with {transit} in transit it arrives after the planned "
                f"use at {request.planned_use_at:%Y-%m-%d %H:%M} UTC",
                field="transit",
            )
        latest = max(arrival, request.planned_use_at)
        if dose.expires_at is not None and dose.expires_at <= latest:
            fail(
                "expires_before_use",
                "expiry",
                f"the dose expires {dose.expires_at:%Y-%m-%d %H:%M} UTC, "
                "before planned use plus transit",
            )
    except LimsError as exc:
        fail("transit_invalid", "expiry", str(exc), field="transit")
    if dose.expires_at is None:
        fail("no_expiry", "expiry", "the dose has no expiry date")

    # The printed label scans back to this dose.
    try:
        scanned = parse_material_id(request.scanned_label)
        if scanned != dose.material_id:
            other = session.exec(
                select(Material).where(col(Material.material_id) == scanned)
            ).first()
            owner_id = (other.recipient_id or other.patient_id) if other else None
            owner = session.get(Patient, owner_id) if owner_id else None
            whose = f" (a {other.kind} for {owner.coi_id})" if other and owner else ""
            fail(
                "label_other_material",
                "label",
                f"scanned {format_material_id(scanned)}{whose}, expected "
                f"{format_material_id(dose.material_id)}",
                field="scanned_label",
            )
    except LimsError as exc:
        fail("label_unreadable", "label", exc.message, field="scanned_label")

    if not request.shipper.strip():
        fail("no_shipper", "shipping", "no qualified shipper recorded", field="shipper")
    if not request.temperature_logger.strip():
        fail("no_logger", "shipping", "no temperature logger recorded", field="temperature_logger")

    # Packer and a different second verifier, both signatures binding the dose as it is.
    checks = signatures_for(session, record_type="material", record_id=dose.material_id)
    packers = {
        c.signature.user_id for c in checks if c.valid and c.signature.meaning == Meaning.PERFORMED
    }
    verifiers = {
        c.signature.user_id for c in checks if c.valid and c.signature.meaning == Meaning.VERIFIED
    }
    if not packers:
        fail("no_packer", "signatures", "no packer signature (meaning 'performed')")
    if not verifiers - packers:
        fail(
            "no_verifier",
            "signatures",
            "no second verifier (meaning 'verified') other than the packer",
        )
    return failures


def dispatch_verify(
    session: Session, *, dose: Material, request: DispatchRequest, actor: User
) -> Material:
    """Run the gate; if every check passes, the dose becomes DISPATCH_VERIFIED."""
    failures = gate_failures(session, dose=dose, request=request)
    if failures:
        raise DispatchRefused(dose.material_id, failures)
    return transition(
        session,
        material=dose,
        to_state="DISPATCH_VERIFIED",
        actor=actor,
        reason=f"dispatch gate passed; shipper {request.shipper}, logger "
        f"{request.temperature_logger}",
    )
