"""The lab's side of a clinic's order over the API: the orders queue, allocation (FEFO or a
named lot) and dispatch through the gate. Mounted under /lab by api/routers/lab.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, WithJsonSchema
from sqlmodel import Session

from api import idempotency
from api.enums import OrderStatusFilter
from api.idempotency import IdempotencyKey
from api.schemas import OrderOut, Page, Paging, Strict, order_out, page
from api.security import EngineDep, LabUser
from lims.db import read_session
from lims.materials.service import (
    get_material,
)
from lims.orders.queries import orders_visible_to
from lims.orders.service import allocate_order, dispatch_order, order_for
from lims.parties.models import User
from lims.quantity_fields import quantity_json_schema
from lims.units import QuantityKind

router = APIRouter()


@router.get("/orders", response_model=Page[OrderOut])
def orders(
    engine: EngineDep,
    user: LabUser,
    paging: Paging,
    status: Annotated[OrderStatusFilter | None, Query(max_length=16)] = None,
) -> dict[str, object]:
    """Every clinic's orders for the lab, oldest first, optionally of one status."""
    with read_session(engine) as session:
        listing = orders_visible_to(session, actor=user, status=status, **paging.window())
        return page(listing, lambda o: order_out(session, o))


class AllocateIn(Strict):
    lot_id: str | None = Field(default=None, description="a specific lot; default: FEFO")


@router.post("/orders/{number}/allocation", response_model=OrderOut)
def allocate(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    number: str,
    body: AllocateIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Allocate released stock (first expiry first out) with identity checked."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=actor, number=number)
        lot = get_material(session, body.lot_id) if body.lot_id else None
        allocate_order(session, order=order, actor=actor, lot=lot)
        return order_out(session, order_for(session, actor=actor, number=number))

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class DispatchIn(Strict):
    scanned_label: str = Field(max_length=40)
    shipper: str = Field(max_length=100)
    temperature_logger: str = Field(max_length=64)
    transit: Annotated[Any, WithJsonSchema(quantity_json_schema(QuantityKind.DURATION))] = Field(
        examples=["18 h"]
    )


@router.post("/orders/{number}/dispatch", response_model=OrderOut)
def dispatch(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    number: str,
    body: DispatchIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Run the dispatch gate (every failed check is named) and hand over to the courier."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=actor, number=number, lock=True)
        dispatch_order(
            session,
            order=order,
            actor=actor,
            scanned_label=body.scanned_label,
            shipper=body.shipper,
            temperature_logger=body.temperature_logger,
            transit=body.transit,
        )
        return order_out(session, order)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )
