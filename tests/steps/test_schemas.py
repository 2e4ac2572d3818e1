"""The API's step request is lims.steps.schemas.StepIn; its bookings are what
record_step takes."""

import pytest
from pydantic import ValidationError

from api.routers.lab import create_step
from lims.steps.schemas import StepIn
from lims.steps.service import InputBooking, LossBooking, OutputRequest


def test_the_bookings_of_a_step_request() -> None:
    assert create_step.__annotations__["body"] is StepIn
    step = StepIn.model_validate(
        {
            "sop_code": "SVF-SEP",
            "inputs": [{"material_id": "X", "quantity": "100 mL"}],
            "outputs": [{"quantity": {"value": "1.9e7", "unit": "cells"}, "container": "T1"}],
            "losses": [{"material_id": "X", "quantity": "2 mL", "reason": "filter"}],
        }
    )
    assert step.bookings() == (
        [InputBooking("X", "100 mL")],
        [OutputRequest({"value": "1.9e7", "unit": "cells"}, container="T1")],
        [LossBooking("X", "2 mL", "filter")],
    )
    with pytest.raises(ValidationError, match="at least 1 item"):
        StepIn.model_validate({"sop_code": "SVF-SEP", "inputs": []})
    with pytest.raises(ValidationError, match="Extra inputs"):
        StepIn.model_validate({"sop_code": "SVF-SEP", "inputs": [{"material_id": "X"}], "x": 1})
