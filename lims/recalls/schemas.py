"""The recall's inputs, shared by the API, the pages and the flow (validated once)."""

from __future__ import annotations

from pydantic import Field

from lims.schemas import Strict


class RecallOpenIn(Strict):
    """QA recalls a released lot: the reason, and the password again for the signature."""

    material_id: str = Field(max_length=40, examples=["X0001 26 000047 K"])
    reason: str = Field(min_length=1, max_length=2000)
    password: str = Field(max_length=256, description="re-entered for the signature")


class RecallCloseIn(Strict):
    """QA closes a recall; without every clinic's acknowledgement, an override reason."""

    password: str = Field(max_length=256, description="re-entered for the signature")
    override_reason: str | None = Field(default=None, max_length=2000)


class AcknowledgementIn(Strict):
    """The clinic has acted on the recall (what it did, optionally)."""

    note: str | None = Field(default=None, max_length=2000)
