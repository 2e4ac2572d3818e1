"""Outbox to a real webhook receiver on loopback (SQLite and PostgreSQL): each event once,
signed and verified with standardwebhooks' own verifier, in order; a receiver down for a
while gets the backlog in order; a rolled-back change notifies nobody; retries back off and
are logged; repeated failures disable the endpoint and the clinic is e-mailed; rotation signs
with both secrets; manual redelivery; SSRF refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from lims.db import read_session, write_session
from lims.errors import InvalidInput, NotFound
from lims.notifications import delivery, service
from lims.notifications.models import DeliveryAttempt, DeliveryStatus, Notification
from lims.orders.service import cancel_order, order_for
from lims.parties.models import Role, User
from lims.settings import NotificationSettings
from tests.builders import Lab
from tests.conftest import World
from tests.notifications.receivers import Received, WebhookReceiver
from tests.orders.test_queries import _place

FAST = NotificationSettings(
    webhook_allow_private_targets=True,
    retry_base_seconds=0.05,
    retry_max_seconds=0.2,
    max_attempts=50,
    webhook_disable_after_failures=40,
    claim_seconds=30,
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _desk(s: Session, world: World) -> User:
    user = s.get(User, world.clinic_user_id)
    assert user is not None
    return user


def _register(engine: Engine, world: World, url: str) -> tuple[int, str]:
    with write_session(engine) as s:
        e = service.register_endpoint(s, actor=_desk(s, world), url=url, settings=FAST)
        assert e.id is not None
        return e.id, e.secret


def _verified(secret: str, got: list[Received]) -> list[dict[str, Any]]:
    hook = Webhook(secret)
    return [dict(hook.verify(r.body, r.headers)) for r in got]


def _drain_until(engine: Engine, n: int, receiver: WebhookReceiver, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while len(receiver.received) < n and time.monotonic() < end:
        delivery.drain(engine, settings=FAST)
        time.sleep(0.05)


def test_each_event_once_signed_in_order_and_backlog_after_downtime(
    engine: Engine, world: World, receiver: WebhookReceiver
) -> None:
    lab = Lab.start(engine, world)
    endpoint_id, secret = _register(engine, world, receiver.url)
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        first = _place(s, _desk(s, world), world.patient_coi)
        cancel_order(s, order=order_for(s, actor=tech, number=first), actor=tech, reason="ill")
    with pytest.raises(RuntimeError), write_session(engine) as s:  # rolled back: never told
        tech = lab.user(s, world.tech_id)
        second = _place(s, _desk(s, world), world.patient_coi, session_number=2)
        cancel_order(s, order=order_for(s, actor=tech, number=second), actor=tech, reason="x")
        raise RuntimeError("the change fails after its notification was written")
    with read_session(engine) as s:
        assert len(s.exec(select(Notification)).all()) == 1  # only first's cancellation
    assert delivery.drain(engine, settings=FAST).delivered == 1
    assert delivery.drain(engine, settings=FAST).delivered == 0  # nothing twice
    (event,) = _verified(secret, receiver.received)
    assert event["type"] == "order.status_changed"
    assert event["data"] == {
        "order": first,
        "old_status": "PLACED",
        "status": "CANCELLED",
        "reason": "ill",
    }
    # The package's verifier refuses what we did not sign with this secret
    with pytest.raises(WebhookVerificationError):
        Webhook(service.new_secret()).verify(
            receiver.received[0].body, receiver.received[0].headers
        )

    receiver.stop()  # down for a while: three more changes pile up
    numbers = []
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        for n in (3, 4, 5):
            numbers.append(_place(s, _desk(s, world), world.patient_coi, session_number=n))
        for number in numbers:
            cancel_order(s, order=order_for(s, actor=tech, number=number), actor=tech, reason="r")
    for _ in range(3):
        result = delivery.drain(engine, settings=FAST)
        assert result.delivered == 0
        time.sleep(0.06)
    with read_session(engine) as s:
        attempts = s.exec(select(DeliveryAttempt).where(col(DeliveryAttempt.ok).is_(False))).all()
        assert len(attempts) >= 2 and all("Connect" in (a.error or "") for a in attempts)
    receiver.start()  # same port
    _drain_until(engine, 4, receiver)
    events = _verified(secret, receiver.received)
    assert [e["data"]["order"] for e in events] == [first, *numbers]  # the backlog, in order
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == len(ids) == 4  # each once
    with read_session(engine) as s:
        log = service.deliveries_of(s, actor=_desk(s, world), endpoint_id=endpoint_id)
        assert {d.status for d, _, _ in log} == {DeliveryStatus.DELIVERED}
        oldest_down = next(a for _, n, a in log if n.subject == numbers[0])
        assert [a.ok for a in oldest_down][-1] is True and len(oldest_down) >= 2


def test_repeated_failures_disable_the_endpoint_and_the_clinic_is_emailed(
    engine: Engine, world: World, receiver: WebhookReceiver
) -> None:
    settings = NotificationSettings(
        webhook_allow_private_targets=True,
        retry_base_seconds=0.01,
        retry_max_seconds=0.01,
        webhook_disable_after_failures=3,
    )
    receiver.status = 500
    endpoint_id, _ = _register(engine, world, receiver.url)
    with write_session(engine) as s:
        service.add_contact(s, actor=_desk(s, world), email="desk@ginza.example", language="ja")
        _place(s, _desk(s, world), world.patient_coi)
        service.ping(s, actor=_desk(s, world), endpoint_id=endpoint_id)
    for _ in range(5):
        delivery.drain(engine, settings=settings)
        time.sleep(0.02)
    assert len(receiver.received) == 3  # then it stopped calling
    with read_session(engine) as s:
        endpoint = service.endpoint_for(s, actor=_desk(s, world), endpoint_id=endpoint_id)
        assert not endpoint.enabled and "3 failed deliveries" in (endpoint.disabled_reason or "")
        told = s.exec(
            select(Notification).where(col(Notification.event_type) == "webhook.disabled")
        ).all()
        assert len(told) == 1 and told[0].clinic_id == world.clinic_id
    receiver.status = 204  # fixed; re-enabled: the kept backlog (the ping) is delivered
    with write_session(engine) as s:
        service.set_enabled(s, actor=_desk(s, world), endpoint_id=endpoint_id, enabled=True)
    delivery.drain(engine, settings=settings)
    assert receiver.received[-1].payload["type"] == "webhook.ping"


def test_rotation_signs_with_both_secrets_and_manual_redelivery(
    engine: Engine, world: World, receiver: WebhookReceiver
) -> None:
    endpoint_id, old_secret = _register(engine, world, receiver.url)
    with write_session(engine) as s:
        new_secret = service.rotate_secret(
            s, actor=_desk(s, world), endpoint_id=endpoint_id, settings=FAST
        ).secret
        note = service.ping(s, actor=_desk(s, world), endpoint_id=endpoint_id)
        message_id = note.message_id
    assert new_secret != old_secret
    delivery.drain(engine, settings=FAST)
    (got,) = receiver.received
    assert _verified(old_secret, [got]) == _verified(new_secret, [got])
    with write_session(engine) as s:
        ((d, _, attempts),) = service.deliveries_of(
            s, actor=_desk(s, world), endpoint_id=endpoint_id
        )
        assert d.id is not None and [a.ok for a in attempts] == [True]
        service.redeliver(s, actor=_desk(s, world), delivery_id=d.id)
        with pytest.raises(NotFound):
            service.redeliver(s, actor=_desk(s, world), delivery_id=999_999)
    delivery.drain(engine, settings=FAST)
    assert [r.headers["webhook-id"] for r in receiver.received] == [message_id, message_id]


def test_ssrf_targets_refused_by_default_and_tenancy(engine: Engine, world: World) -> None:
    strict = NotificationSettings()
    with write_session(engine) as s:
        desk = _desk(s, world)
        for url, why in (
            ("http://example.com/hook", "https"),
            ("https://127.0.0.1/hook", "loopback"),
            ("https://169.254.169.254/latest", "loopback, link-local or private"),
            ("https://10.0.0.5/hook", "private"),
            ("https://[::1]/hook", "private"),
            ("ftp://example.com/x", "https://"),
            ("https://user:pw@example.com/", "password"),
        ):
            with pytest.raises(InvalidInput, match=why):
                service.register_endpoint(s, actor=desk, url=url, settings=strict)
        with pytest.raises(InvalidInput, match="unknown event types"):
            service.register_endpoint(
                s, actor=desk, url="http://127.0.0.1:9/x", events_wanted=["nope"], settings=FAST
            )
    with pytest.raises(ValueError, match="refused in production"):
        NotificationSettings(environment="production", webhook_allow_private_targets=True)
    endpoint_id, _ = _register(engine, world, "http://127.0.0.1:9/x")
    with read_session(engine) as s:
        osaka = User(
            username="o", printed_name="o", role=Role.CLINIC, clinic_id=world.other_clinic_id
        )
        with pytest.raises(NotFound):
            service.endpoint_for(s, actor=osaka, endpoint_id=endpoint_id)
        assert service.endpoints_of(s, actor=osaka) == []
