from datetime import timedelta

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
