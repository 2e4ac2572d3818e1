"""Search across ids (lims.search): material ids typed with or without spaces and check
character, order numbers, patients, reagent lots, deviations; a clinic finds only its own
(SQLite and PostgreSQL)."""

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from api.web.search_pages import link
from lims.db import read_session, utcnow, write_session
from lims.identity.codes import format_material_id
from lims.materials.service import get_material
from lims.orders.service import patient_for, place_order
from lims.parties.models import Role, User
from lims.parties.queries import get_clinic
from lims.parties.service import create_user
from lims.qc.deviations import open_deviation
from lims.search.queries import search
from tests.builders import Lab
from tests.conftest import World


def _keys(s: Session, actor: User, text: str) -> set[tuple[str, str]]:
    return {(h.kind, h.key) for h in search(s, actor=actor, text=text)}


def test_material_ids_in_every_typed_form_and_tenancy(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    mine = lab.lipoaspirate()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        theirs_patient = patient_for(s, actor=tech, coi_id=world.other_patient_coi)
        theirs = place_order(
            s,
            actor=tech,
            patient=theirs_patient,
            product="aape",
            dose="1 vial",
            session_number=1,
            sessions_total=1,
            planned_use_at=utcnow() + timedelta(days=2),
            ship_to="Osaka",
            prescriber="Dr. O",
            consent_ref="C-9",
        ).number
        osaka = create_user(
            s,
            username="osaka-desk",
            printed_name="Osaka",
            role=Role.CLINIC,
            clinic=get_clinic(s, code="OSAKA"),
        )
        osaka_id = osaka.id
    with read_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        ginza = lab.user(s, world.clinic_user_id)
        other = s.get(User, osaka_id)
        assert other is not None
        for typed in (
            mine,
            format_material_id(mine),
            mine[:-1],
            format_material_id(mine)[:-2],
            mine.lower(),
        ):
            assert ("material", mine) in _keys(s, tech, typed), typed
        assert ("material", mine) in _keys(s, ginza, mine)  # its own patient's tissue
        assert _keys(s, other, mine) == set()  # another clinic: not found
        # Order numbers, with or without the prefix and leading zeros.
        digits = theirs.removeprefix("ORD-")
        for typed in (theirs, theirs.lower(), f"ORD{digits}", str(int(digits))):
            assert ("order", theirs) in _keys(s, tech, typed), typed
        assert ("order", theirs) in _keys(s, other, theirs)
        assert ("order", theirs) not in _keys(s, ginza, theirs)
        # Patients by chain-of-identity id (dashes optional) or the clinic's reference.
        coi = world.patient_coi
        for typed in (coi, coi.replace("-", ""), coi[:-2], "GHC-000123"):
            assert ("patient", coi) in _keys(s, ginza, typed), typed
        assert _keys(s, other, coi) == set()
        assert _keys(s, other, "GHC-000123") == set()


def test_lots_and_deviations_are_the_labs(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        number = open_deviation(
            s, material=get_material(s, lipo), actor=tech, description="<b>seal</b> broken"
        ).number
    with read_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        ginza = lab.user(s, world.clinic_user_id)
        assert ("deviation", number) in _keys(s, tech, number)
        assert ("deviation", number) in _keys(s, tech, number.replace("-", "").lower())
        assert _keys(s, ginza, number) == set()
        # QA opens a deviation on its material's QA page, which lists it; a technician
        # has no page for it.
        qa = lab.user(s, world.qa_id)
        (hit,) = [h for h in search(s, actor=qa, text=number) if h.kind == "deviation"]
        assert link(qa, hit) == f"/qa/lots/{lipo}#deviations"
        assert link(tech, hit) is None
        reagent, lot = next(iter(world.facility.reagent_lots.items()))
        assert ("reagent_lot", f"{reagent}:{lot}") in _keys(s, tech, lot)
        assert _keys(s, ginza, lot) == set()
        assert search(s, actor=tech, text="   ") == []
        assert search(s, actor=tech, text="X0") == []  # too short to mean one record
        assert search(s, actor=tech, text="'; DROP TABLE material; --") == []
