"""The lab tasks the stage flows are made of; each calls one ``lims`` service, once."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field
from sqlmodel import Session

from flows.common import (
    CoiId,
    LabModel,
    ReagentLotRef,
    Username,
    engine_for,
    lab_task,
    user,
    write_once,
)
from lims.custody.ledger import jsonable
from lims.db import write_session
from lims.lifecycle import transition
from lims.materials.kinds import MaterialKind, Use
from lims.materials.queries import find_position
from lims.materials.schemas import Collected, StoragePositionDetails
from lims.materials.service import (
    add_storage_location,
    get_material,
    move_material,
    register_material,
)
from lims.parties.queries import instrument_ids, reagent_lot_id
from lims.parties.service import get_patient
from lims.qc.service import enter_result
from lims.steps.service import InputBooking, LossBooking, OutputRequest, record_step


# --- steps ---------------------------------------------------------------------------------
class StepSpec(LabModel):
    """One ``record_step`` call, as JSON: what a step task is asked to record."""

    sop_code: str
    performed_by: str
    performed_at: datetime
    inputs: list[tuple[str, str | None]]
    outputs: list[str] = Field(default_factory=list)
    losses: list[tuple[str, str, str]] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    instruments: list[str] = Field(default_factory=list)
    reagent_lots: list[ReagentLotRef] = Field(default_factory=list)
    notes: str | None = None


class StepOutcome(LabModel):
    step_id: int
    sop_code: str
    outcome: str
    outputs: list[str]
    parameters: dict[str, Any]
    warnings: list[str]
    acceptance_failures: list[str]
    replayed: bool


def _reagent_ids(session: Session, lots: list[ReagentLotRef]) -> list[int]:
    return [
        reagent_lot_id(session, reagent_type=lot.reagent_type, lot_number=lot.lot_number)
        for lot in lots
    ]


@lab_task(name="record step", run_name="{spec.sop_code} · {subject}")
def record(database_url: str | None, subject: str, spec: StepSpec) -> StepOutcome:
    """Record one step through ``lims.steps.service.record_step``, once per request."""
    key = f"step:{spec.sop_code}:" + hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    with write_session(engine_for(database_url)) as session:
        result = record_step(
            session,
            sop_code=spec.sop_code,
            actor=user(session, spec.performed_by),
            performed_at=spec.performed_at,
            inputs=[InputBooking(m, q) for m, q in spec.inputs],
            outputs=[OutputRequest(q) for q in spec.outputs],
            losses=[LossBooking(m, q, why) for m, q, why in spec.losses],
            parameters=dict(spec.parameters),
            instrument_ids=instrument_ids(session, asset_tags=spec.instruments),
            reagent_lot_ids=_reagent_ids(session, spec.reagent_lots),
            notes=spec.notes,
            idempotency_key=key,
        )
        return StepOutcome(
            step_id=result.step.id or 0,
            sop_code=result.step.sop_code,
            outcome=result.step.outcome,
            outputs=[m.material_id for m in result.outputs],
            parameters=jsonable(result.step.parameters),
            warnings=list(result.step.warnings),
            acceptance_failures=list(result.step.acceptance_failures),
            replayed=result.replayed,
        )


# --- other writes --------------------------------------------------------------------------


class Arrival(LabModel, Collected):
    """Starting material arriving at the lab (what the shipment and its paperwork say)."""

    patient: CoiId
    use: Use
    shipment_ref: str = Field(min_length=1, max_length=64)
    container: str | None = Field(default=None, max_length=64)
    received_by: Username


@lab_task(name="register arrival", run_name="register {arrival.kind} · {subject}")
def register_arrival(database_url: str | None, subject: str, arrival: Arrival) -> str:
    """Register the material as RECEIVED (quarantine); return its id."""

    def write(session: Session) -> dict[str, Any]:
        kind = MaterialKind(arrival.kind)
        material = register_material(
            session,
            kind=kind,
            patient=get_patient(session, coi_id=arrival.patient),
            use=arrival.use,
            quantity=arrival.quantity,
            actor=user(session, arrival.received_by),
            state="RECEIVED",
            collected_at=arrival.collected_at,
            container=arrival.container,
        )
        return {"material_id": material.material_id}

    done = write_once(
        database_url,
        operation=f"register:{arrival.kind}",
        request=arrival.model_dump(mode="json"),
        write=write,
    )
    return str(done["material_id"])


@lab_task(name="change state", run_name="{to_state} · {subject}")
def change_state(
    database_url: str | None,
    subject: str,
    material_id: str,
    to_state: str,
    actor: str,
    reason: str | None = None,
) -> str:
    """Move a material to ``to_state`` through its state machine (guards and roles apply)."""

    def write(session: Session) -> dict[str, Any]:
        material = get_material(session, material_id, lock=True)
        transition(
            session, material=material, to_state=to_state, actor=user(session, actor), reason=reason
        )
        return {"state": material.state}

    request = {"material": material_id, "to": to_state, "actor": actor, "reason": reason}
    return str(
        write_once(database_url, operation="transition", request=request, write=write)["state"]
    )


class StoragePosition(LabModel, StoragePositionDetails):
    """Where a flow stores a material (the same position the API registers)."""


@lab_task(name="store", run_name="store · {subject}")
def store(
    database_url: str | None, subject: str, material_id: str, position: StoragePosition, actor: str
) -> str:
    """Put a material in a storage position (registered on first use)."""

    def write(session: Session) -> dict[str, Any]:
        who = user(session, actor)
        location = find_position(
            session,
            site=position.site,
            freezer=position.freezer,
            rack=position.rack,
            box=position.box,
            position=position.position,
        )
        if location is None:
            location = add_storage_location(
                session,
                site=position.site,
                freezer=position.freezer,
                rack=position.rack,
                box=position.box,
                position=position.position,
                actor=who,
                temperature=position.temperature,
            )
        move_material(
            session, material=get_material(session, material_id), location=location, actor=who
        )
        return {"location": location.label()}

    request = {
        "material": material_id,
        "position": position.model_dump(mode="json"),
        "actor": actor,
    }
    return str(
        write_once(database_url, operation="store", request=request, write=write)["location"]
    )


class QcEntry(LabModel):
    test: str = Field(min_length=1, max_length=32)
    value: str = Field(min_length=1, max_length=100)
    tested_at: AwareDatetime
    entered_by: Username


class QcRecorded(LabModel):
    test: str
    value: str
    passed: bool | None


@lab_task(name="enter QC result", run_name="QC {entry.test} · {subject}")
def enter_qc_result(
    database_url: str | None, subject: str, material_id: str, entry: QcEntry
) -> QcRecorded:
    """Enter one QC result; the specification judges it (out of spec: deviation, hold)."""

    def write(session: Session) -> dict[str, Any]:
        result = enter_result(
            session,
            material=get_material(session, material_id, lock=True),
            test_code=entry.test,
            value=entry.value,
            actor=user(session, entry.entered_by),
            tested_at=entry.tested_at,
        )
        shown = f"{result.value_text} {result.unit}" if result.unit else result.value_text
        return {"test": result.test_code, "value": shown, "passed": result.passed}

    request = {"material": material_id, **entry.model_dump(mode="json")}
    done = write_once(database_url, operation="qc-result", request=request, write=write)
    return QcRecorded.model_validate(done)
