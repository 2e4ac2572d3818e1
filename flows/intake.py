"""Intake of lipoaspirate: register the shipment, then the acceptance checks (LIPO-INTAKE).

The checks are the SOP's (time since harvest, transport temperature, volume, identity,
container); a failed acceptance criterion rejects the material, it does not refuse the
record. The inspection may come with the request, or the flow registers the arrival and
pauses for the technician to enter it (``pause_flow_run(wait_for_input=...)``, a form in
Prefect's UI): the bench inspection takes minutes, so a short pause fits.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.flow_runs import pause_flow_run
from pydantic import AwareDatetime, Field

from flows.common import (
    CoiId,
    LabModel,
    Performed,
    Username,
    label,
    rename_flow_run,
    request_run_name,
    shown,
    sop_parameters,
    state_of,
)
from flows.tasks import Arrival, StepSpec, record, register_arrival
from lims.materials.kinds import MaterialKind, Use
from lims.quantity_fields import Volume
from lims.sops.parameters import ParametersOf, StageParameters

IntakeParameters = Annotated[StageParameters, ParametersOf("LIPO-INTAKE")]


class IntakeInspection(Performed):
    parameters: IntakeParameters


class LipoaspirateIntake(LabModel):
    patient: CoiId
    use: Use = Use.AUTOLOGOUS
    volume: Volume
    collected_at: AwareDatetime
    shipment_ref: str = Field(min_length=1, max_length=64)
    container: str | None = Field(default=None, max_length=64)
    received_by: Username
    inspection: IntakeInspection | None = None
    # Without an inspection in the request, how long to wait for one to be entered.
    inspection_wait_seconds: int = Field(default=3600, ge=10, le=86400)


class IntakeResult(LabModel):
    lipoaspirate: str
    state: str
    outcome: str
    time_since_harvest: str | None
    warnings: list[str]
    acceptance_failures: list[str]


def _wait_for_inspection(request: LipoaspirateIntake, lipoaspirate: str) -> IntakeInspection:
    entered = pause_flow_run(
        wait_for_input=IntakeInspection,
        timeout=request.inspection_wait_seconds,
        poll_interval=2,
        key=f"inspection-{lipoaspirate.lower()}",
    )
    return IntakeInspection.model_validate(entered.model_dump(mode="json"))


@flow(
    name="lipoaspirate-intake",
    flow_run_name=request_run_name("lipoaspirate intake", "shipment_ref"),
    persist_result=False,
)
def lipoaspirate_intake(
    request: LipoaspirateIntake, database_url: str | None = None
) -> IntakeResult:
    """Register a lipoaspirate shipment (RECEIVED, quarantine) and record its intake."""
    lipo = register_arrival(
        database_url,
        f"shipment {request.shipment_ref}",
        Arrival(
            kind=MaterialKind.LIPOASPIRATE,
            patient=request.patient,
            use=request.use,
            quantity=str(request.volume),
            collected_at=request.collected_at,
            shipment_ref=request.shipment_ref,
            container=request.container,
            received_by=request.received_by,
        ),
    )
    rename_flow_run(f"lipoaspirate intake · {label(lipo)}")
    inspection = request.inspection or _wait_for_inspection(request, lipo)
    done = record(
        database_url,
        label(lipo),
        StepSpec(
            sop_code="LIPO-INTAKE",
            performed_by=inspection.performed_by,
            performed_at=inspection.performed_at,
            inputs=[(lipo, None)],
            parameters=sop_parameters(inspection.parameters),
        ),
    )
    return IntakeResult(
        lipoaspirate=lipo,
        state=state_of(database_url, lipo),
        outcome=done.outcome,
        time_since_harvest=shown(done.parameters.get("time_since_harvest")),
        warnings=done.warnings,
        acceptance_failures=done.acceptance_failures,
    )
