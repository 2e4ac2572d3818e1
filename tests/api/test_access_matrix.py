"""Every endpoint x every role (and no sign-in): the expected status each time.

The matrix is built from the app's own routes, so a new endpoint without an entry here
fails this test instead of slipping through unchecked.
"""

import re

import pytest

from api.app import create_app
from lims.db import make_engine
from tests.api.conftest import Api
from tests.conftest import World

ALL = {"technician", "qa", "clinic", "auditor", "admin"}
LAB = {"technician", "qa", "admin"}
AUDIT = {"auditor", "qa", "admin"}
ALLOWED_BY_PREFIX = {
    "/api/v1/clinic/": {"clinic"},
    "/api/v1/lab/": LAB,
    "/api/v1/qa/": {"qa"},
    "/api/v1/audit/": AUDIT,
    "/api/v1/admin/": {"admin"},
    "/api/v1/auth/me": ALL,
    "/api/v1/auth/logout": ALL,
}
PUBLIC = {"/api/v1/auth/token", "/api/v1/auth/refresh"}


def _routes() -> list[tuple[str, str]]:
    """Every operation the OpenAPI schema publishes under /api/v1."""
    schema = create_app(make_engine("sqlite://")).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    )


ROUTES = _routes()


def _allowed(path: str) -> set[str]:
    for prefix, roles in ALLOWED_BY_PREFIX.items():
        if path.startswith(prefix):
            return roles
    raise AssertionError(f"{path} has no entry in the access matrix")


def test_every_route_is_in_the_matrix() -> None:
    assert len(ROUTES) >= 35
    for _method, path in ROUTES:
        if path not in PUBLIC:
            assert _allowed(path)


def _concrete(path: str) -> str:
    # Well-formed ids that exist nowhere: an allowed caller gets 404/409/422, never 5xx.
    samples = {
        "material_id": "X0001 26 999999 0",
        "coi_id": "COI-2222-2222-0",
        "number": "ORD-999999",
        "prefix": "abcdef123456",
        "result_id": "999999",
        "step_id": "999999",
    }
    return re.sub(r"{(\w+)}", lambda m: samples.get(m.group(1), "1"), path)


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ROUTES if r[1] not in PUBLIC], ids=lambda v: v
)
def test_role_matrix(api: Api, method: str, path: str) -> None:
    url = _concrete(path)
    anonymous = api.client.request(method, url, json={})
    assert anonymous.status_code == 401, (method, path, anonymous.text)
    for role in sorted(ALL):
        r = api.client.request(method, url, json={}, headers=api.as_(role))
        assert r.status_code < 500, (method, path, role, r.text)
        if role in _allowed(path):
            assert r.status_code not in (401, 403), (method, path, role, r.text)
        else:
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            assert role in r.json()["detail"]


def _place(
    api: Api, world: World, who: str = "clinic", coi: str | None = None, session: int = 1
) -> str:
    from datetime import timedelta

    from lims.db import utcnow

    r = api.client.post(
        "/api/v1/clinic/orders",
        headers=api.as_(who),
        json={
            "coi_id": coi or world.patient_coi,
            "dose": "1 vial",
            "session_number": session,
            "sessions_total": 6,
            "planned_use_at": (utcnow() + timedelta(days=3, weeks=4 * (session - 1))).isoformat(),
            "ship_to": "Ginza",
            "prescriber": "Dr. F",
            "consent_ref": "C-1",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


def test_clinic_isolation_everywhere(api: Api, world: World) -> None:
    c = api.client
    ginza = api.as_("clinic")
    osaka = api.as_("other_clinic")
    number = _place(api, world)
    patient = c.get(f"/api/v1/clinic/patients/{world.patient_coi}", headers=ginza)
    assert patient.status_code == 200
    # Osaka sees none of Ginza's patients or orders, by id, by list, or by writing to them.
    unknown_order = c.get("/api/v1/clinic/orders/ORD-999999", headers=osaka)
    probes = [
        c.get(f"/api/v1/clinic/patients/{world.patient_coi}", headers=osaka),
        c.get(f"/api/v1/clinic/orders/{number}", headers=osaka),
        c.post(f"/api/v1/clinic/orders/{number}/cancel", json={"reason": "x"}, headers=osaka),
        c.post(
            f"/api/v1/clinic/orders/{number}/receipt",
            headers=osaka,
            json={
                "received_at": "2026-01-01T00:00:00Z",
                "temperature": "4 degC",
                "received_by": "x",
            },
        ),
        c.post(
            "/api/v1/clinic/harvests",
            headers=osaka,
            json={
                "coi_id": world.patient_coi,
                "kind": "lipoaspirate",
                "quantity": "100 mL",
                "collected_at": "2026-01-01T00:00:00Z",
                "courier": "x",
            },
        ),
    ]
    for probe in probes:
        assert probe.status_code == 404, probe.text
        assert "GINZA" not in probe.text and "Ginza" not in probe.text
    assert unknown_order.status_code == 404
    assert (
        probes[1].json()["detail"].replace(number, "ORD-999999") == unknown_order.json()["detail"]
    )  # same answer as for an id that never existed
    order_elsewhere = c.post(
        "/api/v1/clinic/orders",
        headers=osaka,
        json={
            "coi_id": world.patient_coi,
            "dose": "1 vial",
            "session_number": 1,
            "sessions_total": 6,
            "planned_use_at": "2030-01-01T00:00:00Z",
            "ship_to": "x",
            "prescriber": "y",
            "consent_ref": "z",
        },
    )
    assert order_elsewhere.status_code == 404
    osaka_orders = c.get("/api/v1/clinic/orders", headers=osaka).json()["items"]
    osaka_patients = c.get("/api/v1/clinic/patients", headers=osaka).json()["items"]
    assert osaka_orders == []
    assert [p["coi_id"] for p in osaka_patients] == [world.other_patient_coi]
    ginza_patients = c.get("/api/v1/clinic/patients", headers=ginza).json()["items"]
    assert world.other_patient_coi not in [p["coi_id"] for p in ginza_patients]
    filtered = c.get("/api/v1/clinic/orders?status=PLACED", headers=osaka).json()["items"]
    assert filtered == []
    # And Ginza can still cancel its own order.
    assert (
        c.post(
            f"/api/v1/clinic/orders/{number}/cancel", json={"reason": "moved"}, headers=ginza
        ).json()["status"]
        == "CANCELLED"
    )


def test_pagination_is_bounded_and_stable(api: Api, world: World) -> None:
    numbers = [_place(api, world, session=n) for n in range(1, 6)]
    c = api.client
    first = c.get("/api/v1/clinic/orders?limit=2", headers=api.as_("clinic")).json()
    second = c.get(
        f"/api/v1/clinic/orders?limit=2&offset={first['next_offset']}", headers=api.as_("clinic")
    ).json()
    third = c.get("/api/v1/clinic/orders?limit=2&offset=4", headers=api.as_("clinic")).json()
    got = [o["number"] for o in first["items"] + second["items"] + third["items"]]
    assert got == numbers and third["next_offset"] is None
    too_many = c.get("/api/v1/clinic/orders?limit=5000", headers=api.as_("clinic"))
    assert too_many.status_code == 422 and too_many.json()["field"] == "limit"
