"""Every resource the facade serves validates with fhir.resources (R4B), carries what the
mapping promises, and leaks nothing a pseudonymous Patient must not carry."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen
from fhir.resources.R4B.task import Task
from sqlalchemy import Engine

from lims.fhir import systems
from lims.fhir.systems import fhir_id
from tests.builders import Lab
from tests.conftest import World
from tests.fhir.helpers import FHIR_JSON, Api, get, post_order

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "ServiceRequest": ServiceRequest,
    "Task": Task,
    "BiologicallyDerivedProduct": BiologicallyDerivedProduct,
    "Specimen": Specimen,
}


def test_metadata_is_a_capability_statement_without_sign_in(api: Api) -> None:
    r = api.client.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(FHIR_JSON)
    CapabilityStatement.model_validate(r.json())
    statement = r.json()
    assert statement["fhirVersion"] == systems.FHIR_VERSION
    (rest,) = statement["rest"]
    served = {res["type"]: res for res in rest["resource"]}
    assert set(served) == set(MODELS)
    creatable = {t for t, res in served.items() if {"code": "create"} in res["interaction"]}
    assert creatable == {"ServiceRequest"}
    assert {p["name"] for p in served["ServiceRequest"]["searchParam"]} >= {
        "_id",
        "identifier",
        "patient",
        "status",
        "_count",
    }


def test_every_resource_validates_and_says_what_the_lims_holds(
    api: Api, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    lipo = lab.lipoaspirate("120 mL")
    harvest = api.client.post(
        "/api/v1/clinic/harvests",
        headers=api.as_("clinic"),
        json={
            "coi_id": world.patient_coi,
            "kind": "scalp_biopsy",
            "quantity": "12 mg",
            "collected_at": lab.at(1).isoformat(),
            "courier": "ColdChain AWB 1",
        },
    )
    assert harvest.status_code == 201, harvest.text
    created = post_order(api, world.patient_coi)
    assert created.status_code == 201, created.text
    number = created.json()["id"]
    allocated = api.client.post(
        f"/api/v1/lab/orders/{number}/allocation", headers=api.as_("technician"), json={}
    )
    assert allocated.status_code == 200, allocated.text
    dose = allocated.json()["dose_material"]

    patient = get(api, f"Patient/{fhir_id(world.patient_coi)}").json()
    Patient.model_validate(patient)
    assert set(patient) == {"resourceType", "id", "identifier"}
    assert patient["identifier"] == [
        {
            "system": systems.COI,
            "value": world.patient_coi,
            "type": {"text": "chain-of-identity id"},
        }
    ]

    request = get(api, f"ServiceRequest/{number}").json()
    ServiceRequest.model_validate(request)
    assert (request["status"], request["intent"]) == ("active", "order")
    assert request["subject"]["reference"] == f"Patient/{fhir_id(world.patient_coi)}"
    assert request["quantityQuantity"] == {"value": 4, "unit": "mL"}

    task = get(api, f"Task/{number}").json()
    Task.model_validate(task)
    assert task["status"] == "in-progress"
    assert task["businessStatus"]["coding"][0]["code"] == "ALLOCATED"
    assert task["output"][0]["valueReference"]["reference"] == (
        f"BiologicallyDerivedProduct/{fhir_id(dose['material_id'])}"
    )

    product = get(api, f"BiologicallyDerivedProduct/{fhir_id(dose['material_id'])}").json()
    BiologicallyDerivedProduct.model_validate(product)
    assert {(i["system"], i["value"]) for i in product["identifier"]} == {
        (systems.MATERIAL, dose["material_id"]),
        (systems.LOT, lot),
    }
    assert product["status"] == "available"
    assert product["quantity"] == 1
    expiry = {e["url"]: e for e in product["extension"]}[systems.EXPIRATION_DATE]
    assert expiry["valueDateTime"][:16] == dose["expires_at"][:16]
    assert product["collection"]["source"]["reference"] == f"Patient/{fhir_id(world.patient_coi)}"

    specimens = get(api, "Specimen", who="technician", patient=world.patient_coi).json()
    Bundle.model_validate(specimens)
    kinds = {e["resource"]["type"]["coding"][0]["code"]: e["resource"] for e in specimens["entry"]}
    assert set(kinds) == {"lipoaspirate", "scalp_biopsy"}
    assert kinds["lipoaspirate"]["id"] == fhir_id(lipo)
    assert kinds["lipoaspirate"]["collection"]["quantity"] == {"value": 120, "unit": "mL"}
    assert kinds["scalp_biopsy"]["id"] == fhir_id(harvest.json()["material_id"])
    assert kinds["scalp_biopsy"]["status"] == "available"
    for entry in specimens["entry"]:
        Specimen.model_validate(entry["resource"])

    for kind, model in MODELS.items():
        bundle = get(api, kind, who="technician").json()
        Bundle.model_validate(bundle)
        assert bundle["entry"], kind
        for entry in bundle["entry"]:
            model.model_validate(entry["resource"])
            assert entry["fullUrl"].endswith(f"/fhir/{kind}/{entry['resource']['id']}")


def test_a_patient_carries_no_clinic_identifier(api: Api, world: World) -> None:
    text = get(api, "Patient", who="admin").text
    for secret in ("1980-04-12", "GHC-000123", "1975-11-02", "OSC-000456", "Ginza", "GINZA"):
        assert secret not in text
    assert world.patient_coi in text
