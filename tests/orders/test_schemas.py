"""One order model for the API, the portal's plain values and the dose flows."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from api.schemas import OrderIn, ReceiptIn
from flows.dispatch import ClinicReceipt, OrderRequest
from lims.errors import InvalidInput
from lims.identity.codes import new_coi_id
from lims.orders.models import Product
from lims.orders.schemas import OrderDetails, ReceiptDetails, order_details, parse_dose
from lims.units import QuantityKind

BASE: dict[str, object] = {
    "dose": "8 mL",
    "session_number": 2,
    "sessions_total": 6,
    "planned_use_at": datetime(2031, 1, 1, 9, tzinfo=UTC),
    "ship_to": " Ginza ",
    "prescriber": "Dr. F",
    "consent_ref": "C-1",
}


def test_the_api_and_the_flows_order_with_the_same_model() -> None:
    assert issubclass(OrderIn, OrderDetails) and issubclass(OrderRequest, OrderDetails)
    assert issubclass(ReceiptIn, ReceiptDetails) and issubclass(ClinicReceipt, ReceiptDetails)
    api = OrderIn.model_validate({**BASE, "coi_id": "x"})
    flow = OrderRequest.model_validate({**BASE, "patient": new_coi_id(), "placed_by": "desk"})
    plain = order_details(**BASE)  # type: ignore[arg-type]
    for order in (api, flow, plain):
        assert order.dose.kind is QuantityKind.VOLUME and order.dose.canonical == 8
        assert order.ship_to == "Ginza" and order.product is Product.AAPE
    # The same refusal, with the same words, whichever way the order comes in.
    bad = {**BASE, "dose": "3 kg"}
    with pytest.raises(ValidationError, match="largest dose 10 mg for AAPE"):
        OrderIn.model_validate({**bad, "coi_id": "x"})
    with pytest.raises(ValidationError, match="largest dose 10 mg for AAPE"):
        OrderRequest.model_validate({**bad, "patient": new_coi_id(), "placed_by": "desk"})
    with pytest.raises(InvalidInput, match="largest dose 10 mg for AAPE") as refused:
        order_details(**bad)  # type: ignore[arg-type]
    assert refused.value.field == "dose"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"product": "dp_cells"}, "dose", "a dp_cells dose is given in cells; got 8 mL"),
        ({"product": "elixir"}, "product", "product is one of aape, dp_cells"),
        ({"product": ["aape"]}, "product", "product is one of"),
        ({"session_number": 7}, "session_number", "session 7 is past the course.s last session 6"),
        ({"sessions_total": 13}, "sessions_total", "less than or equal to 12"),
        ({"planned_use_at": datetime(2031, 1, 1)}, "planned_use_at", "timezone info: give the"),
        ({"ship_to": "   "}, "ship_to", "at least 1 character"),
        ({"consent_ref": "x" * 65}, "consent_ref", "at most 64"),
        ({"notes": "n" * 2001}, "notes", "at most 2000"),
        ({"ship_to": "Ginza\x00"}, None, "NUL"),
    ],
)
def test_each_rule_is_checked_once_here(
    change: dict[str, object], field: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        order_details(**{**BASE, **change})  # type: ignore[arg-type]
    assert refused.value.field == field


def test_a_dose_is_parsed_by_its_unit() -> None:
    assert parse_dose(product=Product.AAPE, raw="2 vials").kind is QuantityKind.VIALS
    assert parse_dose(product=Product.AAPE, raw="500 ug").kind is QuantityKind.MASS
    assert parse_dose(product=Product.DP_CELLS, raw="1e6 cells").kind is QuantityKind.CELLS
    with pytest.raises(InvalidInput, match="got 1 vial"):
        parse_dose(product=Product.DP_CELLS, raw="1 vial")


def test_a_receipt_is_typed() -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    receipt = ReceiptDetails.model_validate(
        {"received_at": at, "temperature": "4.5 degC", "received_by": " Nurse K "}
    )
    assert receipt.temperature.kind is QuantityKind.TEMPERATURE
    assert receipt.received_by == "Nurse K"
    with pytest.raises(ValidationError, match="expected a temperature"):
        ReceiptDetails.model_validate(
            {"received_at": at, "temperature": "4 mL", "received_by": "K"}
        )
