"""Donor eligibility: QA's determination that a donor's tissue may be used for others."""

from __future__ import annotations

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.errors import RuleViolation
from lims.parties.models import Patient, Role, User
from lims.qc.models import DonorEligibility


def record_donor_eligibility(
    session: Session, *, donor: Patient, eligible: bool, basis: str, actor: User
) -> DonorEligibility:
    """A responsible person (QA) records whether a donor's tissue may be used for others."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("donor eligibility is determined by QA")
    assert donor.id is not None and actor.id is not None
    row = DonorEligibility(
        patient_id=donor.id,
        eligible=eligible,
        basis=ledger.require_reason(basis, "an eligibility determination"),
        determined_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="donor.eligibility_determined",
        entity="patient",
        entity_id=donor.coi_id,
        new={"eligible": eligible, "basis": row.basis},
    )
    return row


def donor_is_eligible(session: Session, *, patient_id: int) -> bool:
    latest = session.exec(
        select(DonorEligibility)
        .where(col(DonorEligibility.patient_id) == patient_id)
        .order_by(col(DonorEligibility.id).desc())
    ).first()
    return bool(latest and latest.eligible)
