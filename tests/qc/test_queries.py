"""What waits for QC results and for QA's review (SQLite and PostgreSQL)."""

from sqlalchemy import Engine

from lims.db import read_session
from lims.qc.queries import awaiting_results, qa_queue
from tests.builders import Lab
from tests.conftest import World


def test_the_qa_queue_and_what_awaits_results(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()  # in quarantine, but not QA's to review
    lot = lab.lot(released=False)
    released = lab.lot()
    lab.move(lot, "QC_TESTING")
    with read_session(engine) as s:
        waiting = qa_queue(s)
        testing = awaiting_results(s)
    assert lot in [m.material_id for m in waiting]
    assert {m.material_id for m in waiting}.isdisjoint({lipo, released})
    assert {m.state for m in waiting} <= {"QC_TESTING", "ON_HOLD", "QC_PASSED"}
    assert {m.kind for m in waiting} <= {"aape_lot", "svf", "dp_culture"}
    assert [m.id or 0 for m in waiting] == sorted(m.id or 0 for m in waiting)
    assert [m.material_id for m in testing] == [lot]
