"""The demo's clinic end of custody (domain.md D), as people do it through the services:

* a dose received at 12 degC (lyophilised AAPE travels at -90 to 8 degC) was quarantined
  at receipt with a deviation; QA reviews the logger and releases it with a signature;
* the clinic cancels a labelled dose's order and QA returns the vial to its lot (seal
  intact, never left the lab, stored in range): the lot's count goes back up;
* a nurse reconstitutes a received dose (the in-use clock starts), scans the wrong
  patient's wristband at the bedside (refused), then the right one and gives the dose.

flows/demo.py tells the story; the acts are here so flows/scenario.py stays the stages'.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from flows.common import label
from lims.db import utcnow, write_session
from lims.demo import DEMO_PASSWORD
from lims.doses.clinic import administer, decide_quarantine, reconstitute
from lims.doses.disposition import Decision, ReturnChecks, dispose
from lims.errors import RuleViolation
from lims.materials.service import get_material
from lims.orders.service import cancel_order, order_for
from lims.parties.queries import get_user

if TYPE_CHECKING:
    from flows.scenario import Scenario
    from flows.scenario_requests import Cast

# The receipt temperature of the demo's excursion (AAPE's transport range is -90 to 8 degC).
EXCURSION = "12 degC"


def release_after_excursion(sc: Scenario, cast: Cast, dose: str) -> None:
    """QA reviews the quarantined dose's excursion and releases it for use (signed)."""
    with write_session(sc.engine) as s:
        decide_quarantine(
            s,
            dose=get_material(s, dose, lock=True),
            actor=get_user(s, username=cast.qa),
            password=DEMO_PASSWORD,
            release=True,
            reason="logger shows 40 min above 8 degC at the clinic's door; the lyophilised "
            "product's stability data cover it",
        )
    sc.human(
        f"dose {label(dose)}: received at {EXCURSION}, quarantined with a deviation; "
        "RELEASED for use by QA Kenji Sato (signed)"
    )


def cancel_and_return(sc: Scenario, cast: Cast, order: str, dose: str) -> None:
    """The clinic cancels an undispatched order; QA returns its vial to the lot (signed)."""
    with write_session(sc.engine) as s:
        desk = get_user(s, username=cast.ginza_desk)
        cancel_order(
            s,
            order=order_for(s, actor=desk, number=order, lock=True),
            actor=desk,
            reason="patient postponed the session",
        )
    with write_session(sc.engine) as s:
        dispose(
            s,
            dose=get_material(s, dose, lock=True),
            actor=get_user(s, username=cast.qa),
            password=DEMO_PASSWORD,
            decision=Decision.RETURN,
            reason="seal intact, never left the lab, stored at -80 degC",
            checks=ReturnChecks(seal_intact=True, never_left_lab=True, stored_in_range=True),
        )
    sc.human(
        f"order {order} cancelled by the Ginza desk; dose {label(dose)} returned to its lot "
        "by QA Kenji Sato (signed)"
    )


def bedside(sc: Scenario, cast: Cast, dose: str, wrong_patient: str) -> None:
    """Reconstitute, a wrong-patient scan refused, then the dose given to its patient; the
    refusal's words go to ``sc.out.bedside_refusal``."""
    now = utcnow()
    with write_session(sc.engine) as s:
        reconstitute(
            s,
            dose=get_material(s, dose, lock=True),
            product="aape",
            actor=get_user(s, username=cast.ginza_desk),
            diluent_lot="WFI-2026-118",
            volume="4 mL",
            at=now - timedelta(minutes=20),
        )
    sc.human(f"dose {label(dose)}: reconstituted with 4 mL (diluent lot WFI-2026-118)")

    def give(patient_scanned: str, volume: str) -> None:
        with write_session(sc.engine) as s:
            administer(
                s,
                dose=get_material(s, dose, lock=True),
                actor=get_user(s, username=cast.ginza_desk),
                scanned_label=dose,
                scanned_patient=patient_scanned,
                administered_by="Nurse K. Ito",
                volume_given=volume,
            )

    try:
        give(wrong_patient, "4 mL")
        sc.out.bedside_refusal = "NOT REFUSED (a defect)"
    except RuleViolation as exc:
        sc.out.bedside_refusal = exc.message
    give(cast.patient, "3.8 mL")
    sc.human(
        f"dose {label(dose)}: ADMINISTERED to {cast.patient} by Nurse K. Ito after the "
        "bedside scan (3.8 mL given, 0.2 mL discarded)"
    )
