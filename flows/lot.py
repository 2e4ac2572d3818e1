"""Lot filling and lyophilisation: pool clarified CM into vials (AAPE-FILL: vials are
balanced against the millilitres that filled them), run the freeze-drying cycle
(AAPE-LYO: cycle parameters and residual moisture; out-of-range moisture rejects the lot),
and put the lot in its freezer position. The lot leaves LYOPHILISED in quarantine.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

from flows.common import (
    LabModel,
    Loss,
    MaterialId,
    Performed,
    label,
    sop_parameters,
    state_of,
)
from flows.tasks import StepSpec, StoragePosition, record, store
from lims.quantity_fields import VialCount, Volume
from lims.sops.parameters import ParametersOf, StageParameters

FillParameters = Annotated[StageParameters, ParametersOf("AAPE-FILL")]
LyoParameters = Annotated[StageParameters, ParametersOf("AAPE-LYO")]


class CmDraw(LabModel):
    cm_batch: MaterialId
    volume: Volume
    loss: Loss | None = None


class Lyophilisation(Performed):
    instruments: list[str]
    parameters: LyoParameters


class LotFill(Performed):
    cm_batches: list[CmDraw] = Field(min_length=1, max_length=50)
    vials: VialCount
    instruments: list[str]
    parameters: FillParameters
    lyophilisation: Lyophilisation | None = None
    storage: StoragePosition | None = None


class LotResult(LabModel):
    lot: str
    state: str
    vials: str
    lyophilisation: str | None
    acceptance_failures: list[str]
    location: str | None


def _run_name() -> str:
    request = flow_run.parameters.get("request")
    draws = (request.get("cm_batches") if isinstance(request, dict) else None) or getattr(
        request, "cm_batches", []
    )
    ids = [d["cm_batch"] if isinstance(d, dict) else d.cm_batch for d in draws]
    return "lot fill and lyophilisation · " + " + ".join(label(i) for i in ids)


@flow(
    name="lot-fill-and-lyophilisation",
    flow_run_name=_run_name,
    persist_result=False,
)
def lot_fill_and_lyophilisation(request: LotFill, database_url: str | None = None) -> LotResult:
    """Fill an AAPE lot from clarified CM, lyophilise it and store it (quarantine)."""
    first = request.cm_batches[0].cm_batch
    filled = record(
        database_url,
        label(first),
        StepSpec(
            sop_code="AAPE-FILL",
            performed_by=request.performed_by,
            performed_at=request.performed_at,
            inputs=[(d.cm_batch, str(d.volume)) for d in request.cm_batches],
            outputs=[str(request.vials)],
            losses=[d.loss.of(d.cm_batch) for d in request.cm_batches if d.loss],
            parameters=sop_parameters(request.parameters),
            instruments=request.instruments,
        ),
    )
    (lot,) = filled.outputs
    failures: list[str] = []
    outcome = None
    if request.lyophilisation is not None:
        cycle = request.lyophilisation
        dried = record(
            database_url,
            label(lot),
            StepSpec(
                sop_code="AAPE-LYO",
                performed_by=cycle.performed_by,
                performed_at=cycle.performed_at,
                inputs=[(lot, None)],
                parameters=sop_parameters(cycle.parameters),
                instruments=cycle.instruments,
            ),
        )
        outcome, failures = dried.outcome, dried.acceptance_failures
    location = None
    if request.storage is not None:
        who = (request.lyophilisation or request).performed_by
        location = store(database_url, label(lot), lot, request.storage, who)
    return LotResult(
        lot=lot,
        state=state_of(database_url, lot),
        vials=str(request.vials),
        lyophilisation=outcome,
        acceptance_failures=failures,
        location=location,
    )
