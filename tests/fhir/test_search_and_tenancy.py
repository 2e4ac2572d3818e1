"""Search parameters, paging by Bundle links, and clinic isolation: another clinic's
resources are 'not found' (read) or absent (search); lab staff and auditors see all."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine

from lims.fhir import systems
from lims.fhir.systems import fhir_id
from tests.builders import Lab
from tests.conftest import World
from tests.fhir.helpers import Api, get, post_order

KINDS = ("Patient", "ServiceRequest", "Task", "BiologicallyDerivedProduct", "Specimen")


def _ids(bundle: dict[str, Any]) -> list[str]:
    Bundle.model_validate(bundle)
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def _orders(api: Api, coi: str, n: int, who: str = "clinic") -> list[str]:
    numbers = []
    for i in range(n):
        r = post_order(api, coi, who=who, session=i + 1)
        assert r.status_code == 201, r.text
        numbers.append(r.json()["id"])
    return numbers


def test_search_by_id_identifier_patient_and_status(api: Api, world: World) -> None:
    mine = _orders(api, world.patient_coi, 2)
    theirs = _orders(api, world.other_patient_coi, 1, who="other_clinic")
    cancel = api.client.post(
        f"/api/v1/clinic/orders/{mine[1]}/cancel",
        headers=api.as_("clinic"),
        json={"reason": "patient moved the session"},
    )
    assert cancel.status_code == 200, cancel.text

    assert _ids(get(api, "ServiceRequest").json()) == mine
    assert _ids(get(api, "ServiceRequest", _id=mine[1]).json()) == [mine[1]]
    assert _ids(get(api, "ServiceRequest", _id=",".join(mine)).json()) == mine
    by_identifier = get(api, "ServiceRequest", identifier=f"{systems.ORDER}|{mine[0]}")
    assert _ids(by_identifier.json()) == [mine[0]]
    other_system = get(api, "ServiceRequest", identifier=f"{systems.LOT}|{mine[0]}")
    assert _ids(other_system.json()) == []
    assert _ids(get(api, "ServiceRequest", status="revoked").json()) == [mine[1]]
    assert _ids(get(api, "ServiceRequest", status="active,completed").json()) == [mine[0]]
    assert _ids(get(api, "Task", status="cancelled").json()) == [mine[1]]
    assert _ids(get(api, "Task", status="requested").json()) == [mine[0]]
    patient = f"Patient/{fhir_id(world.patient_coi)}"
    assert _ids(get(api, "ServiceRequest", patient=patient).json()) == mine
    assert _ids(get(api, "Task", patient=world.patient_coi).json()) == mine
    # Lab staff see every clinic's; the other clinic's patient filters to its order.
    everyone = _ids(get(api, "ServiceRequest", who="technician").json())
    assert everyone == mine + theirs
    assert (
        _ids(get(api, "ServiceRequest", who="auditor", subject=world.other_patient_coi).json())
        == theirs
    )
    assert _ids(get(api, "Patient", identifier=world.patient_coi).json()) == [
        fhir_id(world.patient_coi)
    ]


def test_paging_follows_next_and_previous_links(api: Api, world: World) -> None:
    numbers = _orders(api, world.patient_coi, 5)
    seen: list[str] = []
    r = get(api, "ServiceRequest", _count=2, status="active")
    pages = 0
    while True:
        bundle = r.json()
        seen += _ids(bundle)
        pages += 1
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert "status=active" in links["self"]
        if pages > 1:
            assert "previous" in links
        if "next" not in links:
            break
        url = urlsplit(links["next"])
        r = api.client.get(f"{url.path}?{url.query}", headers=api.as_("clinic"))
        assert r.status_code == 200, r.text
    assert seen == numbers
    assert pages == 3
    assert get(api, "ServiceRequest").json()["total"] == 5


def test_another_clinics_resources_are_not_found(api: Api, engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    lipo = lab.lipoaspirate()
    (number,) = _orders(api, world.patient_coi, 1)
    allocated = api.client.post(
        f"/api/v1/lab/orders/{number}/allocation", headers=api.as_("technician"), json={}
    )
    dose = allocated.json()["dose_material"]["material_id"]
    ids = {
        "Patient": fhir_id(world.patient_coi),
        "ServiceRequest": number,
        "Task": number,
        "BiologicallyDerivedProduct": fhir_id(dose),
        "Specimen": fhir_id(lipo),
    }
    for kind, resource_id in ids.items():
        for who in ("clinic", "technician", "qa", "auditor", "admin"):
            assert get(api, f"{kind}/{resource_id}", who=who).status_code == 200, (kind, who)
        refused = get(api, f"{kind}/{resource_id}", who="other_clinic")
        assert refused.status_code == 404, (kind, refused.text)
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert refused.json()["issue"][0]["code"] == "not-found"
        assert resource_id not in refused.text.replace(f"{kind}/{resource_id}", "")
        assert _ids(get(api, kind, who="other_clinic", _id=resource_id).json()) == []
    # Searching by the other clinic's patient finds nothing, rather than an error.
    for kind in ("ServiceRequest", "Task", "BiologicallyDerivedProduct", "Specimen"):
        assert _ids(get(api, kind, who="other_clinic", patient=world.patient_coi).json()) == []
    # The dose can be found by its lot, and by the lot only where the order is visible.
    lot_search = get(api, "BiologicallyDerivedProduct", who="clinic")
    (product,) = lot_search.json()["entry"]
    lot = next(i["value"] for i in product["resource"]["identifier"] if i["system"] == systems.LOT)
    by_lot = {"identifier": f"{systems.LOT}|{lot}"}
    assert _ids(get(api, "BiologicallyDerivedProduct", **by_lot).json()) == [fhir_id(dose)]
    assert _ids(get(api, "BiologicallyDerivedProduct", who="other_clinic", **by_lot).json()) == []
    assert _ids(get(api, "BiologicallyDerivedProduct", status="unavailable").json()) == []


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_ids_are_not_found(api: Api, kind: str) -> None:
    r = get(api, f"{kind}/NOPE-123", who="admin")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
