"""QA's readiness is the release rule's blockers (less the release signature itself) and
the optional tests without a result."""

from sqlalchemy import Engine

from lims.db import read_session, write_session
from lims.materials.service import get_material
from lims.qc.deviations import open_deviation
from lims.qc.readiness import readiness
from tests.builders import Lab
from tests.conftest import World


def test_readiness_names_blockers_and_optional_tests(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.filled_lot()
    with read_session(engine) as s:
        early = readiness(s, material=get_material(s, lot), actor=lab.user(s, world.qa_id))
    assert not early.releasable_now and not early.ready  # LYOPHILISED: not releasable yet
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    with write_session(engine) as s:
        open_deviation(
            s,
            material=get_material(s, lot),
            description="alarm",
            actor=lab.user(s, world.tech_id),
        )
    with read_session(engine) as s:
        held_up = readiness(s, material=get_material(s, lot), actor=lab.user(s, world.qa_id))
    assert held_up.releasable_now and not held_up.ready
    assert [b.code for b in held_up.blockers] == ["deviation"]
    assert [t.code for t in held_up.optional_missing] == ["vegf"]
    lab.result(lot, "vegf", "700 pg/mL")
    with read_session(engine) as s:
        later = readiness(s, material=get_material(s, lot), actor=lab.user(s, world.qa_id))
    assert later.optional_missing == [] and [b.code for b in later.blockers] == ["deviation"]
