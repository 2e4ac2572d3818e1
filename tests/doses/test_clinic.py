"""The cold chain at receipt, QA's quarantine decision, reconstitution and the bedside."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from lims.custody import ledger
from lims.db import read_session, utcnow, write_session
from lims.doses.clinic import administer, decide_quarantine, dose_for, end_at_clinic, reconstitute
from lims.doses.disposition import source_lot
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.materials.service import get_material
from lims.orders.service import confirm_receipt, order_for
from lims.parties.models import Clinic, Role
from lims.parties.service import create_user
from lims.qc.deviations import deviations_of
from lims.steps.conservation import verify_conservation
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order

LOGGER_OK = "time,temperature\n2026-12-01T10:00:00+09:00,-78.5\n2026-12-01T11:00:00+09:00,-76\n"
LOGGER_WARM = LOGGER_OK + "2026-12-01T12:00:00+09:00,25.5\n"


def _shipped(lab: Lab) -> tuple[str, str]:
    lab.lot()
    number = order(lab, dose="1 vial")
    dose = allocate(lab, number)
    dispatch(lab, number, dose)
    return number, dose


def _receive(lab: Lab, number: str, temperature: str, logger: str | None = None) -> None:
    with write_session(lab.engine) as s:
        desk = lab.user(s, lab.world.clinic_user_id)
        confirm_receipt(
            s,
            order=order_for(s, actor=desk, number=number),
            actor=desk,
            received_at=utcnow(),
            temperature=temperature,
            received_by="Nurse K. Ito",
            logger_csv=logger,
        )


def test_an_excursion_quarantines_the_dose_until_qa_decides(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    number, dose = _shipped(lab)
    _receive(lab, number, "-70 degC", LOGGER_WARM)
    assert lab.get(dose).state == "CLINIC_QUARANTINE"
    with read_session(engine) as s:
        (deviation,) = deviations_of(s, material=lab.get(dose))
        assert "the logger read 25.5 degC" in deviation.description
        assert "1 of 3 readings outside -90 degC to 8 degC for AAPE" in deviation.description
    with write_session(engine) as s:  # nobody uses a quarantined dose
        desk = lab.user(s, world.clinic_user_id)
        with pytest.raises(RuleViolation, match="only a dose received at the clinic"):
            reconstitute(
                s,
                dose=get_material(s, dose),
                product="aape",
                actor=desk,
                diluent_lot="D1",
                volume="4 mL",
            )
        with pytest.raises(RuleViolation, match="released or rejected by QA"):
            decide_quarantine(
                s,
                dose=get_material(s, dose),
                actor=desk,
                password=PASSWORD,
                release=True,
                reason="ok",
            )
    lab.ensure_password(world.qa_id)
    with write_session(engine) as s:
        qa = lab.user(s, world.qa_id)
        decide_quarantine(
            s,
            dose=dose_for(s, actor=qa, material_id=dose)[0],
            actor=qa,
            password=PASSWORD,
            release=True,
            reason="25.5 degC for under an hour; lyophilised, stability data cover it",
        )
    assert lab.get(dose).state == "RECEIVED_AT_CLINIC"
    with read_session(engine) as s:
        assert deviations_of(s, material=lab.get(dose))[0].closed_at is not None


def test_a_warm_receipt_without_a_logger_is_quarantined_too(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    number, dose = _shipped(lab)
    with pytest.raises(InvalidInput, match="logger line 2: 'yesterday' is not an ISO time"):
        _receive(lab, number, "4 degC", "time,temperature\nyesterday,4\n")
    _receive(lab, number, "25 degC")
    assert lab.get(dose).state == "CLINIC_QUARANTINE"
    lab.ensure_password(world.qa_id)
    with write_session(engine) as s:
        qa = lab.user(s, world.qa_id)
        decide_quarantine(
            s,
            dose=get_material(s, dose),
            actor=qa,
            password=PASSWORD,
            release=False,
            reason="too warm",
        )
    assert lab.get(dose).state == "DISCARDED"


def test_reconstitute_and_administer_at_the_bedside(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    number, dose = _shipped(lab)
    _receive(lab, number, "-75 degC", LOGGER_OK)
    assert lab.get(dose).state == "RECEIVED_AT_CLINIC"
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        osaka = create_user(
            s,
            username="osaka-nurse",
            printed_name="Osaka",
            role=Role.CLINIC,
            clinic=s.get(Clinic, world.other_clinic_id),
        )
        with pytest.raises(NotFound):
            dose_for(s, actor=osaka, material_id=dose)
        found, _ = dose_for(s, actor=desk, material_id=dose)
        row = reconstitute(
            s, dose=found, product="aape", actor=desk, diluent_lot="NaCl-0.9-2611", volume="4 mL"
        )
        assert row.in_use_until is not None and row.reconstituted_at is not None
        assert row.in_use_until - row.reconstituted_at == timedelta(hours=4)
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        kw = {"dose": get_material(s, dose), "actor": desk, "administered_by": "Dr. H. Fukuoka"}
        with pytest.raises(
            RuleViolation, match="wrong patient. Dose .* is for " + world.patient_coi
        ):
            administer(
                s,
                scanned_label=dose,
                scanned_patient=world.other_patient_coi,
                **kw,  # type: ignore[arg-type]
            )
        with pytest.raises(RuleViolation, match="the scanned label is"):
            administer(
                s,
                scanned_label=source_lot(s, dose=get_material(s, dose)).material_id,
                scanned_patient=world.patient_coi,
                **kw,  # type: ignore[arg-type]
            )
        with pytest.raises(InvalidInput, match="at most the 4 mL reconstituted"):
            administer(
                s,
                scanned_label=dose,
                scanned_patient=world.patient_coi,
                volume_given="5 mL",
                **kw,  # type: ignore[arg-type]
            )
        row = administer(
            s,
            scanned_label=dose,
            scanned_patient=world.patient_coi,
            volume_given="3.5 mL",
            **kw,  # type: ignore[arg-type]
        )
        assert str(row.remainder_discarded) in ("0.5", "0.500000000000")
    assert lab.get(dose).state == "ADMINISTERED"
    with read_session(engine) as s:
        actions = [e.action for e in ledger.history(s, material_id=dose)]
        assert actions.count("material.state_changed") >= 5
        assert verify_conservation(s).ok and ledger.verify_chain(s).ok
        reasons = " ".join(e.reason or "" for e in ledger.history(s, material_id=dose))
        assert "3.5 mL given, 0.5 mL discarded" in reasons


def test_return_and_discard_need_a_reason(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    number, dose = _shipped(lab)
    _receive(lab, number, "-75 degC")
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        with pytest.raises(InvalidInput, match="needs a reason"):
            end_at_clinic(s, dose=get_material(s, dose), actor=desk, to_state="RETURNED", reason="")
        end_at_clinic(
            s,
            dose=get_material(s, dose),
            actor=desk,
            to_state="RETURNED",
            reason="session postponed",
        )
    assert lab.get(dose).state == "RETURNED"
