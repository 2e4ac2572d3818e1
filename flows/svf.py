"""SVF separation: collagenase digestion, centrifugation, counting and viability (SVF-SEP),
and, from the same lipoaspirate, nanofat for point-of-care use (NANOFAT-PREP).

An SVF below the SOP's viability acceptance limit is recorded and comes out QC_FAILED
(the step's outcome is "rejected"); it is not refused.
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
from flows.tasks import StepSpec, record
from lims.quantity_fields import CellCount, Volume
from lims.sops.parameters import ParametersOf, StageParameters

SvfParameters = Annotated[StageParameters, ParametersOf("SVF-SEP")]
NanofatParameters = Annotated[StageParameters, ParametersOf("NANOFAT-PREP")]


class NanofatPrep(Performed):
    taken: Volume
    made: Volume
    loss: Loss | None = None
    parameters: NanofatParameters


class SvfSeparation(Performed):
    lipoaspirate: MaterialId
    taken: Volume
    cells: CellCount
    instruments: list[str]
    reagent_lots: list[ReagentLotRef]
    parameters: SvfParameters
    nanofat: NanofatPrep | None = None


class SvfResult(LabModel):
    svf: str
    state: str
    outcome: str
    cells: str
    viability: str
    yield_per_ml: str | None
    warnings: list[str]
    acceptance_failures: list[str]
    nanofat: str | None
    lipoaspirate_state: str


@flow(
    name="svf-separation",
    flow_run_name=request_run_name("SVF separation", "lipoaspirate"),
    persist_result=False,
)
def svf_separation(request: SvfSeparation, database_url: str | None = None) -> SvfResult:
    """Separate SVF from an accepted lipoaspirate; optionally prepare nanofat from it."""
    lipo = request.lipoaspirate
    done = record(
        database_url,
        label(lipo),
        StepSpec(
            sop_code="SVF-SEP",
            performed_by=request.performed_by,
            performed_at=request.performed_at,
            inputs=[(lipo, str(request.taken))],
            outputs=[str(request.cells)],
            parameters=sop_parameters(request.parameters),
            instruments=request.instruments,
            reagent_lots=request.reagent_lots,
        ),
    )
    (svf,) = done.outputs
    nanofat = None
    if request.nanofat is not None:
        prep = request.nanofat
        made = record(
            database_url,
            label(lipo),
            StepSpec(
                sop_code="NANOFAT-PREP",
                performed_by=prep.performed_by,
                performed_at=prep.performed_at,
                inputs=[(lipo, str(prep.taken))],
                outputs=[str(prep.made)],
                losses=[prep.loss.of(lipo)] if prep.loss else [],
                parameters=sop_parameters(prep.parameters),
            ),
        )
        (nanofat,) = made.outputs
    return SvfResult(
        svf=svf,
        state=state_of(database_url, svf),
        outcome=done.outcome,
        cells=str(request.cells),
        viability=shown(sop_parameters(request.parameters).get("viability")) or "",
        yield_per_ml=shown(done.parameters.get("yield_per_ml")),
        warnings=done.warnings,
        acceptance_failures=done.acceptance_failures,
        nanofat=nanofat,
        lipoaspirate_state=state_of(database_url, lipo),
    )
