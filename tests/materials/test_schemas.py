"""Collected material and storage positions: one model each for the API and the flows."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from api.routers.lab import LocationIn
from api.schemas import HarvestIn
from flows.tasks import Arrival, StoragePosition
from lims.identity.codes import new_coi_id
from lims.materials.schemas import Collected, StoragePositionDetails
from lims.units import QuantityKind

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)


def test_a_collected_quantity_is_in_its_kinds_dimension() -> None:
    assert issubclass(HarvestIn, Collected) and issubclass(Arrival, Collected)
    harvest = HarvestIn.model_validate(
        {
            "coi_id": "x",
            "kind": "scalp_biopsy",
            "quantity": "12 mg",
            "collected_at": AT,
            "courier": "c",
        }
    )
    arrival = Arrival.model_validate(
        {
            "kind": "lipoaspirate",
            "patient": new_coi_id(),
            "use": "autologous",
            "quantity": {"value": "120", "unit": "mL"},
            "collected_at": AT,
            "shipment_ref": "S-1",
            "received_by": "tanaka",
        }
    )
    assert harvest.quantity.kind is QuantityKind.MASS and harvest.quantity.canonical == 12
    assert arrival.quantity.kind is QuantityKind.VOLUME and arrival.quantity.canonical == 120
    assert arrival.model_dump(mode="json")["quantity"] == {"value": "120", "unit": "mL"}
    with pytest.raises(ValidationError, match="expected a volume, got 3 kg"):
        Collected.model_validate({"kind": "lipoaspirate", "quantity": "3 kg", "collected_at": AT})
    with pytest.raises(ValidationError, match="expected a mass, got 3 mL"):
        HarvestIn.model_validate(
            {
                "coi_id": "x",
                "kind": "scalp_biopsy",
                "quantity": "3 mL",
                "collected_at": AT,
                "courier": "c",
            }
        )
    with pytest.raises(ValidationError, match="timezone"):
        Collected.model_validate(
            {"kind": "lipoaspirate", "quantity": "3 mL", "collected_at": datetime(2026, 1, 1)}
        )
    with pytest.raises(ValidationError, match="depends on a valid kind"):
        Collected.model_validate({"kind": "soup", "quantity": "3 mL", "collected_at": AT})


def test_a_storage_position_is_one_model() -> None:
    assert issubclass(LocationIn, StoragePositionDetails)
    assert issubclass(StoragePosition, StoragePositionDetails)
    where = {"site": "LAB1", "freezer": "F1", "rack": "R1", "box": "B1", "position": "A1"}
    api = LocationIn.model_validate({**where, "temperature": "-80 degC"})
    flow = StoragePosition.model_validate({**where, "temperature": {"value": "-80", "unit": "°C"}})
    assert api.temperature is not None and flow.temperature is not None
    assert api.temperature.canonical == flow.temperature.canonical == -80
    assert str(flow) == "LAB1/F1/R1/B1/A1"
    with pytest.raises(ValidationError, match="expected a temperature"):
        LocationIn.model_validate({**where, "temperature": "80 mL"})
    with pytest.raises(ValidationError, match="at most 16 characters"):
        StoragePosition.model_validate({**where, "position": "P" * 17})
