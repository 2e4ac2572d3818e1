"""State machines: the paths domain.md section D names are allowed, the rest refused."""

import itertools

import pytest
from sqlalchemy import Engine

from lims.errors import IllegalTransition, InvalidInput, RuleViolation
from lims.materials.kinds import MaterialKind
from lims.materials.workflow import MACHINES, machine_for
from tests.builders import Lab
from tests.conftest import World

# The lifecycle of each kind, written out from domain.md section D (not from the code).
EXPECTED_PATHS = {
    MaterialKind.LIPOASPIRATE: [
        ["EXPECTED", "RECEIVED", "ACCEPTED", "IN_PROCESS", "CONSUMED"],
        ["RECEIVED", "REJECTED", "DESTROYED"],
        ["ACCEPTED", "CRYOSTORED", "IN_PROCESS"],
    ],
    MaterialKind.SVF: [
        ["CREATED", "QC_PASSED", "TO_CULTURE", "CONSUMED"],
        ["CREATED", "QC_FAILED", "REJECTED", "DESTROYED"],
        ["QC_PASSED", "CRYOSTORED", "TO_CULTURE"],
        ["QC_PASSED", "RELEASED", "EXPIRED", "DESTROYED"],
    ],
    MaterialKind.ADSC_CULTURE: [
        ["SEEDED", "EXPANDING", "CONDITIONING", "HARVESTED", "TERMINATED"],
        ["EXPANDING", "PASSAGED"],
        ["EXPANDING", "CRYOBANKED", "EXPANDING"],
        ["EXPANDING", "CONTAMINATED", "DISCARDED"],
    ],
    MaterialKind.CM_BATCH: [
        ["COLLECTED", "CLARIFIED", "CONCENTRATED", "HELD_FROZEN", "POOLED_INTO_LOT"],
        ["COLLECTED", "REJECTED", "DESTROYED"],
    ],
    MaterialKind.AAPE_LOT: [
        [
            "FILLED",
            "LYOPHILISING",
            "LYOPHILISED",
            "QC_TESTING",
            "RELEASED",
            "RECALLED",
            "DESTROYED",
        ],
        ["QC_TESTING", "REJECTED", "DESTROYED"],
        ["RELEASED", "EXPIRED", "DESTROYED"],
    ],
    MaterialKind.DOSE: [
        [
            "ALLOCATED",
            "LABELED",
            "DISPATCH_VERIFIED",
            "IN_TRANSIT",
            "RECEIVED_AT_CLINIC",
            "RECONSTITUTED",
            "ADMINISTERED",
        ],
        ["IN_TRANSIT", "RETURNED", "DISCARDED"],
        ["ALLOCATED", "CANCELLED", "DEALLOCATED"],
    ],
    MaterialKind.SCALP_BIOPSY: [
        ["COLLECTED", "RECEIVED", "ACCEPTED", "MICRODISSECTED"],
        ["RECEIVED", "REJECTED", "DESTROYED"],
    ],
    MaterialKind.DP_CULTURE: [
        ["SEEDED", "EXPANDING", "FORMULATED", "QC_TESTING", "RELEASED", "CONSUMED"],
        ["QC_TESTING", "REJECTED"],
    ],
    MaterialKind.NANOFAT: [["PREPARED", "ADMINISTERED"], ["PREPARED", "DISCARDED"]],
}

# Transitions that must never exist (nothing leaves quarantine without QC and release).
FORBIDDEN = {
    MaterialKind.AAPE_LOT: [
        ("LYOPHILISED", "RELEASED"),
        ("FILLED", "RELEASED"),
        ("QC_TESTING", "ALLOCATED"),
        ("REJECTED", "RELEASED"),
        ("EXPIRED", "RELEASED"),
        ("DESTROYED", "RELEASED"),
    ],
    MaterialKind.LIPOASPIRATE: [
        ("RECEIVED", "IN_PROCESS"),
        ("REJECTED", "ACCEPTED"),
        ("CONSUMED", "IN_PROCESS"),
    ],
    MaterialKind.SVF: [
        ("CREATED", "RELEASED"),
        ("QC_FAILED", "QC_PASSED"),
        ("QC_FAILED", "TO_CULTURE"),
    ],
    MaterialKind.DOSE: [
        ("ALLOCATED", "IN_TRANSIT"),
        ("LABELED", "IN_TRANSIT"),
        ("ADMINISTERED", "ALLOCATED"),
        ("CANCELLED", "LABELED"),
    ],
    MaterialKind.ADSC_CULTURE: [("CONTAMINATED", "EXPANDING"), ("HARVESTED", "CONDITIONING")],
    MaterialKind.CM_BATCH: [("POOLED_INTO_LOT", "CLARIFIED"), ("REJECTED", "CLARIFIED")],
    MaterialKind.DP_CULTURE: [("FORMULATED", "RELEASED")],
    MaterialKind.NANOFAT: [("ADMINISTERED", "PREPARED")],
    MaterialKind.SCALP_BIOPSY: [("RECEIVED", "MICRODISSECTED")],
}


@pytest.mark.parametrize(
    ("kind", "path"),
    [(k, p) for k, paths in EXPECTED_PATHS.items() for p in paths],
    ids=lambda v: v.value if isinstance(v, MaterialKind) else "-".join(v),
)
def test_domain_lifecycle_paths_are_allowed(kind: MaterialKind, path: list[str]) -> None:
    machine = MACHINES[kind]
    for source, target in itertools.pairwise(path):
        assert target in machine.targets(source), f"{kind}: {source} -> {target}"


