"""Donor <-> recipient traceability (21 CFR 1271.290): both directions, through doses."""

from sqlmodel import Session, col, select

from lims.materials.models import Material
from lims.parties.models import Patient


def recipients_of_donor(session: Session, *, donor: Patient) -> list[Patient]:
    """Every patient who was allocated a dose made from ``donor``'s tissue."""
    ids = select(Material.recipient_id).where(
        col(Material.patient_id) == donor.id, col(Material.recipient_id).is_not(None)
    )
    return list(
        session.exec(
            select(Patient).where(col(Patient.id).in_(ids)).order_by(col(Patient.id))
        ).all()
    )


def donors_of_recipient(session: Session, *, recipient: Patient) -> list[Patient]:
    """Every donor whose tissue made a dose allocated to ``recipient``."""
    ids = select(Material.patient_id).where(col(Material.recipient_id) == recipient.id)
    return list(
        session.exec(
            select(Patient).where(col(Patient.id).in_(ids)).order_by(col(Patient.id))
        ).all()
    )
