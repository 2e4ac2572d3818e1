"""Lot QC: the lot goes into QC testing and each result is entered as it comes in; the
specification judges it at once (an out-of-specification result opens a deviation and puts
the lot ON_HOLD). Results take days (sterility 14 d), so this flow does not wait for them:
it enters what has arrived, reports what is still missing, and ends; it runs again when
more results are recorded. Release is never done here: it is a QA person's signature
(``lims.qc.service.release``, with their password), after this flow says all is in.
"""

from __future__ import annotations

from prefect import flow
from pydantic import Field

from flows.common import (
    LabModel,
    MaterialId,
    Username,
    engine_for,
    label,
    request_run_name,
    state_of,
)
from flows.tasks import QcEntry, QcRecorded, change_state, enter_qc_result
from lims.db import read_session
from lims.materials.service import get_material
from lims.qc.service import current_results, deviations_of, missing_results

# QC testing starts from the state a product is left in when it is made.
READY_FOR_QC = ("LYOPHILISED", "FORMULATED")


class LotQc(LabModel):
    lot: MaterialId
    started_by: Username
    results: list[QcEntry] = Field(default_factory=list)


class QcStatus(LabModel):
    lot: str
    state: str
    entered: list[QcRecorded]
    missing: list[str]
    failing: list[str]
    open_deviations: list[str]
    status: str


def qc_status(database_url: str | None, lot: str, entered: list[QcRecorded]) -> QcStatus:
    with read_session(engine_for(database_url)) as session:
        material = get_material(session, lot)
        missing = [t.name for t in missing_results(session, material=material)]
        failing = [
            f"{r.test_code} {r.value_text}{' ' + r.unit if r.unit else ''}"
            for r in current_results(session, material=material)
            if r.passed is False
        ]
        open_deviations = [
            f"{d.number}: {d.description}"
            for d in deviations_of(session, material=material)
            if d.closed_at is None
        ]
        state = material.state
    if state == "ON_HOLD" or open_deviations:
        status = "on hold: " + "; ".join(open_deviations or ["see deviations"])
    elif failing:
        status = "out of specification: " + ", ".join(failing)
    elif missing:
        status = "waiting for results: " + ", ".join(missing)
    else:
        status = "all results in and passing: awaiting QA release (a QA signature)"
    return QcStatus(
        lot=lot,
        state=state,
        entered=entered,
        missing=missing,
        failing=failing,
        open_deviations=open_deviations,
        status=status,
    )


@flow(name="lot-qc", flow_run_name=request_run_name("lot QC", "lot"), persist_result=False)
def lot_qc(request: LotQc, database_url: str | None = None) -> QcStatus:
    """Put a lot into QC testing, enter the results that have arrived, report the rest."""
    lot = request.lot
    if state_of(database_url, lot) in READY_FOR_QC:
        change_state(database_url, label(lot), lot, "QC_TESTING", request.started_by)
    entered = [enter_qc_result(database_url, label(lot), lot, entry) for entry in request.results]
    return qc_status(database_url, lot, entered)