@pytest.mark.parametrize(
    ("kind", "edge"),
    [(k, e) for k, edges in FORBIDDEN.items() for e in edges],
    ids=lambda v: v.value if isinstance(v, MaterialKind) else "->".join(v),
)
def test_forbidden_transitions_do_not_exist(kind: MaterialKind, edge: tuple[str, str]) -> None:
    assert edge[1] not in MACHINES[kind].targets(edge[0])


def test_every_kind_has_a_machine_and_every_state_is_reachable() -> None:
    assert set(MACHINES) == set(MaterialKind)
    for machine in MACHINES.values():
        reachable = set(machine.initial)
        frontier = list(machine.initial)
        while frontier:
            state = frontier.pop()
            for nxt in machine.targets(state, held_from=state):
                if nxt not in reachable:
                    reachable.add(nxt)
                    frontier.append(nxt)
        assert reachable == machine.states, machine.kind


def test_shared_rules_hold_for_every_kind() -> None:
    for machine in MACHINES.values():
        for state in machine.states - {"ON_HOLD"}:
            targets = machine.targets(state)
            if state in machine.terminal or state in ("REJECTED", "EXPIRED"):
                assert "ON_HOLD" not in targets
            else:
                assert "ON_HOLD" in targets, (machine.kind, state)
            if state in ("REJECTED", "EXPIRED"):
                assert targets <= {"DESTROYED"}, (machine.kind, state, targets)
        assert machine.targets("ON_HOLD", held_from="X") >= {"X"}


# --- the service applies the machine, roles and guards -----------------------------------


def test_illegal_transition_is_an_error_that_explains(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    with pytest.raises(IllegalTransition) as err:
        lab.move(lot, "RELEASED", actor_id=world.qa_id)
    message = str(err.value)
    assert "is LYOPHILISED (QUARANTINE); it cannot go to RELEASED" in message
    assert "release needs QC testing with passing sterility, endotoxin and mycoplasma" in message
    assert "QC_TESTING" in message  # says where it can go
    assert lab.get(lot).state == "LYOPHILISED"


def test_release_is_qa_only_and_four_eyes(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    lab.move(lot, "QC_TESTING")
    with pytest.raises(RuleViolation, match="that needs qa"):
        lab.move(lot, "RELEASED", actor_id=world.tech2_id)
    lab.pass_qc(lot)
    with pytest.raises(IllegalTransition, match="a QA signature with meaning 'released'"):
        lab.move(lot, "RELEASED", actor_id=world.qa_id)
    lab.release(lot)
    assert lab.get(lot).state == "RELEASED"


def test_qa_who_processed_the_lot_cannot_release_it(engine: Engine, world: World) -> None:
    from tests.builders import LYO_OK

    lab = Lab.start(engine, world)
    cm = lab.cm_batch("61 mL")
    from lims.steps.service import InputBooking, OutputRequest

    fill = lab.step(
        "AAPE-FILL",
        101,
        inputs=[InputBooking(cm, "60 mL")],
        outputs=[OutputRequest("15 vials")],
        instrument_ids=lab.inst("biosafety_cabinet"),
        parameters={"fill_volume": "4 mL", "cryoprotectant": "trehalose"},
    )
    lot = fill.outputs[0].material_id
    lab.step(
        "AAPE-LYO",
        120,
        inputs=[InputBooking(lot)],
        actor_id=world.qa_id,
        instrument_ids=lab.inst("freeze_dryer", "karl_fischer_titrator"),
        parameters=LYO_OK,
    )
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    with pytest.raises(IllegalTransition, match="four-eyes"):
        lab.release(lot)
    assert lab.get(lot).state == "QC_TESTING"


def test_hold_needs_a_reason_and_returns_to_where_it_was(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with pytest.raises(InvalidInput, match="needs a reason"):
        lab.move(lot, "ON_HOLD")
    lab.move(lot, "ON_HOLD", reason="deviation DV-12: freezer alarm")
    held = lab.get(lot)
    assert (held.state, held.held_from_state) == ("ON_HOLD", "RELEASED")
    with pytest.raises(IllegalTransition, match="ON_HOLD"):
        lab.move(lot, "QC_TESTING")
    lab.move(lot, "RELEASED", actor_id=world.qa_id)  # back from hold: still signed, unchanged
    assert lab.get(lot).state == "RELEASED"
    assert lab.get(lot).held_from_state is None


def test_auditor_and_clinic_cannot_move_lab_material(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    for who in (world.auditor_id, world.clinic_user_id):
        with pytest.raises(RuleViolation, match="may not move"):
            lab.move(lipo, "ACCEPTED", actor_id=who)
    assert lab.get(lipo).state == "RECEIVED"


def test_expiry_transition_only_after_expiry(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with pytest.raises(IllegalTransition, match="does not expire until"):
        lab.move(lot, "EXPIRED")


def test_terminal_states_have_no_way_out() -> None:
    for machine in MACHINES.values():
        for state in machine.terminal - {"DESTROYED"}:
            assert machine.targets(state) == frozenset(), (machine.kind, state)
        assert machine_for(machine.kind.value) is machine
