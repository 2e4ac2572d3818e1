"""QC and QA input as the API gives it: results (judged against the specification by
``enter_result``), corrections, deviations, release and donor eligibility."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from lims.quantity_fields import quantity_json_schema
from lims.schemas import Strict, UtcTime

# Read against the test's specification by the service: a quantity, or words.
QcValue = Annotated[Any, WithJsonSchema(quantity_json_schema(None, text=True))]


class QcResultIn(Strict):
    """One QC result for a material; its value is read against the test's specification."""

    material_id: str
    test_code: str = Field(max_length=32)
    value: QcValue = Field(examples=["no growth", "0.8 EU/mL"])
    tested_at: UtcTime | None = None
    method: str | None = Field(default=None, max_length=200)


class CorrectionIn(Strict):
    """A corrected or retested value, with the reason."""

    value: QcValue
    reason: str = Field(min_length=1, max_length=2000)


class DeviationIn(Strict):
    material_id: str
    description: str = Field(min_length=1, max_length=4000)


class CloseIn(Strict):
    resolution: str = Field(min_length=1, max_length=4000)


class ReleaseIn(Strict):
    """QA's release: the password is entered again for the signature."""

    material_id: str
    password: str = Field(max_length=256, description="re-entered for the signature")
    comment: str | None = Field(default=None, max_length=2000)


class EligibilityIn(Strict):
    coi_id: str
    eligible: bool
    basis: str = Field(min_length=1, max_length=4000)
