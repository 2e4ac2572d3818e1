"""The API's lists page by cursor as well as by offset (SQLite and PostgreSQL): a walk by
next_cursor sees every row once in id order, a row added mid-walk neither shifts nor
repeats one, the last page says so, and a cursor the API did not make is refused."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


def _walk(api: Api, path: str, who: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    seen: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        answer = api.client.get(f"/api/v1{path}", params=params, headers=api.as_(who))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages += 1
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert body["next_offset"] is None or pages == 1  # by cursor: no offsets after


def _register(api: Api, n: int, tag: str) -> list[str]:
    made = []
    for i in range(n):
        r = api.client.post(
            "/api/v1/clinic/patients",
            json={"identifier_1": "1980-01-01", "identifier_2": f"{tag}-{i}"},
            headers=api.as_("clinic"),
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["coi_id"])
    return made


def test_a_walk_by_cursor_sees_every_patient_once_in_order(api: Api) -> None:
    made = _register(api, 7, "CURSOR")
    seen, pages = _walk(api, "/clinic/patients", "clinic", limit=3)
    cois = [p["coi_id"] for p in seen]
    assert cois[-7:] == made and len(cois) == len(set(cois))
    assert pages == -(-len(cois) // 3)
    # Rows added between two pages come at the end, nothing shifts or repeats.
    first = api.client.get(
        "/api/v1/clinic/patients", params={"limit": 3}, headers=api.as_("clinic")
    ).json()
    late = _register(api, 2, "LATE")
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        body = api.client.get(
            "/api/v1/clinic/patients",
            params={"limit": 3, "cursor": cursor, "offset": 999},  # offset ignored
            headers=api.as_("clinic"),
        ).json()
        rest.extend(p["coi_id"] for p in body["items"])
        cursor = body["next_cursor"]
    walked = [p["coi_id"] for p in first["items"]] + rest
    assert walked == cois + late


def test_orders_and_materials_page_by_cursor_too(api: Api) -> None:
    materials, _ = _walk(api, "/lab/materials", "technician", limit=2)
    ids = [m["material_id"] for m in materials]
    assert len(ids) == len(set(ids))
    orders, _ = _walk(api, "/clinic/orders", "clinic", limit=2)
    numbers = [o["number"] for o in orders]
    assert numbers == sorted(numbers)


def test_a_cursor_the_api_did_not_make_is_refused(api: Api) -> None:
    for bad in ("not-a-cursor", "W1sicyIsIngiXV0", "x" * 600):
        answer = api.client.get(
            "/api/v1/clinic/patients", params={"cursor": bad}, headers=api.as_("clinic")
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == "cursor"
