"""A recall of an allogeneic lot (SQLite and PostgreSQL): it reaches every clinic that
ordered from it, by webhook (verified with standardwebhooks' own verifier) and e-mail (a
real SMTP server on loopback); the dose still in the lab is refused at the dispatch gate,
the dose at the clinic becomes do-not-use; the report lists every item and who was told
when; closing waits for every acknowledgement or QA's signed override; the refusals."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pypdfium2 as pdfium
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from lims.db import read_session, write_session
from lims.dispatch.gate import DispatchRefused
from lims.errors import NotFound, RuleViolation
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.notifications import delivery, service
from lims.notifications.models import Notification
from lims.orders.service import dispatch_order, order_for
from lims.orders.timeline import timeline_of
from lims.parties.models import Role
from lims.parties.service import create_clinic, create_user
from lims.recalls.models import ItemAction, Recall, RecallItem, RecallStatus
from lims.recalls.queries import get_recall
from lims.recalls.report import recall_csv, recall_pdf
from lims.recalls.service import (
    LotNotRecallable,
    RecallAlreadyOpen,
    RecallNotAcknowledged,
    acknowledge,
    close_recall,
    open_recall,
)
from lims.settings import NotificationSettings
from lims.signatures.passwords import AuthenticationFailed
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.notifications.receivers import SmtpReceiver, WebhookReceiver
from tests.recalls.helpers import Reached, reached, recall


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver, SmtpReceiver]]:
    ginza, osaka, smtp = WebhookReceiver().start(), WebhookReceiver().start(), SmtpReceiver()
    smtp.start()
    yield ginza, osaka, smtp
    ginza.stop()
    osaka.stop()
    smtp.stop()


def _settings(smtp: SmtpReceiver) -> NotificationSettings:
    return NotificationSettings(
        webhook_allow_private_targets=True,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        retry_base_seconds=0.05,
        retry_max_seconds=0.1,
    )


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(pdf))


def test_a_recall_reaches_every_clinic_blocks_and_marks_do_not_use(
    engine: Engine,
    world: World,
    receivers: tuple[WebhookReceiver, WebhookReceiver, SmtpReceiver],
) -> None:
    ginza_hook, osaka_hook, smtp = receivers
    settings = _settings(smtp)
    lab = Lab.start(engine, world)
    r: Reached = reached(lab)
    with write_session(engine) as s:
        ginza_desk = lab.user(s, world.clinic_user_id)
        osaka_desk = lab.user(s, r.osaka_desk_id)
        ginza_secret = service.register_endpoint(
            s, actor=ginza_desk, url=ginza_hook.url, settings=settings
        ).secret
        osaka_secret = service.register_endpoint(
            s,
            actor=osaka_desk,
            url=osaka_hook.url,
            events_wanted=["recall.opened", "recall.closed"],
            settings=settings,
        ).secret
        service.add_contact(s, actor=ginza_desk, email="desk@ginza.example", language="ja")
        service.add_contact(s, actor=osaka_desk, email="qa@osaka.example", language="en")

    number = recall(lab, r.lot)
    assert lab.get(r.lot).state == "RECALLED"
    assert lab.get(r.ginza_dose).state == "RECALLED"  # at the clinic: do not use
    assert lab.get(r.osaka_dose).state == "ALLOCATED"  # in the lab: blocked
    with read_session(engine) as s:
        rec = get_recall(s, number=number, actor=lab.user(s, world.qa_id))
        actions = {
            get_material_id(s, i.material_id): i.action
            for i in s.exec(select(RecallItem).where(col(RecallItem.recall_id) == rec.id))
        }
        timeline = timeline_of(
            s, order=order_for(s, actor=lab.user(s, world.qa_id), number=r.ginza_order)
        )
    assert actions[r.lot] == ItemAction.RECALLED
    assert actions[r.ginza_dose] == ItemAction.RECALLED
    assert actions[r.osaka_dose] == ItemAction.BLOCKED
    assert "Dose recalled: do not use" in [e.name for e in timeline]

    # The dose still in the lab is refused at the gate, with the recall's own code.
    lab.move(r.osaka_dose, "LABELED")
    with pytest.raises(DispatchRefused) as refused, write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        dispatch_order(
            s,
            order=order_for(s, actor=tech, number=r.osaka_order),
            actor=tech,
            scanned_label=r.osaka_dose,
            shipper="ColdChain",
            temperature_logger="TL-1",
            transit="18 h",
        )
    codes = {f.code for f in refused.value.reasons}
    assert {"dose_recalled", "lot_not_released"} <= codes
    assert any(number in f.message for f in refused.value.reasons if f.code == "dose_recalled")

    # Every clinic that ordered from the lot is told, once, by webhook and by e-mail.
    end = time.monotonic() + 15
    while time.monotonic() < end and not (
        osaka_hook.received and len(smtp.messages) >= 2 and ginza_hook.received
    ):
        delivery.drain(engine, settings=settings)
        time.sleep(0.05)
    ginza_events = [Webhook(ginza_secret).verify(x.body, x.headers) for x in ginza_hook.received]
    osaka_events = [Webhook(osaka_secret).verify(x.body, x.headers) for x in osaka_hook.received]
    (ginza_recall,) = [e for e in ginza_events if e["type"] == "recall.opened"]
    (osaka_recall,) = osaka_events  # subscribed to recalls only
    assert osaka_recall["type"] == "recall.opened"
    assert ginza_recall["data"]["doses"] == [r.ginza_dose]
    assert osaka_recall["data"]["doses"] == [r.osaka_dose]
    assert osaka_recall["data"]["items"][0]["action"] == "blocked"
    assert osaka_recall["data"]["items"][0]["patient"] == world.other_patient_coi
    assert ginza_recall["data"]["recall"] == number == osaka_recall["data"]["recall"]
    mails = {str(m["To"]): m for m in smtp.messages if number in str(m["Subject"])}
    assert set(mails) == {"desk@ginza.example", "qa@osaka.example"}
    assert "【回収】" in str(mails["desk@ginza.example"]["Subject"])
    osaka_body = mails["qa@osaka.example"].get_body()
    assert osaka_body is not None and r.osaka_dose in osaka_body.get_content()

    # The report: every item, and who was told, how and when.
    with read_session(engine) as s:
        rec = get_recall(s, number=number, actor=lab.user(s, world.qa_id))
        rows = list(csv.DictReader(io.StringIO(recall_csv(s, recall=rec))))
        pdf = recall_pdf(s, recall=rec).pdf
    items = [row for row in rows if row["record"] == "item"]
    notices = [row for row in rows if row["record"] == "notice"]
    assert {row["material_id"].replace(" ", "") for row in items} >= {
        r.lot,
        r.ginza_dose,
        r.osaka_dose,
    }
    assert {(n["clinic"], n["channel"]) for n in notices} == {
        ("GINZA", "webhook"),
        ("GINZA", "email"),
        ("OSAKA", "webhook"),
        ("OSAKA", "email"),
    }
    assert all(n["delivery_status"] == "DELIVERED" and n["told_at"] for n in notices)
    text = _pdf_text(pdf)
    assert f"Recall report {number}" in text and "GINZA" in text and "OSAKA" in text
    assert "NOT YET" in text  # nobody has acknowledged yet

    # Closing waits for both clinics, or QA's override.
    with write_session(engine) as s:
        acknowledge(s, number=number, actor=lab.user(s, world.clinic_user_id), note="destroyed")
    with pytest.raises(RecallNotAcknowledged, match="Osaka"), write_session(engine) as s:
        close_recall(s, number=number, actor=lab.user(s, world.qa_id), password=PASSWORD)
    with write_session(engine) as s:
        acknowledge(s, number=number, actor=lab.user(s, r.osaka_desk_id))
        acknowledge(s, number=number, actor=lab.user(s, r.osaka_desk_id))  # kept once
    with write_session(engine) as s:
        closed = close_recall(s, number=number, actor=lab.user(s, world.qa_id), password=PASSWORD)
        assert closed.status == RecallStatus.CLOSED and closed.override_reason is None
    with read_session(engine) as s:
        closed_notes = s.exec(
            select(Notification).where(col(Notification.event_type) == "recall.closed")
        ).all()
        assert {n.clinic_id for n in closed_notes} == {world.clinic_id, world.other_clinic_id}


def get_material_id(s: Session, row_id: int) -> str:
    m = s.get(Material, row_id)
    assert m is not None
    return str(m.material_id)


def test_close_by_override_needs_a_reason_and_a_signature(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    r = reached(lab)
    number = recall(lab, r.lot)
    with pytest.raises(RecallNotAcknowledged), write_session(engine) as s:
        close_recall(s, number=number, actor=lab.user(s, world.qa_id), password=PASSWORD)
    with pytest.raises(AuthenticationFailed), write_session(engine) as s:
        close_recall(
            s,
            number=number,
            actor=lab.user(s, world.qa_id),
            password="not the password",
            override_reason="clinics unreachable; doses confirmed destroyed by phone",
        )
    with read_session(engine) as s:
        assert s.exec(select(Recall)).one().status == RecallStatus.OPEN  # nothing half-written
    with write_session(engine) as s:
        closed = close_recall(
            s,
            number=number,
            actor=lab.user(s, world.qa_id),
            password=PASSWORD,
            override_reason="Osaka confirmed by phone; Ginza dose destroyed on site",
        )
        assert closed.override_reason and closed.close_signature_id is not None
    with pytest.raises(RuleViolation, match="already closed"), write_session(engine) as s:
        acknowledge(s, number=number, actor=lab.user(s, world.clinic_user_id))


def test_refusals_leave_nothing_written(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    r = reached(lab)
    lab.ensure_password(world.qa_id)
    unreleased = lab.filled_lot()
    with pytest.raises(NotFound), write_session(engine) as s:
        open_recall(
            s,
            lot_material_id="X0001 26 999999 L",
            reason="r",
            password=PASSWORD,
            actor=lab.user(s, world.qa_id),
        )
    with pytest.raises(LotNotRecallable, match="only a released"), write_session(engine) as s:
        open_recall(
            s,
            lot_material_id=unreleased,
            reason="r",
            password=PASSWORD,
            actor=lab.user(s, world.qa_id),
        )
    with pytest.raises(AuthenticationFailed), write_session(engine) as s:
        open_recall(
            s,
            lot_material_id=r.lot,
            reason="sterility",
            password="wrong password",
            actor=lab.user(s, world.qa_id),
        )
    with pytest.raises(RuleViolation, match="only QA"), write_session(engine) as s:
        open_recall(
            s,
            lot_material_id=r.lot,
            reason="sterility",
            password=PASSWORD,
            actor=lab.user(s, world.tech_id),
        )
    with read_session(engine) as s:
        assert s.exec(select(Recall)).all() == []
        assert get_material(s, r.lot).state == "RELEASED"
        assert get_material(s, r.ginza_dose).state == "RECEIVED_AT_CLINIC"
        assert not s.exec(
            select(Notification).where(col(Notification.event_type) == "recall.opened")
        ).all()
    number = recall(lab, r.lot)
    with pytest.raises(RecallAlreadyOpen, match=number), write_session(engine) as s:
        open_recall(
            s,
            lot_material_id=r.lot,
            reason="again",
            password=PASSWORD,
            actor=lab.user(s, world.qa_id),
        )
    # Another clinic's desk (the recall did not reach it) can neither see nor acknowledge it.
    with write_session(engine) as s:
        kyoto = create_user(
            s,
            username="kyoto-desk",
            printed_name="Kyoto desk",
            role=Role.CLINIC,
            clinic=create_clinic(s, code="KYOTO", name="Kyoto Clinic"),
        )
        kyoto_id = kyoto.id or 0
    with pytest.raises(NotFound), write_session(engine) as s:
        acknowledge(s, number=number, actor=lab.user(s, kyoto_id))
    with pytest.raises(RuleViolation, match="clinic it reached"), write_session(engine) as s:
        acknowledge(s, number=number, actor=lab.user(s, world.qa_id))
