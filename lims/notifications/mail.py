"""E-mails to a clinic's contacts, in English or Japanese, sent with a real SMTP client.

The texts are written once per language, keyed by event type; a notification the texts do
not know still gets a mail (its type and data), so nothing is silently dropped.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from lims.settings import NotificationSettings

LANGUAGES = ("en", "ja")
SUBJECTS: dict[str, dict[str, str]] = {
    "en": {
        "order.status_changed": "Order {order}: {status}",
        "dose.state_changed": "Dose {material_id} (order {order}): {state}",
        "recall.opened": "RECALL {recall}: lot {lot} - do not use affected doses",
        "recall.closed": "Recall {recall} (lot {lot}) is closed",
        "webhook.disabled": "Your webhook endpoint was disabled",
        "webhook.ping": "Test message",
    },
    "ja": {
        "order.status_changed": "ご注文 {order}: {status}",
        "dose.state_changed": "製剤 {material_id}(ご注文 {order}): {state}",
        "recall.opened": "【回収】{recall}: ロット {lot} - 対象製剤を使用しないでください",
        "recall.closed": "回収 {recall}(ロット {lot})を終了しました",
        "webhook.disabled": "Webhook エンドポイントを停止しました",
        "webhook.ping": "テストメッセージ",
    },
}
BODIES: dict[str, dict[str, str]] = {
    "en": {
        "order.status_changed": "The status of order {order} changed from {old_status} to "
        "{status}.",
        "dose.state_changed": "The dose {material_id} for order {order} changed from "
        "{old_state} to {state}.",
        "recall.opened": "The lab has recalled lot {lot} ({reason}). Do not use these doses: "
        "{doses}. Please acknowledge the recall in the portal or the API.",
        "recall.closed": "The lab has closed recall {recall} of lot {lot}. Thank you for "
        "acting on it.",
        "webhook.disabled": "The endpoint {url} failed {failures} times in a row and was "
        "disabled. Undelivered events are kept; re-enable it in the portal to receive them.",
        "webhook.ping": "This is a test message from the lab.",
    },
    "ja": {
        "order.status_changed": "ご注文 {order} の状況が {old_status} から {status} に"
        "変わりました。",
        "dose.state_changed": "ご注文 {order} の製剤 {material_id} の状態が {old_state} から "
        "{state} に変わりました。",
        "recall.opened": "ロット {lot} を回収しました(理由: {reason})。次の製剤は使用しないで"
        "ください: {doses}。ポータルまたは API で回収の確認をお願いします。",
        "recall.closed": "ロット {lot} の回収 {recall} を終了しました。"
        "ご対応ありがとうございました。",
        "webhook.disabled": "エンドポイント {url} が {failures} 回続けて失敗したため停止しました。"
        "未配信のイベントは保持されています。ポータルで再開すると配信されます。",
        "webhook.ping": "検査室からのテストメッセージです。",
    },
}
SIGNATURE = {"en": "\n\n-- \n{lab}\n", "ja": "\n\n-- \n{lab}\n"}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


def render(*, event_type: str, data: dict[str, Any], language: str, lab: str) -> tuple[str, str]:
    """The subject and body of the mail for one notification."""
    lang = language if language in LANGUAGES else "en"
    values = _Blank({k: ("-" if v is None else v) for k, v in data.items()})
    if isinstance(data.get("doses"), list):
        values["doses"] = ", ".join(str(d) for d in data["doses"]) or "-"
    subject = SUBJECTS[lang].get(event_type, event_type).format_map(values)
    body = BODIES[lang].get(event_type)
    text = body.format_map(values) if body else f"{event_type}: {data}"
    return subject, text + SIGNATURE[lang].format(lab=lab)


def send_mail(
    *,
    settings: NotificationSettings,
    to: str,
    subject: str,
    body: str,
    message_id: str,
) -> None:
    """Send one mail through the configured SMTP server (raises on any refusal)."""
    if not settings.smtp_host:
        raise ConnectionError("no SMTP server configured (LIMS_SMTP_HOST)")
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    # The outbox's id in the Message-ID: a resent mail is recognisably the same message.
    msg["Message-ID"] = make_msgid(idstring=message_id, domain="lims.invalid")
    msg["X-LIMS-Message-Id"] = message_id
    msg.set_content(body, charset="utf-8")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)
