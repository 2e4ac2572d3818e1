"""Parties as the API gives them: patients (registered by their clinic), and the clinics,
users, instruments and reagent lots an administrator adds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lims.schemas import Strict, UtcTime


class PatientIn(Strict):
    identifier_1: str = Field(min_length=1, max_length=64, examples=["1980-04-12"])
    identifier_2: str = Field(min_length=1, max_length=64, examples=["GHC-000123"])
    donor_type: Literal["autologous_patient", "allogeneic_donor", "recipient"] = (
        "autologous_patient"
    )


class ClinicIn(Strict):
    code: str = Field(min_length=2, max_length=16, pattern=r"^[A-Za-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)


class UserIn(Strict):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$")
    printed_name: str = Field(min_length=1, max_length=200)
    role: Literal["technician", "qa", "clinic", "auditor", "admin"]
    clinic_code: str | None = Field(default=None, max_length=16)
    password: str = Field(min_length=1, max_length=256)


class InstrumentIn(Strict):
    asset_tag: str = Field(min_length=1, max_length=32)
    instrument_type: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    calibration_due: UtcTime


class ReagentIn(Strict):
    reagent_type: str = Field(min_length=1, max_length=40)
    lot_number: str = Field(min_length=1, max_length=64)
    supplier: str = Field(min_length=1, max_length=200)
    expires_at: UtcTime
