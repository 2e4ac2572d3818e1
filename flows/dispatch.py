"""Doses: a clinic's order is allocated from released stock (DOSE-ALLOCATE: chain of
identity on two identifiers, stock locked, exact vial arithmetic) and labelled. The packer
and a second verifier then sign the labelled dose (people, with their passwords; never a
flow). The dispatch flow runs the dispatch gate (identity, lot released, expiry, label
scan, shipper and logger, both signatures) and hands the dose to the courier; the clinic
receipt flow records when it arrived, at what temperature and who took it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field
from sqlmodel import Session

from flows.common import (
    CoiId,
    LabModel,
    MaterialId,
    Username,
    engine_for,
    lab_task,
    label,
    rename_flow_run,
    request_run_name,
    user,
    write_once,
)
from flows.tasks import change_state
from lims.db import read_session
from lims.materials.service import ancestors, get_material
from lims.orders.queries import find_order
from lims.orders.schemas import OrderDetails, ReceiptDetails
from lims.orders.service import (
    allocate_order,
    confirm_receipt,
    dispatch_order,
    dose_of,
    order_for,
    patient_for,
)
from lims.orders.service import place as place_with_details
from lims.quantity_fields import Duration


class OrderRequest(LabModel, OrderDetails):
    """A clinic's order for one treatment session of its patient (checked by OrderDetails,
    the model the API's order is made of too)."""

    patient: CoiId
    placed_by: Username


class DoseAllocation(LabModel):
    order: OrderRequest
    allocated_by: Username
    # The released stock to take from; without it, first expiry first out among the
    # patient's own lots (an allogeneic donor's lot is named here).
    lot: MaterialId | None = None


class AllocationResult(LabModel):
    order: str
    dose: str
    lot: str
    state: str


class DoseDispatch(LabModel):
    order: str = Field(min_length=1, max_length=16)
    scanned_label: str = Field(min_length=1, max_length=40)
    shipper: str = Field(min_length=1, max_length=100)
    temperature_logger: str = Field(min_length=1, max_length=64)
    transit: Duration
    dispatched_by: Username


class ClinicReceipt(LabModel, ReceiptDetails):
    order: str = Field(min_length=1, max_length=16)
    confirmed_by: Username


class DoseStatus(LabModel):
    order: str
    dose: str
    state: str
    custodian: str


@lab_task(name="place order", run_name="order · {request.patient} session {request.session_number}")
def place(database_url: str | None, request: OrderRequest) -> str:
    """Record the clinic's order (as the clinic's account: it sees only its patients)."""

    def write(session: Session) -> dict[str, Any]:
        clinic_user = user(session, request.placed_by)
        order = place_with_details(
            session,
            actor=clinic_user,
            patient=patient_for(session, actor=clinic_user, coi_id=request.patient),
            details=request,
        )
        return {"order": order.number}

    done = write_once(
        database_url, operation="order", request=request.model_dump(mode="json"), write=write
    )
    return str(done["order"])


@lab_task(name="allocate", run_name="allocate · {order}")
def allocate(database_url: str | None, order: str, actor: str, lot: str | None) -> dict[str, Any]:
    """Allocate the order from released stock; return the dose and the lot it came from."""

    def write(session: Session) -> dict[str, Any]:
        tech = user(session, actor)
        dose = allocate_order(
            session,
            order=order_for(session, actor=tech, number=order),
            actor=tech,
            lot=get_material(session, lot) if lot else None,
        )
        source = ancestors(session, material=dose)[0]
        return {"dose": dose.material_id, "lot": source.material_id}

    request = {"order": order, "actor": actor, "lot": lot}
    return write_once(database_url, operation="allocate", request=request, write=write)


def dose_status(database_url: str | None, order: str) -> DoseStatus:
    """Where an order's dose is now (read-only)."""
    with read_session(engine_for(database_url)) as session:
        found = find_order(session, number=order)
        dose = dose_of(session, order=found)
        return DoseStatus(
            order=found.number,
            dose=dose.material_id if dose else "",
            state=dose.state if dose else found.status,
            custodian=(dose.custodian or "") if dose else "",
        )


def _name_after_dose(stage: str, database_url: str | None, order: str) -> None:
    status = dose_status(database_url, order)
    if status.dose:
        rename_flow_run(f"{stage} · {order} · {label(status.dose)}")


@lab_task(name="dispatch", run_name="dispatch · {request.order}")
def dispatch(database_url: str | None, request: DoseDispatch) -> dict[str, Any]:
    """The dispatch gate, then the hand-over to the courier."""

    def write(session: Session) -> dict[str, Any]:
        tech = user(session, request.dispatched_by)
        dose = dispatch_order(
            session,
            order=order_for(session, actor=tech, number=request.order, lock=True),
            actor=tech,
            scanned_label=request.scanned_label,
            shipper=request.shipper,
            temperature_logger=request.temperature_logger,
            transit=request.transit,
        )
        return {"dose": dose.material_id}

    return write_once(
        database_url, operation="dispatch", request=request.model_dump(mode="json"), write=write
    )


@lab_task(name="confirm receipt", run_name="receipt · {request.order}")
def receive(database_url: str | None, request: ClinicReceipt) -> dict[str, Any]:
    """The clinic's confirmation: arrival time, temperature, who took the dose."""

    def write(session: Session) -> dict[str, Any]:
        clinic_user = user(session, request.confirmed_by)
        order = confirm_receipt(
            session,
            order=order_for(session, actor=clinic_user, number=request.order, lock=True),
            actor=clinic_user,
            received_at=request.received_at,
            temperature=request.temperature,
            received_by=request.received_by,
        )
        return {"order": order.number}

    return write_once(
        database_url, operation="receipt", request=request.model_dump(mode="json"), write=write
    )


def _allocation_run_name() -> str:
    request = flow_run.parameters.get("request")
    order = request.get("order", {}) if isinstance(request, dict) else request.order
    get = order.get if isinstance(order, dict) else lambda k: getattr(order, k, None)
    return f"dose allocation · {get('patient')} session {get('session_number')}"


@flow(name="dose-allocation", flow_run_name=_allocation_run_name, persist_result=False)
def dose_allocation(request: DoseAllocation, database_url: str | None = None) -> DoseStatus:
    """Place a clinic's order, allocate a dose to it and print its label (LABELED)."""
    number = place(database_url, request.order)
    dose = str(allocate(database_url, number, request.allocated_by, request.lot)["dose"])
    rename_flow_run(f"dose allocation · {number} · {label(dose)}")
    change_state(database_url, label(dose), dose, "LABELED", request.allocated_by)
    return dose_status(database_url, number)


@flow(
    name="dose-dispatch",
    flow_run_name=request_run_name("dose dispatch", "order"),
    persist_result=False,
)
def dose_dispatch(request: DoseDispatch, database_url: str | None = None) -> DoseStatus:
    """Run the dispatch gate for an allocated, labelled and signed dose; ship it."""
    _name_after_dose("dose dispatch", database_url, request.order)
    dispatch(database_url, request)
    return dose_status(database_url, request.order)


@flow(
    name="clinic-receipt",
    flow_run_name=request_run_name("clinic receipt", "order"),
    persist_result=False,
)
def clinic_receipt(request: ClinicReceipt, database_url: str | None = None) -> DoseStatus:
    """Record the clinic's receipt of a dispatched dose."""
    _name_after_dose("clinic receipt", database_url, request.order)
    receive(database_url, request)
    return dose_status(database_url, request.order)
