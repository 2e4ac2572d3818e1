"""An order through its life, through the real services, for the dose tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lims.db import utcnow, write_session
from lims.orders.service import allocate_order, dispatch_order, order_for, patient_for, place_order
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.builders import PASSWORD, Lab


def order(lab: Lab, *, dose: str = "1 vial", session_number: int = 1, **kw: Any) -> str:
    """Place an order; session n is planned n x 4 weeks ahead (inside AAPE's 3-5 weeks)."""
    with write_session(lab.engine) as s:
        patient = patient_for(
            s, actor=lab.user(s, lab.world.tech_id), coi_id=kw.pop("coi", lab.world.patient_coi)
        )
        placed = place_order(
            s,
            actor=lab.user(s, lab.world.clinic_user_id),
            patient=patient,
            product=kw.pop("product", "aape"),
            dose=dose,
            session_number=session_number,
            sessions_total=6,
            planned_use_at=kw.pop(
                "planned_use_at", utcnow() + timedelta(days=3, weeks=4 * (session_number - 1))
            ),
            ship_to="Ginza Hair Clinic, 4-1 Ginza, Tokyo",
            prescriber="Dr. H. Fukuoka",
            consent_ref="CONSENT-2026-0042",
            **kw,
        )
        return placed.number


def allocate(lab: Lab, number: str) -> str:
    with write_session(lab.engine) as s:
        tech = lab.user(s, lab.world.tech_id)
        return allocate_order(
            s, order=order_for(s, actor=tech, number=number), actor=tech
        ).material_id


def dispatch(lab: Lab, number: str, dose: str) -> None:
    """Label, sign (packer and verifier) and dispatch the order's dose."""
    lab.move(dose, "LABELED")
    for user_id, meaning in (
        (lab.world.tech_id, Meaning.PERFORMED),
        (lab.world.tech2_id, Meaning.VERIFIED),
    ):
        lab.ensure_password(user_id)
        with write_session(lab.engine) as s:
            sign(
                s,
                user=lab.user(s, user_id),
                password=PASSWORD,
                meaning=meaning,
                record_type="material",
                record_id=dose,
            )
    with write_session(lab.engine) as s:
        tech = lab.user(s, lab.world.tech_id)
        dispatch_order(
            s,
            order=order_for(s, actor=tech, number=number),
            actor=tech,
            scanned_label=dose,
            shipper="ColdChain",
            temperature_logger="TL-1",
            transit="18 h",
        )
