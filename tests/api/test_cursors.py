"""The API's lists page by cursor as well as by offset (SQLite and PostgreSQL): a walk by
next_cursor sees every row once in id order, a row added mid-walk neither shifts nor
repeats one, the last page says so, and a cursor the API did not make is refused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from lims.db import write_session
from lims.settings import get_notification_settings
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.api.conftest import Api
from tests.builders import Lab, World


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


def test_orders_and_materials_page_by_cursor_too(api: Api, engine: Engine, world: World) -> None:
    Lab.start(engine, world).lot()
    materials, pages = _walk(api, "/lab/materials", "technician", limit=2)
    ids = [m["material_id"] for m in materials]
    assert len(ids) == len(set(ids)) and len(ids) >= 5 and pages >= 3
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


def test_keys_contacts_and_deliveries_walk_in_their_documented_order(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API keys and contacts are read oldest first, a webhook's delivery log newest first
    (the last attempt is what a desk looks for): a walk by cursor gives each row once, in
    that order."""
    keys = []
    for i in range(5):
        made = api.client.post(
            "/api/v1/clinic/api-keys", json={"name": f"EMR {i}"}, headers=api.as_("clinic")
        )
        assert made.status_code == 201, made.text
        keys.append(made.json()["prefix"])
    listed, pages = _walk(api, "/clinic/api-keys", "clinic", limit=2)
    assert [k["prefix"] for k in listed] == keys and pages == 3
    assert all(k["key"] is None for k in listed)  # the secret is shown once, at creation

    emails = [f"desk{i}@ginza.example" for i in range(3)]
    for email in emails:
        made = api.client.post(
            "/api/v1/clinic/contacts", json={"email": email}, headers=api.as_("clinic")
        )
        assert made.status_code == 201, made.text
    contacts, _ = _walk(api, "/clinic/contacts", "clinic", limit=2)
    assert [c["email"] for c in contacts] == emails
    assert _walk(api, "/clinic/contacts", "other_clinic", limit=2)[0] == []

    monkeypatch.setenv("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_notification_settings.cache_clear()
    try:
        endpoint = api.client.post(
            "/api/v1/clinic/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["webhook.ping"]},
            headers=api.as_("clinic"),
        )
        assert endpoint.status_code == 201, endpoint.text
        base = f"/clinic/webhooks/{endpoint.json()['id']}"
        pings = []
        for _ in range(3):
            ping = api.client.post(f"/api/v1{base}/ping", headers=api.as_("clinic"))
            assert ping.status_code == 202, ping.text
            pings.append(ping.json()["message_id"])
        log, _ = _walk(api, f"{base}/deliveries", "clinic", limit=2)
        ids = [d["id"] for d in log]
        assert len(log) == 3 and ids == sorted(ids, reverse=True)
    finally:
        get_notification_settings.cache_clear()


def test_custody_and_signatures_walk_to_the_same_rows_as_one_page(
    api: Api, engine: Engine, world: World
) -> None:
    """An auditor's custody trail and signature list, walked two at a time, are exactly the
    one-page list, oldest first (custody by seq)."""
    lab = Lab.start(engine, world)
    lot = lab.lot()  # lipoaspirate to a released lot: events and a release signature
    password = lab.ensure_password(world.qa_id)
    for meaning in (Meaning.REVIEWED, Meaning.APPROVED):
        with write_session(engine) as s:
            sign(
                s,
                user=lab.user(s, world.qa_id),
                password=password,
                meaning=meaning,
                record_type="material",
                record_id=lot,
            )
    materials, _ = _walk(api, "/lab/materials", "technician", limit=200)
    longest_trail = most_signatures = 0
    for m in materials:
        path = f"/audit/materials/{m['material_id']}"
        whole = api.client.get(
            f"/api/v1{path}/custody", params={"limit": 200}, headers=api.as_("auditor")
        ).json()
        assert whole["next_cursor"] is None
        trail, _ = _walk(api, f"{path}/custody", "auditor", limit=2)
        assert trail == whole["items"]
        seqs = [e["seq"] for e in trail]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        signatures = api.client.get(
            f"/api/v1{path}/signatures", params={"limit": 200}, headers=api.as_("auditor")
        ).json()["items"]
        assert _walk(api, f"{path}/signatures", "auditor", limit=1)[0] == signatures
        longest_trail = max(longest_trail, len(trail))
        most_signatures = max(most_signatures, len(signatures))
    assert longest_trail > 2 and most_signatures == 3, (longest_trail, most_signatures)
