"""Culture and passaging: seeding SVF into ADSC culture (ADSC-SEED), then counting and
passaging (CULTURE-COUNT, ADSC-PASSAGE). The passage and population-doubling limits are the
SOP's: a passage beyond P5 or ~10 doublings is refused by the LIMS with the limit's source.

Cultures grow for days between these steps; each flow records what was done at the bench
and ends, and the next one runs when the next step is recorded.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from pydantic import Field

from flows.common import (
    LabModel,
    Loss,
    MaterialId,
    Performed,
    ReagentLotRef,
    engine_for,
    label,
    request_run_name,
    shown,
    sop_parameters,
    state_of,
)
from flows.tasks import StepOutcome, StepSpec, record
from lims.db import read_session
from lims.materials.service import get_material
from lims.quantity_fields import CellCount
from lims.sops.parameters import ParametersOf, StageParameters

SeedParameters = Annotated[StageParameters, ParametersOf("ADSC-SEED")]


class CultureSeeding(Performed):
    svf: MaterialId
    taken: CellCount
    flasks: list[CellCount] = Field(min_length=1, max_length=20)
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: SeedParameters


class SeedingResult(LabModel):
    cultures: list[str]
    seeding_density: str | None
    svf_state: str
    warnings: list[str]


CountParameters = Annotated[StageParameters, ParametersOf("CULTURE-COUNT")]


class CultureCount(Performed):
    instruments: list[str]
    parameters: CountParameters


AdscPassageParameters = Annotated[StageParameters, ParametersOf("ADSC-PASSAGE")]


class Passage(Performed):
    taken: CellCount
    flasks: list[CellCount] = Field(min_length=1, max_length=20)
    loss: Loss | None = None
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: StageParameters  # the passage SOP's: ADSC-PASSAGE or DP-PASSAGE


class AdscPassage(Passage):
    parameters: AdscPassageParameters


class CulturePassage(LabModel):
    culture: MaterialId
    count: CultureCount | None = None
    passage: AdscPassage


class PassageResult(LabModel):
    culture: str
    culture_state: str
    population_doublings: str | None
    children: list[str]
    warnings: list[str]


def count_culture(database_url: str | None, culture: str, count: CultureCount) -> StepOutcome:
    return record(
        database_url,
        label(culture),
        StepSpec(
            sop_code="CULTURE-COUNT",
            performed_by=count.performed_by,
            performed_at=count.performed_at,
            inputs=[(culture, None)],
            parameters=sop_parameters(count.parameters),
            instruments=count.instruments,
        ),
    )


def passage_culture(
    database_url: str | None, culture: str, passage: Passage, sop_code: str
) -> StepOutcome:
    return record(
        database_url,
        label(culture),
        StepSpec(
            sop_code=sop_code,
            performed_by=passage.performed_by,
            performed_at=passage.performed_at,
            inputs=[(culture, str(passage.taken))],
            outputs=[str(q) for q in passage.flasks],
            losses=[passage.loss.of(culture)] if passage.loss else [],
            parameters=sop_parameters(passage.parameters),
            instruments=passage.instruments,
            reagent_lots=passage.reagent_lots,
        ),
    )


def doublings(database_url: str | None, material_id: str) -> str | None:
    with read_session(engine_for(database_url)) as session:
        value = get_material(session, material_id).population_doublings
    return None if value is None else format(value.normalize(), "f")


@flow(
    name="culture-seeding",
    flow_run_name=request_run_name("culture seeding", "svf"),
    persist_result=False,
)
def culture_seeding(request: CultureSeeding, database_url: str | None = None) -> SeedingResult:
    """Seed cells of a QC-passed SVF into ADSC culture flasks (P0)."""
    done = record(
        database_url,
        label(request.svf),
        StepSpec(
            sop_code="ADSC-SEED",
            performed_by=request.performed_by,
            performed_at=request.performed_at,
            inputs=[(request.svf, str(request.taken))],
            outputs=[str(q) for q in request.flasks],
            parameters=sop_parameters(request.parameters),
            instruments=request.instruments,
            reagent_lots=request.reagent_lots,
        ),
    )
    return SeedingResult(
        cultures=done.outputs,
        seeding_density=shown(done.parameters.get("seeding_density")),
        svf_state=state_of(database_url, request.svf),
        warnings=done.warnings,
    )


@flow(
    name="culture-passage",
    flow_run_name=request_run_name("culture passage", "culture"),
    persist_result=False,
)
def culture_passage(request: CulturePassage, database_url: str | None = None) -> PassageResult:
    """Count an ADSC culture (optional) and passage it into new flasks (P+1)."""
    warnings: list[str] = []
    if request.count is not None:
        warnings += count_culture(database_url, request.culture, request.count).warnings
    done = passage_culture(database_url, request.culture, request.passage, "ADSC-PASSAGE")
    return PassageResult(
        culture=request.culture,
        culture_state=state_of(database_url, request.culture),
        population_doublings=doublings(database_url, request.culture),
        children=done.outputs,
        warnings=warnings + done.warnings,
    )
