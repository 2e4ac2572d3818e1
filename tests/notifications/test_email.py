"""E-mail to a clinic's contacts through a real SMTP server on loopback (aiosmtpd): what
arrived, in English and in Japanese; a server that is down keeps the mail in the outbox."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from lims.db import read_session, write_session
from lims.errors import InvalidInput
from lims.notifications import delivery, service
from lims.notifications.models import DeliveryStatus, NotificationDelivery
from lims.orders.service import cancel_order, order_for
from lims.parties.models import User
from lims.settings import NotificationSettings
from tests.builders import Lab
from tests.conftest import World
from tests.notifications.receivers import SmtpReceiver
from tests.orders.test_queries import _place


def _desk(s: Session, world: World) -> User:
    user = s.get(User, world.clinic_user_id)
    assert user is not None
    return user


def test_mails_in_english_and_japanese_arrive_and_wait_while_smtp_is_down(
    engine: Engine, world: World
) -> None:
    smtp = SmtpReceiver().start()
    settings = NotificationSettings(
        smtp_host="127.0.0.1", smtp_port=smtp.port, retry_base_seconds=0.05, retry_max_seconds=0.05
    )
    lab = Lab.start(engine, world)
    with write_session(engine) as s:
        desk = _desk(s, world)
        service.add_contact(s, actor=desk, email="nurse@ginza.example", language="en")
        service.add_contact(
            s,
            actor=desk,
            email="desk@ginza.example",
            language="ja",
            events_wanted=["order.status_changed"],
        )
        with pytest.raises(InvalidInput, match="not an e-mail address"):
            service.add_contact(s, actor=desk, email="x <y@z.example>")
        with pytest.raises(InvalidInput, match="language"):
            service.add_contact(s, actor=desk, email="a@b.example", language="fr")
        tech = lab.user(s, world.tech_id)
        number = _place(s, desk, world.patient_coi)
        cancel_order(s, order=order_for(s, actor=tech, number=number), actor=tech, reason="fever")
    try:
        assert delivery.drain(engine, settings=settings).delivered == 2
    finally:
        smtp.stop()
    by_to = {m["To"]: m for m in smtp.messages}
    assert set(by_to) == {"nurse@ginza.example", "desk@ginza.example"}
    en, ja = by_to["nurse@ginza.example"], by_to["desk@ginza.example"]
    assert en["Subject"] == f"Order {number}: CANCELLED"
    assert "changed from PLACED to CANCELLED" in en.get_content()
    assert ja["Subject"] == f"ご注文 {number}: CANCELLED"
    assert "状況が PLACED から CANCELLED に変わりました" in ja.get_content()
    assert en["X-LIMS-Message-Id"] == ja["X-LIMS-Message-Id"]  # one event, two addresses

    # The SMTP server is down: the next mail waits in the outbox with its attempts logged
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        other = _place(s, _desk(s, world), world.patient_coi, session_number=2)
        cancel_order(s, order=order_for(s, actor=tech, number=other), actor=tech, reason="r")
    assert delivery.drain(engine, settings=settings).delivered == 0
    with read_session(engine) as s:
        waiting = s.exec(
            select(NotificationDelivery).where(
                col(NotificationDelivery.status) == DeliveryStatus.PENDING
            )
        ).all()
        assert len(waiting) == 2 and all(d.attempts == 1 and d.last_error for d in waiting)
    smtp = SmtpReceiver()
    settings = NotificationSettings(smtp_host="127.0.0.1", smtp_port=smtp.port)
    smtp.start()
    try:
        time.sleep(0.06)
        assert delivery.drain(engine, settings=settings).delivered == 2
    finally:
        smtp.stop()
    assert {m["Subject"] for m in smtp.messages} == {
        f"Order {other}: CANCELLED",
        f"ご注文 {other}: CANCELLED",
    }
