"""A dose an open recall reached is "unavailable" in FHIR, read and searched: the received
one (RECALLED) and the one still in the lab, which keeps its state (ALLOCATED) while the
dispatch gate blocks it (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from lims.db import read_session
from lims.fhir.systems import fhir_id
from lims.materials.service import get_material
from tests.builders import Lab
from tests.conftest import World
from tests.fhir.helpers import Api, get
from tests.recalls.helpers import reached, recall


def _status(api: Api, dose: str, who: str) -> Any:
    answer = get(api, f"BiologicallyDerivedProduct/{fhir_id(dose)}", who=who)
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


def _found(api: Api, who: str, status: str) -> list[str]:
    bundle = get(api, "BiologicallyDerivedProduct", who=who, status=status).json()
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_a_recalled_dose_is_unavailable_read_and_searched(
    api: Api, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    r = reached(lab)
    assert _status(api, r.ginza_dose, "clinic") == "available"
    assert _status(api, r.osaka_dose, "other_clinic") == "available"
    assert fhir_id(r.osaka_dose) in _found(api, "other_clinic", "available")
    recall(lab, r.lot)
    with read_session(engine) as s:
        assert get_material(s, r.osaka_dose).state == "ALLOCATED"  # blocked, not moved
    assert _status(api, r.ginza_dose, "clinic") == "unavailable"
    assert _status(api, r.osaka_dose, "other_clinic") == "unavailable"
    assert fhir_id(r.osaka_dose) not in _found(api, "other_clinic", "available")
    assert fhir_id(r.osaka_dose) in _found(api, "other_clinic", "unavailable")
