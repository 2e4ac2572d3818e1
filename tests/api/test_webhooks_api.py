"""The clinic's webhook API over HTTP: register (secret shown once), list, SSRF refused by
default, ping delivered to a real receiver and logged, rotation, redelivery, disable, contacts;
another clinic's endpoint is 404."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook

from lims.notifications import delivery
from lims.settings import NotificationSettings, get_notification_settings
from tests.api.conftest import Api
from tests.notifications.receivers import WebhookReceiver


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotificationSettings]:
    monkeypatch.setenv("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_notification_settings.cache_clear()
    yield get_notification_settings()
    get_notification_settings.cache_clear()


def test_refused_targets_by_default(api: Api) -> None:
    get_notification_settings.cache_clear()
    r = api.client.post(
        "/api/v1/clinic/webhooks",
        headers=api.as_("clinic"),
        json={"url": "https://127.0.0.1:8443/x"},
    )
    assert r.status_code == 422 and "loopback" in r.text
    lab = api.client.post(
        "/api/v1/clinic/webhooks", headers=api.as_("technician"), json={"url": "https://x.example"}
    )
    assert lab.status_code == 403


def test_register_ping_log_rotate_redeliver_and_tenancy(
    api: Api, engine: Engine, private_targets: NotificationSettings
) -> None:
    receiver = WebhookReceiver().start()
    try:
        r = api.client.post(
            "/api/v1/clinic/webhooks",
            headers=api.as_("clinic"),
            json={"url": receiver.url, "events": ["webhook.ping", "order.status_changed"]},
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()
        assert endpoint["secret"].startswith("whsec_")
        listed = api.client.get("/api/v1/clinic/webhooks", headers=api.as_("clinic")).json()
        assert [e["id"] for e in listed] == [endpoint["id"]] and listed[0]["secret"] is None
        base = f"/api/v1/clinic/webhooks/{endpoint['id']}"
        assert (
            api.client.get("/api/v1/clinic/webhooks", headers=api.as_("other_clinic")).json() == []
        )
        for path in ("/rotation", "/ping"):
            assert api.client.post(base + path, headers=api.as_("other_clinic")).status_code == 404
        assert (
            api.client.get(base + "/deliveries", headers=api.as_("other_clinic")).status_code == 404
        )
        ping = api.client.post(base + "/ping", headers=api.as_("clinic"))
        assert ping.status_code == 202
        delivery.drain(engine, settings=private_targets)
        (got,) = receiver.received
        assert got.headers["webhook-id"] == ping.json()["message_id"]
        assert Webhook(endpoint["secret"]).verify(got.body, got.headers)["type"] == "webhook.ping"
        log = api.client.get(base + "/deliveries", headers=api.as_("clinic")).json()["items"]
        assert log[0]["status"] == "DELIVERED" and [a["ok"] for a in log[0]["attempts"]] == [True]
        again = f"/api/v1/clinic/deliveries/{log[0]['id']}/redelivery"
        assert api.client.post(again, headers=api.as_("other_clinic")).status_code == 404
        assert api.client.post(again, headers=api.as_("clinic")).status_code == 202
        rotated = api.client.post(base + "/rotation", headers=api.as_("clinic")).json()
        assert rotated["secret"] != endpoint["secret"]
        delivery.drain(engine, settings=private_targets)
        assert len(receiver.received) == 2
        assert Webhook(rotated["secret"]).verify(
            receiver.received[1].body, receiver.received[1].headers
        )
        off = api.client.post(base + "/enabled", headers=api.as_("clinic"), json={"enabled": False})
        assert off.json()["enabled"] is False
        assert api.client.post(base + "/ping", headers=api.as_("clinic")).status_code == 409
    finally:
        receiver.stop()
    c = api.client.post(
        "/api/v1/clinic/contacts",
        headers=api.as_("clinic"),
        json={"email": "desk@ginza.example", "language": "ja"},
    )
    assert c.status_code == 201, c.text
    others = api.client.get("/api/v1/clinic/contacts", headers=api.as_("other_clinic")).json()
    assert others["items"] == []
    bad = api.client.post(
        "/api/v1/clinic/contacts", headers=api.as_("clinic"), json={"email": "<b>x</b>"}
    )
    assert bad.status_code == 422
