"""Follicle (dermal papilla) duplication from a scalp biopsy: register the biopsy,
its intake checks (BIOPSY-INTAKE), microdissection of the papillae into DP culture
(DP-MICRODISSECT: human DP must be microdissected, enzymes fail), then expansion
(CULTURE-COUNT, DP-PASSAGE: doublings tracked against the SOP's limit) and formulation
(DP-FORMULATE) for QC and release.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import AwareDatetime, Field, model_validator

from flows.common import (
    CoiId,
    LabModel,
    MaterialId,
    Performed,
    ReagentLotRef,
    Username,
    label,
    rename_flow_run,
    request_run_name,
    shown,
    sop_parameters,
    state_of,
)
from flows.culture import CultureCount, Passage, count_culture, doublings, passage_culture
from flows.tasks import Arrival, StepSpec, record, register_arrival
from lims.materials.kinds import MaterialKind, Use
from lims.quantity_fields import CellCount, Mass
from lims.sops.parameters import ParametersOf, StageParameters

BiopsyIntakeParameters = Annotated[StageParameters, ParametersOf("BIOPSY-INTAKE")]


class BiopsyInspection(Performed):
    parameters: BiopsyIntakeParameters


MicrodissectParameters = Annotated[StageParameters, ParametersOf("DP-MICRODISSECT")]


class Microdissection(Performed):
    taken: Mass
    flasks: list[CellCount] = Field(min_length=1, max_length=10)
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: MicrodissectParameters


class FollicleDuplication(LabModel):
    patient: CoiId
    weight: Mass
    collected_at: AwareDatetime
    shipment_ref: str = Field(min_length=1, max_length=64)
    container: str | None = Field(default=None, max_length=64)
    received_by: Username
    inspection: BiopsyInspection
    microdissection: Microdissection | None = None


class FollicleResult(LabModel):
    biopsy: str
    state: str
    outcome: str
    time_since_biopsy: str | None
    dp_cultures: list[str]
    acceptance_failures: list[str]


FormulationParameters = Annotated[StageParameters, ParametersOf("DP-FORMULATE")]
DpPassageParameters = Annotated[StageParameters, ParametersOf("DP-PASSAGE")]


class DpPassage(Passage):
    parameters: DpPassageParameters


class Formulation(Performed):
    instruments: list[str]
    parameters: FormulationParameters


class DpCulture(LabModel):
    culture: MaterialId
    count: CultureCount | None = None
    passage: DpPassage | None = None
    formulation: Formulation | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> DpCulture:
        if not (self.count or self.passage or self.formulation):
            raise ValueError("give a count, a passage or a formulation to record")
        return self


class DpCultureResult(LabModel):
    culture: str
    state: str
    population_doublings: str | None
    children: list[str]
    warnings: list[str]


@flow(
    name="follicle-duplication",
    flow_run_name=request_run_name("follicle duplication", "shipment_ref"),
    persist_result=False,
)
def follicle_duplication(
    request: FollicleDuplication, database_url: str | None = None
) -> FollicleResult:
    """Register a scalp biopsy, record its intake and microdissect its papillae."""
    biopsy = register_arrival(
        database_url,
        f"shipment {request.shipment_ref}",
        Arrival(
            kind=MaterialKind.SCALP_BIOPSY,
            patient=request.patient,
            use=Use.AUTOLOGOUS,
            quantity=str(request.weight),
            collected_at=request.collected_at,
            shipment_ref=request.shipment_ref,
            container=request.container,
            received_by=request.received_by,
        ),
    )
    rename_flow_run(f"follicle duplication · {label(biopsy)}")
    inspection = request.inspection
    intake = record(
        database_url,
        label(biopsy),
        StepSpec(
            sop_code="BIOPSY-INTAKE",
            performed_by=inspection.performed_by,
            performed_at=inspection.performed_at,
            inputs=[(biopsy, None)],
            parameters=sop_parameters(inspection.parameters),
        ),
    )
    cultures: list[str] = []
    dissection = request.microdissection
    if dissection is not None:  # a rejected biopsy is refused by the SOP (needs ACCEPTED)
        cultures = record(
            database_url,
            label(biopsy),
            StepSpec(
                sop_code="DP-MICRODISSECT",
                performed_by=dissection.performed_by,
                performed_at=dissection.performed_at,
                inputs=[(biopsy, str(dissection.taken))],
                outputs=[str(q) for q in dissection.flasks],
                parameters=sop_parameters(dissection.parameters),
                instruments=dissection.instruments,
                reagent_lots=dissection.reagent_lots,
            ),
        ).outputs
    return FollicleResult(
        biopsy=biopsy,
        state=state_of(database_url, biopsy),
        outcome=intake.outcome,
        time_since_biopsy=shown(intake.parameters.get("time_since_harvest")),
        dp_cultures=cultures,
        acceptance_failures=intake.acceptance_failures,
    )


@flow(
    name="dp-culture",
    flow_run_name=request_run_name("DP culture", "culture"),
    persist_result=False,
)
def dp_culture(request: DpCulture, database_url: str | None = None) -> DpCultureResult:
    """Count, passage or formulate a dermal papilla culture."""
    culture = request.culture
    warnings: list[str] = []
    children: list[str] = []
    if request.count is not None:
        warnings += count_culture(database_url, culture, request.count).warnings
    if request.passage is not None:
        done = passage_culture(database_url, culture, request.passage, "DP-PASSAGE")
        warnings += done.warnings
        children = done.outputs
    if request.formulation is not None:
        step = request.formulation
        warnings += record(
            database_url,
            label(culture),
            StepSpec(
                sop_code="DP-FORMULATE",
                performed_by=step.performed_by,
                performed_at=step.performed_at,
                inputs=[(culture, None)],
                parameters=sop_parameters(step.parameters),
                instruments=step.instruments,
            ),
        ).warnings
    return DpCultureResult(
        culture=culture,
        state=state_of(database_url, culture),
        population_doublings=doublings(database_url, culture),
        children=children,
        warnings=warnings,
    )
