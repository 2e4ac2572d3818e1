"""The demo scenario (``lims demo``) builds a full lineage through the flows, and runs
again on the same database without clashing."""

from sqlalchemy import Engine

from flows.demo import run_pipeline_demo
from lims.db import write_session
from lims.demo import database_is_empty
from lims.materials.service import descendants, get_material
from lims.steps.conservation import verify_conservation


def test_demo_builds_lipoaspirate_to_doses(engine: Engine, db_url: str) -> None:
    assert database_is_empty(engine)
    result = run_pipeline_demo(db_url)
    assert not database_is_empty(engine)
    assert "may not be dispatched" in result.refusal and "DispatchRefused" in result.refusal
    assert [r.flow for r in result.runs if not r.ok] == ["dose-dispatch"]
    with write_session(engine) as s:
        down = descendants(s, material=get_material(s, result.donation))
        kinds = {r.kind for r in down}
        assert kinds == {"svf", "nanofat", "adsc_culture", "cm_batch", "aape_lot", "dose"}
        a_doses = {d for k, d in result.doses.items() if k.startswith("A ")}
        assert len(a_doses) == 3 and a_doses <= {r.material_id for r in down}
        lot = get_material(s, result.lots["A"])
        # 28 filled, 3 allocated, the cancelled one returned by QA.
        assert (lot.state, lot.remaining_canonical) == ("RELEASED", 26)
        states = {k: get_material(s, d).state for k, d in result.doses.items()}
        assert states == {
            "A session 1": "ADMINISTERED",
            "A session 2": "RECEIVED_AT_CLINIC",  # quarantined at 12 degC, released by QA
            "A session 3": "DEALLOCATED",
            "B session 1": "RECEIVED_AT_CLINIC",
        }
        assert "wrong patient" in result.bedside_refusal and result.recipient in (
            result.bedside_refusal
        )
        report = verify_conservation(s)
        assert report.ok, report.problems
    # A second run on the same database adds a second donation without clashing.
    again = run_pipeline_demo(db_url)
    assert again.donation != result.donation
