"""Hypoxic conditioning and CM harvest: start hypoxia (HYPOXIA-START: O2 setpoint), and
24-72 h later harvest the conditioned medium (CM-HARVEST: the LIMS computes the time under
hypoxia from the recorded start and judges it) and clarify/filter it (CM-CLARIFY).

The conditioning runs for days in an incubator; no flow waits for it. The start flow ends
when hypoxia is started; the harvest flow runs when the harvest is recorded.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow

from flows.common import (
    LabModel,
    Loss,
    MaterialId,
    Performed,
    ReagentLotRef,
    label,
    request_run_name,
    shown,
    sop_parameters,
    state_of,
)
from flows.culture import CultureCount, count_culture, doublings
from flows.tasks import StepSpec, record
from lims.quantity_fields import Volume
from lims.sops.parameters import ParametersOf, StageParameters

HypoxiaParameters = Annotated[StageParameters, ParametersOf("HYPOXIA-START")]


class HypoxiaStart(Performed):
    culture: MaterialId
    count: CultureCount | None = None
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: HypoxiaParameters


class HypoxiaResult(LabModel):
    culture: str
    state: str
    population_doublings: str | None
    warnings: list[str]


HarvestParameters = Annotated[StageParameters, ParametersOf("CM-HARVEST")]
ClarifyParameters = Annotated[StageParameters, ParametersOf("CM-CLARIFY")]


class Clarification(Performed):
    loss: Loss
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: ClarifyParameters


class CmHarvest(Performed):
    culture: MaterialId
    volume: Volume
    instruments: list[str]
    parameters: HarvestParameters
    clarification: Clarification | None = None


class HarvestResult(LabModel):
    cm_batch: str
    state: str
    outcome: str
    collected: str
    conditioning_duration: str | None
    culture_state: str
    acceptance_failures: list[str]


@flow(
    name="hypoxia-start",
    flow_run_name=request_run_name("hypoxia start", "culture"),
    persist_result=False,
)
def hypoxia_start(request: HypoxiaStart, database_url: str | None = None) -> HypoxiaResult:
    """Count a culture (optional) and start its hypoxic conditioning."""
    warnings: list[str] = []
    if request.count is not None:
        warnings += count_culture(database_url, request.culture, request.count).warnings
    done = record(
        database_url,
        label(request.culture),
        StepSpec(
            sop_code="HYPOXIA-START",
            performed_by=request.performed_by,
            performed_at=request.performed_at,
            inputs=[(request.culture, None)],
            parameters=sop_parameters(request.parameters),
            instruments=request.instruments,
            reagent_lots=request.reagent_lots,
        ),
    )
    return HypoxiaResult(
        culture=request.culture,
        state=state_of(database_url, request.culture),
        population_doublings=doublings(database_url, request.culture),
        warnings=warnings + done.warnings,
    )


@flow(
    name="cm-harvest",
    flow_run_name=request_run_name("CM harvest", "culture"),
    persist_result=False,
)
def cm_harvest(request: CmHarvest, database_url: str | None = None) -> HarvestResult:
    """Harvest conditioned medium from a conditioning culture; clarify and filter it."""
    done = record(
        database_url,
        label(request.culture),
        StepSpec(
            sop_code="CM-HARVEST",
            performed_by=request.performed_by,
            performed_at=request.performed_at,
            inputs=[(request.culture, None)],
            outputs=[str(request.volume)],
            parameters=sop_parameters(request.parameters),
            instruments=request.instruments,
        ),
    )
    (cm,) = done.outputs
    if request.clarification is not None:
        step = request.clarification
        record(
            database_url,
            label(cm),
            StepSpec(
                sop_code="CM-CLARIFY",
                performed_by=step.performed_by,
                performed_at=step.performed_at,
                inputs=[(cm, None)],
                losses=[step.loss.of(cm)],
                parameters=sop_parameters(step.parameters),
                instruments=step.instruments,
                reagent_lots=step.reagent_lots,
            ),
        )
    return HarvestResult(
        cm_batch=cm,
        state=state_of(database_url, cm),
        outcome=done.outcome,
        collected=str(request.volume),
        conditioning_duration=shown(done.parameters.get("conditioning_duration")),
        culture_state=state_of(database_url, request.culture),
        acceptance_failures=done.acceptance_failures,
    )
