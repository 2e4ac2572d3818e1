"""Dispatch gate (domain.md section C; 21 CFR 1271.265, 1271.370, FACT-JACIE).

All checks run and every failed one is named, so a packer sees the whole list at once:
identity of order and material, source lot released and not on hold, expiry after planned
use plus transit, the label scanned back to this dose with a valid check character,
a qualified shipper and temperature logger, and signatures by a packer and a second,
different verifier on the dose record as it is now.
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
from lims.signatures.models import Meaning
from lims.signatures.service import signatures_for
from lims.units import Quantity, QuantityKind, parse_quantity


class DispatchRefused(RuleViolation):
    code = "dispatch_refused"

    def __init__(self, dose_id: str, failures: list[str]) -> None:
        super().__init__(
            f"dose {format_material_id(dose_id)} may not be dispatched: " + "; ".join(failures),
            failures=failures,
        )
        self.failures = failures


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


def check_dispatch(
    session: Session, *, dose: Material, request: DispatchRequest, now: datetime | None = None
) -> list[str]:
    """Return the name and reason of every failed check (empty: the dose may go)."""
    now = now or utcnow()
    failures: list[str] = []
    if dose.kind != "dose":
        return [f"identity: {format_material_id(dose.material_id)} is a {dose.kind}, not a dose"]
    if dose.state != "LABELED":
        failures.append(f"state: the dose is {dose.state}; it must be LABELED")

    # Identity: the order's patient is the dose's recipient, on COI and both identifiers.
    recipient = session.get(Patient, dose.recipient_id) if dose.recipient_id else None
    try:
        coi = parse_coi_id(request.recipient_coi)
    except LimsError as exc:
        coi = None
        failures.append(f"identity: {exc}")
    if recipient is None:
        failures.append("identity: the dose has no recipient")
    elif coi is not None and coi != recipient.coi_id:
        failures.append(f"identity: the order is for {coi}, the dose is for {recipient.coi_id}")
    elif (request.identifier_1.strip(), request.identifier_2.strip()) != (
        recipient.identifier_1,
        recipient.identifier_2,
    ):
        failures.append("identity: the order's two identifiers do not match the recipient")
    if recipient is not None and dose.use == "autologous" and dose.patient_id != recipient.id:
        failures.append("identity: an autologous dose may only go to its own patient")

    # The source lot: released, not on hold, recalled or expired.
    parents = session.exec(
        select(Material)
        .join(LineageEdge, col(LineageEdge.parent_id) == col(Material.id))
        .where(col(LineageEdge.child_id) == dose.id)
    ).all()
    if not parents:
        failures.append("lot: the dose has no source lot")
    for lot in parents:
        if lot.state != "RELEASED":
            failures.append(
                f"lot: source {format_material_id(lot.material_id)} is {lot.state}, not RELEASED"
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
            failures.append(
                f"expiry: with {transit} in transit it arrives after the planned "
                f"use at {request.planned_use_at:%Y-%m-%d %H:%M} UTC"
            )
        latest = max(arrival, request.planned_use_at)
        if dose.expires_at is not None and dose.expires_at <= latest:
            failures.append(
                f"expiry: the dose expires {dose.expires_at:%Y-%m-%d %H:%M} UTC, "
                "before planned use plus transit"
            )
    except LimsError as exc:
        failures.append(f"expiry: {exc}")
    if dose.expires_at is None:
        failures.append("expiry: the dose has no expiry date")

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
            failures.append(
                f"label: scanned {format_material_id(scanned)}{whose}, expected "
                f"{format_material_id(dose.material_id)}"
            )
    except LimsError as exc:
        failures.append(f"label: {exc.message}")

    if not request.shipper.strip():
        failures.append("shipping: no qualified shipper recorded")
    if not request.temperature_logger.strip():
        failures.append("shipping: no temperature logger recorded")

    # Packer and a different second verifier, both signatures binding the dose as it is.
    checks = signatures_for(session, record_type="material", record_id=dose.material_id)
    packers = {
        c.signature.user_id for c in checks if c.valid and c.signature.meaning == Meaning.PERFORMED
    }
    verifiers = {
        c.signature.user_id for c in checks if c.valid and c.signature.meaning == Meaning.VERIFIED
    }
    if not packers:
        failures.append("signatures: no packer signature (meaning 'performed')")
    if not verifiers - packers:
        failures.append("signatures: no second verifier (meaning 'verified') other than the packer")
    return failures


def dispatch_verify(
    session: Session, *, dose: Material, request: DispatchRequest, actor: User
) -> Material:
    """Run the gate; if every check passes, the dose becomes DISPATCH_VERIFIED."""
    failures = check_dispatch(session, dose=dose, request=request)
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
