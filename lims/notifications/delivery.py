"""The delivery worker: send what the outbox holds, at least once, in order per receiver.

One round takes the oldest pending delivery of each receiver (a webhook endpoint, an e-mail
contact), claims it in a short transaction, sends it with no transaction open, and records
the attempt in another. A receiver's later deliveries wait behind its head, so a backlog
arrives in the order it was written. A worker killed after its claim loses nothing: the
claim runs out and the next round sends the delivery again with the same webhook-id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from lims.custody import ledger
from lims.db import utcnow, write_session
from lims.notifications import events, mail
from lims.notifications.models import (
    Channel,
    ClinicContact,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    WebhookEndpoint,
)
from lims.notifications.outbox import notify
from lims.notifications.targets import check_target
from lims.settings import NotificationSettings, get_settings

_DELIVERIES = NotificationDelivery.__table__  # type: ignore[attr-defined]
# Heads are looked for among this many pending deliveries per round.
SCAN = 1000


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None


@dataclass
class RoundResult:
    delivered: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)


def backoff(attempts: int, settings: NotificationSettings) -> timedelta:
    """The wait after the ``attempts``-th failure: base * 2**(attempts-1), capped."""
    seconds = settings.retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def signature_header(endpoint: WebhookEndpoint, *, message_id: str, at: datetime, body: str) -> str:
    """webhook-signature: the current secret's, and the previous one's while it overlaps."""
    signatures = [Webhook(endpoint.secret).sign(message_id, at, body)]
    if (
        endpoint.previous_secret
        and endpoint.previous_valid_until
        and at < endpoint.previous_valid_until
    ):
        signatures.append(Webhook(endpoint.previous_secret).sign(message_id, at, body))
    return " ".join(signatures)


def post_webhook(
    endpoint: WebhookEndpoint, note: Notification, *, settings: NotificationSettings
) -> Outcome:
    """POST one signed event to the endpoint (no redirects followed: SSRF)."""
    try:
        url = check_target(endpoint.url, settings=settings)
    except Exception as exc:  # the name resolves somewhere refused now
        return Outcome(ok=False, error=str(exc))
    body = json.dumps(note.payload, ensure_ascii=False, sort_keys=True)
    at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": "lims-webhooks/1",
        "webhook-id": note.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature_header(
            endpoint, message_id=note.message_id, at=at, body=body
        ),
    }
    try:
        response = httpx.post(
            url,
            content=body.encode(),
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return Outcome(ok=True, status_code=response.status_code)
    return Outcome(ok=False, status_code=response.status_code, error=response.text[:500])


def send_email(
    contact: ClinicContact, note: Notification, *, settings: NotificationSettings
) -> Outcome:
    subject, body = mail.render(
        event_type=note.event_type,
        data=dict(note.payload.get("data") or {}),
        language=contact.language,
        lab=get_settings().facility_name,
    )
    try:
        mail.send_mail(
            settings=settings,
            to=contact.email,
            subject=subject,
            body=body,
            message_id=note.message_id,
        )
    except (OSError, mail.smtplib.SMTPException) as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    return Outcome(ok=True)


def _claim_heads(session: Session, *, now: datetime, settings: NotificationSettings) -> list[int]:
    """Claim the oldest pending delivery of every receiver whose head is due and free."""
    pending = session.exec(
        select(NotificationDelivery)
        .where(col(NotificationDelivery.status) == DeliveryStatus.PENDING)
        .order_by(col(NotificationDelivery.notification_id), col(NotificationDelivery.id))
        .limit(SCAN)
    ).all()
    disabled = set(
        session.exec(
            select(WebhookEndpoint.id).where(col(WebhookEndpoint.enabled).is_(False))
        ).all()
    )
    seen: set[tuple[str, int | None]] = set()
    claimed = []
    for d in pending:
        queue = (d.channel, d.endpoint_id if d.channel == Channel.WEBHOOK else d.contact_id)
        if queue in seen:
            continue
        seen.add(queue)
        if d.endpoint_id in disabled or d.next_attempt_at > now:
            continue
        if d.claimed_until is not None and d.claimed_until > now:
            continue  # another worker has it (or had it, and was killed: wait for the claim)
        done = session.connection().execute(
            update(_DELIVERIES)
            .where(
                _DELIVERIES.c.id == d.id,
                _DELIVERIES.c.status == DeliveryStatus.PENDING,
                or_(_DELIVERIES.c.claimed_until.is_(None), _DELIVERIES.c.claimed_until <= now),
            )
            .values(claimed_until=now + timedelta(seconds=settings.claim_seconds))
        )
        if done.rowcount == 1:
            assert d.id is not None
            claimed.append(d.id)
    return claimed


def _send(engine: Engine, delivery_id: int, *, settings: NotificationSettings) -> Outcome:
    with write_session(engine) as session:
        d = session.get(NotificationDelivery, delivery_id)
        assert d is not None
        note = session.get(Notification, d.notification_id)
        endpoint = session.get(WebhookEndpoint, d.endpoint_id) if d.endpoint_id else None
        contact = session.get(ClinicContact, d.contact_id) if d.contact_id else None
        session.expunge_all()
    assert note is not None
    if d.channel == Channel.WEBHOOK and endpoint is not None:
        return post_webhook(endpoint, note, settings=settings)
    if d.channel == Channel.EMAIL and contact is not None:
        return send_email(contact, note, settings=settings)
    return Outcome(ok=False, error="its receiver no longer exists")


def record(
    session: Session,
    delivery: NotificationDelivery,
    outcome: Outcome,
    *,
    started: float,
    settings: NotificationSettings,
    manual: bool = False,
) -> None:
    """Log one attempt and move the delivery on (delivered, retried later, or dead)."""
    now = utcnow()
    assert delivery.id is not None
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=int((time.monotonic() - started) * 1000),
            manual=manual,
        )
    )
    delivery.attempts += 1
    delivery.claimed_until = None
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.last_error = None
    else:
        delivery.last_error = outcome.error
        if delivery.attempts >= settings.max_attempts:
            delivery.status = DeliveryStatus.DEAD
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts, settings)
    session.add(delivery)
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
        if endpoint is not None:
            _count_failure(session, endpoint, ok=outcome.ok, settings=settings)
    session.flush()


def _count_failure(
    session: Session, endpoint: WebhookEndpoint, *, ok: bool, settings: NotificationSettings
) -> None:
    if ok:
        endpoint.consecutive_failures = 0
        session.add(endpoint)
        return
    endpoint.consecutive_failures += 1
    if (
        endpoint.enabled
        and endpoint.consecutive_failures >= settings.webhook_disable_after_failures
    ):
        endpoint.enabled = False
        endpoint.disabled_reason = f"{endpoint.consecutive_failures} failed deliveries in a row"
        ledger.append(
            session,
            actor=None,
            action="webhook.disabled",
            entity="webhook_endpoint",
            entity_id=str(endpoint.id),
            new={"enabled": False, "failures": endpoint.consecutive_failures},
            reason=endpoint.disabled_reason,
        )
        # Told by e-mail only: the endpoint that would carry a webhook is the one that failed.
        notify(
            session,
            clinic_id=endpoint.clinic_id,
            event_type=events.WEBHOOK_DISABLED,
            subject=str(endpoint.id),
            data={"url": endpoint.url, "failures": endpoint.consecutive_failures},
            channels=(Channel.EMAIL,),
        )
    session.add(endpoint)


def deliver_round(engine: Engine, *, settings: NotificationSettings) -> RoundResult:
    """Claim each receiver's due head, send it, record it; one delivery per receiver."""
    with write_session(engine) as session:
        claimed = _claim_heads(session, now=utcnow(), settings=settings)
    result = RoundResult(ids=claimed)
    for delivery_id in claimed:
        started = time.monotonic()
        outcome = _send(engine, delivery_id, settings=settings)
        with write_session(engine) as session:
            delivery = session.get(NotificationDelivery, delivery_id, with_for_update=True)
            assert delivery is not None
            record(session, delivery, outcome, started=started, settings=settings)
        if outcome.ok:
            result.delivered += 1
        else:
            result.failed += 1
    return result


def drain(engine: Engine, *, settings: NotificationSettings, max_rounds: int = 1000) -> RoundResult:
    """Rounds while they make progress: a backlog goes out in one call, in order."""
    total = RoundResult()
    for _ in range(max_rounds):
        one = deliver_round(engine, settings=settings)
        total.delivered += one.delivered
        total.failed += one.failed
        total.ids += one.ids
        if not one.delivered:  # nothing due, or only failures: their back-off decides when
            break
    return total
