from datetime import timedelta
from typing import Any

from prefect.utilities.callables import parameter_schema
from sqlalchemy import Engine

from flows.intake import lipoaspirate_intake
from lims.db import utcnow
from tests.conftest import World
from tests.flows import requests as rq
from tests.flows.conftest import counts, run


def _request(world: World, **over: object) -> dict[str, object]:
    now = utcnow()
    return {
        "patient": world.patient_coi,
        "volume": "120 mL",
        "collected_at": (now - timedelta(hours=30)).isoformat(),
        "shipment_ref": "GINZA-SHIP-0001",
        "received_by": "tanaka",
        "inspection": {
            "performed_by": "tanaka",
            "performed_at": (now - timedelta(hours=1)).isoformat(),
            "parameters": rq.INTAKE,
        },
        **over,
    }


def test_intake_registers_and_accepts(engine: Engine, world: World, db_url: str) -> None:
    request = _request(world)
    result = run(lipoaspirate_intake, request=request, database_url=db_url)
    assert (result.state, result.outcome) == ("ACCEPTED", "accepted")
    assert result.time_since_harvest == "29 h"
    assert result.warnings and "above 24 h" in result.warnings[0]
    before = counts(engine)
    again = run(lipoaspirate_intake, request=request, database_url=db_url)
    assert again.lipoaspirate == result.lipoaspirate
    assert counts(engine) == before


def test_sop_parameters_are_typed_from_the_catalogue(
    engine: Engine, world: World, db_url: str
) -> None:
    """The inspection's parameters are the model derived from LIPO-INTAKE: a volume in
    kilograms or a donor site the SOP does not list fails the run before any write."""
    for change, message in (
        ({"received_volume": "3 kg"}, "parameters.received_volume: expected a volume, got 3 kg"),
        ({"donor_site": "scalp"}, "parameters.donor_site: Input should be 'abdomen'"),
        ({"time_since_harvest": "4 h"}, "parameters.time_since_harvest: Extra inputs"),
    ):
        request = _request(world, shipment_ref="GINZA-SHIP-BAD")
        inspection: Any = request["inspection"]
        request["inspection"] = {**inspection, "parameters": {**rq.INTAKE, **change}}
        before = counts(engine)
        state = run(lipoaspirate_intake, request=request, database_url=db_url, return_state=True)
        assert state.is_failed() and message in (state.message or ""), state.message
        assert counts(engine) == before
    schema = parameter_schema(lipoaspirate_intake.fn).model_dump()["definitions"]
    volume = schema["LipoIntakeParameters"]["properties"]["received_volume"]
    assert volume["examples"] == ["120 mL"] and "1 mL to 2000 mL" in volume["description"]
