"""Reads of parties: tenancy by actor, pages, look-ups by key (SQLite and PostgreSQL)."""

import pytest
from sqlalchemy import Engine

from lims.db import read_session, write_session
from lims.errors import NotFound, RuleViolation
from lims.parties.models import Instrument, Role, User
from lims.parties.queries import (
    active_instruments,
    clinic_scope,
    get_clinic,
    instrument_ids,
    patients_visible_to,
    reagent_lot_id,
    reagent_lots_of,
)
from lims.parties.service import create_user, register_patient
from tests.conftest import World


def _user(s: object, user_id: int) -> User:
    found = s.get(User, user_id)  # type: ignore[attr-defined]
    assert found is not None
    return found


def test_a_clinic_user_sees_only_its_own_patients(engine: Engine, world: World) -> None:
    with write_session(engine) as s:
        osaka_desk = create_user(
            s,
            username="osaka-desk",
            printed_name="Osaka desk",
            role=Role.CLINIC,
            clinic=get_clinic(s, code="osaka"),
        )
        ginza = patients_visible_to(s, actor=_user(s, world.clinic_user_id))
        osaka = patients_visible_to(s, actor=osaka_desk)
        lab = patients_visible_to(s, actor=_user(s, world.tech_id))
    assert [p.coi_id for p in ginza] == [world.patient_coi, world.donor_coi]
    assert [p.coi_id for p in osaka] == [world.other_patient_coi]
    assert {p.coi_id for p in lab} == {world.patient_coi, world.donor_coi, world.other_patient_coi}
    assert world.other_patient_coi not in {p.coi_id for p in ginza}


def test_patients_come_in_pages(engine: Engine, world: World) -> None:
    with write_session(engine) as s:
        ginza = get_clinic(s, code="GINZA")
        for n in range(3):
            register_patient(
                s, clinic=ginza, identifier_1=f"1990-01-0{n + 2}", identifier_2=f"P{n}"
            )
    with read_session(engine) as s:
        desk = _user(s, world.clinic_user_id)
        first = patients_visible_to(s, actor=desk, limit=2)
        second = patients_visible_to(s, actor=desk, limit=2, offset=first.next_offset or 0)
        last = patients_visible_to(s, actor=desk, limit=2, offset=4)
    assert (len(first), first.limit, first.offset, first.next_offset) == (2, 2, 0, 2)
    assert (len(second), second.next_offset) == (2, 4)
    assert (len(last), last.next_offset) == (1, None)
    ids = [p.id or 0 for p in [*first, *second, *last]]
    assert ids == sorted(ids) and len(set(ids)) == 5  # every patient once, oldest first
    assert world.other_patient_coi not in {p.coi_id for p in [*first, *second, *last]}


def test_a_clinic_account_without_a_clinic_sees_nothing(engine: Engine, world: World) -> None:
    with read_session(engine) as s:
        orphan = User(username="x", printed_name="x", role=Role.CLINIC, clinic_id=None)
        with pytest.raises(RuleViolation, match="without a clinic"):
            patients_visible_to(s, actor=orphan)
        assert clinic_scope(_user(s, world.auditor_id)) is None
        assert clinic_scope(_user(s, world.clinic_user_id)) == world.clinic_id


def test_clinic_by_code(engine: Engine, world: World) -> None:
    with read_session(engine) as s:
        assert get_clinic(s, code=" ginza ").id == world.clinic_id
        with pytest.raises(NotFound, match="no clinic KYOTO"):
            get_clinic(s, code="KYOTO")


def test_instruments_and_reagent_lots(engine: Engine, world: World) -> None:
    with write_session(engine) as s:
        retired = s.get(Instrument, world.overdue_instruments["centrifuge"])
        assert retired is not None
        retired.active = False
        s.add(retired)
    with read_session(engine) as s:
        centrifuges = active_instruments(s, instrument_type="centrifuge")
        assert [i.id for i in centrifuges] == [world.instruments["centrifuge"]]
        counters = active_instruments(s, instrument_type="cell_counter")
        assert [i.id for i in counters] == [
            world.instruments["cell_counter"],
            world.overdue_instruments["cell_counter"],
        ]
        assert active_instruments(s, instrument_type="pipette") == []
        lots = reagent_lots_of(s, reagent_type="collagenase")
        assert [r.id for r in lots] == [
            world.reagents["collagenase"],
            world.expired_reagents["collagenase"],
        ]
        assert instrument_ids(s, asset_tags=["cell_counter-1", "centrifuge-1"]) == [
            world.instruments["cell_counter"],
            world.instruments["centrifuge"],
        ]
        with pytest.raises(NotFound, match="no instrument with asset tag 'nope'"):
            instrument_ids(s, asset_tags=["centrifuge-1", "nope"])
        assert (
            reagent_lot_id(s, reagent_type="collagenase", lot_number="col-1")
            == world.reagents["collagenase"]
        )
        with pytest.raises(NotFound, match="no collagenase lot 'col-9'"):
            reagent_lot_id(s, reagent_type="collagenase", lot_number="col-9")


def test_no_person_may_take_the_system_accounts_name(engine: Engine) -> None:
    # Whoever held it would become the account automatic processes act as (review).
    for name in ("system", "SYSTEM", " System "):
        with pytest.raises(RuleViolation, match="reserved"), write_session(engine) as s:
            create_user(s, username=name, printed_name="Someone", role=Role.ADMIN)


def test_a_clinic_has_a_time_zone_and_a_wrong_one_is_refused(engine: Engine, world: World) -> None:
    from lims.errors import InvalidInput
    from lims.parties.service import create_clinic

    with write_session(engine) as session:
        kobe = create_clinic(session, code="kobe", name="Kobe", time_zone="Asia/Tokyo")
        assert kobe.time_zone == "Asia/Tokyo"
    with pytest.raises(InvalidInput, match="not a time zone"), write_session(engine) as session:
        create_clinic(session, code="mars", name="Mars", time_zone="Mars/Olympus")
    with read_session(engine) as session:
        assert get_clinic(session, code="KOBE").time_zone == "Asia/Tokyo"
