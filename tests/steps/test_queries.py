"""The SOP versions in force, the bench work queue they make, and what a step took and
made (SQLite and PostgreSQL)."""

from datetime import timedelta

from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.materials.queries import made_in_step
from lims.sops.catalog import SOPS
from lims.sops.service import sync_catalog
from lims.sops.spec import SopDefinition
from lims.steps.queries import sops_in_force, step_input_ids, work_queue
from lims.steps.service import InputBooking, OutputRequest
from tests.builders import SVF_OK, Lab
from tests.conftest import World


def _intake_v2(states: list[str]) -> SopDefinition:
    v1 = next(s for s in SOPS if s.code == "LIPO-INTAKE" and s.version == 1)
    inputs = [v1.inputs[0].model_copy(update={"states": states}), *v1.inputs[1:]]
    return v1.model_copy(
        update={
            "version": 2,
            "effective_from": (utcnow() - timedelta(days=1)).date(),
            "inputs": inputs,
        }
    )


def test_one_version_in_force_per_sop(engine: Engine, world: World) -> None:
    with read_session(engine) as s:
        in_force = sops_in_force(s)
    codes = [sop.code for sop in in_force]
    assert codes == sorted(set(codes))
    assert set(codes) == {sop.code for sop in SOPS}
    with write_session(engine) as s:
        sync_catalog(s, sops=[_intake_v2(["RECEIVED"])])
    with read_session(engine) as s:
        intake = [sop for sop in sops_in_force(s) if sop.code == "LIPO-INTAKE"]
        before = [sop for sop in sops_in_force(s, at=utcnow() - timedelta(days=3))]
    assert [sop.version for sop in intake] == [2]
    assert [sop.version for sop in before if sop.code == "LIPO-INTAKE"] == [1]


def test_the_work_queue_follows_the_sop_versions_in_force(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo, second = lab.lipoaspirate(), lab.lipoaspirate("80 mL")
    with read_session(engine) as s:
        queue = work_queue(s)
        first_only = work_queue(s, per_input=1)
    intakes = [r.material.material_id for r in queue if r.sop.code == "LIPO-INTAKE"]
    assert intakes == [lipo, second]
    assert [r.material.material_id for r in first_only if r.sop.code == "LIPO-INTAKE"] == [lipo]
    rows = [(r.material.material_id, r.sop.code, r.sop.version) for r in queue]
    assert (lipo, "LIPO-INTAKE", 1) in rows
    assert [r.left.canonical_str() for r in queue if r.material.material_id == lipo] == [
        "120 mL"
    ] * len([r for r in queue if r.material.material_id == lipo])
    # Version 2 of the intake SOP takes only EXPECTED lipoaspirate: the RECEIVED one is no
    # longer waiting for an intake (the Python catalog still says version 1 would take it).
    with write_session(engine) as s:
        sync_catalog(s, sops=[_intake_v2(["EXPECTED"])])
    with read_session(engine) as s:
        queue = work_queue(s)
    assert not [r for r in queue if r.sop.code == "LIPO-INTAKE" and r.material.material_id == lipo]
    ids = [(r.material.id, r.sop.code) for r in queue]
    assert ids == sorted(ids)


def test_what_a_step_took_and_made(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    result = lab.step(
        "SVF-SEP",
        6,
        inputs=[InputBooking(lipo, "100 mL")],
        outputs=[OutputRequest("1.9e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters=SVF_OK,
    )
    step_id = result.step.id or 0
    with read_session(engine) as s:
        assert step_input_ids(s, step_id=step_id) == [lipo]
        assert [m.material_id for m in made_in_step(s, step_id=step_id)] == [
            m.material_id for m in result.outputs
        ]
        assert step_input_ids(s, step_id=999999) == []
        assert made_in_step(s, step_id=999999) == []
