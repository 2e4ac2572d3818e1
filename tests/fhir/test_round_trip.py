"""The round trip a clinic's system makes, over a real HTTP server on loopback: build a
ServiceRequest with fhir.resources, POST it, and once the lab allocates, follow the Task
to the BiologicallyDerivedProduct and read the dose back."""

from __future__ import annotations

import httpx
from fhir.resources.R4B.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import Engine

from lims.fhir import systems
from lims.fhir.systems import fhir_id
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.fhir.helpers import FHIR_JSON, Api, service_request
from tests.live_server import live_server


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_post_a_service_request_and_read_the_product_back(
    api: Api, engine: Engine, world: World
) -> None:
    lot = Lab.start(engine, world).lot()
    with live_server(engine) as base, httpx.Client(base_url=base, timeout=30) as http:
        clinic = _token(http, "ginza-desk")
        lab = _token(http, "tanaka")
        order = service_request(world.patient_coi)
        posted = http.post(
            "/fhir/ServiceRequest",
            content=order.model_dump_json(exclude_none=True),
            headers=clinic | {"Content-Type": FHIR_JSON, "Idempotency-Key": "ehr-42"},
        )
        assert posted.status_code == 201, posted.text
        created = ServiceRequest.model_validate(posted.json())
        assert created.id is not None
        assert posted.headers["location"] == f"{base}/fhir/ServiceRequest/{created.id}"

        task = http.get(f"/fhir/Task/{created.id}", headers=clinic).json()
        assert Task.model_validate(task).status == "requested"
        assert "output" not in task

        allocated = http.post(f"/api/v1/lab/orders/{created.id}/allocation", headers=lab, json={})
        assert allocated.status_code == 200, allocated.text
        dose = allocated.json()["dose_material"]

        task = http.get(f"/fhir/Task/{created.id}", headers=clinic).json()
        assert Task.model_validate(task).status == "in-progress"
        reference = task["output"][0]["valueReference"]["reference"]
        assert reference == f"BiologicallyDerivedProduct/{fhir_id(dose['material_id'])}"
        read = http.get(f"/fhir/{reference}", headers=clinic)
        assert read.headers["content-type"].startswith(FHIR_JSON)
        product = read.json()
        BiologicallyDerivedProduct.model_validate(product)
        identifiers = {i["system"]: i["value"] for i in product["identifier"]}
        assert identifiers == {systems.MATERIAL: dose["material_id"], systems.LOT: lot}
        assert product["request"] == [{"reference": f"ServiceRequest/{created.id}"}]
        assert product["storage"][0]["duration"]["end"][:16] == dose["expires_at"][:16]

        # The same search a clinic's system runs to find what is on its way.
        bundle = http.get(
            "/fhir/BiologicallyDerivedProduct",
            params={"patient": f"Patient/{fhir_id(world.patient_coi)}", "status": "available"},
            headers=clinic,
        ).json()
        Bundle.model_validate(bundle)
        assert [e["resource"]["id"] for e in bundle["entry"]] == [product["id"]]
        # A retry of the POST (a lost response) gives the same order, not a second one.
        again = http.post(
            "/fhir/ServiceRequest",
            content=order.model_dump_json(exclude_none=True),
            headers=clinic | {"Content-Type": FHIR_JSON, "Idempotency-Key": "ehr-42"},
        )
        assert again.status_code == 201 and again.json()["id"] == created.id
